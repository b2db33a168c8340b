//! Stream backend (QEMU's `-netdev stream` framing: a 4-byte big-endian length before
//! each frame): client and server over Unix and TCP sockets, a peer that writes a byte
//! at a time or stops reading, hostile length prefixes, a peer that goes away and comes
//! back, and two in-process e1000s joined by a stream.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nic_emu::backend::stream::{StreamAddr, MAX_STREAM_FRAME, TX_BUFFER};
use nic_emu::backend::{Carrier, PacketBackend, StreamBackend, StreamRole, MAX_FRAME};
use nic_emu::config::{BackendKind, BackendSpec};

/// A fresh socket path in a per-test directory.
fn sock(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nic-emu-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Poll until `cond` holds (10 s at most: the machine may be busy).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Poll `b` until it yields a frame.
fn recv_wait(b: &mut dyn PacketBackend) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut got = None;
    wait_until("a frame", || {
        got = b.recv(&mut buf).unwrap();
        got.is_some()
    });
    buf[..got.unwrap()].to_vec()
}

/// Length-prefixed, as QEMU and passt write it.
fn framed(f: &[u8]) -> Vec<u8> {
    let mut v = (f.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(f);
    v
}

/// Read one length-prefixed frame from a blocking stream.
fn read_framed(s: &mut impl Read) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut f).unwrap();
    f
}

fn unix(p: &std::path::Path) -> StreamAddr {
    StreamAddr::Unix(p.to_path_buf())
}

/// A client backend connected to a listener on a fresh socket `name`: the backend, the
/// peer's end of the connection, and the listener (for a later reconnection).
fn client_of(name: &str) -> (StreamBackend, UnixStream, UnixListener) {
    let path = sock(name);
    let listener = UnixListener::bind(&path).unwrap();
    let b = StreamBackend::open(unix(&path), StreamRole::Connect).unwrap();
    let (peer, _) = listener.accept().unwrap();
    (b, peer, listener)
}

#[test]
fn client_and_server_carry_frames_both_ways_over_unix_and_tcp() {
    let path = sock("pair.sock");
    let tcp: StreamAddr = "127.0.0.1:0".parse().unwrap();
    for (listen_at, label) in [(unix(&path), "unix"), (tcp, "tcp")] {
        let mut server = StreamBackend::open(listen_at, StreamRole::Listen).unwrap();
        assert!(server.rx_fd().is_some(), "{label}: the listener is watched");
        let mut client = StreamBackend::open(server.addr().clone(), StreamRole::Connect).unwrap();
        assert!(client.connected(), "{label}");
        let f1 = support::frame(support::PEER, support::MAC, 0x0800, 100, 1);
        let f2 = support::frame(support::MAC, support::PEER, 0x86DD, 9000, 2);
        assert!(client.send(&f1).unwrap());
        assert_eq!(recv_wait(&mut server), f1, "{label}: client -> server");
        assert!(server.connected());
        assert!(server.send(&f2).unwrap());
        assert_eq!(recv_wait(&mut client), f2, "{label}: server -> client");
        let mut buf = vec![0u8; MAX_FRAME];
        assert_eq!(client.recv(&mut buf).unwrap(), None, "non-blocking");
        assert_eq!(client.counters().sent, 1);
        assert_eq!(client.counters().received, 1);
        assert_eq!(server.counters().connects, 1);
    }
    drop(path);
}

#[test]
fn a_peer_writing_one_byte_at_a_time_is_reassembled() {
    let (mut b, mut peer, _listener) = client_of("bytes.sock");
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| support::frame(support::MAC, support::PEER, 0x0800, 46 + 500 * i, i as u8))
        .collect();
    let mut buf = vec![0u8; MAX_FRAME];
    for f in &frames {
        let bytes = framed(f);
        for (i, byte) in bytes.iter().enumerate() {
            peer.write_all(&[*byte]).unwrap();
            if i + 1 < bytes.len() {
                // Never a frame before its last byte.
                assert_eq!(b.recv(&mut buf).unwrap(), None, "after {} bytes", i + 1);
            }
        }
        assert_eq!(&recv_wait(&mut b), f);
    }
    // Several frames in one write come out one by one.
    let mut all = Vec::new();
    for f in &frames {
        all.extend(framed(f));
    }
    peer.write_all(&all).unwrap();
    for f in &frames {
        assert_eq!(&recv_wait(&mut b), f);
    }
    assert_eq!(b.counters().received, 6);
}

