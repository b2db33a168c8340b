//! End-to-end tests with real QEMU guests running the unmodified Linux e1000 driver on
//! nic-emu-cli over vfio-user.
//!
//! Needs the rig of scripts/provision.sh (QEMU with vfio-user-pci, guest kernel and
//! busybox initramfs under /var/cache/nic-emu). Scenarios that make network namespaces
//! and taps need root; all of them skip (`SKIP: ...`) when they cannot run, and fail
//! instead under `NIC_EMU_NO_SKIP=1` (CI).
//!
//! The machine has two CPUs and each TCG guest wants one, so the scenarios take a global
//! lock and run one at a time (a scenario may run two guests together). Each scenario
//! uses its own namespace, socket, addresses (10.233.1x.0/24) and UDP ports. Set
//! `NIC_EMU_E2E_KEEP=1` to keep the consoles and logs of passing runs too.
//!
//! Run: `cargo test --test e2e_qemu -- --nocapture` (as root, after provisioning).

mod common;
mod e2e;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// Longest wait for a guest to print RIG-READY (boot + driver probe + carrier, TCG).
const READY: Duration = Duration::from_secs(90);

/// Host side of a tap scenario after the guest is up: ping the guest from the namespace,
/// then let the guest power off (it waits on `nc -l` so the host ping has a live peer).
fn host_pings_then_releases(rig: &Rig, ns: &Netns, guest_ip: &str, size: u32) -> String {
    let bb = rig.busybox();
    let size = size.to_string();
    let ping = run(&mut ns.cmd(&bb, &["ping", "-c", "3", "-W", "2", "-s", &size, guest_ip]));
    let ping_out = format!(
        "{}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
    release_guest(rig, ns, guest_ip);
    ping_out
}

/// Connect to the guest's `nc -l -p 7777` (retrying while it is not listening yet); the
/// guest then stops waiting.
fn release_guest(rig: &Rig, ns: &Netns, guest_ip: &str) {
    let bb = rig.busybox();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let out = run(&mut ns.cmd(&bb, &["nc", "-w", "2", guest_ip, "7777"]));
        if out.status.success() {
            return;
        }
        sleep(Duration::from_millis(300));
    }
    eprintln!("e2e: could not reach the guest's release port; it will time out");
}

/// Guest command for a tap scenario: run `pre`, print PRE-DONE (the host starts pinging
/// then), wait for the host's release in the background, ping the host with `size`-byte
/// payloads, wait, report.
fn tap_guest_cmd(host_ip: &str, pre: &str, size: u32) -> String {
    format!(
        "{pre}echo PRE-DONE\n\
         (timeout 40 nc -l -p 7777 </dev/null >/dev/null; echo RELEASED=$?) &\n\
         {}wait\n{}",
        guest_ping_sized("G2H", host_ip, 3, size),
        guest_report()
    )
}

/// What a tap round does besides the defaults.
#[derive(Clone, Copy)]
struct RoundOpts<'a> {
    /// Guest shell lines run before the pings.
    pre: &'a str,
    /// ICMP payload bytes of both pings.
    size: u32,
}

const DEFAULT_ROUND: RoundOpts<'static> = RoundOpts { pre: "", size: 56 };

/// A tap-backed nic-emu-cli's setting: rig, work dir, namespace, vfio-user socket.
struct TapSetup<'a> {
    rig: &'a Rig,
    wd: &'a Workdir,
    ns: &'a Netns,
    sock: &'a Path,
}

impl TapSetup<'_> {
    /// One guest on the socket: pings both ways. Returns the guest's run and the host's
    /// ping output.
    fn round(
        &self,
        name: &str,
        host_ip: &str,
        guest_cidr: &str,
        opts: RoundOpts,
    ) -> (GuestRun, String) {
        let guest_ip = guest_cidr.split('/').next().unwrap_or(guest_cidr);
        let sock_s = self.sock.display().to_string();
        let mut g = Guest::boot(
            self.rig,
            self.wd,
            name,
            &[
                "--nic",
                "vfio-user",
                "--socket",
                &sock_s,
                "--guest-ip",
                guest_cidr,
            ],
            &tap_guest_cmd(host_ip, opts.pre, opts.size),
        );
        g.wait_console("PRE-DONE", READY);
        let host_ping = host_pings_then_releases(self.rig, self.ns, guest_ip, opts.size);
        (g.finish(), host_ping)
    }
}

