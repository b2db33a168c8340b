//! End to end with real QEMU guests (TCG) on nic-emu-cli's `vxlan` backend, against
//! Linux's own vxlan devices, in namespaces the test creates and deletes:
//! (a) one nic-emu guest and a Linux `vxlan id 42 remote ...` device bridged to an
//!     address: pings both ways, 4 MiB of TCP each way (md5-checked), and echo requests
//!     sent into VNI 43 that never reach the guest (its own ICMP counters) while the
//!     same sent into VNI 42 do;
//! (b) two nic-emu guests and a guest on QEMU's own e1000 (a tap in a bridge with a
//!     Linux vxlan device) share VNI 42 over multicast (flood and learn) and ping each
//!     other.
//!
//! The underlay veths have MTU 1550: what a 1500-byte guest MTU needs over IPv4 (the
//! figure nic-emu-cli logs at start), so nothing is fragmented. Linux's vxlan devices
//! have checksum offload off, as the README says to do over a veth.
//!
//! Root and the provisioned rig, or `SKIP:`. Run (one QEMU test at a time on the machine):
//! `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_networking vxlan:: -- --nocapture`.

use crate::support;
use crate::support::e2e;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::*;
use nic_emu::backend::{PacketBackend, Tap};

/// Bytes moved each way in (a).
const BULK_BYTES: usize = 4 << 20;

/// Guest shell: `echos` prints the ICMP echo requests received so far.
const ECHOS: &str = "echos() { awk '/^Icmp:/ { if (!c) { for (i = 2; i <= NF; i++) if ($i == \"InEchos\") c = i } else print $c }' /proc/net/snmp; }\n";

/// `ip -n NS ARGS...` (split on white space), which must succeed.
fn ip(ns: &Netns, args: &str) {
    run_ok(
        Command::new("ip")
            .args(["-n", &ns.name])
            .args(args.split_whitespace()),
    );
}

/// A veth pair with MTU 1550 between `a` (in `na`) and `b` (in `nb`), up, with addresses
/// (none when empty).
fn veth(na: &Netns, a: &str, a_cidr: &str, nb: &Netns, b: &str, b_cidr: &str) {
    ip(
        na,
        &format!(
            "link add {a} mtu 1550 type veth peer name {b} mtu 1550 netns {}",
            nb.name
        ),
    );
    for (ns, dev, cidr) in [(na, a, a_cidr), (nb, b, b_cidr)] {
        if !cidr.is_empty() {
            ip(ns, &format!("addr add {cidr} dev {dev}"));
        }
        ip(ns, &format!("link set {dev} up"));
    }
}

/// A bridge in `ns` with `ports` in it, up (multicast snooping off: no membership
/// reports of its own), with `cidr` unless empty.
fn bridge(ns: &Netns, br: &str, ports: &[&str], cidr: &str) {
    ip(ns, &format!("link add {br} type bridge mcast_snooping 0"));
    for p in ports {
        ip(ns, &format!("link set {p} master {br}"));
        ip(ns, &format!("link set {p} up"));
    }
    ip(ns, &format!("link set {br} up"));
    if !cidr.is_empty() {
        ip(ns, &format!("addr add {cidr} dev {br}"));
    }
}

/// The number after `label` in nic-emu-cli's vxlan summary (`... 5 other VNI ...` has
/// 5 before "other VNI").
fn summary_count(log: &str, what: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("vxlan vni") && l.contains("frames sent ("))
        .unwrap_or_else(|| panic!("no vxlan summary in:\n{}", tail(log, 30)));
    let at = line
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in {line}"));
    line[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in {line}"))
}

/// An ICMP echo request to the guest (`guest_ip`) from another host of its subnet (.9),
/// as Ethernet.
fn echo_request(guest_mac: [u8; 6], guest_ip: [u8; 4], seq: u16) -> Vec<u8> {
    let from = [guest_ip[0], guest_ip[1], guest_ip[2], 9];
    let b = etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0x96, 0x09], guest_mac)
        .ipv4(from, guest_ip, 64)
        .icmpv4_echo_request(0x4242, seq);
    let payload = [0x5A; 32];
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, &payload).expect("build echo request");
    f
}

/// The README's VXLAN example: the lines of the shell block after the
/// `<!-- vxlan-example` marker.
fn readme_example() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let at = readme
        .find("<!-- vxlan-example")
        .expect("README.md has the vxlan-example marker");
    readme[at..]
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_string)
        .collect()
}

/// The word after `flag` in `line`.
fn arg_after<'a>(line: &'a str, flag: &str) -> &'a str {
    line.split_whitespace()
        .skip_while(|w| *w != flag)
        .nth(1)
        .unwrap_or_else(|| panic!("no {flag} in {line:?}"))
}

