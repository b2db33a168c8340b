//! The VXLAN backend without root, over 127.0.0.1: specs and their errors, frames both
//! ways between two endpoints, the RFC 7348 header and the outer source port on the wire
//! (read by a plain UDP socket, not by the backend's own decoder), hostile datagrams
//! counted by reason, and the impairment and recording wrappers around it.
//! tests/backends/vxlan_linux.rs (root) checks it against Linux's own vxlan devices.
#![cfg(feature = "udp")]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nic_emu::backend::vxlan::{flow_src_port, VxlanCounters, PORT_BUCKETS, SRC_PORT_RANGE};
use nic_emu::backend::{
    BackendCounter, PacketBackend, Vxlan, VxlanHost, VxlanLocal, VxlanPeer, VxlanSpec, MAX_FRAME,
};
use nic_emu::config::{BackendKind, BackendSpec};
use proptest::prelude::*;

const VNI: u32 = 42;

/// A datagram as RFC 7348 lays it out, written here by hand: flags, 24 reserved bits,
/// the VNI (24 bits, big-endian), 8 reserved bits, the inner frame.
fn vxlan_datagram(flags: u8, vni: u32, reserved: [u8; 4], inner: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    let mut d = vec![
        flags,
        reserved[0],
        reserved[1],
        reserved[2],
        v[1],
        v[2],
        v[3],
        reserved[3],
    ];
    d.extend_from_slice(inner);
    d
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spec(s: &str) -> VxlanSpec {
    match BackendSpec::parse_inline(s).unwrap().kind {
        BackendKind::Vxlan(x) => x,
        k => panic!("{s}: not vxlan: {k:?}"),
    }
}

/// An endpoint on 127.0.0.1:`port` whose peer is 127.0.0.1:`peer`.
fn endpoint(port: u16, peer: u16, extra: &str) -> Vxlan {
    Vxlan::open(&spec(&format!(
        "vxlan,remote=127.0.0.1:{peer},local=127.0.0.1:{port},vni={VNI}{extra}"
    )))
    .unwrap()
}

/// Poll `b` until it yields a frame or two seconds pass.
fn recv_wait(b: &mut dyn PacketBackend) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_FRAME];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if let Some(n) = b.recv(&mut buf).unwrap() {
            return Some(buf[..n].to_vec());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Everything `b` returns until it has been quiet for 100 ms.
fn drain(b: &mut dyn PacketBackend) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(100) {
        match b.recv(&mut buf).unwrap() {
            Some(n) => {
                out.push(buf[..n].to_vec());
                quiet = Instant::now();
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    out
}

/// A UDP datagram frame `sport -> dport` from 10.0.0.1 to 10.0.0.2 with `payload`.
fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(support::PEER, support::MAC)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(sport, dport);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).unwrap();
    f
}

#[test]
fn specs_parse_with_defaults_and_read_back() {
    let s = spec("vxlan,remote=192.0.2.7,vni=42");
    assert_eq!(
        s,
        VxlanSpec {
            vni: 42,
            peer: VxlanPeer::Remote {
                host: VxlanHost::Ip("192.0.2.7".parse().unwrap()),
                port: 4789
            },
            local: None,
            ttl: None,
            src_port: None,
        }
    );
    let s = spec("vxlan,remote=[2001:db8::7]:8472,vni=16777215,local=[2001:db8::1]:5000,ttl=9,src_port=40000");
    assert_eq!(
        s.peer,
        VxlanPeer::Remote {
            host: VxlanHost::Ip("2001:db8::7".parse().unwrap()),
            port: 8472
        }
    );
    assert_eq!(
        s.local,
        Some(VxlanLocal::Addr {
            ip: "2001:db8::1".parse().unwrap(),
            port: Some(5000)
        })
    );
    assert_eq!(
        (s.vni, s.ttl, s.src_port),
        (16_777_215, Some(9), Some(40000))
    );
    assert_eq!(
        spec("vxlan,remote=2001:db8::7,vni=1").peer,
        VxlanPeer::Remote {
            host: VxlanHost::Ip("2001:db8::7".parse().unwrap()),
            port: 4789
        },
        "a bare IPv6 address takes the default port"
    );
    assert_eq!(
        spec("vxlan,remote=vtep-3.lab.example:4790,vni=1").peer,
        VxlanPeer::Remote {
            host: VxlanHost::Name("vtep-3.lab.example".into()),
            port: 4790
        }
    );
    let g = spec("vxlan,group=239.1.1.1,vni=7,local=eth0");
    assert_eq!(g.peer, VxlanPeer::Group("239.1.1.1:4789".parse().unwrap()));
    assert_eq!(g.local, Some(VxlanLocal::Iface("eth0".into())));
    let g6 = spec("vxlan,group=[ff05::42]:4790,vni=7,local=veth0");
    assert_eq!(
        g6.peer,
        VxlanPeer::Group("[ff05::42]:4790".parse().unwrap())
    );
    for text in [
        "vxlan,remote=192.0.2.7,vni=42",
        "vxlan,remote=[2001:db8::7]:8472,vni=5,local=[2001:db8::1]:5000,ttl=9,src_port=40000",
        "vxlan,remote=vtep.example,vni=5,local=10.0.0.1",
        "vxlan,group=239.1.1.1,vni=7,local=eth0,ttl=4,loss=5,record=x.pcap",
        "vxlan,group=[ff05::42],vni=7,local=veth0",
    ] {
        let s = BackendSpec::parse_inline(text).unwrap();
        assert_eq!(
            BackendSpec::parse_inline(&s.to_string()).unwrap(),
            s,
            "{text}"
        );
    }
}

#[test]
fn spec_errors_name_the_key() {
    for (text, key) in [
        ("vxlan,vni=42", "remote` or `group"),
        ("vxlan,remote=10.0.0.1", "vni"),
        ("vxlan,remote=10.0.0.1,vni=16777216", "vni"),
        ("vxlan,remote=10.0.0.1,vni=-1", "vni"),
        ("vxlan,remote=10.0.0.1,vni=forty", "vni"),
        ("vxlan,remote=10.0.0.1,group=239.1.1.1,vni=1", "group"),
        ("vxlan,remote=239.1.1.1,vni=1", "remote"),
        ("vxlan,remote=0.0.0.0,vni=1", "remote"),
        ("vxlan,remote=10.0.0.1:0,vni=1", "remote"),
        ("vxlan,remote=10.0.0.1:99999,vni=1", "remote"),
        ("vxlan,remote=10.0.0.256,vni=1", "remote"),
        ("vxlan,remote=bad_name!,vni=1", "remote"),
        ("vxlan,remote=host:port,vni=1", "remote"),
        ("vxlan,group=10.0.0.1,vni=1", "group"),
        ("vxlan,group=eth0,vni=1", "group"),
        ("vxlan,remote=10.0.0.1,vni=1,local=eth0", "local"),
        ("vxlan,remote=10.0.0.1,vni=1,local=[::1]", "local"),
        ("vxlan,remote=10.0.0.1,vni=1,local=a/b", "local"),
        ("vxlan,group=239.1.1.1,vni=1,local=10.0.0.1:5", "local"),
        ("vxlan,group=[ff05::1],vni=1,local=fd00::1", "local"),
        ("vxlan,group=239.1.1.1,vni=1,local=fd00::1", "local"),
        ("vxlan,remote=10.0.0.1,vni=1,ttl=0", "ttl"),
        ("vxlan,remote=10.0.0.1,vni=1,ttl=256", "ttl"),
        ("vxlan,remote=10.0.0.1,vni=1,src_port=0", "src_port"),
        ("vxlan,remote=10.0.0.1,vni=1,src_port=65536", "src_port"),
        ("vxlan,remote=10.0.0.1,vni=1,mcast=239.1.1.1:5", "mcast"),
        ("vxlan,remote=10.0.0.1,vni=1,vni=2", "vni"),
        ("udp,local=127.0.0.1:1,vni=5", "vni"),
    ] {
        let e = BackendSpec::parse_inline(text).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
    }
}

#[cfg(feature = "config")]
#[test]
fn backends_toml_takes_vxlan_tables_and_prints_them_back() {
    use nic_emu::config::Config;
    let c = Config::parse(
        r#"
default = "lab"
[backends.lab]
kind = "vxlan"
group = "239.1.1.1"
vni = 42
local = "eth0"
ttl = 4
[backends.peer]
kind = "vxlan"
remote = "[2001:db8::7]:8472"
vni = 7
src_port = 40000
"#,
        "vx.toml",
    )
    .unwrap();
    let (_, lab) = c.resolve_backend(None).unwrap();
    assert_eq!(
        lab.kind,
        BackendKind::Vxlan(VxlanSpec {
            vni: 42,
            peer: VxlanPeer::Group("239.1.1.1:4789".parse().unwrap()),
            local: Some(VxlanLocal::Iface("eth0".into())),
            ttl: Some(4),
            src_port: None,
        })
    );
    let again = Config::parse(&c.to_string(), "printed").unwrap();
    assert_eq!(again.backends, c.backends, "{c}");
    for (text, key) in [
        (
            "[backends.x]\nkind = \"vxlan\"\nremote = \"10.0.0.1\"\n",
            "vni",
        ),
        (
            "[backends.x]\nkind = \"vxlan\"\nremote = \"10.0.0.1\"\nvni = \"42\"\n",
            "vni",
        ),
        (
            "[backends.x]\nkind = \"vxlan\"\nremote = \"10.0.0.1\"\nvni = 1\nttl = 300\n",
            "ttl",
        ),
        (
            "[backends.x]\nkind = \"vxlan\"\ngroup = \"10.0.0.1\"\nvni = 1\n",
            "group",
        ),
        (
            "[backends.x]\nkind = \"vxlan\"\nremote = \"10.0.0.1\"\nvni = 1\nifname = \"t\"\n",
            "ifname",
        ),
    ] {
        let e = Config::parse(text, "vx.toml").unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("vx.toml"), "{text}: {e}");
    }
}