fn assert_host_ping(name: &str, out: &str) {
    assert!(
        out.contains("3 packets transmitted, 3 packets received"),
        "{name}: host -> guest ping:\n{out}"
    );
}

fn assert_cli_alive(cli: &mut Proc) {
    if let Some(st) = cli.try_wait() {
        panic!("{} exited ({st}):\n{}", cli.name, cli.log_tail(40));
    }
}

/// Stop nic-emu-cli with SIGTERM: it must exit 0 within 5 s.
fn stop_cli(cli: &mut Proc) {
    let st = cli.stop(Duration::from_secs(5));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}: SIGTERM did not end it cleanly ({st:?}):\n{}",
        cli.name,
        cli.log_tail(40)
    );
}

/// Scenarios 1 and 2: nic-emu-cli on a tap in a namespace; a guest pings the host 3/3
/// and the host pings the guest 3/3; the e1000 driver probed cleanly (MAC, link up,
/// carrier, no EEPROM/checksum/probe errors, no TX hang). The guest powers off and a
/// second QEMU connects to the same nic-emu-cli and does it all again.
#[test]
fn e2e_vfio_user_tap_ping_both_ways_then_second_qemu() {
    const T: &str = "e2e_vfio_user_tap_ping_both_ways_then_second_qemu";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("tap");
    let mut ns = Netns::new("tap");
    ns.add_tap("ne-tap0", "10.233.11.1/24");
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:11";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    assert_eq!(ns.sysfs("ne-tap0", "carrier"), "1", "tap has no reader");

    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    for round in 1..=2 {
        let name = format!("guest{round}");
        let (run, host_ping) = setup.round(&name, "10.233.11.1", "10.233.11.2/24", DEFAULT_ROUND);
        run.assert_ok();
        run.assert_e1000_healthy(mac);
        run.assert_ping("G2H", 3);
        assert_host_ping(&name, &host_ping);
        assert_eq!(
            run.value("RELEASED").as_deref(),
            Some("0"),
            "{name}: release"
        );
        assert_cli_alive(&mut cli);
        eprintln!(
            "e2e: {T}: {name} passed, guest wall {:.1}s",
            run.wall.as_secs_f64()
        );
    }
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 6: as scenario 1 with `--record`; the recording holds ICMP echo requests and
/// replies of both directions (read back with tcpdump).
#[test]
fn e2e_tap_record_pcap_has_icmp_both_ways() {
    const T: &str = "e2e_tap_record_pcap_has_icmp_both_ways";
    let Some(rig) = Rig::get(T, true) else { return };
    let have_tcpdump = run(Command::new("sh").args(["-c", "command -v tcpdump"]))
        .status
        .success();
    if !common::can_run(T, have_tcpdump, "needs tcpdump (apt-get install tcpdump)") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("record");
    let mut ns = Netns::new("record");
    ns.add_tap("ne-tap0", "10.233.16.1/24");
    let sock = wd.path("ne.sock");
    let pcap = wd.path("record.pcap");
    let mac = "52:54:00:e2:e0:16";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: Some(pcap.clone()),
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run, host_ping) = setup.round("guest", "10.233.16.1", "10.233.16.2/24", DEFAULT_ROUND);
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    stop_cli(&mut cli);

    let out = e2e::run(
        Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&pcap)
            .arg("icmp"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |from: &str, to: &str, what: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("{from} > {to}: ICMP echo {what}")))
            .count()
    };
    let (g, h) = ("10.233.16.2", "10.233.16.1");
    for (from, to, what) in [
        (g, h, "request"),
        (h, g, "reply"),
        (h, g, "request"),
        (g, h, "reply"),
    ] {
        assert!(
            count(from, to, what) >= 3,
            "recording lacks 3 ICMP echo {what}s {from} > {to}:\n{text}"
        );
    }
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Guest command for a two-guest scenario: ping the peer, then stay up until the peer's
/// pings have arrived too (at least 3 echo requests, or 30 s), report.
fn peer_guest_cmd(peer_ip: &str) -> String {
    format!(
        "{}echos() {{ awk '/^Icmp:/ {{ if (!c) {{ for (i = 2; i <= NF; i++) if ($i == \"InEchos\") c = i }} else print $c }}' /proc/net/snmp; }}\n\
         i=0; while [ \"$(echos)\" -lt 3 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done\n\
         sleep 1\necho IN_ECHOS=$(echos)\n{}",
        guest_ping("PEER", peer_ip, 3),
        guest_report()
    )
}

