//! Writes the checked-in seed corpora under `fuzz/corpus/<target>/`:
//! `cargo run --example make_seeds` (from `fuzz/`). The seeds of `device_ops` are the
//! driver models of `tests/support` (Linux, iPXE, DPDK) as operation lists; the others
//! are small handmade inputs.
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{target}/{name}: {} bytes", bytes.len());
}

/// A pcap file (microsecond timestamps, Ethernet) with `frames`.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut o = Vec::new();
    for v in [0xA1B2_C3D4u32] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&2u16.to_le_bytes());
    o.extend_from_slice(&4u16.to_le_bytes());
    o.extend_from_slice(&0i32.to_le_bytes());
    o.extend_from_slice(&0u32.to_le_bytes());
    o.extend_from_slice(&65535u32.to_le_bytes());
    o.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        o.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        o.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        o.extend_from_slice(&(f.len() as u32).to_le_bytes());
        o.extend_from_slice(&(f.len() as u32).to_le_bytes());
        o.extend_from_slice(f);
    }
    o
}

fn block(t: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    let mut o = Vec::new();
    o.extend_from_slice(&t.to_le_bytes());
    o.extend_from_slice(&total.to_le_bytes());
    o.extend_from_slice(body);
    o.extend(std::iter::repeat_n(0, pad));
    o.extend_from_slice(&total.to_le_bytes());
    o
}

/// A pcapng file: section header, one Ethernet interface, enhanced packet blocks.
fn pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut o = block(0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    o.extend(block(1, &idb));
    for (i, f) in frames.iter().enumerate() {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        o.extend(block(6, &epb));
    }
    o
}

fn eth(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    f.extend((0..len).map(|i| (i as u8).wrapping_add(seed)));
    f
}

fn main() {
    for (name, bytes) in nic_emu_fuzz::device_ops::seeds::all() {
        write("device_ops", name, &bytes);
    }
    for (name, bytes) in nic_emu_fuzz::vfio_user_stream::seeds() {
        write("vfio_user_stream", name, &bytes);
    }
    let frames = vec![
        eth([0x52, 0x54, 0, 0x12, 0x34, 0x56], 50, 1),
        eth([0xFF; 6], 300, 2),
        {
            let mut t = eth([0x01, 0, 0x5E, 0, 0, 1], 60, 3);
            t.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
            t
        },
    ];
    // The first byte selects timing, repeat, rewrite and buffer size.
    let mut p = vec![0x01];
    p.extend(pcap(&frames));
    write("pcap_replay", "pcap-3-frames", &p);
    let mut p = vec![0x06];
    p.extend(pcapng(&frames));
    write("pcap_replay", "pcapng-3-frames-rewrite", &p);
    let mut p = vec![0x89];
    p.extend(pcap(&[eth([0xFF; 6], 2000, 4)]));
    write("pcap_replay", "pcap-jumbo-small-buffer", &p);

    // backend_spec: the first byte selects inline (0), one TOML table (1), a file (2).
    let specs: &[(&str, &str)] = &[
        ("inline-udp", "\0udp,local=127.0.0.1:7001,remote=127.0.0.1:7002,record=a,,b.pcap"),
        ("inline-pcap", "\0pcap,replay=in.pcap,timing=250pps,repeat=3,rewrite_dst=guest,rewrite_src=02:00:00:00:00:01"),
        ("inline-impair", "\0stream,connect=unix:/tmp/p.sock,loss=1.5,rx_delay=20ms,tx_jitter=5ms,rate=1mbit,seed=7"),
        ("inline-mcast", "\0udp,mcast=239.1.2.3:5000,local=10.0.0.1,record_max_frames=9,record=r.pcap"),
        ("toml-table", "\u{1}kind = \"tap\"\nifname = \"tap%d\"\nrecord = \"x y.pcap\"\nrecord_max_bytes = 4096\n"),
        ("toml-file", "\u{2}default = \"w\"\n[device]\nmac = \"52:54:00:00:00:07\"\nlink_up = false\n[backends.w]\nkind = \"udp\"\nlocal = \"127.0.0.1:7001\"\ndup = 2\n[backends.\"odd name\"]\nkind = \"pcap\"\nreplay = \"caps/a.pcapng\"\ntiming = \"fast\"\nrepeat = 0\n"),
    ];
    for (name, s) in specs {
        write("backend_spec", name, s.as_bytes());
    }

    // dma_table and capi_calls take `arbitrary` structures: seeds are byte patterns
    // that decode to operation lists of a useful length.
    // A small LCG supplies bytes; the first inputs that decode to enough operations
    // are kept.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 56) as u8
            })
            .collect()
    };
    for (i, (len, want)) in [(96usize, 3usize), (384, 8), (1536, 12)]
        .into_iter()
        .enumerate()
    {
        let len = &len;
        let (bytes, n) = loop {
            let b = next(*len);
            let u = Unstructured::new(&b);
            let n = Vec::<nic_emu_fuzz::dma_table::DmaOp>::arbitrary_take_rest(u)
                .map_or(0, |v| v.len());
            if n >= want {
                break (b, n);
            }
        };
        write("dma_table", &format!("ops-{i}-{n}"), &bytes);
        let (bytes, n) = loop {
            let b = next(*len);
            let u = Unstructured::new(&b);
            let n = nic_emu_fuzz::capi_calls::Input::arbitrary_take_rest(u)
                .map_or(0, |x| x.calls_len());
            if n >= want {
                break (b, n);
            }
        };
        write("capi_calls", &format!("calls-{i}-{n}"), &bytes);
    }
}