/// (a) The README's example: a Linux vxlan device (VNI 42) bridged to an address, and a
/// nic-emu guest on a `vxlan,remote=...` backend: pings both ways, TCP both ways; then
/// VNI 43 (added by the test) kept out.
#[test]
fn e2e_vxlan_guest_and_linux_vxlan_ping_tcp_and_vni_isolation() {
    const T: &str = "e2e_vxlan_guest_and_linux_vxlan_ping_tcp_and_vni_isolation";
    let Some(rig) = Rig::get(T, true) else { return };
    if !support::can_run(T, Path::new("/usr/sbin/ethtool").exists(), "no ethtool") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("vxlan");
    // The README's lines: the Linux side (`ip ...`), run as written; nic-emu-cli's
    // backend; the guest's address and the Linux side's.
    let example = readme_example();
    let (mut backend, mut guest_cidr, mut host_ip) = (None, None, None);
    let l = Netns::adopt("vxl");
    let e = Netns::adopt("vxe");
    for line in example.iter().filter(|l| !l.starts_with('#')) {
        if line.contains("nic-emu-cli") {
            backend = Some(arg_after(line, "--backend").to_string());
        } else if line.contains("boot-guest.sh") {
            guest_cidr = Some(arg_after(line, "--guest-ip").to_string());
            host_ip = line
                .trim_end_matches('\'')
                .rsplit(' ')
                .next()
                .map(str::to_string);
        } else {
            if line.starts_with("ip netns add ") {
                for ns in line.split("&&").filter_map(|c| c.split_whitespace().nth(3)) {
                    if Path::new("/run/netns").join(ns).exists() {
                        eprintln!("e2e: {T}: deleting namespace {ns} left by an earlier run");
                        let _ = run(Command::new("ip").args(["netns", "del", ns]));
                    }
                }
            }
            run_ok(Command::new("sh").args(["-euc", line]));
        }
    }
    let backend = backend.expect("a nic-emu-cli line in the README example");
    let guest_cidr = guest_cidr.expect("a boot-guest.sh line in the README example");
    let host_ip = host_ip.expect("the address the README's guest pings");
    let guest_ip = guest_cidr.split('/').next().unwrap_or_default().to_string();
    let guest_ip4: [u8; 4] = guest_ip
        .parse::<std::net::Ipv4Addr>()
        .expect("an IPv4 guest address")
        .octets();
    // VNI 43 beside it: vx1 to the same peer, in br1 with a tap the test writes frames
    // into; and such a tap in br0 too, for the control.
    ip(
        &l,
        "link add vx1 type vxlan id 43 remote 192.168.77.2 local 192.168.77.1 dev vl dstport 4789",
    );
    run_ok(&mut l.cmd("ethtool", &["-K", "vx1", "tx", "off"]));
    ip(&l, "tuntap add dev ne-inj43 mode tap");
    bridge(&l, "br1", &["vx1", "ne-inj43"], "");
    ip(&l, "tuntap add dev ne-inj42 mode tap");
    ip(&l, "link set ne-inj42 master br0");
    ip(&l, "link set ne-inj42 up");
    // Opened now and kept open: a tap's carrier, and so its bridge port, comes up a
    // moment after it is opened.
    let mut inject: Vec<(Tap, u16)> = [("ne-inj43", 20u16), ("ne-inj42", 5)]
        .into_iter()
        .map(|(tap, n)| {
            (
                l.enter(|| Tap::open(tap).expect("open an injection tap")),
                n,
            )
        })
        .collect();
    let bb = rig.busybox();
    let (_httpd, blob) = start_httpd(&rig, &wd, &l, &host_ip, BULK_BYTES);
    let down_md5 = md5_file(&rig, &blob);
    let upload = wd.path("upload");
    let mut nc = Proc::spawn_open_stdin(
        "nc-listen",
        l.cmd(&bb, &["nc", "-l", "-p", "9000"]),
        &upload,
        &wd.path("nc.log"),
    );

    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:96";
    let mut cli = NicEmu {
        backend: backend.clone(),
        mac,
        record: None,
        netns: Some(&e),
    }
    .start(&wd, "nic-emu", &sock);
    let cmd = format!(
        "{ECHOS}{}echo PING-DONE\n\
         i=0; while [ \"$(echos)\" -lt 3 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done\n\
         wget -q -O /tmp/down http://{host_ip}:8080/blob; echo WGET_RC=$?\n\
         echo DOWN_MD5=$(md5sum /tmp/down | cut -d' ' -f1)\n\
         dd if=/dev/urandom of=/tmp/up bs=64k count={} 2>/dev/null\n\
         echo UP_MD5=$(md5sum /tmp/up | cut -d' ' -f1)\n\
         nc {host_ip} 9000 </tmp/up; echo NC_RC=$?\n\
         b=$(echos); echo ECHOS_BEFORE=$b; echo VNI-READY\n\
         i=0; while [ \"$(echos)\" -lt $((b+5)) ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done\n\
         sleep 1; echo ECHOS_AFTER=$(echos)\n{}",
        guest_ping("G2H", &host_ip, 3),
        BULK_BYTES / 65536,
        guest_report()
    );
    let s = sock.display().to_string();
    let mut g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            &guest_cidr,
        ],
        &cmd,
    );
    g.wait_console("PING-DONE", READY);
    let ping = run(&mut l.cmd(&bb, &["ping", "-c", "3", "-W", "2", &guest_ip]));
    let host_ping = String::from_utf8_lossy(&ping.stdout).into_owned();
    g.wait_console("VNI-READY", Duration::from_secs(120));
    // 20 echo requests into VNI 43, then 5 into VNI 42, all to the guest's MAC and IP.
    let guest_mac = parse_mac(mac);
    for (t, n) in &mut inject {
        for seq in 0..*n {
            assert!(t.send(&echo_request(guest_mac, guest_ip4, seq)).unwrap());
        }
    }
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
    r.assert_ping("G2H", 3);
    assert_host_ping(T, &host_ping);
    assert_eq!(r.value("WGET_RC").as_deref(), Some("0"), "wget failed");
    assert_eq!(
        r.value("DOWN_MD5"),
        Some(down_md5),
        "downloaded data differs"
    );
    assert_eq!(r.value("NC_RC").as_deref(), Some("0"), "upload nc failed");
    assert!(
        nc.wait_for(Duration::from_secs(10)).is_some(),
        "nc -l did not see the upload end"
    );
    assert_eq!(
        std::fs::metadata(&upload).map_or(0, |m| m.len()),
        BULK_BYTES as u64,
        "upload length"
    );
    assert_eq!(
        r.value("UP_MD5"),
        Some(md5_file(&rig, &upload)),
        "uploaded data differs"
    );
    let echos = |k: &str| -> u64 {
        r.value(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} on the console"))
    };
    assert_eq!(
        echos("ECHOS_AFTER") - echos("ECHOS_BEFORE"),
        5,
        "the guest got the 5 echo requests of VNI 42 and none of the 20 of VNI 43"
    );
    stop_cli(&mut cli);
    let log = cli.log_text();
    assert!(
        log.contains("path MTU of 1550 over IPv4"),
        "no MTU note:\n{}",
        tail(&log, 20)
    );
    let other = summary_count(&log, "other VNI");
    assert!(
        other >= 20,
        "{other} frames of other VNIs dropped, want >= 20"
    );
    assert_eq!(summary_count(&log, "without I flag"), 0);
    eprintln!(
        "e2e: {T}: {:.1}s ({other} frames of VNI 43 dropped by nic-emu)",
        t0.elapsed().as_secs_f64()
    );
}

