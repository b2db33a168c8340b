//! End-to-end tests of the control plane (issue 14) with real QEMU guests: the cable
//! pulled and plugged back in one boot, a recording started and stopped at run time,
//! the Prometheus counters read by a real parser against what the guest counted, and
//! QEMU attaching through a socket that systemd-socket-activate handed over.
//!
//! Addresses 10.233.14x.0/24. Needs root and the rig of scripts/provision.sh (skips
//! with `SKIP:` otherwise, fails under `NIC_EMU_NO_SKIP=1`). The Prometheus test needs
//! Python's `prometheus_client` and the activation test `systemd-socket-activate`
//! (scripts/provision.sh installs both; scripts/test.sh runs it as root).
//!
//! Run: `cargo test --test e2e_faults control:: -- --nocapture` (as root, after provisioning).

use crate::support;
use crate::support::e2e;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::*;
use support::can_run;

/// `nic-emu-cli ctl --control CTL args...`, which must succeed; its output.
fn ctl(ctl_sock: &Path, args: &[&str]) -> String {
    let mut c = Command::new(cli());
    c.arg("ctl").arg("--control").arg(ctl_sock).args(args);
    run_ok(&mut c)
}

/// Throw garbage at the control socket: junk lines, an over-long line, a half line
/// left hanging, a client closing mid-request, then check a good request still works.
fn hammer_control(ctl_sock: &Path) {
    for _ in 0..20 {
        let mut s = UnixStream::connect(ctl_sock).expect("connect control");
        let _ = s.write_all(
            b"garbage\n\xff\xfe\n{\"execute\":\"link\",\"arguments\":{\"up\":\"maybe\"}}\n{\"exec",
        );
        drop(s);
    }
    let mut big = UnixStream::connect(ctl_sock).expect("connect control");
    let _ = big.write_all(&vec![b'{'; 200_000]);
    let half = UnixStream::connect(ctl_sock).expect("connect control");
    let _ = (&half).write_all(b"{\"execute\":\"link\",\"argum");
    // The server may not have noticed all 20 hung-up clients yet; it then refuses a
    // new one as "too many control clients ... try again later", and the client
    // does as told.
    let end = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let out = run(Command::new(cli())
            .arg("ctl")
            .arg("--control")
            .arg(ctl_sock)
            .arg("info"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            break text;
        }
        assert!(
            text.contains("too many control clients") && Instant::now() < end,
            "ctl info after garbage failed ({}): {text}",
            out.status
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        info.contains("link_up: true"),
        "control after garbage:\n{info}"
    );
    drop(half);
}

/// The cable is pulled with `ctl link down` while the guest runs: its carrier goes to 0
/// and its ping fails; `ctl link up` brings both back, in the same boot. Meanwhile the
/// control socket is fed garbage while the host pings the guest: traffic goes on.
#[test]
fn e2e_control_link_down_and_up_in_one_boot() {
    const T: &str = "e2e_control_link_down_and_up_in_one_boot";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("ctl-link");
    let mut ns = Netns::new("ctllink");
    ns.add_tap("ne-ctl0", "10.233.141.1/24");
    let sock = wd.path("ne.sock");
    let ctl_sock = wd.path("ne.ctl");
    let mac = "52:54:00:e2:14:01";
    let ctl_s = ctl_sock.display().to_string();
    let mut nic = NicEmu {
        backend: "tap,ifname=ne-ctl0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(&wd, "nic-emu", &sock, &["--control", &ctl_s]);

    let host = "10.233.141.1";
    let carrier = "$(cat /sys/class/net/eth0/carrier)";
    let script = format!(
        "{up1}echo WAIT-DOWN\n\
         i=0; while [ \"{carrier}\" != 0 ] && [ $i -lt 90 ]; do sleep 1; i=$((i+1)); done\n\
         echo CARRIER_DOWN={carrier}\n\
         echo BEGIN-DOWN; ping -c 2 -W 1 {host}; echo END-DOWN rc=$?\n\
         echo DOWN-DONE\n\
         i=0; while [ \"{carrier}\" != 1 ] && [ $i -lt 90 ]; do sleep 1; i=$((i+1)); done\n\
         echo CARRIER_UP={carrier}\n\
         {up2}{report}",
        up1 = guest_ping("UP1", host, 3),
        up2 = guest_ping("UP2", host, 3),
        report = guest_report(),
    );
    let sock_s = sock.display().to_string();
    let mut g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            "10.233.141.2/24",
        ],
        &script,
    );
    g.wait_console("WAIT-DOWN", READY);

    // Garbage on the control socket while the host pings the guest.
    let hammer = {
        let p = ctl_sock.clone();
        std::thread::spawn(move || hammer_control(&p))
    };
    let bb = rig.busybox();
    let ping = run(&mut ns.cmd(&bb, &["ping", "-c", "3", "-W", "2", "10.233.141.2"]));
    let ping_out = String::from_utf8_lossy(&ping.stdout).into_owned();
    hammer.join().expect("garbage thread");
    assert_host_ping("guest", &ping_out);

    let down = ctl(&ctl_sock, &["link", "down"]);
    assert!(down.contains("link_up: false"), "{down}");
    g.wait_console("DOWN-DONE", Duration::from_secs(120));
    let up = ctl(&ctl_sock, &["link", "up"]);
    assert!(up.contains("link_up: true"), "{up}");
    let run = g.finish();
    run.assert_ok();
    run.assert_ping("UP1", 3);
    assert_eq!(
        run.value("CARRIER_DOWN").as_deref(),
        Some("0"),
        "carrier after link down"
    );
    let down_ping = run.section("DOWN");
    assert!(
        !down_ping.contains(" 2 packets received") && !down_ping.contains(" 1 packets received"),
        "ping with the cable pulled got answers:\n{down_ping}"
    );
    assert!(
        !run.console.contains("END-DOWN rc=0"),
        "ping with the cable pulled succeeded"
    );
    assert_eq!(
        run.value("CARRIER_UP").as_deref(),
        Some("1"),
        "carrier after link up"
    );
    run.assert_ping("UP2", 3);
    let dmesg = run.dmesg();
    assert!(
        dmesg.contains("NIC Link is Down"),
        "no LSC seen by the driver:\n{dmesg}"
    );
    run.assert_no_e1000_errors();
    assert_cli_alive(&mut nic);
    eprintln!("e2e: {T}: passed in {:.1}s", t0.elapsed().as_secs_f64());
}

