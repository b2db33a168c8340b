//! End to end, the guest's side of things going wrong: QEMU SIGKILLed mid-transfer and
//! the next QEMU on the same socket finds a working card; nic-emu-cli started with
//! `--link-down`: the driver binds but sees no carrier and nothing passes.

use crate::support::e2e;

use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// QEMU is SIGKILLed in the middle of a download (DMA and interrupts in
/// flight). nic-emu-cli survives, and the next QEMU on the same socket finds a working
/// card: clean probe, pings both ways.
#[test]
fn e2e_qemu_killed_mid_transfer_next_guest_works() {
    const T: &str = "e2e_qemu_killed_mid_transfer_next_guest_works";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("kill");
    let mut ns = Netns::new("kill");
    ns.add_tap("ne-tap0", "10.233.19.1/24");
    let (_httpd, _blob) = start_httpd(&rig, &wd, &ns, "10.233.19.1", 16 << 20);
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:19";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let pidfile = wd.path("qemu.pid");
    let pf = pidfile.display().to_string();
    let mut victim = Guest::boot(
        &rig,
        &wd,
        "victim",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.19.2/24",
            "--qemu-arg",
            "-pidfile",
            "--qemu-arg",
            &pf,
        ],
        "echo LOOP-START\nwhile true; do wget -q -O /dev/null http://10.233.19.1:8080/blob; done\n",
    );
    victim.wait_console("LOOP-START", READY);
    // Kill once more than one blob went to the guest: mid-way through a later download.
    let to_guest = || -> u64 {
        ns.sysfs("ne-tap0", "statistics/tx_bytes")
            .parse()
            .unwrap_or(0)
    };
    let start = Instant::now();
    while to_guest() < 24 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "download stalled at {} bytes:\n{}",
            to_guest(),
            tail(&victim.console(), 30)
        );
        sleep(Duration::from_millis(50));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("QEMU pid file");
    // SAFETY: kill(2) on the pid QEMU wrote to our own pid file; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill QEMU");
    let run = victim.finish();
    assert_eq!(
        run.rc,
        Some(125),
        "boot-guest.sh should report QEMU gone without RIG-EXIT"
    );
    sleep(Duration::from_millis(500));
    assert_cli_alive(&mut cli);

    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run, host_ping) = setup.round("next", "10.233.19.1", "10.233.19.2/24", DEFAULT_ROUND);
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    assert_host_ping("next", &host_ping);
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// `--link-down` (cable unplugged). The driver still binds with the MAC, but
/// reports no link: carrier 0, no "Link is Up", and nothing gets through; no TX hang
/// either (the driver does not queue to a link-down card).
#[test]
fn e2e_link_down_guest_sees_no_carrier() {
    const T: &str = "e2e_link_down_guest_sees_no_carrier";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("linkdown");
    let mut ns = Netns::new("linkdown");
    ns.add_tap("ne-tap0", "10.233.21.1/24");
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:21";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(&wd, "nic-emu", &sock, &["--link-down"]);
    let s = sock.display().to_string();
    let cmd = format!(
        "echo BEGIN-G2H; ping -c 2 -W 1 10.233.21.1; echo END-G2H rc=$?\n{}",
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
            "10.233.21.2/24",
            "--carrier-wait",
            "2",
        ],
        &cmd,
    );
    let run = g.finish();
    run.assert_ok();
    assert!(
        run.console.contains("RIG-NOCARRIER eth0"),
        "guest saw a carrier"
    );
    assert_eq!(run.value("CARRIER").as_deref(), Some("0"), "eth0 carrier");
    assert_eq!(
        run.value("RX_PACKETS").as_deref(),
        Some("0"),
        "frames delivered with the link down"
    );
    let dmesg = run.dmesg();
    assert!(
        dmesg
            .lines()
            .any(|l| l.contains("e1000 0000:00:02.0 eth0:") && l.contains(mac)),
        "driver did not bind:\n{dmesg}"
    );
    assert!(!dmesg.contains("Link is Up"), "link came up:\n{dmesg}");
    run.assert_no_e1000_errors();
    assert!(
        run.section("G2H").contains("0 packets received"),
        "a ping got through a link-down card:\n{}",
        run.section("G2H")
    );
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
