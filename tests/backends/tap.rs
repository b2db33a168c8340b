//! Tap backend against a real kernel tap, inside a private network namespace made by
//! `unshare(CLONE_NEWNET)` on a test thread: the host's interfaces are never touched and
//! the namespace disappears with the thread. Needs root; otherwise prints SKIP.
#![cfg(feature = "tap")]

use crate::support;
use crate::support::tx;

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nic_emu::backend::{PacketBackend, Tap, MAX_FRAME};

/// Local experimental ethertype: nothing else in the namespace sends it.
const ETHERTYPE: u16 = 0x88B5;

fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

/// Run `body` on a thread with its own, empty network namespace.
fn in_private_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces; no memory is passed.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        body()
    })
    .join()
    .unwrap()
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip(8)");
    assert!(st.success(), "ip {args:?}");
}

/// A raw packet socket bound to `ifindex`: the kernel's side of the tap.
fn packet_socket(ifindex: u32) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and its exact size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// Read frames from the packet socket until one has our ethertype (2 s at most).
fn kernel_recv(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        // SAFETY: `buf` is valid for writes of its length; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 14 && buf[12..14] == ETHERTYPE.to_be_bytes() {
            return Some(buf[..n as usize].to_vec());
        }
        if n < 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    None
}

fn kernel_send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: `frame` is valid for reads of its length.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

fn tap_recv(tap: &mut Tap) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_FRAME];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        match tap.recv(&mut buf).unwrap() {
            Some(n) if buf[12..14] == ETHERTYPE.to_be_bytes() => return Some(buf[..n].to_vec()),
            Some(_) => {} // IPv6 router solicitations and the like
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    None
}

#[test]
fn tap_carries_jumbo_frames_both_ways_in_a_private_netns() {
    if !support::can_run(
        "tap_carries_jumbo_frames_both_ways_in_a_private_netns",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    let (name_tx, name_rx) = mpsc::channel::<String>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        in_private_netns(move || {
            let mut tap = Tap::open("nicemu%d").expect("create tap");
            let name = tap.ifname().to_string();
            assert!(name.starts_with("nicemu"), "{name}");
            assert_ne!(ifindex(&name), 0, "exists in the private namespace");
            assert!(tap.rx_fd().is_some());
            name_tx.send(name.clone()).unwrap();
            ack_rx.recv().unwrap();

            // Nothing to read yet, and no blocking.
            let mut buf = vec![0u8; MAX_FRAME];
            assert_eq!(tap.recv(&mut buf).unwrap(), None);

            ip(&["link", "set", "dev", &name, "mtu", "9000", "up"]);
            let sock = packet_socket(ifindex(&name));

            let out = support::frame(support::PEER, support::MAC, ETHERTYPE, 9000, 1);
            assert!(tap.send(&out).unwrap());
            assert_eq!(
                kernel_recv(&sock).as_deref(),
                Some(&out[..]),
                "guest -> kernel"
            );

            let inbound = support::frame(support::MAC, support::PEER, ETHERTYPE, 8000, 2);
            kernel_send(&sock, &inbound);
            assert_eq!(
                tap_recv(&mut tap).as_deref(),
                Some(&inbound[..]),
                "kernel -> guest"
            );
            assert_eq!(tap.counters().sent, 1);

            // The name is taken while we hold it.
            let err = Tap::open(&name).unwrap_err().to_string();
            assert!(err.contains("taken"), "{err}");

            // Closing the descriptor removes the interface we created.
            drop(tap);
            let end = Instant::now() + Duration::from_secs(2);
            while ifindex(&name) != 0 && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(ifindex(&name), 0, "removed on drop");
        })
    });
    let name = name_rx.recv().expect("worker created the tap");
    assert_eq!(ifindex(&name), 0, "the host namespace never sees {name}");
    ack_tx.send(()).unwrap();
    worker.join().unwrap();
}

