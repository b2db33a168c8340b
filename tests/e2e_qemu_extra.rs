//! More end-to-end scenarios with real QEMU guests on nic-emu-cli (see tests/e2e_qemu.rs
//! for the basic ones, the rig and how to run): 7 16 MiB of TCP each way over the tap,
//! md5-checked; 8 jumbo frames (MTU 9000); 9 QEMU SIGKILLed mid-transfer, the next QEMU
//! works; 10 iPXE netboots Linux over HTTP through the emulated card; 11 `--link-down`:
//! the driver binds but sees no carrier and nothing passes.
//!
//! Same rules as tests/e2e_qemu.rs: root and the provisioned rig, or `SKIP:`; one
//! scenario at a time (cargo runs the two test binaries one after the other).
//!
//! Run: `cargo test --test e2e_qemu_extra -- --nocapture` (as root, after provisioning).

mod common;
mod e2e;

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// Bytes moved each way in the TCP scenario.
const BULK_BYTES: usize = 16 << 20;

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
    let (_httpd, blob) = start_httpd(&rig, &wd, &ns, "10.233.17.1", BULK_BYTES);
    let down_md5 = md5_file(&rig, &blob);
    let bb = rig.busybox();
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
    assert_no_lints("e2e_tap_tcp_bulk_both_ways_md5", &cli, &[]);
    // Unless turned off, the download came from the kernel as whole TCP packets that
    // nic-emu cut into frames (receive offload), and the upload's TSO packets went to the
    // kernel whole.
    let log = cli.log_text();
    let summary = log
        .lines()
        .find(|l| l.contains("tap ne-tap0:") && l.contains("frames received"))
        .unwrap_or_else(|| panic!("no tap summary in nic-emu-cli's log:\n{}", cli.log_tail(20)));
    let n = |after: &str| -> u64 {
        let i = summary.find(after).expect(after) + after.len();
        summary[i..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let whole_in = n("frames received (");
    let whole_out = n("frames sent (");
    eprintln!(
        "e2e: {T}: {whole_in} TCP packets taken whole from the tap, {whole_out} handed whole to it"
    );
    let off = |v: &str| std::env::var(v).is_ok_and(|v| v.trim() == "0");
    if !off("NIC_EMU_TAP_OFFLOAD") {
        // nic-emu-cli wraps the tap in an (idle) recorder: TSO must get through it.
        assert!(
            whole_out > 0,
            "the guest's TSO packets did not reach the tap whole: {summary}"
        );
    }
    if !off("NIC_EMU_TAP_RX_OFFLOAD") && !off("NIC_EMU_TAP_OFFLOAD") {
        assert!(whole_in > 0, "receive offload unused: {summary}");
        assert!(summary.contains("cut here; 0 dropped"), "{summary}");
    }
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

/// Scenario 9: QEMU is SIGKILLed in the middle of a download (DMA and interrupts in
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

/// Scenario 10: network boot with iPXE, QEMU's own e1000 option ROM (pxe-e1000.rom) run
/// by SeaBIOS on our device. iPXE gets a DHCP lease (busybox udhcpd on the tap), fetches
/// a script, a kernel and an initrd over HTTP (13 MB), boots Linux, and Linux's e1000
/// driver takes the same card over and pings the host.
#[test]
fn e2e_ipxe_netboots_linux_over_http() {
    const T: &str = "e2e_ipxe_netboots_linux_over_http";
    let Some(rig) = Rig::get(T, true) else { return };
    let rom_ok = rig.qemu_share().join("pxe-e1000.rom").exists();
    if !common::can_run(T, rom_ok, "QEMU's pxe-e1000.rom (iPXE) is not in the rig") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("ipxe");
    let mut ns = Netns::new("ipxe");
    ns.add_tap("ne-tap0", "10.233.20.1/24");
    let (_httpd, _blob) = start_httpd(&rig, &wd, &ns, "10.233.20.1", 1);
    let www = wd.path("www");
    std::fs::copy(rig.guest_dir().join("vmlinuz"), www.join("vmlinuz")).expect("kernel");
    let guest_cmd = format!("{}{}", guest_ping("G2H", "10.233.20.1", 3), guest_report());
    guest_initrd(&rig, &wd, &guest_cmd, &www.join("initrd"));
    std::fs::write(
        www.join("boot.ipxe"),
        "#!ipxe\n\
         echo nic-emu: iPXE boots Linux over HTTP\n\
         kernel http://10.233.20.1:8080/vmlinuz console=ttyS0 panic=-1 quiet ne.ip=10.233.20.2/24 ne.mods=e1000\n\
         initrd http://10.233.20.1:8080/initrd\n\
         boot\n",
    )
    .expect("boot.ipxe");
    let conf = wd.path("udhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "start 10.233.20.2\nend 10.233.20.2\ninterface ne-tap0\n\
             lease_file {}\npidfile {}\nsiaddr 10.233.20.1\n\
             boot_file http://10.233.20.1:8080/boot.ipxe\n\
             option subnet 255.255.255.0\noption lease 600\n",
            wd.path("leases").display(),
            wd.path("udhcpd.pid").display()
        ),
    )
    .expect("udhcpd.conf");
    std::fs::write(wd.path("leases"), b"").expect("leases");
    let conf_s = conf.display().to_string();
    let _dhcpd = Proc::spawn(
        "udhcpd",
        ns.cmd(rig.busybox(), &["udhcpd", "-f", &conf_s]),
        &wd.path("udhcpd.log"),
    );
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:20";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);

    let console = wd.path("guest.console");
    let mut q = Command::new(&rig.qemu);
    q.args(["-nodefaults", "-no-user-config", "-accel", "tcg"])
        .args(["-machine", "pc,graphics=off", "-m", "256"])
        .args(["-object", "memory-backend-memfd,id=mem0,size=256M,share=on"])
        .args(["-machine", "memory-backend=mem0"])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-boot",
            "n",
        ])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-device")
        .arg(format!(
            "{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"type\":\"unix\",\"path\":\"{}\"}},\
             \"romfile\":\"pxe-e1000.rom\",\"bootindex\":1}}",
            sock.display()
        ));
    let run = Guest::qemu(&wd, "guest", q, console).finish();
    let c = &run.console;
    for want in [
        "using 82540em on 0000:00:02.0",
        "[Link:up",
        "net0: 10.233.20.2/255.255.255.0",
        "boot.ipxe... ok",
        "vmlinuz... ok",
        "initrd... ok",
    ] {
        assert!(
            c.contains(want),
            "iPXE console lacks {want:?}:\n{}",
            tail(c, 40)
        );
    }
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    stop_cli(&mut cli);
    assert_no_lints(T, &cli, &[]);
    eprintln!(
        "e2e: {T}: {:.1}s (guest {:.1}s)",
        t0.elapsed().as_secs_f64(),
        run.wall.as_secs_f64()
    );
}

/// Scenario 11: `--link-down` (cable unplugged). The driver still binds with the MAC, but
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