/// Lines of `tcpdump -r FILE -n` (tcpdump must succeed).
fn tcpdump(file: &Path) -> Vec<String> {
    let out = run_ok(Command::new("tcpdump").arg("-r").arg(file).arg("-n"));
    out.lines().map(str::to_string).collect()
}

/// Parse the Prometheus text of `url` (fetched inside `ns`) with prometheus_client's
/// parser: sample name (with labels) -> value.
fn prometheus_samples(ns: &Netns, url: &str) -> BTreeMap<String, f64> {
    let py = "import sys, urllib.request\n\
              from prometheus_client.parser import text_string_to_metric_families\n\
              body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()\n\
              for fam in text_string_to_metric_families(body):\n\
              \x20   for s in fam.samples:\n\
              \x20       labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))\n\
              \x20       print('%s{%s} %r' % (s.name, labels, s.value))\n";
    let out = run_ok(&mut ns.cmd("python3", &["-c", py, url]));
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// A recording started and stopped with `ctl record` holds exactly the frames between
/// the two: the host pings the guest 2 times before, 5 times during and 2 times after,
/// and tcpdump finds exactly the 5 requests and 5 replies. Then the guest takes eth0
/// down and reports its counters, and the Prometheus endpoint, parsed by
/// prometheus_client, shows the same frame counts.
///
/// nic-emu-cli starts as root (it creates the tap) and is told `--user nobody --group
/// nogroup`: with the guest attached, every one of its threads shows seccomp filtering,
/// no_new_privs, no capability and that user in /proc; the recording is a file the
/// `ctl` client opened and passed over the control socket.
#[test]
fn e2e_control_record_window_and_prometheus_counts() {
    const T: &str = "e2e_control_record_window_and_prometheus_counts";
    let Some(rig) = Rig::get(T, true) else { return };
    let py_ok = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_run(
        T,
        py_ok,
        "needs python3 with prometheus_client (pip install prometheus_client)",
    ) {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("ctl-rec");
    let mut ns = Netns::new("ctlrec");
    ns.add_tap("ne-ctl1", "10.233.142.1/24");
    let _ = run(&mut ns.cmd("sysctl", &["-qw", "net.ipv6.conf.ne-ctl1.disable_ipv6=1"]));
    let sock = wd.path("ne.sock");
    let ctl_sock = wd.path("ne.ctl");
    let pcap = wd.path("window.pcap");
    let mac = "52:54:00:e2:14:02";
    let ctl_s = ctl_sock.display().to_string();
    let mut nic = NicEmu {
        backend: "tap,ifname=ne-ctl1".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(
        &wd,
        "nic-emu",
        &sock,
        &[
            "--control",
            &ctl_s,
            "--metrics-listen",
            "127.0.0.1:9914",
            "--user",
            "nobody",
            "--group",
            "nogroup",
        ],
    );

    let script = format!(
        "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null\n\
         {ping}echo PRE-DONE\n\
         timeout 90 nc -l -p 7777 </dev/null >/dev/null; echo RELEASED=$?\n\
         ip link set eth0 down\n\
         echo RX_PACKETS=$(cat /sys/class/net/eth0/statistics/rx_packets)\n\
         echo TX_PACKETS=$(cat /sys/class/net/eth0/statistics/tx_packets)\n",
        ping = guest_ping("G2H", "10.233.142.1", 2),
    );
    let sock_s = sock.display().to_string();
    let mut g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            "10.233.142.2/24",
        ],
        &script,
    );
    g.wait_console("PRE-DONE", READY);
    let info = ctl(&ctl_sock, &["info"]);
    assert!(info.contains("client_connected: true"), "{info}");
    let nobody = nic_emu::sandbox::user::resolve(Some("nobody"), Some("nogroup"))
        .expect("nobody and nogroup")
        .expect("an identity");
    assert_sandboxed(nic.pid(), nobody.uid.expect("a uid"), nobody.gid);
    let bb = rig.busybox();
    let ping = |n: &str| {
        let out = run(&mut ns.cmd(&bb, &["ping", "-c", n, "-W", "2", "10.233.142.2"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = ping("2");
    let started = ctl(&ctl_sock, &["record", "start", &pcap.display().to_string()]);
    assert!(started.contains("recording: true"), "{started}");
    let during = ping("5");
    let stopped = ctl(&ctl_sock, &["record", "stop"]);
    assert!(stopped.contains("recording: false"), "{stopped}");
    let after = ping("2");
    for (what, out, n) in [
        ("before", &before, 2),
        ("during", &during, 5),
        ("after", &after, 2),
    ] {
        assert!(
            out.contains(&format!("{n} packets transmitted, {n} packets received")),
            "host ping {what}:\n{out}"
        );
    }
    release_guest(&rig, &ns, "10.233.142.2");
    let run_g = g.finish();
    run_g.assert_ok();
    run_g.assert_ping("G2H", 2);

    let lines = tcpdump(&pcap);
    let requests: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ICMP echo request"))
        .collect();
    let replies: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ICMP echo reply"))
        .collect();
    let others: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains("ICMP echo") && !l.contains("ARP"))
        .collect();
    let all = lines.join("\n");
    assert_eq!(requests.len(), 5, "echo requests in the window:\n{all}");
    assert_eq!(replies.len(), 5, "echo replies in the window:\n{all}");
    for seq in 0..5 {
        let tag = format!("seq {seq},");
        assert_eq!(
            requests.iter().filter(|l| l.contains(&tag)).count(),
            1,
            "request {tag} once:\n{all}"
        );
    }
    assert!(
        others.is_empty(),
        "frames other than the pings and ARP:\n{all}"
    );

    let rx: f64 = run_g
        .value("RX_PACKETS")
        .and_then(|v| v.parse().ok())
        .expect("RX_PACKETS");
    let tx: f64 = run_g
        .value("TX_PACKETS")
        .and_then(|v| v.parse().ok())
        .expect("TX_PACKETS");
    let samples = prometheus_samples(&ns, "http://127.0.0.1:9914/metrics");
    assert_eq!(
        samples.get("nic_emu_rx_frames_total{}"),
        Some(&rx),
        "rx frames: {samples:?}"
    );
    assert_eq!(
        samples.get("nic_emu_tx_frames_total{}"),
        Some(&tx),
        "tx frames: {samples:?}"
    );
    assert_eq!(samples.get("nic_emu_clients_served_total{}"), Some(&1.0));
    assert!(
        samples.contains_key("nic_emu_stats_register{register=GPRC}"),
        "{samples:?}"
    );
    assert_cli_alive(&mut nic);
    eprintln!(
        "e2e: {T}: passed in {:.1}s (guest rx {rx} tx {tx}, {} frames recorded)",
        t0.elapsed().as_secs_f64(),
        lines.len()
    );
}

/// systemd-socket-activate listens on the vfio-user socket and starts nic-emu-cli on the
/// first connection with the socket at fd 3 (LISTEN_FDS=1): QEMU attaches through the
/// inherited socket, pings go both ways, and nic-emu leaves the socket file alone.
#[test]
fn e2e_control_socket_activation() {
    const T: &str = "e2e_control_socket_activation";
    let Some(rig) = Rig::get(T, true) else { return };
    let ssa = Path::new("/usr/bin/systemd-socket-activate");
    if !can_run(
        T,
        ssa.exists(),
        "needs systemd-socket-activate (Debian's systemd)",
    ) {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("ctl-act");
    let mut ns = Netns::new("ctlact");
    ns.add_tap("ne-ctl2", "10.233.143.1/24");
    let sock = wd.path("act.sock");
    let ctl_sock = wd.path("act.ctl");
    let mac = "52:54:00:e2:14:03";
    let sock_s = sock.display().to_string();
    let ctl_s = ctl_sock.display().to_string();
    let cli_s = cli().display().to_string();
    let mut cmd = ns.cmd(
        ssa,
        &[
            "-l",
            &sock_s,
            &cli_s,
            "--backend",
            "tap,ifname=ne-ctl2",
            "--mac",
            mac,
            "--control",
            &ctl_s,
        ],
    );
    cmd.current_dir(&wd.0);
    let mut act = Proc::spawn("socket-activate", cmd, &wd.path("activate.log"));
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no socket:\n{}",
            act.log_tail(20)
        );
        assert!(act.try_wait().is_none(), "exited:\n{}", act.log_tail(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run_g, host_ping) = setup.round("guest", "10.233.143.1", "10.233.143.2/24", DEFAULT_ROUND);
    run_g.assert_ok();
    run_g.assert_e1000_healthy(mac);
    run_g.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    let info = ctl(&ctl_sock, &["info"]);
    assert!(info.contains("clients_served: 1"), "{info}");
    let log = act.log_text();
    assert!(
        log.contains("(inherited socket)"),
        "nic-emu did not use fd 3:\n{log}"
    );
    act.stop(Duration::from_secs(10));
    assert!(
        sock.exists(),
        "nic-emu removed a socket file it did not create"
    );
    assert!(!ctl_sock.exists(), "the control socket was not removed");
    eprintln!("e2e: {T}: passed in {:.1}s", t0.elapsed().as_secs_f64());
}