#[test]
fn tap_attaches_to_an_existing_persistent_tap_and_leaves_it() {
    if !support::can_run(
        "tap_attaches_to_an_existing_persistent_tap_and_leaves_it",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        ip(&["tuntap", "add", "dev", "nicemu-p0", "mode", "tap"]);
        let tap = Tap::open("nicemu-p0").expect("attach");
        assert_eq!(tap.ifname(), "nicemu-p0");
        drop(tap);
        assert_ne!(
            ifindex("nicemu-p0"),
            0,
            "a persistent tap we did not create stays"
        );
        ip(&["tuntap", "del", "dev", "nicemu-p0", "mode", "tap"]);
    });
}

#[test]
fn tap_open_rejects_a_name_used_by_a_non_tap() {
    if !support::can_run(
        "tap_open_rejects_a_name_used_by_a_non_tap",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        let err = Tap::open("lo").unwrap_err().to_string();
        assert!(err.contains("tap lo") && err.contains("not a tap"), "{err}");
        let err = Tap::open("a-name-far-too-long").unwrap_err().to_string();
        assert!(err.contains("longer than 15"), "{err}");
    });
}

/// Read from the packet socket until a frame of `len` bytes comes (2 s at most).
fn kernel_recv_len(fd: &OwnedFd, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70000];
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        // SAFETY: `buf` is valid for writes of its length; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n == len as isize {
            return Some(buf[..len].to_vec());
        }
        if n < 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    None
}

/// A TCP/IPv4 packet of 10 segments' payload, finished as the device hands it on: IP
/// length and checksum for the whole packet, the TCP checksum field holding the
/// pseudo-header sum with the whole TCP length.
fn gso_packet() -> (Vec<u8>, nic_emu::backend::Gso) {
    let mut f = tx::tso_header(false, 1000, 7);
    f.extend(tx::pattern(10 * 1448, 3));
    let total = f.len();
    f[16..18].copy_from_slice(&((total - 14) as u16).to_be_bytes());
    let c = !tx::ones_sum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let seed = u16::from_be_bytes([f[50], f[51]]);
    let l4 = ((total - 34) as u16).to_be_bytes();
    let partial = tx::ones_sum(&[&seed.to_be_bytes(), &l4]);
    f[50..52].copy_from_slice(&partial.to_be_bytes());
    let gso = nic_emu::backend::Gso {
        ipv6: false,
        segment: true,
        hdr_len: 54,
        mss: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    (f, gso)
}

#[test]
fn tap_offload_on_and_off_both_carry_frames_and_the_kernel_takes_whole_tcp_packets() {
    if !support::can_run(
        "tap_offload_on_and_off_both_carry_frames_and_the_kernel_takes_whole_tcp_packets",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        for offload in [true, false] {
            let mut tap = Tap::open_with("nicemu%d", offload).expect("create tap");
            assert_eq!(tap.offload(), offload, "IFF_VNET_HDR taken when asked");
            assert_eq!(tap.accepts_gso(), offload);
            let name = tap.ifname().to_string();
            ip(&["link", "set", "dev", &name, "up"]);
            let sock = packet_socket(ifindex(&name));
            // Plain frames both ways, whichever way the tap was opened.
            let out = support::frame(support::PEER, support::MAC, ETHERTYPE, 1500, 4);
            assert!(tap.send(&out).unwrap());
            assert_eq!(
                kernel_recv(&sock).as_deref(),
                Some(&out[..]),
                "offload {offload}"
            );
            let inbound = support::frame(support::MAC, support::PEER, ETHERTYPE, 600, 5);
            kernel_send(&sock, &inbound);
            assert_eq!(tap_recv(&mut tap).as_deref(), Some(&inbound[..]));
            let (packet, gso) = gso_packet();
            if offload {
                // 14 KiB in one write: the kernel takes it whole.
                assert!(tap.send_gso(&packet, &gso).unwrap());
                assert_eq!(
                    kernel_recv_len(&sock, packet.len()).as_deref(),
                    Some(&packet[..]),
                    "the whole packet reached the kernel"
                );
                assert_eq!(tap.counters().gso_sent, 1);
            } else {
                assert!(tap.send_gso(&packet, &gso).is_err(), "no offload, no GSO");
            }
        }
    });
}