/// The guest answered at least 3 echo requests (its peer's pings).
fn assert_got_echos(r: &GuestRun) {
    let n: u64 = r
        .value("IN_ECHOS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        n >= 3,
        "{}: only {n} echo requests arrived from the peer",
        r.name
    );
}

/// Scenario 3: two guests, each with its own nic-emu-cli, joined by the UDP backend on
/// 127.0.0.1, ping each other (no tap).
#[test]
fn e2e_udp_two_nic_emu_guests_ping_each_other() {
    const T: &str = "e2e_udp_two_nic_emu_guests_ping_each_other";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("udp2");
    let ports = free_udp_ports(2);
    let (pa, pb) = (ports[0], ports[1]);
    let (mac_a, mac_b) = ("52:54:00:e2:e0:a3", "52:54:00:e2:e0:b3");
    let (sock_a, sock_b) = (wd.path("a.sock"), wd.path("b.sock"));
    let mut cli_a = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        mac: mac_a,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu-a", &sock_a);
    let mut cli_b = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pb},remote=127.0.0.1:{pa}"),
        mac: mac_b,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu-b", &sock_b);
    let (ip_a, ip_b) = ("10.233.13.2", "10.233.13.3");
    let sa = sock_a.display().to_string();
    let sb = sock_b.display().to_string();
    let ga = Guest::boot(
        &rig,
        &wd,
        "guest-a",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sa,
            "--guest-ip",
            "10.233.13.2/24",
        ],
        &peer_guest_cmd(ip_b),
    );
    let gb = Guest::boot(
        &rig,
        &wd,
        "guest-b",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sb,
            "--guest-ip",
            "10.233.13.3/24",
        ],
        &peer_guest_cmd(ip_a),
    );
    let (ra, rb) = (ga.finish(), gb.finish());
    for (r, mac) in [(&ra, mac_a), (&rb, mac_b)] {
        r.assert_ok();
        r.assert_e1000_healthy(mac);
        r.assert_ping("PEER", 3);
        assert_got_echos(r);
    }
    assert_cli_alive(&mut cli_a);
    assert_cli_alive(&mut cli_b);
    stop_cli(&mut cli_a);
    stop_cli(&mut cli_b);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 4: a nic-emu guest (UDP backend) and a guest on QEMU's own e1000 with
/// `-netdev dgram` share one UDP "wire" and ping each other.
#[test]
fn e2e_udp_nic_emu_guest_pings_qemu_e1000_guest() {
    const T: &str = "e2e_udp_nic_emu_guest_pings_qemu_e1000_guest";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("dgram");
    let ports = free_udp_ports(2);
    let (pa, pb) = (ports[0], ports[1]);
    let mac = "52:54:00:e2:e0:14";
    let sock = wd.path("ne.sock");
    let mut cli = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let (ip_a, ip_b) = ("10.233.14.2", "10.233.14.3");
    let s = sock.display().to_string();
    let (local_b, remote_b) = (format!("127.0.0.1:{pb}"), format!("127.0.0.1:{pa}"));
    let ga = Guest::boot(
        &rig,
        &wd,
        "guest-nic-emu",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.14.2/24",
        ],
        &peer_guest_cmd(ip_b),
    );
    let gb = Guest::boot(
        &rig,
        &wd,
        "guest-qemu-e1000",
        &[
            "--nic",
            "dgram-e1000",
            "--dgram-local",
            &local_b,
            "--dgram-remote",
            &remote_b,
            "--guest-ip",
            "10.233.14.3/24",
        ],
        &peer_guest_cmd(ip_a),
    );
    let (ra, rb) = (ga.finish(), gb.finish());
    ra.assert_ok();
    ra.assert_e1000_healthy(mac);
    ra.assert_ping("PEER", 3);
    rb.assert_ok();
    rb.assert_no_e1000_errors();
    rb.assert_ping("PEER", 3);
    assert_got_echos(&ra);
    assert_got_echos(&rb);
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Number of UDP datagrams in the replayed capture.
const REPLAY_N: usize = 200;