/// (b) Two nic-emu guests (each nic-emu-cli a VTEP in its own namespace) and a guest on
/// QEMU's own e1000, whose tap is bridged with a Linux vxlan device, on VNI 42 over the
/// multicast group 239.1.1.1: each pings the two others; then both nic-emu VTEPs have
/// sent unicast to VTEPs they learned, and Linux has learned both guests' MACs.
#[test]
fn e2e_vxlan_multicast_two_nic_emu_guests_and_a_qemu_e1000_behind_linux() {
    const T: &str = "e2e_vxlan_multicast_two_nic_emu_guests_and_a_qemu_e1000_behind_linux";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("vxlan-mc");
    let f = Netns::new("vx-fab");
    let l = Netns::new("vx-lnx");
    let e: Vec<Netns> = (1..=2).map(|i| Netns::new(&format!("vx-emu{i}"))).collect();
    // The fabric: one bridge, a veth to each VTEP (10.233.98.1 Linux, .2 and .3 nic-emu).
    ip(&f, "link add fb0 type bridge mcast_snooping 0");
    ip(&f, "link set fb0 up");
    for (i, ns) in std::iter::once(&l).chain(&e).enumerate() {
        let port = format!("f{i}");
        veth(&f, &port, "", ns, "ve", &format!("10.233.98.{}/24", i + 1));
        ip(&f, &format!("link set {port} master fb0"));
    }
    ip(
        &l,
        "link add vx0 type vxlan id 42 group 239.1.1.1 dev ve dstport 4789",
    );
    run_ok(&mut l.cmd("ethtool", &["-K", "vx0", "tx", "off"]));
    ip(&l, "tuntap add dev ne-qt0 mode tap vnet_hdr");
    bridge(&l, "br0", &["vx0", "ne-qt0"], "");

    let ips = ["10.233.97.1", "10.233.97.2", "10.233.97.3"];
    let macs = [
        "52:54:00:e2:e0:97",
        "52:54:00:e2:e0:98",
        "52:54:00:e2:e0:99",
    ];
    let cmd = |me: usize| {
        let peers: Vec<usize> = (0..3).filter(|&j| j != me).collect();
        // Three guests boot on two cores: wait up to a minute for each peer first.
        let wait: String = peers
            .iter()
            .map(|&j| {
                format!(
                    "i=0; until ping -c 1 -W 1 {} >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i+1)); done\n",
                    ips[j]
                )
            })
            .collect();
        let pings: String = peers
            .iter()
            .enumerate()
            .map(|(k, &j)| guest_ping(&format!("PEER{}", k + 1), ips[j], 3))
            .collect();
        format!(
            "{ECHOS}{wait}{pings}\
             i=0; while [ \"$(echos)\" -lt 6 ] && [ $i -lt 400 ]; do sleep 0.2; i=$((i+1)); done\n\
             sleep 2\necho IN_ECHOS=$(echos)\n{}",
            guest_report()
        )
    };
    let mut clis = Vec::new();
    let mut guests = Vec::new();
    for (i, ns) in e.iter().enumerate() {
        let sock = wd.path(&format!("ne{i}.sock"));
        clis.push(
            NicEmu {
                backend: "vxlan,group=239.1.1.1,vni=42,local=ve".into(),
                mac: macs[i],
                record: None,
                netns: Some(ns),
            }
            .start(&wd, &format!("nic-emu{i}"), &sock),
        );
        let s = sock.display().to_string();
        let cidr = format!("{}/24", ips[i]);
        guests.push(Guest::boot(
            &rig,
            &wd,
            &format!("guest{i}"),
            &[
                "--nic",
                "vfio-user",
                "--socket",
                &s,
                "--guest-ip",
                &cidr,
                "--mem",
                "128",
            ],
            &cmd(i),
        ));
    }
    // QEMU's own e1000 on the tap in Linux's bridge (QEMU runs in Linux's namespace).
    let device = format!("e1000,netdev=n0,mac={},romfile=", macs[2]);
    let cidr = format!("{}/24", ips[2]);
    guests.push(Guest::boot(
        &rig,
        &wd,
        "guest-qemu-e1000",
        &[
            "--nic",
            "none",
            "--mods",
            "e1000",
            "--netns",
            &l.name,
            "--guest-ip",
            &cidr,
            "--mem",
            "128",
            "--qemu-arg",
            "-netdev",
            "--qemu-arg",
            "tap,id=n0,ifname=ne-qt0,script=no,downscript=no",
            "--qemu-arg",
            "-device",
            "--qemu-arg",
            &device,
        ],
        &cmd(2),
    ));
    let runs: Vec<GuestRun> = guests.into_iter().map(Guest::finish).collect();
    for (i, r) in runs.iter().enumerate() {
        r.assert_ok();
        r.assert_ping("PEER1", 3);
        r.assert_ping("PEER2", 3);
        let echos: u64 = r
            .value("IN_ECHOS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            echos >= 6,
            "{}: only {echos} echo requests from its 2 peers",
            r.name
        );
        if i < 2 {
            r.assert_e1000_healthy(macs[i]);
        } else {
            r.assert_no_e1000_errors();
        }
    }
    // Linux learned each nic-emu guest behind its VTEP.
    let fdb = run_ok(&mut l.cmd("bridge", &["fdb", "show", "dev", "vx0"]));
    for (i, mac) in macs[..2].iter().enumerate() {
        let want = format!("{mac} dst 10.233.98.{}", i + 2);
        assert!(
            fdb.contains(&want),
            "Linux's vx0 did not learn {want}:\n{fdb}"
        );
    }
    for c in &mut clis {
        stop_cli(c);
        let log = c.log_text();
        let (flooded, learned) = (
            summary_count(&log, "flooded"),
            summary_count(&log, "to learned VTEPs"),
        );
        assert!(flooded > 0, "{}: nothing flooded", c.name);
        assert!(learned > 0, "{}: no unicast to a learned VTEP", c.name);
        assert_eq!(summary_count(&log, "other VNI"), 0);
        eprintln!(
            "e2e: {T}: {}: {flooded} frames flooded, {learned} sent to learned VTEPs, {} MACs learned",
            c.name,
            summary_count(&log, "MACs learned")
        );
    }
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