/// The TCP segments of one connection the kernel opens through `tap` to a peer that
/// this function plays (it answers the SYN; the kernel then sends `DATA` bytes), as
/// wire frames read from the tap, until all of `DATA` came or 5 s passed.
/// Also returns the sequence number the first data byte must have (the SYN's + 1).
fn kernel_tcp_flight(tap: &mut Tap) -> (Vec<Vec<u8>>, Option<u32>) {
    const DATA: usize = 14_000;
    let name = tap.ifname().to_string();
    ip(&["addr", "add", "10.9.0.1/24", "dev", &name]);
    ip(&["link", "set", "dev", &name, "up"]);
    let peer_mac = "02:00:00:00:00:02";
    ip(&[
        "neigh",
        "add",
        "10.9.0.2",
        "lladdr",
        peer_mac,
        "dev",
        &name,
        "nud",
        "permanent",
    ]);
    // The client: on a thread of this (private) namespace.
    let client = std::thread::spawn(|| {
        let addr = "10.9.0.2:5001".parse().unwrap();
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .expect("connect through the tap");
        std::io::Write::write_all(&mut s, &[0x5A; DATA]).unwrap();
        std::thread::sleep(Duration::from_secs(6)); // keep it open while the test reads
    });
    let mut buf = vec![0u8; MAX_FRAME];
    let mut frames = Vec::new();
    let mut payload = 0;
    let mut first_seq = None;
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && payload < DATA {
        let Some(n) = tap.recv(&mut buf).unwrap() else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let f = buf[..n].to_vec();
        let tcp = etherparse::SlicedPacket::from_ethernet(&f)
            .ok()
            .and_then(|p| match p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) if t.destination_port() == 5001 => Some((
                    t.syn(),
                    t.source_port(),
                    t.sequence_number(),
                    t.payload().len(),
                )),
                _ => None,
            });
        let Some((syn, sport, seq, len)) = tcp else {
            continue;
        };
        if syn {
            first_seq = Some(seq.wrapping_add(1));
            // Answer as the peer: SYN-ACK, 64 KiB window, MSS 1460, no other options.
            let mut synack = Vec::new();
            etherparse::PacketBuilder::ethernet2(support::PEER, f[6..12].try_into().unwrap())
                .ipv4([10, 9, 0, 2], [10, 9, 0, 1], 64)
                .tcp(5001, sport, 1000, 65535)
                .syn()
                .ack(seq.wrapping_add(1))
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                .unwrap()
                .write(&mut synack, &[])
                .unwrap();
            assert!(tap.send(&synack).unwrap());
            continue;
        }
        payload += len;
        frames.push(f);
    }
    drop(client); // detached; it ends with the namespace's thread
    (frames, first_seq)
}

