//! The VXLAN backend against Linux's own vxlan devices, in network namespaces the tests
//! create and delete (root, or `SKIP:`). No guest: the test drives the backend directly
//! (opened inside a namespace) and talks to a UDP socket behind a Linux bridge:
//!
//! ```text
//!   ns E: Vxlan backend ── veth ── ns L: vx0 (vxlan id 42) ── br0 10.233.91.1 ── UDP socket
//!                                       vx1 (vxlan id 43) ── br1 10.233.92.1
//! ```
//!
//! Over a veth, Linux's vxlan device must have checksum offload off (`ethtool -K vx0 tx
//! off`): otherwise it leaves the inner checksums for a NIC to finish, which a veth never
//! does, and a program reading the datagrams from a socket gets them unfinished (every
//! inner UDP checksum is checked here).
//!
//! Frames cross both ways over IPv4 and IPv6 underlays; 1514-byte inner frames cross the
//! 1500-byte veth fragmented (from the backend over both, from Linux over IPv4 when the
//! inner packet has no DF: Linux's vxlan never fragments over IPv6); Linux learns the
//! backend's MAC; frames of VNI 43 never come out of the backend. With a multicast group,
//! two backends and a Linux VTEP flood, learn and then send unicast to each other. The
//! whole file runs in about a second.
#![cfg(feature = "udp")]

use crate::support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nic_emu::backend::{PacketBackend, Vxlan, MAX_FRAME};
use nic_emu::config::{BackendKind, BackendSpec};

/// The backend's (the "guest's") MAC and the two bridges' MACs.
const EMU_MAC: [u8; 6] = [0x02, 0xE1, 0, 0, 0, 0x02];
const EMU2_MAC: [u8; 6] = [0x02, 0xE2, 0, 0, 0, 0x03];
const BR0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x91, 0x01];
const BR1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x92, 0x01];

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted (with its interfaces) on drop.
struct Ns {
    name: String,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Ns {
    fn new(tag: &str) -> Ns {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("ne-vx-{}-{n}-{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Ns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NS ARGS...` (ARGS split on white space), which must succeed.
    fn ip(&self, args: &str) -> String {
        run(Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace()))
    }

    /// A command run inside the namespace, which must succeed.
    fn exec(&self, args: &str) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args.split_whitespace()))
    }

    /// IPv6 off for the interfaces created from now on (`all` too when `all`): no router
    /// solicitations or MLD reports to muddle exact frame counts.
    fn ipv6_off(&self, all: bool) {
        self.exec("sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
        if all {
            self.exec("sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
        }
    }

    /// Run `f` on a thread that has entered the namespace: sockets it creates belong to
    /// the namespace for good.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("open the namespace");
                // SAFETY: setns(2) with a descriptor of a network namespace, which `file`
                // keeps open across the call; it changes only this thread's namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("no panic in the namespace")
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn root(test: &str) -> bool {
    support::can_run(
        test,
        support::is_root(),
        "needs root (network namespaces, vxlan devices)",
    ) && support::can_run(
        test,
        std::path::Path::new("/usr/sbin/ethtool").exists(),
        "no ethtool (scripts/provision.sh installs it)",
    )
}

/// A veth pair: `a` in `na`, `b` in `nb`, up, with addresses (none when empty).
fn veth(na: &Ns, a: &str, a_cidr: &str, nb: &Ns, b: &str, b_cidr: &str) {
    na.ip(&format!(
        "link add {a} type veth peer name {b} netns {}",
        nb.name
    ));
    for (ns, dev, cidr) in [(na, a, a_cidr), (nb, b, b_cidr)] {
        if !cidr.is_empty() {
            let nodad = if cidr.contains(':') { " nodad" } else { "" };
            ns.ip(&format!("addr add {cidr} dev {dev}{nodad}"));
        }
        ns.ip(&format!("link set {dev} up"));
    }
}

/// A bridge `br` with MAC `mac` and address `cidr` in `ns`, with `port` in it, all up,
/// and a permanent neighbour entry for `peer_ip` at `peer_mac` (so no ARP crosses).
fn bridge(
    ns: &Ns,
    br: &str,
    mac: [u8; 6],
    cidr: &str,
    port: &str,
    peer_ip: &str,
    peer_mac: [u8; 6],
) {
    ns.ip(&format!(
        "link add {br} address {} type bridge",
        mac_str(mac)
    ));
    ns.ip(&format!("link set {port} master {br}"));
    ns.ip(&format!("link set {port} up"));
    ns.ip(&format!("link set {br} up"));
    ns.ip(&format!("addr add {cidr} dev {br}"));
    ns.ip(&format!(
        "neigh add {peer_ip} lladdr {} dev {br} nud permanent",
        mac_str(peer_mac)
    ));
}

fn open_vxlan(ns: &Ns, spec: &str) -> Vxlan {
    let BackendKind::Vxlan(x) = BackendSpec::parse_inline(spec).unwrap().kind else {
        panic!("{spec} is not vxlan");
    };
    ns.enter(|| Vxlan::open(&x).unwrap_or_else(|e| panic!("{spec}: {e}")))
}

/// A frame `src:sport -> dst:dport` (IPv4 UDP) with `payload`.
fn udp_frame(
    (smac, sip, sport): ([u8; 6], [u8; 4], u16),
    (dmac, dip, dport): ([u8; 6], [u8; 4], u16),
    payload: &[u8],
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, 64)
        .udp(sport, dport);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).unwrap();
    f
}