proptest! {
    /// Whatever parses prints back to itself.
    #[test]
    fn vxlan_specs_round_trip(
        vni in 0u32..(1 << 24),
        port in 1u16..,
        v6 in any::<bool>(),
        group in any::<bool>(),
        local in 0u8..3,
        ttl in proptest::option::of(1u8..),
        src_port in proptest::option::of(1u16..),
    ) {
        let peer = match (group, v6) {
            (false, false) => format!("remote=198.51.100.3:{port}"),
            (false, true) => format!("remote=[2001:db8::3]:{port}"),
            (true, false) => format!("group=239.9.9.9:{port}"),
            (true, true) => format!("group=[ff05::9]:{port}"),
        };
        let local = match (local, group, v6) {
            (0, _, _) => String::new(),
            (1, true, _) => ",local=ne-veth0".into(),
            (_, _, false) => ",local=198.51.100.1".into(),
            (_, false, true) => ",local=[2001:db8::1]:4000".into(),
            (_, true, true) => ",local=lo".into(),
        };
        let mut text = format!("vxlan,{peer},vni={vni}{local}");
        if let Some(t) = ttl {
            text.push_str(&format!(",ttl={t}"));
        }
        if let Some(p) = src_port {
            text.push_str(&format!(",src_port={p}"));
        }
        let s = BackendSpec::parse_inline(&text).unwrap();
        prop_assert_eq!(BackendSpec::parse_inline(&s.to_string()), Ok(s), "{}", text);
    }
}

