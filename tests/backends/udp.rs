//! UDP tunnel backend: frames both ways over 127.0.0.1, remote learning, foreign and
//! oversize datagrams, and two in-process e1000s joined by a tunnel.
#![cfg(feature = "udp")]

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nic_emu::backend::{PacketBackend, UdpTunnel, MAX_FRAME};
use proptest::prelude::*;

fn any_local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Poll `b` until it yields a frame or a second passes.
fn recv_wait(b: &mut dyn PacketBackend) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_FRAME];
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        if let Some(n) = b.recv(&mut buf).unwrap() {
            return Some(buf[..n].to_vec());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Two tunnels pointing at each other.
fn pair() -> (UdpTunnel, UdpTunnel) {
    let a_sock = UdpSocket::bind(any_local()).unwrap();
    let b_sock = UdpSocket::bind(any_local()).unwrap();
    let (a_addr, b_addr) = (a_sock.local_addr().unwrap(), b_sock.local_addr().unwrap());
    drop((a_sock, b_sock));
    let a = UdpTunnel::new(a_addr, Some(b_addr)).unwrap();
    let b = UdpTunnel::new(b_addr, Some(a_addr)).unwrap();
    (a, b)
}

#[test]
fn frames_cross_both_ways() {
    let (mut a, mut b) = pair();
    assert!(a.rx_fd().is_some());
    let f1 = support::frame(support::PEER, support::MAC, 0x0800, 100, 1);
    let f2 = support::frame(support::MAC, support::PEER, 0x86DD, 9000, 2);
    assert!(a.send(&f1).unwrap());
    assert!(b.send(&f2).unwrap());
    assert_eq!(recv_wait(&mut b).as_deref(), Some(&f1[..]));
    assert_eq!(recv_wait(&mut a).as_deref(), Some(&f2[..]));
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(
        a.recv(&mut buf).unwrap(),
        None,
        "non-blocking: nothing more"
    );
    assert_eq!(a.counters().sent, 1);
    assert_eq!(a.counters().received, 1);
    assert!(!a.remote_learned());
}

#[test]
fn remote_is_learned_from_the_first_datagram() {
    let mut server = UdpTunnel::new(any_local(), None).unwrap();
    let f = support::frame(support::PEER, support::MAC, 0x0800, 60, 3);
    // Nothing known yet: the frame is dropped and counted.
    assert!(!server.send(&f).unwrap());
    assert_eq!(server.counters().send_dropped, 1);

    // An empty datagram is no frame: dropped, and not taken as the peer.
    let nobody = UdpSocket::bind(any_local()).unwrap();
    nobody.send_to(&[], server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(server.recv(&mut buf).unwrap(), None);
    assert_eq!(server.counters().rx_dropped, 1);
    assert_eq!(server.remote_addr(), None);

    let mut client = UdpTunnel::new(any_local(), Some(server.local_addr())).unwrap();
    assert!(client.send(&f).unwrap());
    assert_eq!(recv_wait(&mut server).as_deref(), Some(&f[..]));
    assert_eq!(server.remote_addr(), Some(client.local_addr()));
    assert!(server.remote_learned());

    let reply = support::frame(support::MAC, support::PEER, 0x0800, 70, 4);
    assert!(server.send(&reply).unwrap());
    assert_eq!(recv_wait(&mut client).as_deref(), Some(&reply[..]));

    // A third party is not the peer any more: ignored and counted.
    let stranger = UdpSocket::bind(any_local()).unwrap();
    stranger.send_to(&f, server.local_addr()).unwrap();
    client.send(&reply).unwrap();
    assert_eq!(recv_wait(&mut server).as_deref(), Some(&reply[..]));
    assert_eq!(server.counters().rx_foreign, 1);
}

#[test]
fn datagrams_larger_than_the_buffer_are_dropped_and_counted() {
    let mut rx = UdpTunnel::new(any_local(), None).unwrap();
    let raw = UdpSocket::bind(any_local()).unwrap();
    raw.send_to(&[0xAB; 3000], rx.local_addr()).unwrap();
    raw.send_to(&[0xCD; 500], rx.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut small = vec![0u8; 1514];
    let mut got = None;
    for _ in 0..100 {
        got = rx.recv(&mut small).unwrap();
        if got.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got, Some(500));
    assert_eq!(small[0], 0xCD);
    assert_eq!(rx.counters().rx_dropped, 1);
}

/// A burst with every kind of datagram (frames of all sizes, one too big for a frame,
/// an empty one, one from a stranger) gives the same frames and counters whether the
/// tunnel takes one datagram per system call or many; batched, it makes far fewer calls.
#[test]
fn batched_and_single_receive_agree_on_a_mixed_burst() {
    let run = |batch: usize| {
        let mut rx = UdpTunnel::new(any_local(), None).unwrap();
        rx.set_rx_batch(batch);
        assert_eq!(rx.rx_batch(), batch);
        let peer = UdpSocket::bind(any_local()).unwrap();
        let stranger = UdpSocket::bind(any_local()).unwrap();
        let to = rx.local_addr();
        // The first datagram teaches the peer.
        peer.send_to(
            &support::frame(support::PEER, support::MAC, 0x0800, 46, 0),
            to,
        )
        .unwrap();
        let mut sent = vec![];
        // 40 datagrams, small enough together for the default socket buffer.
        for i in 1..40u8 {
            match i % 20 {
                7 => drop(peer.send_to(&vec![0xEE; MAX_FRAME + 1], to).unwrap()),
                11 => drop(peer.send_to(&[], to).unwrap()),
                13 => drop(stranger.send_to(&[0x11; 64], to).unwrap()),
                _ => {
                    let len = [46, 1500, 60, 1000][usize::from(i) % 4];
                    let f = support::frame(support::PEER, support::MAC, 0x0800, len, i);
                    peer.send_to(&f, to).unwrap();
                    sent.push(f);
                }
            }
        }
        let mut got = vec![];
        let mut buf = vec![0u8; MAX_FRAME];
        let end = Instant::now() + Duration::from_secs(5);
        while got.len() < 1 + sent.len() && Instant::now() < end {
            match rx.recv(&mut buf).unwrap() {
                Some(n) => got.push(buf[..n].to_vec()),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        assert_eq!(rx.recv(&mut buf).unwrap(), None);
        assert!(rx.next_rx_deadline().is_none(), "nothing left in the batch");
        assert_eq!(got.len(), 1 + sent.len(), "batch {batch}: every frame");
        for (k, (g, s)) in got[1..].iter().zip(&sent).enumerate() {
            assert!(
                g == s,
                "batch {batch}: frame {k} differs or is out of order"
            );
        }
        let c = rx.counters();
        let want = (1 + sent.len() as u64, 4, 2);
        assert_eq!(
            (c.received, c.rx_dropped, c.rx_foreign),
            want,
            "batch {batch}"
        );
        c.rx_calls
    };
    let single = run(1);
    let batched = run(32);
    // One call per datagram (40 sent) plus the empty ones, against a few per 32.
    assert!(single >= 40, "single: {single} calls");
    assert!(
        batched * 5 <= single,
        "batched: {batched} calls, single {single}"
    );
}

/// Datagrams already taken from the socket wait in the tunnel, not in the socket: the
/// tunnel says they are ready (the socket is no longer readable for them).
#[test]
fn a_partly_taken_batch_reports_itself_ready() {
    let (mut a, mut b) = pair();
    for i in 0..10u8 {
        assert!(a
            .send(&support::frame(support::PEER, support::MAC, 0x0800, 60, i))
            .unwrap());
    }
    std::thread::sleep(Duration::from_millis(20));
    let mut buf = vec![0u8; MAX_FRAME];
    assert!(b.recv(&mut buf).unwrap().is_some());
    assert!(
        b.next_rx_deadline().is_some(),
        "nine frames are still to come"
    );
    for _ in 0..9 {
        assert!(b.recv(&mut buf).unwrap().is_some());
    }
    assert!(b.next_rx_deadline().is_none());
    assert_eq!(b.recv(&mut buf).unwrap(), None);
}

#[test]
fn bind_failure_names_the_address() {
    let taken = UdpSocket::bind(any_local()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = UdpTunnel::new(addr, None).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_frame_arrives_unchanged(frame in proptest::collection::vec(any::<u8>(), 1..MAX_FRAME)) {
        let (mut a, mut b) = pair();
        prop_assert!(a.send(&frame).unwrap());
        let got = recv_wait(&mut b);
        prop_assert_eq!(got.as_deref(), Some(&frame[..]));
    }
}

/// Two e1000s on in-process buses, joined by a UDP tunnel: what one guest transmits
/// through its TX ring, the other receives through its RX ring, both ways.
#[test]
fn two_devices_joined_by_a_tunnel_exchange_frames() {
    let (ta, tb) = pair();
    let mut a = support::FakeGuest::new(Box::new(ta));
    let mut b = support::FakeGuest::new(Box::new(tb));
    for g in [&mut a, &mut b] {
        g.linux_probe();
        g.linux_open(8, 8);
    }
    for i in 0..5u8 {
        let to_b = support::frame(support::MAC, support::PEER, 0x0800, 200 + usize::from(i), i);
        let to_a = support::frame(support::MAC, support::PEER, 0x0806, 46, 100 + i);
        a.send(&to_b);
        b.send(&to_a);
        assert_eq!(
            poll_until_frame(&mut b).as_deref(),
            Some(&to_b[..]),
            "a -> b #{i}"
        );
        assert_eq!(
            poll_until_frame(&mut a).as_deref(),
            Some(&to_a[..]),
            "b -> a #{i}"
        );
    }
    // The device's backend path, used directly, is the same wire.
    let direct = support::frame(support::MAC, support::PEER, 0x86DD, 1000, 9);
    assert!(a.bus.device().backend_mut().send(&direct).unwrap());
    assert_eq!(poll_until_frame(&mut b).as_deref(), Some(&direct[..]));
    assert_eq!(a.bus.device().metrics().tx_frames, 5);
    assert_eq!(b.bus.device().metrics().rx_frames, 6);
}

fn poll_until_frame(g: &mut support::FakeGuest) -> Option<Vec<u8>> {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        g.advance_us(10);
        if let Some(f) = g.recv() {
            return Some(f);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// The CLI path: a spec with `record=` opens a recorded tunnel; a guest's traffic both
/// ways lands in the file.
#[cfg(feature = "pcap")]
#[test]
fn a_recorded_tunnel_from_a_spec_captures_both_directions() {
    use nic_emu::config::BackendSpec;
    let peer = UdpTunnel::new(any_local(), None).unwrap();
    let path = std::env::temp_dir().join(format!("nic-emu-udp-rec-{}.pcap", std::process::id()));
    let spec = BackendSpec::parse_inline(&format!(
        "udp,local=127.0.0.1:0,remote={},record={}",
        peer.local_addr(),
        path.display()
    ))
    .unwrap();
    let mut a = support::FakeGuest::new(spec.open().unwrap());
    let mut b = support::FakeGuest::new(Box::new(peer));
    for g in [&mut a, &mut b] {
        g.linux_probe();
        g.linux_open(8, 8);
    }
    let out = support::frame(support::MAC, support::PEER, 0x0800, 300, 1);
    a.send(&out);
    assert_eq!(poll_until_frame(&mut b).as_deref(), Some(&out[..]));
    let back = support::frame(support::MAC, support::PEER, 0x0800, 400, 2);
    b.send(&back);
    assert_eq!(poll_until_frame(&mut a).as_deref(), Some(&back[..]));
    a.bus.device().backend_mut().flush().unwrap();

    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut recs = vec![];
    while let Some(p) = r.next_packet() {
        recs.push(p.unwrap().data().to_vec());
    }
    assert_eq!(recs, vec![out, back]);
    let _ = std::fs::remove_file(&path);
}

/// A fresh multicast group port (the group is 239.255.13.x, administratively scoped).
fn mcast_group(n: u8) -> std::net::SocketAddrV4 {
    let port = UdpSocket::bind(any_local())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 13, n), port)
}

/// Three members of one multicast group on the loopback interface: each frame reaches
/// the two others, never its sender.
#[test]
fn multicast_members_hear_each_other_but_not_themselves() {
    let group = mcast_group(1);
    let lo = Some(std::net::Ipv4Addr::LOCALHOST);
    let mut m: Vec<UdpTunnel> = (0..3)
        .map(|_| UdpTunnel::multicast(group, lo).unwrap())
        .collect();
    let mut buf = vec![0u8; MAX_FRAME];
    for i in 0..3 {
        let f = support::frame([0xFF; 6], [2, 0, 0, 0, 0, i as u8], 0x0806, 46, i as u8);
        assert!(m[i].send(&f).unwrap());
        for (j, other) in m.iter_mut().enumerate() {
            if j != i {
                assert_eq!(recv_wait(other).as_deref(), Some(&f[..]), "{i} -> {j}");
            }
        }
        // The sender's own copy came back through the kernel's loop and was dropped.
        let end = Instant::now() + Duration::from_secs(10);
        while m[i].counters().rx_own < 1 {
            assert_eq!(m[i].recv(&mut buf).unwrap(), None, "{i} heard itself");
            assert!(Instant::now() < end, "{i}: own frame never looped back");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for (i, t) in m.iter().enumerate() {
        let c = t.counters();
        assert_eq!(
            (c.sent, c.received, c.rx_own),
            (1, 2, 1),
            "member {i}: {c:?}"
        );
        assert!(t.multicast_source().is_some());
    }
}

/// Where no route leads to the group (a fresh network namespace: containers, test
/// rigs), joining without `local=` fails with ENODEV; the error says what to do.
#[test]
fn a_failed_join_without_local_suggests_local() {
    const T: &str = "a_failed_join_without_local_suggests_local";
    if !support::can_run(T, support::is_root(), "needs root for a network namespace") {
        return;
    }
    let group = mcast_group(7);
    // A thread of its own in a new network namespace (the namespace is per thread):
    // only `lo`, down, and no route at all.
    let e = std::thread::spawn(move || {
        // SAFETY: unshare(2) with a valid flag; it changes this thread's namespace only.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        UdpTunnel::multicast(group, None).err()
    })
    .join()
    .unwrap()
    .expect("joining with no route to the group fails");
    let msg = e.to_string();
    assert!(
        msg.contains(&group.to_string())
            && msg.contains("local=127.0.0.1")
            && msg.contains("multicast route"),
        "{msg}"
    );
}

#[test]
fn multicast_specs_name_their_keys() {
    use nic_emu::config::{BackendKind, BackendSpec};
    let s = BackendSpec::parse_inline("udp,mcast=239.1.2.3:5000,local=127.0.0.1").unwrap();
    assert_eq!(
        s.kind,
        BackendKind::Mcast {
            group: "239.1.2.3:5000".parse().unwrap(),
            iface: Some(std::net::Ipv4Addr::LOCALHOST)
        }
    );
    assert_eq!(BackendSpec::parse_inline(&s.to_string()).unwrap(), s);
    for (spec, key) in [
        ("udp,mcast=10.0.0.1:5000", "mcast"),
        ("udp,mcast=239.1.2.3", "mcast"),
        ("udp,mcast=239.1.2.3:0", "mcast"),
        ("udp,mcast=[ff02::1]:5000", "mcast"),
        ("udp,mcast=239.1.2.3:5000,remote=127.0.0.1:1", "remote"),
        ("udp,mcast=239.1.2.3:5000,local=127.0.0.1:7000", "local"),
    ] {
        let e = BackendSpec::parse_inline(spec).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
    }
}

/// Poll `b` (receiving, as the event loop does) until `cond` holds, 5 s at most.
fn until(b: &mut UdpTunnel, what: &str, mut cond: impl FnMut(&UdpTunnel) -> bool) {
    let mut buf = vec![0u8; MAX_FRAME];
    let end = Instant::now() + Duration::from_secs(5);
    while !cond(b) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        let _ = b.recv(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_peer_that_goes_away_is_counted_and_its_return_needs_nothing() {
    let (mut a, b) = pair();
    let b_addr = b.local_addr();
    let f = support::frame(support::PEER, support::MAC, 0x0800, 100, 1);
    drop(b);
    // Nobody listens on the peer's port: the kernel's ICMP port unreachable is counted
    // (frames go out all the same: UDP cannot know which will be lost).
    for _ in 0..3 {
        let _ = a.send(&f).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    until(&mut a, "an ICMP error", |a| {
        a.counters().peer_unreachable > 0
    });
    assert_eq!(a.remote_addr(), Some(b_addr), "a configured remote stays");
    // The carrier does not follow a connectionless peer.
    assert!(a.carrier().up);
    assert_eq!(a.carrier_note(), None);
    // The error queue is drained: once the last ICMP error is in and a receive has
    // seen it, the socket is not left reporting POLLERR (the event loop would spin).
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = vec![0u8; MAX_FRAME];
    assert_eq!(a.recv(&mut buf).unwrap(), None);
    let mut pfd = libc::pollfd {
        fd: a.rx_fd().unwrap(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, live for the call; timeout 0.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    assert!(rc >= 0);
    assert_eq!(pfd.revents & libc::POLLERR, 0, "error queue left full");

    // The peer comes back on the same port: frames flow with nothing else to do.
    let mut b = UdpTunnel::new(b_addr, Some(a.local_addr())).unwrap();
    let unreachable = a.counters().peer_unreachable;
    let f2 = support::frame(support::PEER, support::MAC, 0x0800, 200, 2);
    // A pending error may cost one frame; the next ones arrive.
    let mut got = None;
    for _ in 0..3 {
        let _ = a.send(&f2).unwrap();
        got = recv_wait(&mut b);
        if got.is_some() {
            break;
        }
    }
    assert_eq!(got.as_deref(), Some(&f2[..]));
    assert!(b.send(&f).unwrap());
    assert_eq!(recv_wait(&mut a).as_deref(), Some(&f[..]));
    assert!(a.counters().peer_unreachable <= unreachable + 1);
}

#[test]
fn a_learned_peer_that_goes_away_is_forgotten_and_the_next_one_learned() {
    let mut a = UdpTunnel::new(any_local(), None).unwrap();
    let first = UdpSocket::bind(any_local()).unwrap();
    let f = support::frame(support::MAC, support::PEER, 0x0800, 64, 1);
    first.send_to(&f, a.local_addr()).unwrap();
    assert_eq!(recv_wait(&mut a).as_deref(), Some(&f[..]));
    assert_eq!(a.remote_addr(), Some(first.local_addr().unwrap()));
    drop(first);
    for _ in 0..3 {
        let _ = a.send(&f).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    until(&mut a, "the learned remote forgotten", |a| {
        a.remote_addr().is_none()
    });
    assert!(a.counters().peer_unreachable > 0);
    // A new peer, on another port, is learned from its first datagram.
    let second = UdpSocket::bind(any_local()).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    second.send_to(&f, a.local_addr()).unwrap();
    assert_eq!(recv_wait(&mut a).as_deref(), Some(&f[..]));
    assert_eq!(a.remote_addr(), Some(second.local_addr().unwrap()));
    assert!(a.send(&f).unwrap());
    let mut buf = [0u8; 2000];
    assert_eq!(second.recv(&mut buf).unwrap(), f.len());
}