/// The UDP payload of `frame` if it is an IPv4 UDP datagram to `dport`, after checking
/// its UDP checksum.
fn udp_payload(frame: &[u8], dport: u16) -> Option<Vec<u8>> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Udp(u))) =
        (p.net, p.transport)
    else {
        return None;
    };
    if u.destination_port() != dport {
        return None;
    }
    let want = u
        .to_header()
        .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
        .unwrap();
    assert_eq!(
        u.checksum(),
        want,
        "inner UDP checksum (unfinished: checksum offload left on over a veth?)"
    );
    Some(u.payload().to_vec())
}

/// Whether `frame` is a multicast membership report from br0 (IGMP, or MLD to ff02::16),
/// which a Linux bridge sends on its own when it comes up.
fn br0_membership_report(frame: &[u8]) -> bool {
    let igmp = frame.get(12..14) == Some(&[0x08, 0x00][..]) && frame.get(23) == Some(&2);
    let mld = frame.get(..6) == Some(&[0x33, 0x33, 0, 0, 0, 0x16][..]);
    frame.get(6..12) == Some(&BR0_MAC[..]) && (igmp || mld)
}

/// Frames `b` returns within `wait` (stops early after `want` frames), br0's membership
/// reports left out.
fn frames(b: &mut dyn PacketBackend, want: usize, wait: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    let end = Instant::now() + wait;
    while out.len() < want && Instant::now() < end {
        match b.recv(&mut buf).unwrap() {
            Some(n) if br0_membership_report(&buf[..n]) => {}
            Some(n) => out.push(buf[..n].to_vec()),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    out
}

/// Send from `sock` without DF (`IP_PMTUDISC_DONT`).
fn no_df(sock: &UdpSocket) {
    let v = libc::IP_PMTUDISC_DONT;
    // SAFETY: setsockopt(2) reads an int from `v`, which lives across the call, on the
    // socket `sock` owns.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            std::ptr::from_ref(&v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "IP_MTU_DISCOVER: {}",
        std::io::Error::last_os_error()
    );
}

/// A datagram on `sock` within two seconds: payload and sender.
fn datagram(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = sock
        .recv_from(&mut buf)
        .expect("a datagram through the Linux bridge within 2 s");
    (buf[..n].to_vec(), from)
}

/// Poll `bridge fdb show dev DEV` in `ns` until it maps `mac` to `dst` (two seconds).
fn assert_linux_learned(ns: &Ns, dev: &str, mac: [u8; 6], dst: &str) {
    let want = format!("{} dst {dst} ", mac_str(mac));
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let fdb = ns.exec(&format!("bridge fdb show dev {dev}"));
        if fdb.lines().any(|l| format!("{l} ").contains(&want)) {
            return;
        }
        assert!(Instant::now() < end, "{dev} never learned {want:?}:\n{fdb}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ns E (the backend) and ns L (Linux: vx0 id 42 and vx1 id 43 towards E, each in a
/// bridge with an address and a static neighbour entry for the backend's MAC), over
/// IPv4 or IPv6. Returns (E, L, the backend's underlay address, Linux's).
fn point_to_point(v6: bool) -> (Ns, Ns, String, String) {
    let (e, l) = (Ns::new("emu"), Ns::new("lnx"));
    let (ea, la) = if v6 {
        ("fd00:233:90::2", "fd00:233:90::1")
    } else {
        ("10.233.90.2", "10.233.90.1")
    };
    let len = if v6 { 64 } else { 24 };
    // Over IPv4 no IPv6 at all; over IPv6 only the veth has it.
    for ns in [&e, &l] {
        if !v6 {
            ns.ipv6_off(true);
        }
    }
    veth(
        &l,
        "vl",
        &format!("{la}/{len}"),
        &e,
        "ve",
        &format!("{ea}/{len}"),
    );
    for ns in [&e, &l] {
        ns.ipv6_off(false);
    }
    for (dev, vni, br, mac, net) in [
        ("vx0", 42, "br0", BR0_MAC, 91),
        ("vx1", 43, "br1", BR1_MAC, 92),
    ] {
        l.ip(&format!(
            "link add {dev} type vxlan id {vni} remote {ea} local {la} dstport 4789"
        ));
        l.exec(&format!("ethtool -K {dev} tx off"));
        bridge(
            &l,
            br,
            mac,
            &format!("10.233.{net}.1/24"),
            dev,
            &format!("10.233.{net}.2"),
            EMU_MAC,
        );
    }
    (e, l, ea.to_string(), la.to_string())
}

/// Both directions through vx0, big frames fragmented on the 1500-byte veth, Linux
/// learning the backend's MAC, and VNI 43 never delivered.
fn point_to_point_exchange(v6: bool) {
    let (e, l, ea, la) = point_to_point(v6);
    let remote = if v6 { format!("[{la}]") } else { la.clone() };
    let mut b = open_vxlan(&e, &format!("vxlan,remote={remote},vni=42"));
    let sock = l.enter(|| UdpSocket::bind("10.233.91.1:5555").unwrap());
    let other = l.enter(|| UdpSocket::bind("10.233.92.1:0").unwrap());
    let me = (EMU_MAC, [10, 233, 91, 2], 6666);
    let linux = (BR0_MAC, [10, 233, 91, 1], 5555);

    // Backend -> Linux: a small datagram and one that fills a 1514-byte frame, whose
    // 1564 (1584 over IPv6) bytes with VXLAN's headers cross the 1500-byte veth in two
    // fragments.
    for len in [5, 1472] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let f = udp_frame(me, linux, &payload);
        assert_eq!(f.len(), 42 + len);
        assert!(b.send(&f).unwrap());
        let (got, from) = datagram(&sock);
        assert_eq!(got, payload, "{len}-byte payload");
        assert_eq!(from, "10.233.91.2:6666".parse().unwrap());
    }
    assert_linux_learned(&l, "vx0", EMU_MAC, &ea);

    // Linux -> backend. Linux's vxlan device answers an inner packet with DF that would
    // need the outer datagram fragmented with ICMP "fragmentation needed" (as any tunnel
    // does), so the socket sends without DF here; over IPv6 it never fragments the outer
    // datagram, so the largest frame is the one that fits the 1500-byte veth.
    no_df(&sock);
    let largest = if v6 { 1500 - 70 - 28 } else { 1472 };
    for len in [4, largest] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
        sock.send_to(&payload, "10.233.91.2:6666").unwrap();
        let got = frames(&mut b, 1, Duration::from_secs(2));
        assert_eq!(got.len(), 1, "{len}: nothing from Linux");
        assert_eq!(got[0][..6], EMU_MAC, "to the backend's MAC");
        assert_eq!(got[0][6..12], BR0_MAC, "from br0");
        assert_eq!(udp_payload(&got[0], 6666), Some(payload));
    }

    // VNI 43: five datagrams through br1 and vx1 reach the backend's port, and are
    // dropped there; then one through vx0 comes out alone.
    for i in 0..5u8 {
        other.send_to(&[i; 20], "10.233.92.2:6666").unwrap();
    }
    let end = Instant::now() + Duration::from_secs(2);
    while b.counters().rx_other_vni < 5 {
        let got = frames(&mut b, 1, Duration::from_millis(10));
        assert!(got.is_empty(), "a frame came out: {got:02x?}");
        assert!(Instant::now() < end, "{:?}", b.counters());
    }
    sock.send_to(b"vni 42", "10.233.91.2:6666").unwrap();
    let got = frames(&mut b, 1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(udp_payload(&got[0], 6666).as_deref(), Some(&b"vni 42"[..]));
    // Nothing else came: nothing from br1 (not even its own IGMP reports, which went
    // through vx1 too), and nothing dropped but frames of VNI 43.
    let rest = frames(&mut b, usize::MAX, Duration::from_millis(300));
    assert!(rest.is_empty(), "{rest:02x?}");
    let c = b.counters();
    assert_eq!(c.tx_frames, 2, "{c:?}");
    assert!(c.rx_frames >= 3, "{c:?}");
    assert!(c.rx_other_vni >= 5, "{c:?}");
    assert_eq!(c.rx_dropped(), c.rx_other_vni, "{c:?}");
}

#[test]
fn linux_vxlan_and_the_backend_exchange_frames_over_ipv4() {
    if !root("linux_vxlan_and_the_backend_exchange_frames_over_ipv4") {
        return;
    }
    point_to_point_exchange(false);
}

#[test]
fn linux_vxlan_and_the_backend_exchange_frames_over_ipv6() {
    if !root("linux_vxlan_and_the_backend_exchange_frames_over_ipv6") {
        return;
    }
    point_to_point_exchange(true);
}

/// Three VTEPs on one segment over a multicast group: Linux (ns L) and two backends
/// (ns E1, E2), each on a veth into a fabric bridge (ns F, multicast snooping off).
/// A broadcast floods to everyone, whoever received it learns the sender, and from then
/// on unicast goes straight to the one VTEP.
fn flood_and_learn(v6: bool) {
    let (f, l, e1, e2) = (
        Ns::new("fab"),
        Ns::new("lnx"),
        Ns::new("emu1"),
        Ns::new("emu2"),
    );
    let (net, len, group) = if v6 {
        ("fd00:233:90::", 64, "ff05::4242")
    } else {
        ("10.233.90.", 24, "239.1.1.1")
    };
    // Over IPv4 no IPv6 at all; over IPv6 only the veths have it.
    f.ipv6_off(true);
    for ns in [&l, &e1, &e2] {
        if !v6 {
            ns.ipv6_off(true);
        }
    }
    f.ip("link add fb0 type bridge mcast_snooping 0");
    f.ip("link set fb0 up");
    for (i, ns) in [&l, &e1, &e2].into_iter().enumerate() {
        let port = format!("f{i}");
        veth(&f, &port, "", ns, "ve", &format!("{net}{}/{len}", i + 1));
        f.ip(&format!("link set {port} master fb0"));
    }
    for ns in [&l, &e1, &e2] {
        ns.ipv6_off(false);
    }
    l.ip(&format!(
        "link add vx0 type vxlan id 42 group {group} dev ve dstport 4789"
    ));
    l.exec("ethtool -K vx0 tx off");
    bridge(
        &l,
        "br0",
        BR0_MAC,
        "10.233.91.1/24",
        "vx0",
        "10.233.91.2",
        EMU_MAC,
    );
    let spec_group = if v6 {
        format!("[{group}]")
    } else {
        group.to_string()
    };
    let spec = format!("vxlan,group={spec_group},vni=42,local=ve");
    let mut b1 = open_vxlan(&e1, &spec);
    let mut b2 = open_vxlan(&e2, &spec);
    let ip = |n: u8| -> IpAddr { format!("{net}{n}").parse().unwrap() };
    let sock = l.enter(|| UdpSocket::bind("10.233.91.1:5555").unwrap());

    // 1. b1 broadcasts: flooded to the group; b2 gets it, Linux learns b1.
    let mut hello = vec![0xFF; 6];
    hello.extend_from_slice(&EMU_MAC);
    hello.extend_from_slice(&[0x88, 0xB5]);
    hello.extend_from_slice(&[1; 46]);
    assert!(b1.send(&hello).unwrap());
    assert_eq!(
        frames(&mut b2, 1, Duration::from_secs(2)),
        vec![hello.clone()]
    );
    assert_eq!(b2.learned_vtep(EMU_MAC), Some(ip(2)));
    assert_linux_learned(&l, "vx0", EMU_MAC, &ip(2).to_string());

    // 2. b2 answers b1 by unicast, to the VTEP it learned.
    let mut reply = EMU_MAC.to_vec();
    reply.extend_from_slice(&EMU2_MAC);
    reply.extend_from_slice(&[0x88, 0xB5]);
    reply.extend_from_slice(&[2; 46]);
    assert!(b2.send(&reply).unwrap());
    assert_eq!(frames(&mut b1, 1, Duration::from_secs(2)), vec![reply]);
    assert_eq!(b1.learned_vtep(EMU2_MAC), Some(ip(3)));

    // 3. Linux sends to b1's MAC: unicast to E1 only (Linux learned it in step 1).
    sock.send_to(b"from linux", "10.233.91.2:6666").unwrap();
    let got = frames(&mut b1, 1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(
        udp_payload(&got[0], 6666).as_deref(),
        Some(&b"from linux"[..])
    );
    assert!(
        frames(&mut b2, 1, Duration::from_millis(300)).is_empty(),
        "the unicast reached the other VTEP too"
    );
    assert_eq!(b1.learned_vtep(BR0_MAC), Some(ip(1)));

    // 4. b1 answers Linux by unicast to the VTEP it learned.
    let f = udp_frame(
        (EMU_MAC, [10, 233, 91, 2], 6666),
        (BR0_MAC, [10, 233, 91, 1], 5555),
        b"from b1",
    );
    assert!(b1.send(&f).unwrap());
    assert_eq!(datagram(&sock).0, b"from b1");

    let (c1, c2) = (b1.counters(), b2.counters());
    assert_eq!((c1.tx_flooded, c1.tx_learned), (1, 1), "{c1:?}");
    assert_eq!((c2.tx_flooded, c2.tx_learned), (0, 1), "{c2:?}");
    assert_eq!(c1.rx_dropped() + c2.rx_dropped(), 0);
}

#[test]
fn flood_and_learn_with_linux_and_two_backends_over_an_ipv4_group() {
    if !root("flood_and_learn_with_linux_and_two_backends_over_an_ipv4_group") {
        return;
    }
    flood_and_learn(false);
}

#[test]
fn flood_and_learn_with_linux_and_two_backends_over_an_ipv6_group() {
    if !root("flood_and_learn_with_linux_and_two_backends_over_an_ipv6_group") {
        return;
    }
    flood_and_learn(true);
}
