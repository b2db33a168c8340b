//! Hostile vfio-user clients: VERSION messages with absurd sizes, an INTx eventfd that
//! would block, descriptors of the wrong kind, messages that carry many descriptors, more
//! DMA maps than the server takes. Each time the server answers or drops that client,
//! and serves the next. Every test runs twice: against a server in this process, and
//! against `nic-emu-cli` with its sandbox on, where an input that reached a system call
//! outside the lists would end the process.
#![cfg(feature = "vfio-user")]

use crate::support::vfio;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nic_emu::device::regs::*;
use nic_emu::frontend::vfio_user::MAX_DMA_MAPS;
use vfio::*;
use vfio_user::{Client, Error};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// Read from `s` until EOF; panics if the server keeps the connection open past `secs`.
fn until_eof(s: &mut UnixStream, secs: u64) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(_) => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "the server kept a hostile connection open"
        );
    }
}

/// `both!(body)`: `body::in_process` and `body::nic_emu_cli` run `body` against each.
macro_rules! both {
    ($body:ident) => {
        mod $body {
            use super::*;
            #[test]
            fn in_process() {
                super::$body(&start());
            }
            #[cfg(feature = "cli")]
            #[test]
            fn nic_emu_cli() {
                super::$body(&CliServer::start());
            }
        }
    };
}

fn still_serving(s: &impl Target) {
    let mut c = Client::new(s.path()).unwrap();
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "next client served");
    assert_ne!(rd(&mut c, STATUS) & STATUS_LU, 0);
}

both!(version_sizes_huge_or_tiny_close_that_connection_and_allocate_nothing);
fn version_sizes_huge_or_tiny_close_that_connection_and_allocate_nothing(s: &impl Target) {
    // 0xffffffff: upstream allocated 4 GiB and then waited for it, for good.
    for size in [u32::MAX, 0x100_0000, 19, 16] {
        let mut c = UnixStream::connect(s.path()).unwrap();
        let mut m = header(1, 1, size, 0);
        m.extend_from_slice(&[0, 0, 1, 0]);
        c.write_all(&m).unwrap();
        until_eof(&mut c, 5);
    }
    still_serving(s);
}

both!(version_capabilities_without_their_nul_are_still_answered);
fn version_capabilities_without_their_nul_are_still_answered(s: &impl Target) {
    let caps = br#"{"capabilities":{"max_msg_fds":8}}"#;
    let mut m = header(1, 1, (16 + 4 + caps.len()) as u32, 0);
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(caps);
    let reply = raw_session(s.path(), &m, false);
    assert!(reply.len() >= 20, "no reply: {reply:?}");
    let flags = u32::from_le_bytes(reply[8..12].try_into().unwrap());
    assert_eq!(flags & 0x21, 0x01, "a reply, not an error: {flags:#x}");
    // The reply announces the map limit the server enforces.
    let caps = String::from_utf8_lossy(&reply[20..]);
    assert!(
        caps.contains(&format!("\"max_dma_maps\":{MAX_DMA_MAPS}")),
        "{caps}"
    );
    still_serving(s);
}

both!(a_full_blocking_intx_eventfd_does_not_hang_the_server);
fn a_full_blocking_intx_eventfd_does_not_hang_the_server(s: &impl Target) {
    {
        let mut c = Client::new(s.path()).unwrap();
        // A blocking eventfd with its counter at the maximum: a blocking write would
        // wait for good, with the interrupt and device locks held.
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let mut efd =
            std::fs::File::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
        efd.write_all(&(u64::MAX - 1).to_ne_bytes()).unwrap();
        c.set_irqs(0, IRQ_TRIGGER_EVENTFD, 0, 1, &[efd.as_raw_fd()])
            .unwrap();
        wr(&mut c, IMS, ICR_LSC);
        wr(&mut c, ICS, ICR_LSC);
        assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "this client still answered");
        c.shutdown().unwrap();
    }
    still_serving(s);
}

