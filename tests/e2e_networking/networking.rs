//! End-to-end networking without a tap: real QEMU guests (TCG) on nic-emu-cli with the
//! backends of issue 13. (a) passt behind the `stream` backend: DHCP and an HTTP
//! download, nic-emu-cli running as `nobody`; (b) a UDP multicast segment shared by
//! nic-emu guests and a guest on QEMU's own e1000 (`-netdev dgram`); (c) a capture of
//! real traffic between two namespaces, replayed with `rewrite_dst=guest`: the guest
//! receives every frame and the report matches the device's counters; (d) `impair`:
//! 10% loss over 5000 frames, and a delay that shows in ping.
//!
//! Root (namespaces, setpriv) and the provisioned rig, or `SKIP:`. Every address is in
//! namespaces the test creates and deletes; the host's interfaces are never touched.
//!
//! Run: `cargo test --test e2e_networking networking:: -- --nocapture` (as root, after provisioning).

use crate::support;
use crate::support::e2e;

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// The passt wrapper scripts/setup-qemu.sh writes.
fn passt(rig: &Rig) -> PathBuf {
    rig.cache.join("bin/passt")
}

/// A directory anyone may create files in (passt and nic-emu-cli run as `nobody`).
fn open_dir(wd: &Workdir, name: &str) -> PathBuf {
    let d = wd.path(name);
    std::fs::create_dir_all(&d).expect("socket dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    d
}

/// nic-emu-cli run as `nobody` (setpriv), optionally in a namespace.
fn cli_as_nobody(wd: &Workdir, name: &str, args: &[&str]) -> Proc {
    // The test binary's build directory may not be reachable by nobody: run a copy.
    let bin = wd.path("nic-emu-cli");
    if !bin.exists() {
        std::fs::copy(cli(), &bin).expect("copy nic-emu-cli");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(&bin)
    .args(args)
    .current_dir(&wd.0)
    .env("RUST_BACKTRACE", "1");
    Proc::spawn(name, c, &wd.path(&format!("{name}.log")))
}

/// Wait until `path` exists (a socket a child creates).
fn wait_for_path(p: &mut Proc, path: &Path) {
    let t0 = Instant::now();
    while !path.exists() {
        if let Some(st) = p.try_wait() {
            panic!("{} exited ({st}):\n{}", p.name, p.log_tail(30));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{}: no {} after 20 s:\n{}",
            p.name,
            path.display(),
            p.log_tail(30)
        );
        sleep(Duration::from_millis(50));
    }
}

/// Stop nic-emu-cli (SIGTERM) and return its log: the report and the counters.
fn stop_and_log(p: &mut Proc) -> String {
    stop_cli(p);
    p.log_text()
}

/// The number before `what` in `text` (`"12 frames offered"` -> 12 for "frames offered").
fn count_before(text: &str, what: &str) -> u64 {
    let at = text
        .rfind(what)
        .unwrap_or_else(|| panic!("no {what:?} in:\n{text}"));
    text[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in:\n{text}"))
}

/// The CLI's closing summary line.
fn summary(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.contains("nic-emu-cli: stopped after"))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", tail(log, 30)))
}

/// (a) A guest behind passt, with no tap and nic-emu-cli not root: it gets its address
/// by DHCP and downloads a file from an HTTP server in passt's namespace.
#[test]
fn e2e_passt_dhcp_and_http_without_root() {
    const T: &str = "e2e_passt_dhcp_and_http_without_root";
    let Some(rig) = Rig::get(T, true) else { return };
    if !support::can_run(
        T,
        passt(&rig).exists(),
        "no passt (run scripts/setup-qemu.sh)",
    ) {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("passt");
    std::fs::set_permissions(&wd.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ns = Netns::new("passt");
    // passt gives the guest the namespace's address and default route by DHCP; the
    // gateway stands for the namespace's loopback.
    // A veth pair inside the namespace: an interface with carrier for the route.
    run_ok(&mut ns.cmd(
        "ip",
        &[
            "link", "add", "ne-dum0", "type", "veth", "peer", "name", "ne-dum1",
        ],
    ));
    run_ok(&mut ns.cmd("ip", &["link", "set", "ne-dum1", "up"]));
    run_ok(&mut ns.cmd("ip", &["addr", "add", "10.233.50.1/24", "dev", "ne-dum0"]));
    run_ok(&mut ns.cmd("ip", &["link", "set", "ne-dum0", "up"]));
    run_ok(&mut ns.cmd("ip", &["route", "add", "default", "via", "10.233.50.254"]));
    let (_httpd, blob) = start_httpd(&rig, &wd, &ns, "127.0.0.1", 256 << 10);
    let want_md5 = md5_file(&rig, &blob);

    let socks = open_dir(&wd, "socks");
    let passt_sock = socks.join("passt.sock");
    let pcmd = ns.cmd(
        passt(&rig),
        &["-f", "-s", &passt_sock.display().to_string()],
    );
    let mut passt_proc = Proc::spawn("passt", pcmd, &wd.path("passt.log"));
    wait_for_path(&mut passt_proc, &passt_sock);
    // passt (started as root here) binds its socket before it drops to nobody, with
    // mode 0755: let the unprivileged nic-emu-cli connect.
    std::fs::set_permissions(&passt_sock, std::fs::Permissions::from_mode(0o777))
        .expect("chmod passt socket");

    let ne_sock = socks.join("ne.sock");
    let backend = format!("stream,connect=unix:{}", passt_sock.display());
    let mac = "52:54:00:e2:e0:50";
    let mut cli = cli_as_nobody(
        &wd,
        "nic-emu",
        &[
            "--backend",
            &backend,
            "--socket",
            &ne_sock.display().to_string(),
            "--mac",
            mac,
        ],
    );
    wait_for_path(&mut cli, &ne_sock);
    let status = std::fs::read_to_string(format!("/proc/{}/status", cli.pid())).expect("status");
    let nobody = run_ok(Command::new("id").args(["-u", "nobody"]));
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some(nobody.trim()),
        "nic-emu-cli runs as nobody: {uid}"
    );

    // The README's `udhcpc -i eth0`, with the guest's default script applying the lease
    // (-q: exit once bound; -n -t -T: give up after 10 tries instead of waiting forever).
    let cmd = format!(
        "ip addr flush dev eth0\n\
         udhcpc -i eth0 -f -q -n -t 10 -T 2; echo UDHCPC_RC=$?\n\
         echo DHCP_IP=$(ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\)\\/.*/\\1/p')\n\
         echo DHCP_ROUTER=$(ip route show default | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p')\n\
         wget -q -O /tmp/blob http://10.233.50.254:8080/blob; echo WGET_RC=$?\n\
         echo MD5=$(md5sum /tmp/blob | cut -d' ' -f1)\n{}",
        guest_report()
    );
    let s = ne_sock.display().to_string();
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
            "10.233.59.9/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
    assert_eq!(r.value("UDHCPC_RC").as_deref(), Some("0"), "udhcpc failed");
    assert_eq!(
        r.value("DHCP_IP").as_deref(),
        Some("10.233.50.1"),
        "DHCP address"
    );
    assert!(
        r.value("DHCP_ROUTER").is_some_and(|v| !v.is_empty()),
        "the default script set no default route"
    );
    assert_eq!(r.value("WGET_RC").as_deref(), Some("0"), "wget failed");
    assert_eq!(r.value("MD5"), Some(want_md5), "downloaded data differs");
    assert_cli_alive(&mut cli);
    let log = stop_and_log(&mut cli);
    assert!(log.contains("stream unix:"), "{}", tail(&log, 20));
    drop(passt_proc);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Add a multicast route over `lo` in `ns`, so a multicast segment stays in it.
fn multicast_on_lo(ns: &Netns) {
    run_ok(&mut ns.cmd("ip", &["link", "set", "lo", "multicast", "on"]));
    run_ok(&mut ns.cmd("ip", &["route", "add", "224.0.0.0/4", "dev", "lo"]));
}

/// (b) Three nic-emu guests and one guest on QEMU's own e1000 (`-netdev dgram` with a
/// multicast remote) on one UDP multicast group: each pings the three others. Four TCG
/// guests share two cores, so the guests have small RAM and the waits are generous.
#[test]
fn e2e_multicast_segment_nic_emu_and_qemu_guests_ping_each_other() {
    const T: &str = "e2e_multicast_segment_nic_emu_and_qemu_guests_ping_each_other";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("mcast");
    let ns = Netns::new("mcast");
    multicast_on_lo(&ns);
    let port = free_udp_ports(1)[0];
    let group = format!("239.255.42.1:{port}");
    const N: usize = 4;
    let ips = ["10.233.60.1", "10.233.60.2", "10.233.60.3", "10.233.60.4"];
    let macs = [
        "52:54:00:e2:e0:61",
        "52:54:00:e2:e0:62",
        "52:54:00:e2:e0:63",
        "52:54:00:e2:e0:64",
    ];
    let mut clis = Vec::new();
    let mut guests = Vec::new();
    let cmd = |me: usize| {
        // Four guests boot on two cores: wait up to a minute for each peer first.
        let wait: String = (0..N)
            .filter(|&j| j != me)
            .map(|j| {
                format!(
                    "i=0; until ping -c 1 -W 1 {} >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i+1)); done\n",
                    ips[j]
                )
            })
            .collect();
        let pings: String = (0..N)
            .filter(|&j| j != me)
            .enumerate()
            .map(|(k, j)| guest_ping(&format!("PEER{}", k + 1), ips[j], 3))
            .collect();
        let pings = wait + &pings;
        format!(
            "{pings}echos() {{ awk '/^Icmp:/ {{ if (!c) {{ for (i = 2; i <= NF; i++) if ($i == \"InEchos\") c = i }} else print $c }}' /proc/net/snmp; }}\n\
             i=0; while [ \"$(echos)\" -lt {want} ] && [ $i -lt 400 ]; do sleep 0.2; i=$((i+1)); done\n\
             sleep 2\necho IN_ECHOS=$(echos)\n{}",
            guest_report(),
            want = 3 * (N - 1)
        )
    };
    for i in 0..N - 1 {
        let sock = wd.path(&format!("ne{i}.sock"));
        let cli = NicEmu {
            backend: format!("udp,mcast={group},local=127.0.0.1"),
            mac: macs[i],
            record: None,
            netns: Some(&ns),
        }
        .start(&wd, &format!("nic-emu{i}"), &sock);
        clis.push(cli);
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
    // The QEMU e1000 guest: its own NIC on the same group (boot-guest.sh's dgram-e1000
    // takes a unicast pair; the multicast -netdev is given directly).
    let netdev = format!(
        "dgram,id=n0,remote.type=inet,remote.host=239.255.42.1,remote.port={port},local.type=inet,local.host=127.0.0.1,local.port={port}"
    );
    let device = format!("e1000,netdev=n0,mac={},romfile=", macs[N - 1]);
    let cidr = format!("{}/24", ips[N - 1]);
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
            &ns.name,
            "--guest-ip",
            &cidr,
            "--mem",
            "128",
            "--qemu-arg",
            "-netdev",
            "--qemu-arg",
            &netdev,
            "--qemu-arg",
            "-device",
            "--qemu-arg",
            &device,
        ],
        &cmd(N - 1),
    ));
    let runs: Vec<GuestRun> = guests.into_iter().map(Guest::finish).collect();
    for (i, r) in runs.iter().enumerate() {
        r.assert_ok();
        for k in 1..N {
            r.assert_ping(&format!("PEER{k}"), 3);
        }
        let echos: usize = r
            .value("IN_ECHOS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            echos >= 3 * (N - 1),
            "{}: only {echos} echo requests from its {} peers",
            r.name,
            N - 1
        );
        if i < N - 1 {
            r.assert_e1000_healthy(macs[i]);
        }
    }
    for c in &mut clis {
        let log = stop_and_log(c);
        assert!(
            summary(&log).contains("0 backend errors"),
            "{}",
            summary(&log)
        );
    }
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// (c) Real traffic between two namespaces (ping and an HTTP fetch over a veth pair),
/// captured with tcpdump on the veth, then replayed into a guest with `rewrite_dst=guest`: the guest receives every unicast and
/// broadcast frame, and the replay's report equals the device's counters.
#[test]
fn e2e_replay_of_a_real_capture_reaches_the_guest() {
    const T: &str = "e2e_replay_of_a_real_capture_reaches_the_guest";
    let Some(rig) = Rig::get(T, true) else { return };
    let tcpdump = Path::new("/usr/bin/tcpdump");
    if !support::can_run(T, tcpdump.exists(), "no tcpdump") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("replay");
    let a = Netns::new("cap-a");
    let b = Netns::new("cap-b");
    for ns in [&a, &b] {
        // IPv4 only: the capture is ARP, ICMP and TCP, nothing multicast.
        run_ok(&mut ns.cmd("sysctl", &["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]));
        run_ok(&mut ns.cmd(
            "sysctl",
            &["-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"],
        ));
    }
    run_ok(&mut a.cmd(
        "ip",
        &[
            "link", "add", "ne-va", "type", "veth", "peer", "name", "ne-vb", "netns", &b.name,
        ],
    ));
    run_ok(&mut a.cmd("ip", &["addr", "add", "10.233.70.1/24", "dev", "ne-va"]));
    run_ok(&mut b.cmd("ip", &["addr", "add", "10.233.70.2/24", "dev", "ne-vb"]));
    run_ok(&mut a.cmd("ip", &["link", "set", "ne-va", "up"]));
    run_ok(&mut b.cmd("ip", &["link", "set", "ne-vb", "up"]));
    // A small file: the veth's segmentation offloads would capture a larger response
    // as frames longer than any wire carries.
    let (httpd, _blob) = start_httpd(&rig, &wd, &b, "10.233.70.2", 1000);
    let cap = wd.path("real.pcap");
    let cap_s = cap.display().to_string();
    let mut dump = Proc::spawn(
        "tcpdump",
        a.cmd(
            tcpdump,
            &["-i", "ne-va", "-U", "--immediate-mode", "-n", "-w", &cap_s],
        ),
        &wd.path("tcpdump.log"),
    );
    // tcpdump says "listening on" once the capture runs.
    let t = Instant::now();
    while !dump.log_text().contains("listening on") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "tcpdump: {}",
            dump.log_tail(5)
        );
        sleep(Duration::from_millis(50));
    }
    let bb = rig.busybox();
    run_ok(&mut a.cmd(&bb, &["ping", "-c", "3", "-W", "2", "10.233.70.2"]));
    run_ok(&mut a.cmd(
        &bb,
        &[
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://10.233.70.2:8080/blob",
        ],
    ));
    sleep(Duration::from_millis(500));
    dump.stop(Duration::from_secs(5));
    drop(httpd);
    // Frames in the capture, by destination kind (all unicast or broadcast here).
    let bytes = std::fs::read(&cap).expect("capture");
    let frames = pcap_frames(&bytes);
    assert!(
        frames.len() >= 15,
        "capture has only {} frames",
        frames.len()
    );
    let multicast = frames
        .iter()
        .filter(|f| f[0] & 1 == 1 && f[..6] != [0xFF; 6])
        .count();
    assert_eq!(multicast, 0, "IPv6 was off: no multicast expected");
    let n = frames.len() as u64;

    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:70";
    let mut cli = NicEmu {
        backend: format!("pcap,replay={cap_s},timing=fast,rewrite_dst=guest"),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "rx() {{ cat /sys/class/net/eth0/statistics/rx_packets; }}\n\
         i=0; while [ \"$(rx)\" -lt {n} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n\
         sleep 1\n{}",
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
            "10.233.71.2/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
    let log = stop_and_log(&mut cli);
    let report = log
        .lines()
        .find(|l| l.contains("frames offered"))
        .unwrap_or_else(|| panic!("no replay report:\n{}", tail(&log, 30)));
    let guest_rx: u64 = r
        .value("RX_PACKETS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eprintln!("e2e: {T}: capture {n} frames; report: {report}; guest rx_packets {guest_rx}");
    assert_eq!(count_before(report, "frames offered"), n);
    assert_eq!(
        count_before(report, "accepted by"),
        n,
        "every frame accepted"
    );
    assert_eq!(guest_rx, n, "the guest counted every frame");
    // The report's numbers are the device's counters.
    let sum = summary(&log);
    let rx_part = &sum[sum.find(", rx ").expect("rx part")..];
    assert_eq!(
        count_before(rx_part, "frames /"),
        count_before(report, "accepted by")
    );
    assert_eq!(
        count_before(rx_part, "filtered,"),
        count_before(report, "filtered (")
    );
    assert_eq!(
        count_before(rx_part, "dropped,"),
        count_before(report, "oversize,") + count_before(report, "dropped")
    );
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// The frames of a classic pcap file (any byte order written by tcpdump here: native).
fn pcap_frames(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) as usize;
        let start = at + 16;
        let Some(f) = b.get(start..start + incl) else {
            break;
        };
        out.push(f.to_vec());
        at = start + incl;
    }
    out
}

/// (d) `impair`: 5000 frames toward the guest with 10% loss and a fixed seed: 8 to 12%
/// are lost and the guest receives exactly the rest; then a 20 ms delay each way shows
/// in the guest's ping times.
#[test]
fn e2e_impair_loss_and_delay() {
    const T: &str = "e2e_impair_loss_and_delay";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("impair");

    // Loss: the test is the UDP peer and sends 5000 broadcast frames.
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    let peer_addr = peer.local_addr().expect("addr");
    let port = free_udp_ports(1)[0];
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:80";
    let mut cli = NicEmu {
        backend: format!("udp,local=127.0.0.1:{port},remote={peer_addr},rx_loss=10,seed=13"),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "rx() {{ cat /sys/class/net/eth0/statistics/rx_packets; }}\n\
         r0=$(rx); echo RX0=$r0; echo SEND-NOW\n\
         last=-1; same=0; i=0\n\
         while [ $i -lt 900 ] && [ $same -lt 30 ]; do\n\
           now=$(rx); if [ \"$now\" = \"$last\" ] && [ \"$now\" -gt $((r0 + 4000)) ]; then same=$((same+1)); else same=0; fi\n\
           last=$now; sleep 0.1; i=$((i+1))\n\
         done\n\
         echo RX1=$(rx)\n{}",
        guest_report()
    );
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
            "10.233.80.2/24",
        ],
        &cmd,
    );
    g.wait_console("SEND-NOW", READY);
    let ne = format!("127.0.0.1:{port}");
    let frame = |i: u32| {
        let mut f = support::frame([0xFF; 6], support::PEER, 0x88B5, 46, 0);
        f[14..18].copy_from_slice(&i.to_be_bytes());
        f
    };
    // Paced (about 2000 frames/s) so that no socket buffer overflows on the way.
    for i in 0..5000u32 {
        peer.send_to(&frame(i), &ne).expect("send");
        if i % 50 == 49 {
            sleep(Duration::from_millis(25));
        }
    }
    let r = g.finish();
    r.assert_ok();
    let rx0: u64 = r.value("RX0").and_then(|v| v.parse().ok()).expect("RX0");
    let rx1: u64 = r.value("RX1").and_then(|v| v.parse().ok()).expect("RX1");
    let log = stop_and_log(&mut cli);
    let line = log
        .lines()
        .find(|l| l.contains("impair") && l.contains(": rx "))
        .unwrap_or_else(|| panic!("no impair counters:\n{}", tail(&log, 30)));
    let got = rx1 - rx0;
    let frames_in = count_before(line, "in,");
    let lost = count_before(line, "lost");
    eprintln!("e2e: {T}: {line}; guest received {got}");
    assert_eq!(frames_in, 5000, "every frame reached the wrapper: {line}");
    assert!((400..=600).contains(&lost), "lost {lost} of 5000: {line}");
    assert_eq!(
        got,
        5000 - lost,
        "the guest received exactly the frames not lost"
    );

    // Delay: a tap in a namespace, 20 ms added each way; the guest pings the host.
    let mut ns = Netns::new("delay");
    ns.add_tap("ne-tap0", "10.233.81.1/24");
    let sock = wd.path("ne2.sock");
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0,delay=20ms".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu-delay", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "{}{}",
        guest_ping("DELAY", "10.233.81.1", 5),
        guest_report()
    );
    let g = Guest::boot(
        &rig,
        &wd,
        "guest-delay",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.81.2/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_ping("DELAY", 5);
    let out = r.section("DELAY");
    let stats = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no ping summary:\n{out}"));
    let min: f64 = stats
        .split('=')
        .nth(1)
        .and_then(|v| v.trim().split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ping summary: {stats}"));
    eprintln!("e2e: {T}: with delay=20ms: {stats}");
    assert!(
        min >= 40.0,
        "20 ms each way: every RTT at least 40 ms, got {stats}"
    );
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