/// Inside a burst the frames are queued and written together when it ends: one write
/// for the lot, and the peer gets them whole and in order. Outside a burst each frame is
/// written at once.
#[test]
fn a_burst_is_written_in_one_go() {
    let (mut b, mut peer, _listener) = client_of("burst.sock");
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let fs: Vec<Vec<u8>> = (0..20u8)
        .map(|i| {
            support::frame(
                support::PEER,
                support::MAC,
                0x0800,
                60 + 50 * usize::from(i),
                i,
            )
        })
        .collect();
    assert!(b.send(&fs[0]).unwrap());
    assert_eq!(read_framed(&mut peer), fs[0]);
    let writes = b.counters().tx_writes;
    assert_eq!(writes, 1, "outside a burst: written at once");

    b.begin_burst();
    for f in &fs[1..] {
        assert!(b.send(f).unwrap());
    }
    assert_eq!(b.counters().tx_writes, writes, "held until the burst ends");
    b.end_burst().unwrap();
    assert_eq!(
        b.counters().tx_writes,
        writes + 1,
        "one write for 19 frames"
    );
    for f in &fs[1..] {
        assert_eq!(&read_framed(&mut peer), f);
    }
    assert_eq!(b.counters().sent, 20);
}

#[test]
fn a_peer_that_stops_reading_gets_whole_frames_and_the_rest_is_counted() {
    let (mut b, mut peer, _listener) = client_of("slow.sock");
    // The peer reads nothing: the socket buffer fills, then our write buffer.
    let f = support::frame(support::PEER, support::MAC, 0x0800, 1500, 7);
    let mut accepted = 0u64;
    for _ in 0..10_000 {
        if b.send(&f).unwrap() {
            accepted += 1;
        }
    }
    let c = b.counters();
    assert_eq!(c.sent, accepted);
    assert!(c.tx_dropped > 0, "the write buffer is bounded");
    assert_eq!(c.sent + c.tx_dropped, 10_000);
    assert!(
        (c.sent as usize) * f.len() > TX_BUFFER / 2,
        "at least the buffer's worth was taken"
    );
    // The peer now reads: every accepted frame arrives whole, none damaged.
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..accepted {
        // Our side writes the rest of its buffer as the peer drains the socket.
        b.flush().unwrap();
        assert_eq!(read_framed(&mut peer), f, "frame {i}");
        if i % 64 == 0 {
            b.flush().unwrap();
        }
    }
}

#[test]
fn hostile_length_prefixes_neither_allocate_nor_panic() {
    let (mut b, mut peer, listener) = client_of("hostile.sock");
    let good = support::frame(support::MAC, support::PEER, 0x0800, 100, 3);

    // Length 0: skipped. Length above what the device takes but within QEMU's limit:
    // read past, a chunk at a time, never stored. Then a good frame.
    let mut bytes = 0u32.to_be_bytes().to_vec();
    let big = MAX_FRAME + 1000;
    bytes.extend((big as u32).to_be_bytes());
    bytes.extend(vec![0xEE; big]);
    bytes.extend(framed(&good));
    peer.write_all(&bytes).unwrap();
    assert_eq!(recv_wait(&mut b), good);
    assert_eq!(b.counters().rx_skipped, 2);

    // 4 GiB: not this protocol. The connection is dropped (and remade); nothing panics.
    peer.write_all(&u32::MAX.to_be_bytes()).unwrap();
    peer.write_all(&[0xAB; 64]).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    wait_until("the bad length to end the connection", || {
        b.recv(&mut buf).unwrap();
        b.counters().rx_bad_length == 1
    });
    assert_eq!(b.counters().disconnects, 1);
    assert!(!b.connected());
    // The client reconnects and the next peer is heard.
    let (mut peer2, _) = {
        let mut got = None;
        listener.set_nonblocking(true).unwrap();
        wait_until("the reconnect", || {
            b.recv(&mut buf).unwrap();
            if got.is_none() {
                got = listener.accept().ok();
            }
            got.is_some()
        });
        got.unwrap()
    };
    peer2.write_all(&framed(&good)).unwrap();
    assert_eq!(recv_wait(&mut b), good);
    // One byte over QEMU's limit is refused too.
    peer2
        .write_all(&((MAX_STREAM_FRAME + 1) as u32).to_be_bytes())
        .unwrap();
    wait_until("the second bad length", || {
        b.recv(&mut buf).unwrap();
        b.counters().rx_bad_length == 2
    });
}