#[test]
fn two_endpoints_carry_frames_of_every_size_both_ways() {
    let (pa, pb) = (free_port(), free_port());
    let mut a = endpoint(pa, pb, "");
    let mut b = endpoint(pb, pa, "");
    assert_eq!(a.local_addr(), SocketAddr::from(([127, 0, 0, 1], pa)));
    assert!(a.rx_fd().is_some());
    let sizes = [14, 60, 1514, 9014, MAX_FRAME];
    for (i, &len) in sizes.iter().enumerate() {
        let f = support::frame(support::PEER, support::MAC, 0x88B5, len - 14, i as u8);
        assert!(a.send(&f).unwrap());
        assert_eq!(recv_wait(&mut b).as_deref(), Some(&f[..]), "{len} a -> b");
        let g = support::frame(support::MAC, support::PEER, 0x88B5, len - 14, 100 + i as u8);
        assert!(b.send(&g).unwrap());
        assert_eq!(recv_wait(&mut a).as_deref(), Some(&g[..]), "{len} b -> a");
    }
    let n = sizes.len() as u64;
    for c in [a.counters(), b.counters()] {
        assert_eq!(
            c,
            VxlanCounters {
                tx_frames: n,
                rx_frames: n,
                rx_calls: c.rx_calls,
                ..VxlanCounters::default()
            }
        );
    }
    // Hashed source ports: a socket per bucket of the range, opened with the backend.
    assert_eq!(a.source_port_sockets(), PORT_BUCKETS);
}

