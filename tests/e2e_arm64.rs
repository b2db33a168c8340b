//! End to end on another architecture: Debian's arm64 kernel and its e1000 module drive
//! nic-emu-cli (still an x86_64 process) through QEMU's vfio-user client on
//! `qemu-system-aarch64 -machine virt` under TCG. The card sits behind the generic
//! ECAM host bridge and its INTx reaches the CPU through the GIC, not an x86 PIC or
//! IOAPIC; guest RAM is a shared memfd as on x86.
//!
//! Needs the arm64 part of the rig (scripts/provision.sh: qemu-system-aarch64 from the
//! same trixie-backports QEMU, and scripts/build-guest-arm64.sh's kernel and busybox
//! initramfs) and root for the namespace and tap; otherwise `SKIP:` (a failure under
//! `NIC_EMU_NO_SKIP=1`). One scenario at a time, as in tests/e2e_qemu.rs.
//!
//! Run: `cargo test --test e2e_arm64 -- --nocapture` (as root, after provisioning).

mod common;
mod e2e;

use std::time::{Duration, Instant};

use e2e::*;

/// Bytes moved each way over TCP.
const BULK_BYTES: usize = 16 << 20;

/// Scenario 90: an arm64 guest on a tap. The e1000 driver probes the card at
/// 0000:00:02.0 with the MAC nic-emu-cli was given and gets link; its interrupt is a
/// GIC line that fires; the guest pings the host 3/3 and the host the guest 3/3; 16 MiB
/// of TCP go each way (busybox wget from httpd in the namespace, nc to `nc -l`), md5
/// equal on both sides; no TX hang, oops or driver error.
#[test]
fn e2e_arm64_tap_probe_link_ping_tcp_both_ways() {
    const T: &str = "e2e_arm64_tap_probe_link_ping_tcp_both_ways";
    let Some(rig) = Rig::get_arm64(T, true) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("arm64");
    let mut ns = Netns::new("arm64");
    let (host_ip, guest_cidr) = ("10.233.90.1", "10.233.90.2/24");
    ns.add_tap("ne-tap0", &format!("{host_ip}/24"));
    let (_httpd, blob) = start_httpd(&rig, &wd, &ns, host_ip, BULK_BYTES);
    let down_md5 = md5_file(&rig, &blob);
    let upload = wd.path("upload");
    let mut nc = Proc::spawn_open_stdin(
        "nc-listen",
        ns.cmd(rig.busybox(), &["nc", "-l", "-p", "9000"]),
        &upload,
        &wd.path("nc.log"),
    );
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:90";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);

    let pre = format!(
        "echo ARCH=$(uname -m)\n\
         echo BEGIN-IRQ; grep eth0 /proc/interrupts; echo END-IRQ\n\
         up() {{ cut -d' ' -f1 /proc/uptime; }}\n\
         echo DOWN_T0=$(up)\n\
         wget -q -O /tmp/down http://{host_ip}:8080/blob; echo WGET_RC=$?\n\
         echo DOWN_T1=$(up)\n\
         echo DOWN_MD5=$(md5sum /tmp/down | cut -d' ' -f1); rm -f /tmp/down\n\
         dd if=/dev/urandom of=/tmp/up bs=64k count={} 2>/dev/null\n\
         echo UP_MD5=$(md5sum /tmp/up | cut -d' ' -f1)\n\
         echo UP_T0=$(up)\n\
         nc {host_ip} 9000 </tmp/up; echo NC_RC=$?\n\
         echo UP_T1=$(up)\n\
         echo IRQS=$(awk '/eth0/ {{ print $2 }}' /proc/interrupts)\n",
        BULK_BYTES / 65536
    );
    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let opts = RoundOpts {
        pre: &pre,
        size: 56,
    };
    let (r, host_ping) = setup.round("guest", host_ip, guest_cidr, opts);
    r.assert_ok();
    assert_eq!(r.value("ARCH").as_deref(), Some("aarch64"), "guest arch");
    r.assert_e1000_healthy(mac);

    // The card's INTx is a level-triggered GIC interrupt, and it fired.
    let irq = r.section("IRQ");
    assert!(
        irq.contains("GIC") && irq.contains("Level"),
        "eth0 is not a level GIC interrupt:\n{irq}"
    );
    let irqs: u64 = r.value("IRQS").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(irqs > 0, "eth0's interrupt never fired:\n{irq}");

    r.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    assert_eq!(r.value("RELEASED").as_deref(), Some("0"), "release");

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
    assert_cli_alive(&mut cli);
    stop_cli(&mut cli);

    let mib = BULK_BYTES as f64 / f64::from(1 << 20);
    eprintln!(
        "e2e: {T}: {irqs} interrupts, download {:.2} MiB/s, upload {:.2} MiB/s \
         (TCG aarch64 guest), guest wall {:.1}s, total {:.1}s",
        mib / guest_secs(&r, "DOWN_T0", "DOWN_T1"),
        mib / guest_secs(&r, "UP_T0", "UP_T1"),
        r.wall.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