#[test]
fn tap_receive_offload_cuts_the_kernels_tcp_packets_into_wire_frames_and_can_be_off() {
    if !support::can_run(
        "tap_receive_offload_cuts_the_kernels_tcp_packets_into_wire_frames_and_can_be_off",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    for rx_offload in [true, false] {
        in_private_netns(move || {
            let mut tap = Tap::open_with("nicemu%d", true).expect("create tap");
            tap.set_receive_offload(rx_offload)
                .expect("TUNSETOFFLOAD on a tap with a virtio-net header");
            assert_eq!(tap.receive_offload(), rx_offload);
            let (frames, first_seq) = kernel_tcp_flight(&mut tap);
            assert!(first_seq.is_some(), "the kernel sent a SYN");
            let mut next_seq = first_seq;
            let mut total = 0;
            for (i, f) in frames.iter().enumerate() {
                assert!(
                    f.len() <= 1514,
                    "frame {i}: {} bytes, more than a wire frame",
                    f.len()
                );
                let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
                assert_eq!(usize::from(ip.total_len()), f.len() - 14, "frame {i}");
                assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
                let ihl = usize::from(ip.ihl()) * 4;
                let tcp = etherparse::TcpHeaderSlice::from_slice(&f[14 + ihl..]).unwrap();
                let data = &f[14 + ihl + tcp.slice().len()..];
                let want = tcp
                    .to_header()
                    .calc_checksum_ipv4(&ip.to_header(), data)
                    .unwrap();
                assert_eq!(
                    tcp.checksum(),
                    want,
                    "frame {i}: TCP checksum (offload {rx_offload})"
                );
                if !data.is_empty() {
                    if let Some(s) = next_seq {
                        assert_eq!(tcp.sequence_number(), s, "frame {i}: in order, no gap");
                    }
                    next_seq = Some(tcp.sequence_number().wrapping_add(data.len() as u32));
                    assert!(data.iter().all(|&b| b == 0x5A));
                    total += data.len();
                }
            }
            assert_eq!(
                total, 14_000,
                "the whole first flight (offload {rx_offload})"
            );
            let c = tap.counters();
            if rx_offload {
                assert!(
                    c.gso_received >= 1,
                    "the kernel handed over at least one whole TCP packet: {c:?}"
                );
            } else {
                assert_eq!(c.gso_received, 0, "{c:?}");
            }
            assert_eq!(c.gso_bad, 0);
        });
    }
}

/// Open /dev/net/tun and attach it to `name` with TUNSETIFF `flags`, as a management
/// program that passes the descriptor on would.
fn open_tun(name: &str, flags: libc::c_short) -> OwnedFd {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("/dev/net/tun");
    let mut req = IfReq {
        name: [0; 16],
        flags,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one struct ifreq (40 bytes) at the pointer,
    // a live local; the descriptor is the open /dev/net/tun.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), 0x4004_54CA as _, &mut req as *mut IfReq) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    OwnedFd::from(f)
}

const IFF_TUN: libc::c_short = 0x0001;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// Wait up to `limit` for the tap's carrier to be `up`, asking as the service step does.
fn wait_carrier(tap: &mut Tap, up: bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if tap.carrier().up == up {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_deleted_tap_drops_its_carrier_once_and_reattaches_when_it_comes_back() {
    if !support::can_run(
        "a_deleted_tap_drops_its_carrier_once_and_reattaches_when_it_comes_back",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        ip(&["tuntap", "add", "dev", "nicemu-d0", "mode", "tap"]);
        let mut tap = Tap::open("nicemu-d0").expect("attach");
        let offload = tap.offload();
        assert!(tap.carrier().up);
        ip(&["link", "del", "nicemu-d0"]);
        // The next receive finds the interface gone: no error, no frame, no fd to watch.
        let mut buf = vec![0u8; MAX_FRAME];
        assert_eq!(tap.recv(&mut buf).unwrap(), None);
        assert!(!tap.attached());
        assert_eq!(tap.rx_fd(), None);
        let c = tap.carrier();
        assert!(!c.up);
        let retry = c.recheck_at.expect("a tap opened by name looks again");
        assert!(retry > Instant::now() && retry <= Instant::now() + Duration::from_secs(1));
        let note = tap.carrier_note().expect("a note while down");
        assert!(note.contains("nicemu-d0 was deleted"), "{note}");
        // Sends are dropped and counted, and the loss is counted once however often
        // the descriptor is tried.
        for _ in 0..5 {
            assert!(!tap.send(&[0u8; 60]).unwrap());
            assert_eq!(tap.recv(&mut buf).unwrap(), None);
        }
        assert_eq!(tap.counters().lost, 1);
        assert_eq!(tap.counters().send_dropped, 5);

        // Nothing of that name: looking never creates it.
        std::thread::sleep(Duration::from_millis(1200));
        assert!(!tap.carrier().up);
        assert_eq!(ifindex("nicemu-d0"), 0, "looking must not create the tap");

        // A tap of that name comes back: reattached within about a second.
        ip(&["tuntap", "add", "dev", "nicemu-d0", "mode", "tap"]);
        assert!(
            wait_carrier(&mut tap, true, Duration::from_secs(3)),
            "not reattached"
        );
        assert!(tap.attached());
        assert_eq!(tap.counters().reattached, 1);
        assert_eq!(tap.carrier_note(), None);
        assert_eq!(tap.offload(), offload, "same header as before");
        ip(&["link", "set", "dev", "nicemu-d0", "up"]);
        let sock = packet_socket(ifindex("nicemu-d0"));
        let out = support::frame(support::PEER, support::MAC, ETHERTYPE, 1000, 1);
        assert!(tap.send(&out).unwrap());
        assert_eq!(
            kernel_recv(&sock).as_deref(),
            Some(&out[..]),
            "after reattach"
        );
        let inbound = support::frame(support::MAC, support::PEER, ETHERTYPE, 600, 2);
        kernel_send(&sock, &inbound);
        assert_eq!(tap_recv(&mut tap).as_deref(), Some(&inbound[..]));
        drop(tap);
        ip(&["link", "del", "nicemu-d0"]);
    });
}

#[test]
fn an_inherited_tap_descriptor_is_used_and_its_loss_is_final() {
    if !support::can_run(
        "an_inherited_tap_descriptor_is_used_and_its_loss_is_final",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        for (vnet, name) in [(true, "nicemu-f0"), (false, "nicemu-f1")] {
            let flags = IFF_TAP | IFF_NO_PI | if vnet { IFF_VNET_HDR } else { 0 };
            let fd = open_tun(name, flags);
            let mut tap = Tap::from_inherited_fd(fd.as_raw_fd()).expect("a tap fd");
            assert_eq!(tap.ifname(), name, "the name comes from the kernel");
            assert_eq!(tap.offload(), vnet, "vnet header as the opener chose");
            assert_eq!(tap.accepts_gso(), vnet);
            ip(&["link", "set", "dev", name, "up"]);
            let sock = packet_socket(ifindex(name));
            let out = support::frame(support::PEER, support::MAC, ETHERTYPE, 1000, 3);
            assert!(tap.send(&out).unwrap());
            assert_eq!(kernel_recv(&sock).as_deref(), Some(&out[..]), "{name} out");
            let inbound = support::frame(support::MAC, support::PEER, ETHERTYPE, 700, 4);
            kernel_send(&sock, &inbound);
            assert_eq!(
                tap_recv(&mut tap).as_deref(),
                Some(&inbound[..]),
                "{name} in"
            );
            if vnet {
                // Whole TCP packets go through the inherited descriptor too.
                let (pkt, gso) = gso_packet();
                assert!(tap.send_gso(&pkt, &gso).unwrap());
                assert_eq!(tap.counters().gso_sent, 1);
            }

            // Deleted: down for good, even when a tap of that name comes back.
            drop(sock);
            ip(&["link", "del", name]);
            let mut buf = vec![0u8; MAX_FRAME];
            assert_eq!(tap.recv(&mut buf).unwrap(), None);
            assert_eq!(tap.carrier().recheck_at, None, "nothing to retry");
            ip(&["tuntap", "add", "dev", name, "mode", "tap"]);
            std::thread::sleep(Duration::from_millis(1200));
            assert!(!tap.carrier().up, "an inherited descriptor is not reopened");
            let note = tap.carrier_note().expect("why");
            assert!(
                note.contains("inherited") && note.contains("restart"),
                "{note}"
            );
            drop(tap);
            drop(fd);
            ip(&["link", "del", name]);
        }
    });
}

/// (A tap opened without IFF_NO_PI is refused too, but only where /sys shows the tap's
/// namespace: tests/e2e_basics/tap_rootless.rs checks that under `ip netns exec`.)
#[test]
fn an_inherited_tun_descriptor_is_refused() {
    if !support::can_run(
        "an_inherited_tun_descriptor_is_refused",
        support::is_root(),
        "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)",
    ) {
        return;
    }
    in_private_netns(|| {
        let tun = open_tun("nicemu-t0", IFF_TUN | IFF_NO_PI);
        let e = Tap::from_inherited_fd(tun.as_raw_fd())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`fd`=") && e.contains("is a tun"), "{e}");
    });
}