#[test]
fn datagrams_on_the_wire_follow_rfc_7348_with_the_source_port_of_their_flow() {
    let wire = UdpSocket::bind("127.0.0.1:0").unwrap();
    wire.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let peer = wire.local_addr().unwrap().port();
    let mut a = endpoint(free_port(), peer, "");
    let mut buf = vec![0u8; 70_000];
    let mut catch = |a: &mut Vxlan, f: &[u8]| -> (Vec<u8>, u16) {
        assert!(a.send(f).unwrap());
        let (n, from) = wire.recv_from(&mut buf).unwrap();
        assert_eq!(from.ip(), std::net::Ipv4Addr::LOCALHOST);
        (buf[..n].to_vec(), from.port())
    };
    let flow1 = udp_frame(1000, 2000, b"one");
    let flow1b = udp_frame(1000, 2000, b"the same flow again");
    let flow2 = (2001..3000)
        .map(|p| udp_frame(1000, p, b"two"))
        .find(|f| a.source_port_for(f) != a.source_port_for(&flow1))
        .unwrap();
    let (d1, p1) = catch(&mut a, &flow1);
    assert_eq!(
        d1[..8],
        [0x08, 0, 0, 0, 0, 0, 42, 0],
        "I flag, VNI 42, reserved zero"
    );
    assert_eq!(&d1[8..], &flow1[..]);
    let (_, p1b) = catch(&mut a, &flow1b);
    let (_, p2) = catch(&mut a, &flow2);
    assert!(
        SRC_PORT_RANGE.contains(&p1) && SRC_PORT_RANGE.contains(&p2),
        "{p1} {p2}"
    );
    assert_eq!(p1, p1b, "one flow, one source port");
    assert_ne!(p1, p2, "another flow, another port");
    assert_eq!(p1, a.source_port_for(&flow1));
    assert_eq!(p2, a.source_port_for(&flow2));
    // The first port of the flow's bucket, or one of the next few if another socket
    // (another test's endpoint) had it.
    assert!((0..8).contains(&(p1 - flow_src_port(&flow1))), "{p1}");

    // Fixed: every frame from src_port.
    let fixed = free_port();
    let mut f = endpoint(free_port(), peer, &format!(",src_port={fixed}"));
    assert_eq!(catch(&mut f, &flow1).1, fixed);
    assert_eq!(catch(&mut f, &flow2).1, fixed);
    assert_eq!(f.source_port_sockets(), 0);
    // Fixed to the listening port: the listening socket sends.
    let listen = free_port();
    let mut l = endpoint(listen, peer, &format!(",src_port={listen},ttl=3"));
    assert_eq!(catch(&mut l, &flow2).1, listen);
    assert_eq!(l.source_port_sockets(), 0);
}

#[test]
fn foreign_datagrams_are_counted_by_reason_and_dropped() {
    let port = free_port();
    let mut a = endpoint(port, free_port(), "");
    let to = a.local_addr();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = |seed: u8| support::frame(support::MAC, support::PEER, 0x0800, 46, seed);
    let send = |d: &[u8]| {
        raw.send_to(d, to).unwrap();
    };
    // Another VNI, twice.
    send(&vxlan_datagram(0x08, 43, [0; 4], &good(1)));
    send(&vxlan_datagram(0x08, 0x2A_0000 | 42, [0; 4], &good(2)));
    // No I flag: no flags, and every flag but I.
    send(&vxlan_datagram(0x00, 42, [0; 4], &good(3)));
    send(&vxlan_datagram(0xF7, 42, [0; 4], &good(4)));
    // Short headers: empty, and 7 bytes.
    send(&[]);
    send(&vxlan_datagram(0x08, 42, [0; 4], &[])[..7]);
    // Inner frames too short (a bare header, 13 bytes) and too long (MAX_FRAME + 1).
    send(&vxlan_datagram(0x08, 42, [0; 4], &[]));
    send(&vxlan_datagram(0x08, 42, [0; 4], &[0xAB; 13]));
    send(&vxlan_datagram(
        0x08,
        42,
        [0; 4],
        &vec![0xCD; MAX_FRAME + 1],
    ));
    // Reserved bits and other flags set: delivered (RFC 7348: ignored on receipt).
    send(&vxlan_datagram(0x88, 42, [0; 4], &good(5)));
    send(&vxlan_datagram(0x08, 42, [1, 2, 3, 4], &good(6)));
    // A plain good one.
    send(&vxlan_datagram(0x08, 42, [0; 4], &good(7)));
    let got = drain(&mut a);
    assert_eq!(got, vec![good(5), good(6), good(7)]);
    let c = a.counters();
    assert_eq!(
        (
            c.rx_other_vni,
            c.rx_no_i_flag,
            c.rx_short_header,
            c.rx_inner_short,
            c.rx_inner_oversize,
            c.rx_reserved_ignored,
            c.rx_frames
        ),
        (2, 2, 2, 2, 1, 2, 3),
        "{c:?}"
    );
    assert_eq!(c.rx_dropped(), 9);

    // "Larger than the device takes" is the buffer the caller gives.
    let f = support::frame(support::MAC, support::PEER, 0x0800, 1501, 9);
    send(&vxlan_datagram(0x08, 42, [0; 4], &f));
    send(&vxlan_datagram(0x08, 42, [0; 4], &good(8)));
    let mut small = vec![0u8; 1514];
    let end = Instant::now() + Duration::from_secs(2);
    let n = loop {
        if let Some(n) = a.recv(&mut small).unwrap() {
            break n;
        }
        assert!(Instant::now() < end, "nothing received");
    };
    assert_eq!(&small[..n], &good(8)[..]);
    assert_eq!(a.counters().rx_inner_oversize, 2);

    // The counters, as a control client sees them.
    let list = a.backend_counters();
    assert!(!list.is_empty(), "no counters");
    let get = |name: &str| {
        list.iter()
            .find(|c: &&BackendCounter| c.name == name)
            .map(|c| c.value)
    };
    assert_eq!(get("vxlan_rx_other_vni"), Some(2));
    assert_eq!(get("vxlan_rx_no_i_flag"), Some(2));
    assert_eq!(get("vxlan_rx_reserved_ignored"), Some(2));
    assert_eq!(get("vxlan_rx_frames"), Some(4));
}

