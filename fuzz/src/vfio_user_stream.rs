//! The `vfio_user_stream` target: arbitrary bytes (and descriptors) sent to a real
//! [`VfioUserServer`] on a Unix socket as one client; then a well-formed client
//! ([`vfio_user::Client`]) must be served: the handshake succeeds and the configuration
//! space reads 8086:100E.
//!
//! An input is a list of chunks, each `[flags u8][len u16 LE][len bytes]`, sent with one
//! `sendmsg` each. `flags & 3` descriptors of kind `(flags >> 2) & 3` (0: a sealed
//! 1 MiB memfd, 1: an eventfd, 2: a pipe, 3: an unsealed memfd) ride with the chunk. The raw
//! client reads (drains) the replies whenever the socket is full and at the end (one
//! thread, non-blocking socket); it then half-closes, and the server must close the
//! connection within 5 s. Every input ends with the well-formed client's handshake and
//! configuration read.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nic_emu::backend::Loopback;
use nic_emu::frontend::vfio_user::{VfioUserServer, REGION_CONFIG};
use nic_emu::{DeviceConfig, MacAddress};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// One chunk of the raw client's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Descriptor count (low 2 bits) and kind (bits 2-3).
    pub flags: u8,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// The chunks `data` encodes.
pub fn decode(mut data: &[u8]) -> Vec<Chunk> {
    let mut out = Vec::new();
    while let [flags, a, b, rest @ ..] = data {
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
        out.push(Chunk {
            flags: *flags,
            bytes: rest[..n].to_vec(),
        });
        data = &rest[n..];
    }
    out
}

/// The bytes [`decode`] reads back as `chunks`.
pub fn encode(chunks: &[Chunk]) -> Vec<u8> {
    let mut o = Vec::new();
    for c in chunks {
        o.push(c.flags);
        o.extend_from_slice(&(c.bytes.len() as u16).to_le_bytes());
        o.extend_from_slice(&c.bytes);
    }
    o
}

fn server_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // libFuzzer's main is not Rust's: ignore SIGPIPE as a Rust program (nic-emu-cli)
        // does, so a write to a client that left is an error, not death.
        // SAFETY: setting a signal's disposition to SIG_IGN touches no memory.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let path = std::env::temp_dir().join(format!("nic-emu-fuzz-{}.sock", std::process::id()));
        let config = DeviceConfig {
            mac: MacAddress::new([0x52, 0x54, 0, 0xAB, 0xCD, 1]),
            link_up: true,
            ..DeviceConfig::default()
        };
        let p = path.clone();
        std::thread::spawn(move || {
            // This thread and the event-loop thread the server starts (which inherits
            // the mask) never take libFuzzer's SIGALRM, whose handler does not restart
            // system calls: only the main thread, which waits in `join`, does.
            block_sigalrm();
            let mut server = VfioUserServer::new(&p, config, Box::new(Loopback::new()))
                .expect("vfio-user server");
            server.serve().expect("serve")
        });
        while !path.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        path
    })
}