/// Scenario 5: nic-emu-cli replays a capture of `REPLAY_N` UDP datagrams (60 to 1514
/// byte frames) addressed to the guest, as fast as the guest takes them; the guest's
/// driver and IP stack receive every one (eth0 rx_packets, /proc/net/snmp Udp counters,
/// no checksum errors).
#[test]
fn e2e_pcap_replay_guest_receives_every_datagram() {
    const T: &str = "e2e_pcap_replay_guest_receives_every_datagram";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("replay");
    let mac = "52:54:00:e2:e0:15";
    let frames: Vec<Vec<u8>> = (0..REPLAY_N)
        .map(|i| {
            let payload_len = if i % 10 == 9 {
                1472
            } else {
                18 + (i * 37) % 1455
            };
            let payload: Vec<u8> = (0..payload_len).map(|k| (k + i) as u8).collect();
            let b = etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 0x99], parse_mac(mac))
                .ipv4([10, 233, 15, 1], [10, 233, 15, 2], 64)
                .udp(40000, 9);
            let mut f = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut f, &payload).expect("build frame");
            f
        })
        .collect();
    assert_eq!(frames.iter().map(Vec::len).max(), Some(1514));
    let pcap = wd.path("in.pcap");
    write_pcap(&pcap, &frames);
    let sock = wd.path("ne.sock");
    let mut cli = NicEmu {
        backend: format!("pcap,replay={},timing=fast", pcap.display()),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "i=0; while [ $(cat /sys/class/net/eth0/statistics/rx_packets) -lt {REPLAY_N} ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done\n\
         sleep 1\n\
         echo BEGIN-SNMP; cat /proc/net/snmp; echo END-SNMP\n{}",
        guest_report()
    );
    let g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.15.2/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
    let rx: usize = r
        .value("RX_PACKETS")
        .and_then(|v| v.parse().ok())
        .expect("RX_PACKETS");
    assert_eq!(rx, REPLAY_N, "eth0 rx_packets");
    let udp = snmp_udp(&r.section("SNMP"));
    let get = |k: &str| udp.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    assert_eq!(
        get("InDatagrams") + get("NoPorts"),
        REPLAY_N as u64,
        "UDP datagrams delivered to the stack: {udp:?}"
    );
    assert_eq!(get("InErrors"), 0, "{udp:?}");
    assert_eq!(get("InCsumErrors"), 0, "{udp:?}");
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// The `Udp:` counters of /proc/net/snmp as (name, value).
fn snmp_udp(snmp: &str) -> Vec<(String, u64)> {
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (Some(names), Some(values)) = (lines.first(), lines.get(1)) else {
        panic!("no Udp lines in /proc/net/snmp:\n{snmp}");
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(u64::MAX)))
        .collect()
}

/// Bytes moved each way in the TCP scenario.
const BULK_BYTES: usize = 16 << 20;

