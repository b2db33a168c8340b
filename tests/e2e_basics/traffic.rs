//! End to end over a tap, at volume: 16 MiB of TCP each way, md5-checked, and jumbo
//! frames (MTU 9000) both ways. Root and the provisioned rig, or `SKIP:`; one scenario at
//! a time (support::e2e::serial).

use crate::support::e2e;

use std::time::{Duration, Instant};

use e2e::*;

/// Bytes moved each way in the TCP scenario.
const BULK_BYTES: usize = 16 << 20;

/// Bulk TCP both ways over the tap, checked end to end: the guest downloads
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

/// Jumbo frames. The tap and the guest's eth0 go to MTU 9000 (the driver configures
/// the card for it when eth0 comes up: multi-buffer receive with LPE) and 8000-byte
/// pings pass both ways, unfragmented.
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
    // Down, MTU, up: changing the MTU of a running eth0 makes the driver reset the card,
    // which restarts autonegotiation (the link is down for the autonegotiation window,
    // as on hardware), and a frame IPv6 queues meanwhile makes the driver's watchdog
    // reset the card again ("Reset adapter": queued transmit work with no link). With the
    // interface down nothing is queued, and IPv6 waits for the carrier before it sends.
    let pre = "ip link set eth0 down; ip link set eth0 mtu 9000; echo MTU_RC=$?\n\
               ip link set eth0 up\n\
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