fn memfd(size: u64, seal: bool) -> OwnedFd {
    // SAFETY: a NUL-terminated name and flags; returns a new descriptor or -1.
    let raw = unsafe {
        libc::memfd_create(
            c"fuzz".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(raw >= 0, "memfd_create");
    // SAFETY: a new descriptor nobody else owns.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    f.set_len(size).unwrap();
    if seal {
        // SAFETY: F_ADD_SEALS on our descriptor; no memory is passed.
        unsafe {
            libc::fcntl(
                f.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            )
        };
    }
    f.into()
}

fn descriptor(kind: u8) -> Vec<OwnedFd> {
    match kind & 3 {
        0 => vec![memfd(1 << 20, true)],
        1 => {
            // SAFETY: eventfd takes integers and returns a new descriptor or -1.
            let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            assert!(raw >= 0, "eventfd");
            // SAFETY: a new descriptor nobody else owns.
            vec![unsafe { OwnedFd::from_raw_fd(raw) }]
        }
        2 => {
            let (r, w) = std::io::pipe().unwrap();
            vec![r.into(), w.into()]
        }
        _ => vec![memfd(1 << 20, false)],
    }
}

/// Block SIGALRM (libFuzzer's -timeout timer) in the calling thread.
fn block_sigalrm() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Run one input on the session thread (which does not take SIGALRM; see
/// [`server_path`]). The thread is started once and kept: a thread per input (and one
/// more to drain the replies) was a good part of each input's time under ASan.
pub fn run(data: &[u8]) {
    type Reply = std::thread::Result<()>;
    static SESSION: OnceLock<Mutex<(SyncSender<Vec<u8>>, Receiver<Reply>)>> = OnceLock::new();
    let session = SESSION.get_or_init(|| {
        let (to_session, inputs) = sync_channel::<Vec<u8>>(0);
        let (to_fuzzer, replies) = sync_channel::<Reply>(1);
        std::thread::spawn(move || {
            block_sigalrm();
            let mut good = None;
            for data in inputs {
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| session(&data, &mut good)));
                if to_fuzzer.send(r).is_err() {
                    return;
                }
            }
        });
        Mutex::new((to_session, replies))
    });
    let session = session.lock().unwrap();
    session.0.send(data.to_vec()).expect("session thread");
    if let Err(panic) = session.1.recv().expect("session thread") {
        std::panic::resume_unwind(panic);
    }
}

/// Read whatever the server sent (the socket is non-blocking). `Ok(true)`: the server
/// closed the connection.
fn drain(s: &mut UnixStream, buf: &mut [u8]) -> bool {
    loop {
        match s.read(buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // ECONNRESET and the like: the server dropped the connection.
            Err(_) => return true,
        }
    }
}

/// Wait until `fd` is readable or (with `out`) writable, at most `ms` milliseconds.
fn wait(fd: RawFd, out: bool, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | if out { libc::POLLOUT } else { 0 },
        revents: 0,
    };
    // SAFETY: one valid pollfd, and its count; the kernel writes only `revents`.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Send `bytes` with `fds` (on the first part sent), draining replies while the
/// socket is full (the server may be blocked writing a reply to us). `false`: the
/// server dropped the connection.
fn send_chunk(s: &mut UnixStream, mut bytes: &[u8], mut fds: &[RawFd], buf: &mut [u8]) -> bool {
    while !bytes.is_empty() {
        let sent = if fds.is_empty() {
            s.write(bytes)
        } else {
            s.send_with_fds(&[bytes], fds)
                .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
        };
        match sent {
            Ok(n) => {
                bytes = &bytes[n..];
                fds = &[];
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if drain(s, buf) {
                    return false;
                }
                wait(s.as_raw_fd(), true, 100);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// One input: the raw client's stream, then the well-formed client. That client stays
/// connected until the next input starts (`good`), so the server's allocations for it
/// and its frees of the previous one fall in the same input: libFuzzer's leak check
/// (`-detect_leaks`, on by default under ASan) runs an input again, and then scans the
/// heap, whenever an input ends with more allocations than frees, which a client still
/// being torn down on the server's thread made happen for most inputs.
fn session(data: &[u8], good: &mut Option<vfio_user::Client>) {
    let path = server_path();
    drop(good.take());
    let chunks = decode(data);
    let mut s = UnixStream::connect(path).expect("connect");
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut closed = false;
    for c in &chunks {
        let n = usize::from(c.flags & 3);
        let kind = (c.flags >> 2) & 3;
        let owned: Vec<OwnedFd> = (0..n).flat_map(|_| descriptor(kind)).take(n).collect();
        let fds: Vec<RawFd> = owned.iter().map(|f| f.as_raw_fd()).collect();
        if !send_chunk(&mut s, &c.bytes, &fds, &mut buf) {
            closed = true; // the server dropped us
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let start = Instant::now();
    while !closed && !drain(&mut s, &mut buf) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the server kept the connection open 5 s after the client's EOF"
        );
        wait(s.as_raw_fd(), false, 100);
    }
    drop(s);

    let mut c = vfio_user::Client::new(path).expect("the next client's handshake");
    let mut b = [0u8; 4];
    c.region_read(REGION_CONFIG, 0, &mut b)
        .expect("config read of the next client");
    assert_eq!(u32::from_le_bytes(b), 0x100E_8086, "vendor and device ID");
    *good = Some(c);
}

fn header(id: u16, command: u16, size: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&(size as u32).to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

fn msg(id: u16, command: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = header(id, command, 16 + payload.len());
    m.extend_from_slice(payload);
    m
}

fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `(name, bytes)` of each seed: a handshake, then typical QEMU messages.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let caps = b"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576}}\0";
    let version = msg(0, 1, &le(&[&0u16.to_le_bytes(), &1u16.to_le_bytes(), caps]));
    let chunk = |flags: u8, bytes: Vec<u8>| Chunk { flags, bytes };
    let region_read = |id: u16, region: u32, off: u64, count: u32| {
        msg(
            id,
            9,
            &le(&[
                &off.to_le_bytes(),
                &region.to_le_bytes(),
                &count.to_le_bytes(),
            ]),
        )
    };
    let region_write = |id: u16, region: u32, off: u64, data: &[u8]| {
        msg(
            id,
            10,
            &le(&[
                &off.to_le_bytes(),
                &region.to_le_bytes(),
                &(data.len() as u32).to_le_bytes(),
                data,
            ]),
        )
    };
    let dma_map = |id: u16, flags: u32, offset: u64, addr: u64, size: u64| {
        msg(
            id,
            2,
            &le(&[
                &32u32.to_le_bytes(),
                &flags.to_le_bytes(),
                &offset.to_le_bytes(),
                &addr.to_le_bytes(),
                &size.to_le_bytes(),
            ]),
        )
    };
    let dma_unmap = |id: u16, flags: u32, addr: u64, size: u64| {
        msg(
            id,
            3,
            &le(&[
                &32u32.to_le_bytes(),
                &flags.to_le_bytes(),
                &addr.to_le_bytes(),
                &size.to_le_bytes(),
            ]),
        )
    };
    let set_irqs = |id: u16, flags: u32, count: u32| {
        msg(
            id,
            8,
            &le(&[
                &20u32.to_le_bytes(),
                &flags.to_le_bytes(),
                &0u32.to_le_bytes(),
                &0u32.to_le_bytes(),
                &count.to_le_bytes(),
            ]),
        )
    };
    let mut out = Vec::new();
    out.push(("version-only", encode(&[chunk(0, version.clone())])));
    // QEMU's start: device info, region info, config reads, BAR writes.
    let mut qemu = vec![chunk(0, version.clone())];
    qemu.push(chunk(
        0,
        msg(1, 4, &le(&[&16u32.to_le_bytes(), &[0u8; 12]])),
    ));
    qemu.push(chunk(
        0,
        msg(
            2,
            5,
            &le(&[
                &32u32.to_le_bytes(),
                &[0u8; 4],
                &0u32.to_le_bytes(),
                &[0u8; 20],
            ]),
        ),
    ));
    qemu.push(chunk(
        0,
        msg(
            3,
            7,
            &le(&[
                &16u32.to_le_bytes(),
                &[0u8; 4],
                &0u32.to_le_bytes(),
                &[0u8; 4],
            ]),
        ),
    ));
    qemu.push(chunk(0, region_read(4, 7, 0, 4)));
    qemu.push(chunk(0, region_write(5, 7, 4, &7u16.to_le_bytes())));
    qemu.push(chunk(0, region_read(6, 0, 8, 4)));
    qemu.push(chunk(0, region_write(7, 0, 0xD0, &0x9Du32.to_le_bytes())));
    qemu.push(chunk(0, region_write(8, 0, 0xC8, &4u32.to_le_bytes())));
    qemu.push(chunk(0, region_read(9, 0, 0xC0, 4)));
    qemu.push(chunk(0, msg(10, 13, &[])));
    out.push(("qemu-start-regions", encode(&qemu)));
    // Guest RAM: DMA_MAP with a sealed memfd, a ring set up, a doorbell, an unmap.
    let mut dma = vec![chunk(0, version.clone())];
    dma.push(chunk(1, dma_map(1, 3, 0, 0, 1 << 20)));
    dma.push(chunk(0, dma_map(2, 1, 0, 0xFFFF_0000, 0x1000)));
    dma.push(chunk(0, region_write(3, 7, 4, &7u16.to_le_bytes())));
    for (i, (reg, v)) in [
        (0x3800u64, 0x1000u32),
        (0x3808, 128),
        (0x400, 0x0A),
        (0x3818, 1),
    ]
    .iter()
    .enumerate()
    {
        dma.push(chunk(
            0,
            region_write(4 + i as u16, 0, *reg, &v.to_le_bytes()),
        ));
    }
    dma.push(chunk(0, dma_unmap(9, 0, 0, 1 << 20)));
    dma.push(chunk(0, dma_unmap(10, 2, 0, 0)));
    out.push(("dma-map-ring-unmap", encode(&dma)));
    // INTx: an eventfd through SET_IRQS, then an interrupt, an unmask.
    let mut irq = vec![chunk(0, version.clone())];
    irq.push(chunk(1 << 2 | 1, set_irqs(1, 0x24, 1)));
    irq.push(chunk(0, region_write(2, 0, 0xD0, &4u32.to_le_bytes())));
    irq.push(chunk(0, region_write(3, 0, 0xC8, &4u32.to_le_bytes())));
    irq.push(chunk(0, set_irqs(4, 0x11, 1)));
    irq.push(chunk(0, set_irqs(5, 0x21, 0)));
    out.push(("set-irqs-eventfd", encode(&irq)));
    // A message split across two writes, then garbage.
    let mut split = vec![chunk(0, version)];
    let r = region_read(1, 7, 0, 64);
    split.push(chunk(0, r[..10].to_vec()));
    split.push(chunk(0, r[10..].to_vec()));
    split.push(chunk(2 << 2 | 1, header(2, 99, 0xFFFF_FFFF)));
    out.push(("split-then-garbage", encode(&split)));
    out
}