/// `n` pseudo-random bytes (xorshift64), so compression or a zero page hides nothing.
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// md5 of a file, computed by the guest's busybox on the host.
fn md5_file(rig: &Rig, path: &Path) -> String {
    let out = run_ok(Command::new(rig.busybox()).arg("md5sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Seconds between two `/proc/uptime` values the guest printed.
fn guest_secs(r: &GuestRun, from: &str, to: &str) -> f64 {
    let v = |k: &str| {
        r.value(k)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    v(to) - v(from)
}

/// Scenario 7: bulk TCP both ways over the tap, checked end to end: the guest downloads
/// 16 MiB of random data from busybox httpd in the namespace and uploads 16 MiB of its own
/// to `nc -l`; the md5 sums match on both sides (TSO, checksum offload, multi-descriptor
/// frames and RX of a long stream at once), without a TX hang.
#[test]
fn e2e_tap_tcp_bulk_both_ways_md5() {
    const T: &str = "e2e_tap_tcp_bulk_both_ways_md5";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("bulk");
    let mut ns = Netns::new("bulk");
    ns.add_tap("ne-tap0", "10.233.17.1/24");
    let www = wd.path("www");
    std::fs::create_dir_all(&www).expect("www dir");
    let blob = www.join("blob");
    std::fs::write(&blob, random_bytes(BULK_BYTES, 0x9E37_79B9_7F4A_7C15)).expect("blob");
    let down_md5 = md5_file(&rig, &blob);
    let bb = rig.busybox();
    let www_s = www.display().to_string();
    let _httpd = Proc::spawn(
        "httpd",
        ns.cmd(
            &bb,
            &["httpd", "-f", "-p", "10.233.17.1:8080", "-h", &www_s],
        ),
        &wd.path("httpd.log"),
    );
    let upload = wd.path("upload");
    let mut nc = Proc::spawn_open_stdin(
        "nc-listen",
        ns.cmd(&bb, &["nc", "-l", "-p", "9000"]),
        &upload,
        &wd.path("nc.log"),
    );
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:17";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "up() {{ cut -d' ' -f1 /proc/uptime; }}\n\
         echo DOWN_T0=$(up)\n\
         wget -q -O /tmp/down http://10.233.17.1:8080/blob; echo WGET_RC=$?\n\
         echo DOWN_T1=$(up)\n\
         echo DOWN_MD5=$(md5sum /tmp/down | cut -d' ' -f1)\n\
         dd if=/dev/urandom of=/tmp/up bs=64k count={} 2>/dev/null\n\
         echo UP_MD5=$(md5sum /tmp/up | cut -d' ' -f1)\n\
         echo UP_T0=$(up)\n\
         nc 10.233.17.1 9000 </tmp/up; echo NC_RC=$?\n\
         echo UP_T1=$(up)\n{}",
        BULK_BYTES / 65536,
        guest_report()
    );
    let g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.17.2/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
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
    let up_len = std::fs::metadata(&upload).map_or(0, |m| m.len());
    assert_eq!(up_len, BULK_BYTES as u64, "upload length");
    assert_eq!(
        r.value("UP_MD5"),
        Some(md5_file(&rig, &upload)),
        "uploaded data differs"
    );
    let mib = BULK_BYTES as f64 / f64::from(1 << 20);
    eprintln!(
        "e2e: {T}: download {:.2} MiB/s, upload {:.2} MiB/s (TCG guest)",
        mib / guest_secs(&r, "DOWN_T0", "DOWN_T1"),
        mib / guest_secs(&r, "UP_T0", "UP_T1")
    );
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 8: jumbo frames. The tap and the guest's eth0 go to MTU 9000 (the driver
/// re-initialises the card: multi-buffer receive with LPE) and 8000-byte pings pass
/// both ways, unfragmented.
#[test]
fn e2e_tap_jumbo_mtu_9000_ping_both_ways() {
    const T: &str = "e2e_tap_jumbo_mtu_9000_ping_both_ways";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("jumbo");
    let mut ns = Netns::new("jumbo");
    ns.add_tap("ne-tap0", "10.233.18.1/24");
    ns.set_mtu("ne-tap0", 9000);
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:18";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    let pre = "ip link set eth0 mtu 9000; echo MTU_RC=$?\n\
               i=0; while [ \"$(cat /sys/class/net/eth0/carrier)\" != 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
               echo MTU=$(cat /sys/class/net/eth0/mtu)\n";
    let opts = RoundOpts { pre, size: 8000 };
    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run, host_ping) = setup.round("guest", "10.233.18.1", "10.233.18.2/24", opts);
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    assert_eq!(run.value("MTU").as_deref(), Some("9000"), "guest MTU");
    run.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    assert!(
        host_ping.contains("8008 bytes from"),
        "host ping replies are not 8000-byte payloads:\n{host_ping}"
    );
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