#[test]
fn frames_the_kernel_refuses_or_that_are_no_frames_are_dropped_and_counted() {
    let mut a = endpoint(free_port(), free_port(), "");
    // Larger than any UDP datagram: EMSGSIZE.
    assert!(!a.send(&vec![0x5A; 70_000]).unwrap());
    // Shorter than an Ethernet header.
    assert!(!a.send(&[0xFF; 13]).unwrap());
    let c = a.counters();
    assert_eq!(
        (c.tx_too_big, c.tx_dropped, c.tx_frames),
        (1, 2, 0),
        "{c:?}"
    );
}

#[test]
fn a_host_name_resolves_to_the_address_of_locals_family() {
    let (pa, pb) = (free_port(), free_port());
    let mut a = Vxlan::open(&spec(&format!(
        "vxlan,remote=localhost:{pb},local=127.0.0.1:{pa},vni=42"
    )))
    .unwrap();
    let mut b = endpoint(pb, pa, "");
    let f = support::frame(support::PEER, support::MAC, 0x0800, 46, 1);
    assert!(a.send(&f).unwrap());
    assert_eq!(recv_wait(&mut b).as_deref(), Some(&f[..]));
}

#[test]
fn a_taken_port_is_an_error_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = Vxlan::open(&spec(&format!(
        "vxlan,remote=127.0.0.1:1,local=127.0.0.1:{port},vni=1"
    )))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{port}")) && e.contains("VTEP"),
        "{e}"
    );
}