both!(descriptors_of_the_wrong_kind_are_refused);
// Test code, as when these were #[test] functions (which the lint skips): the pipe
// comes from std::io::pipe (1.87).
#[allow(clippy::incompatible_msrv)]
fn descriptors_of_the_wrong_kind_are_refused(s: &impl Target) {
    let mut c = Client::new(s.path()).unwrap();
    let (r, w) = std::io::pipe().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let dir = std::fs::File::open("/tmp").unwrap();
    for fd in [r.as_raw_fd(), a.as_raw_fd(), dir.as_raw_fd()] {
        match c.dma_map(0, 0x1000_0000, 4096, fd) {
            Err(Error::ErrorReply(e)) => assert_eq!(e, libc::EINVAL as u32),
            other => panic!("DMA_MAP with a non-file descriptor: {other:?}"),
        }
        match c.set_irqs(0, IRQ_TRIGGER_EVENTFD, 0, 1, &[fd]) {
            Err(_) => {}
            Ok(()) => assert_ne!(
                s.intx_enabled(),
                Some(true),
                "a non-eventfd became the INTx line"
            ),
        }
    }
    drop(w);
    assert!(matches!(s.region_count(), None | Some(0)));
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "still serving");
}

both!(descriptors_sent_with_a_message_that_takes_none_are_closed);
// Test code, as when these were #[test] functions (which the lint skips): the pipe
// comes from std::io::pipe (1.87).
#[allow(clippy::incompatible_msrv)]
fn descriptors_sent_with_a_message_that_takes_none_are_closed(s: &impl Target) {
    let (mut r, w) = std::io::pipe().unwrap();
    let mut sock = UnixStream::connect(s.path()).unwrap();
    // A REGION_READ of the config space carrying 16 copies of the pipe's write end.
    let mut m = header(3, 9, 32, 0);
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&7u32.to_le_bytes());
    m.extend_from_slice(&4u32.to_le_bytes());
    let fds = vec![w.as_raw_fd(); 16];
    sock.send_with_fds(&[&m[..]], &fds).unwrap();
    let mut reply = [0u8; 36];
    sock.read_exact(&mut reply).unwrap();
    assert_eq!(
        u32::from_le_bytes(reply[32..36].try_into().unwrap()),
        0x100E_8086
    );
    // Every copy the server received is closed: with ours gone, the pipe reads EOF.
    drop(w);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = tx.send(r.read(&mut b).map(|n| n == 0).unwrap_or(false));
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok(true),
        "the server kept a descriptor it was sent"
    );
}

both!(more_maps_than_the_server_takes_are_refused_with_enospc);
fn more_maps_than_the_server_takes_are_refused_with_enospc(s: &impl Target) {
    let mut c = Client::new(s.path()).unwrap();
    let mem = memfd(1 << 20);
    let pages = (1u64 << 20) / 4096;
    for i in 0..MAX_DMA_MAPS as u64 {
        // Each page of the file at many IOVAs (a guest may map one page many times).
        c.dma_map(
            (i % pages) * 4096,
            0x1_0000_0000 + i * 4096,
            4096,
            mem.as_raw_fd(),
        )
        .unwrap();
    }
    match c.dma_map(0, 0x10_0000, 4096, mem.as_raw_fd()) {
        Err(Error::ErrorReply(e)) => assert_eq!(e, libc::ENOSPC as u32),
        other => panic!("map beyond the limit: {other:?}"),
    }
    assert!(matches!(s.region_count(), None | Some(MAX_DMA_MAPS)));
    // One large unmap frees them all, and mapping works again.
    c.dma_unmap(0x1_0000_0000, MAX_DMA_MAPS as u64 * 4096)
        .unwrap();
    c.dma_map(0, 0x10_0000, 4096, mem.as_raw_fd()).unwrap();
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "still serving");
}