#[test]
fn a_client_reconnects_and_counts_what_it_drops_meanwhile() {
    let path = sock("reconnect.sock");
    let f = support::frame(support::PEER, support::MAC, 0x0800, 64, 1);
    let listen = || {
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    };
    let accept = |b: &mut StreamBackend, listener: &UnixListener| {
        let mut got = None;
        let mut buf = vec![0u8; MAX_FRAME];
        wait_until("a connection", || {
            b.recv(&mut buf).unwrap();
            got = listener.accept().ok().map(|(s, _)| s);
            got.is_some()
        });
        let s: UnixStream = got.unwrap();
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let listener = listen();
    let mut b = StreamBackend::open(unix(&path), StreamRole::Connect).unwrap();
    let mut peer = accept(&mut b, &listener);
    assert_eq!(b.carrier(), Carrier::UP, "a peer is a plugged cable");
    assert_eq!(b.carrier_note(), None);
    assert!(b.send(&f).unwrap());
    assert_eq!(read_framed(&mut peer), f);

    // The peer goes away (server and all); the client notices at its next read.
    drop((peer, listener));
    let mut buf = vec![0u8; MAX_FRAME];
    wait_until("the disconnect", || {
        b.recv(&mut buf).unwrap();
        !b.connected()
    });
    // No carrier (the guest's link goes down), and a deadline tells the event loop when
    // to try again.
    let c = b.carrier();
    assert!(!c.up);
    assert!(c.recheck_at.is_some());
    let note = b.carrier_note().expect("why the carrier is down");
    assert!(note.contains("reconnecting"), "{note}");
    // Frames sent while nobody is there are dropped and counted.
    for _ in 0..3 {
        assert!(!b.send(&f).unwrap());
    }
    assert_eq!(b.counters().tx_dropped, 3);

    // The server is back: the client reconnects (after its back-off) and frames flow.
    let listener = listen();
    let mut peer = accept(&mut b, &listener);
    assert!(b.carrier().up, "carrier back with the peer");
    assert!(b.send(&f).unwrap());
    assert_eq!(read_framed(&mut peer), f);
    let c = b.counters();
    assert_eq!(
        (c.connects, c.disconnects, c.sent, c.tx_dropped),
        (2, 1, 2, 3)
    );
}

#[test]
fn frames_sent_with_no_peer_are_dropped_and_counted() {
    let path = sock("nobody.sock");
    // Nobody listens: opening a client works (it retries later), sending drops.
    let mut b = StreamBackend::open(unix(&path), StreamRole::Connect).unwrap();
    assert!(!b.connected());
    let f = support::frame(support::PEER, support::MAC, 0x0800, 64, 1);
    for _ in 0..5 {
        assert!(!b.send(&f).unwrap());
    }
    assert_eq!(b.counters().tx_dropped, 5);
    assert_eq!(b.rx_fd(), None);
    assert!(b.carrier().recheck_at.is_some(), "a retry is scheduled");
    // A server with no client also drops, and has no carrier until one connects; its
    // listening socket (rx_fd) wakes the event loop for that.
    let mut s = StreamBackend::open(unix(&sock("lonely.sock")), StreamRole::Listen).unwrap();
    assert!(!s.send(&f).unwrap());
    assert_eq!(s.counters().tx_dropped, 1);
    assert_eq!(s.carrier(), Carrier::down(None));
    assert!(s.rx_fd().is_some());
    assert!(s.carrier_note().unwrap().contains("waiting for a peer"));
}

#[test]
fn a_server_takes_the_next_client_after_one_leaves() {
    let path = sock("server.sock");
    let mut s = StreamBackend::open(unix(&path), StreamRole::Listen).unwrap();
    let f = support::frame(support::MAC, support::PEER, 0x0800, 64, 9);
    for round in 0..3 {
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(&framed(&f)).unwrap();
        assert_eq!(recv_wait(&mut s), f, "round {round}");
        assert!(s.send(&f).unwrap());
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(read_framed(&mut c), f);
        drop(c);
        let mut buf = vec![0u8; MAX_FRAME];
        wait_until("the client to be gone", || {
            s.recv(&mut buf).unwrap();
            !s.connected()
        });
    }
    assert_eq!(s.counters().connects, 3);
    assert_eq!(s.counters().disconnects, 3);
    // The socket file is ours: gone when the backend is.
    drop(s);
    assert!(!path.exists());
}

#[test]
fn a_live_server_socket_is_not_taken_over_but_a_stale_one_is() {
    let path = sock("taken.sock");
    let live = UnixListener::bind(&path).unwrap();
    let err = StreamBackend::open(unix(&path), StreamRole::Listen).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    drop(live); // leaves the file behind, with nobody listening
    assert!(path.exists());
    StreamBackend::open(unix(&path), StreamRole::Listen).expect("stale socket replaced");
    // A TCP port in use is an error naming it.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = StreamAddr::Tcp(taken.local_addr().unwrap());
    let err = StreamBackend::open(addr.clone(), StreamRole::Listen).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn two_guests_joined_by_a_stream() {
    let path = sock("guests.sock");
    let spec = |s: &str| BackendSpec::parse_inline(s).unwrap().open().unwrap();
    let mut a = support::FakeGuest::new(spec(&format!("stream,listen=unix:{}", path.display())));
    let mut b = support::FakeGuest::new(spec(&format!("stream,connect=unix:{}", path.display())));
    for g in [&mut a, &mut b] {
        g.linux_probe();
        g.linux_open(8, 8);
    }
    let poll = |g: &mut support::FakeGuest| {
        let mut got = None;
        wait_until("a frame in the guest", || {
            g.advance_us(10);
            got = g.recv();
            got.is_some()
        });
        got.unwrap()
    };
    let to_a = support::frame(support::MAC, support::PEER, 0x0800, 300, 1);
    b.send(&to_a);
    assert_eq!(poll(&mut a), to_a);
    let to_b = support::frame(support::MAC, support::PEER, 0x0800, 1400, 2);
    a.send(&to_b);
    assert_eq!(poll(&mut b), to_b);
}

#[test]
fn specs_name_the_stream_keys() {
    let s = BackendSpec::parse_inline("stream,connect=unix:/run/passt.sock").unwrap();
    assert_eq!(
        s.kind,
        BackendKind::Stream {
            addr: StreamAddr::Unix("/run/passt.sock".into()),
            role: StreamRole::Connect
        }
    );
    assert_eq!(
        BackendSpec::parse_inline(&s.to_string()).unwrap(),
        s,
        "round trip"
    );
    let s = BackendSpec::parse_inline("stream,listen=127.0.0.1:5555").unwrap();
    assert_eq!(
        s.kind,
        BackendKind::Stream {
            addr: StreamAddr::Tcp("127.0.0.1:5555".parse().unwrap()),
            role: StreamRole::Listen
        }
    );
    let err = |s: &str| BackendSpec::parse_inline(s).unwrap_err().to_string();
    for (spec, key) in [
        ("stream", "connect"),
        ("stream,connect=somewhere", "connect"),
        ("stream,listen=unix:", "listen"),
        ("stream,connect=unix:/a,listen=unix:/b", "listen"),
        ("stream,connect=unix:/a,local=1.2.3.4:5", "local"),
    ] {
        let e = err(spec);
        assert!(e.contains(&format!("`{key}")), "{spec}: {e}");
    }
}

/// The peer is the other end of the cable: a guest behind a stream server sees its link
/// come up when a peer connects, go down (LSC, STATUS.LU clear) when it leaves, and come
/// up again with the next one.
#[test]
fn the_guests_link_follows_the_stream_peer() {
    use nic_emu::device::regs::{ICR, ICR_LSC, STATUS, STATUS_LU};
    let path = sock("link.sock");
    let spec = BackendSpec::parse_inline(&format!("stream,listen=unix:{}", path.display()))
        .unwrap()
        .open()
        .unwrap();
    let mut g = support::FakeGuest::new(spec);
    g.linux_probe();
    g.linux_open(8, 8);
    let lu = |g: &mut support::FakeGuest| g.rd(STATUS) & STATUS_LU != 0;
    assert!(!lu(&mut g), "no peer yet: no link");
    let _ = g.rd(ICR);

    for round in 0..2 {
        let peer = UnixStream::connect(&path).unwrap();
        wait_until("the link with a peer", || {
            g.bus.poll();
            lu(&mut g)
        });
        assert_ne!(g.rd(ICR) & ICR_LSC, 0, "round {round}: LSC on connect");
        drop(peer);
        wait_until("the link without the peer", || {
            g.bus.poll();
            !lu(&mut g)
        });
        assert_ne!(g.rd(ICR) & ICR_LSC, 0, "round {round}: LSC on disconnect");
    }
}