/// Impairment and recording wrap a vxlan endpoint as any backend: frames lost on the way
/// out never reach the peer, the recording holds what the guest sent and received, and
/// a control client sees every layer's counters.
#[cfg(feature = "pcap")]
#[test]
fn impairment_and_recording_wrap_a_vxlan_endpoint() {
    let (pa, pb) = (free_port(), free_port());
    let path = std::env::temp_dir().join(format!("nic-emu-vxlan-{}.pcap", std::process::id()));
    let text = format!(
        "vxlan,remote=127.0.0.1:{pb},local=127.0.0.1:{pa},vni=42,tx_loss=30,seed=7,record={}",
        path.display()
    );
    let mut a = BackendSpec::parse_inline(&text).unwrap().open().unwrap();
    let mut b = endpoint(pb, pa, "");
    let numbered = |n: u32| {
        let mut f = support::frame(support::PEER, support::MAC, 0x88B5, 46, 0);
        f[14..18].copy_from_slice(&n.to_be_bytes());
        f
    };
    let sent: Vec<Vec<u8>> = (0..200).map(numbered).collect();
    for f in &sent {
        a.send(f).unwrap();
        // Paced: the peer's socket buffer never overflows.
        if f[17] % 32 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let arrived = drain(&mut b);
    let reply = numbered(1000);
    assert!(b.send(&reply).unwrap());
    assert_eq!(recv_wait(&mut a).as_deref(), Some(&reply[..]));
    a.flush().unwrap();

    let list = a.backend_counters();
    assert!(!list.is_empty(), "no counters");
    let get = |name: &str| {
        list.iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
            .unwrap_or_else(|| panic!("no counter {name} in {list:?}"))
    };
    let lost = get("impair_tx_lost");
    assert!((30..=90).contains(&lost), "lost {lost} of 200 at 30%");
    assert_eq!(get("vxlan_tx_frames"), 200 - lost, "the rest went out");
    assert_eq!(arrived.len() as u64, 200 - lost, "and arrived");
    assert!(arrived.iter().all(|f| sent.contains(f)));
    assert_eq!(get("vxlan_rx_frames"), 1);

    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut recs = vec![];
    while let Some(p) = r.next_packet() {
        recs.push(p.unwrap().data().to_vec());
    }
    let mut want = sent.clone();
    want.push(reply);
    assert_eq!(recs, want, "the guest's 200 frames and the one it received");
    let _ = std::fs::remove_file(&path);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Any datagrams at all: none panics, and each one is either delivered or counted as
    /// dropped for exactly one reason.
    #[test]
    fn every_datagram_is_delivered_or_counted(
        datagrams in proptest::collection::vec(
            (any::<u8>(), 40u32..45, any::<[u8; 4]>(), proptest::collection::vec(any::<u8>(), 0..100), 0usize..12),
            1..20,
        )
    ) {
        let mut a = endpoint(free_port(), free_port(), "");
        let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
        for (flags, vni, reserved, inner, cut) in &datagrams {
            let d = vxlan_datagram(*flags, *vni, *reserved, inner);
            // Sometimes cut inside the header.
            let d = if *cut < 8 { &d[..*cut] } else { &d[..] };
            raw.send_to(d, a.local_addr()).unwrap();
        }
        let got = drain(&mut a);
        let c = a.counters();
        prop_assert_eq!(c.rx_frames + c.rx_dropped(), datagrams.len() as u64, "{:?}", c);
        prop_assert_eq!(got.len() as u64, c.rx_frames);
    }
}

/// The commented `[backends.overlay]` example of backends.toml, uncommented, is a valid
/// vxlan table.
#[cfg(feature = "config")]
#[test]
fn the_documented_backends_toml_example_parses() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/backends.toml")).unwrap();
    let table: String = text
        .lines()
        .skip_while(|l| *l != "# [backends.overlay]")
        .skip(1)
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    assert!(table.contains("kind = \"vxlan\""), "{table}");
    let spec = BackendSpec::from_toml(&table).unwrap();
    let BackendKind::Vxlan(x) = spec.kind else {
        panic!("{table}")
    };
    assert_eq!((x.vni, x.ttl, x.src_port), (42, Some(16), Some(40000)));
}

/// The TTL of the next datagram on `sock` (IPv4), read from the `IP_TTL` control message.
fn recv_ttl(sock: &UdpSocket) -> u8 {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let int_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt(2) reads an int from `on`, which lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_RECVTTL,
            std::ptr::from_ref(&on).cast(),
            int_len,
        )
    };
    assert_eq!(rc, 0);
    let mut data = [0u8; 2048];
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (into `data`) and at `control`, all alive across the
    // blocking call (the socket has a read timeout); the kernel writes within their lengths.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel filled, within
    // msg_controllen; CMSG_DATA of an IP_TTL message holds an int.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TTL {
                let ttl = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return u8::try_from(ttl).expect("a TTL");
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    panic!("no IP_TTL control message");
}

#[test]
fn ttl_sets_the_outer_ttl() {
    let wire = UdpSocket::bind("127.0.0.1:0").unwrap();
    wire.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let peer = wire.local_addr().unwrap().port();
    let f = udp_frame(1, 2, b"ttl");
    let mut a = endpoint(free_port(), peer, ",ttl=3");
    assert!(a.send(&f).unwrap());
    assert_eq!(recv_ttl(&wire), 3);
    let mut d = endpoint(free_port(), peer, "");
    assert!(d.send(&f).unwrap());
    let default: u8 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        recv_ttl(&wire),
        default,
        "the system's default without ttl="
    );
}
