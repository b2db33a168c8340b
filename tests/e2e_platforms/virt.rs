//! End to end on other architectures: Debian's arm64 and riscv64 kernels and their e1000
//! module drive nic-emu-cli (still an x86_64 process) through QEMU's vfio-user client on
//! QEMU's `virt` machine under TCG (`qemu-system-aarch64`, `qemu-system-riscv64`). The
//! card sits behind the generic ECAM host bridge and its INTx reaches the CPU through
//! the GIC (arm64) or the PLIC (riscv64), not an x86 PIC or IOAPIC; guest RAM is a
//! shared memfd as on x86.
//!
//! Needs those parts of the rig (scripts/provision.sh: qemu-system-aarch64 and
//! qemu-system-riscv64 from the same trixie-backports QEMU, and scripts/build-guest-arch.sh's
//! kernels and busybox initramfs) and root for the namespace and tap; otherwise `SKIP:`
//! (a failure under `NIC_EMU_NO_SKIP=1`). One scenario at a time, as in tests/e2e_basics/basics.rs.
//!
//! The riscv64 scenario also checks the QEMU command line of docs/DRIVER-DEVELOPMENT.md's
//! RISC-V section against the one it ran.
//!
//! Run: `cargo test --all-features --test e2e_platforms virt:: -- --nocapture` (as root, after
//! provisioning; `arm64` or `riscv64` as a filter runs one).

use crate::support::e2e;

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::*;
use nic_emu::control::client;
use serde_json::Value;

/// Bytes moved each way over TCP.
const BULK_BYTES: usize = 16 << 20;

/// What one scenario showed, for the architecture's own checks.
struct Outcome {
    /// The guest's run (boot-guest.sh's log holds QEMU's arguments).
    run: GuestRun,
    /// The guest's eth0 line(s) of /proc/interrupts.
    irq: String,
    /// eth0's interrupt count at the end.
    irqs: u64,
}

/// A guest of `rig`'s architecture on a tap in its own namespace (10.233.`net`.0/24),
/// nic-emu-cli on the tap with a control socket. The e1000 driver probes the card at
/// 0000:00:02.0 with the MAC nic-emu-cli was given and gets link; the guest pings the
/// host 3/3 and the host the guest 3/3; 16 MiB of TCP go each way (busybox wget from
/// httpd in the namespace, nc to `nc -l`), md5 equal on both sides; no TX hang, oops or
/// driver error; eth0's interrupt fired; nic-emu raised no lint at warn level (its log
/// and `ctl lints`).
fn tap_probe_link_ping_tcp(rig: &Rig, t: &str, net: u8) -> Outcome {
    let t0 = Instant::now();
    let wd = Workdir::new(rig.arch);
    let mut ns = Netns::new(rig.arch);
    let host_ip = format!("10.233.{net}.1");
    let guest_cidr = format!("10.233.{net}.2/24");
    let guest_ip = format!("10.233.{net}.2");
    ns.add_tap("ne-tap0", &format!("{host_ip}/24"));
    let (_httpd, blob) = start_httpd(rig, &wd, &ns, &host_ip, BULK_BYTES);
    let down_md5 = md5_file(rig, &blob);
    let upload = wd.path("upload");
    let mut nc = Proc::spawn_open_stdin(
        "nc-listen",
        ns.cmd(rig.busybox(), &["nc", "-l", "-p", "9000"]),
        &upload,
        &wd.path("nc.log"),
    );
    let sock = wd.path("ne.sock");
    let ctl = wd.path("ne.ctl");
    let ctl_arg = ctl.display().to_string();
    let mac = format!("52:54:00:e2:e0:{net}");
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac: &mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(&wd, "nic-emu", &sock, &["--control", &ctl_arg]);

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
    let sock_s = sock.display().to_string();
    let mut g = Guest::boot(
        rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            &guest_cidr,
            "--show-qemu",
        ],
        &tap_guest_cmd(&host_ip, &pre, 56),
    );
    g.wait_console("PRE-DONE", READY);
    let host_ping = host_pings_then_releases(rig, &ns, &guest_ip, 56);
    let r = g.finish();
    r.assert_ok();
    assert_eq!(r.value("ARCH").as_deref(), Some(rig.arch), "guest arch");
    r.assert_e1000_healthy(&mac);
    let irq = r.section("IRQ");
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
        Some(md5_file(rig, &upload)),
        "uploaded data differs"
    );

    // A driver that is right raises no lint at warn level.
    let reply = client::call(
        &ctl,
        &client::request("lints", Value::Null),
        Duration::from_secs(10),
    )
    .expect("ctl lints");
    let findings = reply["return"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        reply["return"]["warn_total"], 0,
        "{t}: the {} guest's e1000 driver raised lints: {findings:#?}",
        rig.arch
    );
    assert_no_lints(t, &cli, &[]);
    assert_cli_alive(&mut cli);
    stop_cli(&mut cli);

    let mib = BULK_BYTES as f64 / f64::from(1 << 20);
    let info: Vec<&str> = findings.iter().filter_map(|f| f["id"].as_str()).collect();
    eprintln!(
        "e2e: {t}: {irqs} interrupts, download {:.2} MiB/s, upload {:.2} MiB/s \
         (TCG {} guest), lints at info: {info:?}, guest wall {:.1}s, total {:.1}s",
        mib / guest_secs(&r, "DOWN_T0", "DOWN_T1"),
        mib / guest_secs(&r, "UP_T0", "UP_T1"),
        rig.arch,
        r.wall.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    Outcome { run: r, irq, irqs }
}

/// Scenario 90: an arm64 guest on a tap (see [`tap_probe_link_ping_tcp`]); the card's
/// INTx is a level-triggered GIC interrupt.
#[test]
fn e2e_arm64_tap_probe_link_ping_tcp_both_ways() {
    const T: &str = "e2e_arm64_tap_probe_link_ping_tcp_both_ways";
    let Some(rig) = Rig::get_arm64(T, true) else {
        return;
    };
    let _serial = serial();
    let o = tap_probe_link_ping_tcp(&rig, T, 90);
    assert!(
        o.irq.contains("GIC") && o.irq.contains("Level"),
        "eth0 is not a level GIC interrupt:\n{}",
        o.irq
    );
}

/// Scenario 91: a riscv64 guest on a tap (see [`tap_probe_link_ping_tcp`]), booted with
/// -kernel over QEMU's default firmware (OpenSBI). The card's INTx is a PLIC source:
/// QEMU's `virt` wires INTA..INTD of slot S to PLIC sources 32 + (S + pin) mod 4, so the
/// card at 00:02.0 (INTA) is source 34. The QEMU command line of the guide's RISC-V
/// section is the one this boot ran, but for the user's own files (kernel, initramfs,
/// command line) and the socket path.
#[test]
fn e2e_riscv64_tap_probe_link_ping_tcp_both_ways() {
    const T: &str = "e2e_riscv64_tap_probe_link_ping_tcp_both_ways";
    let Some(rig) = Rig::get_riscv64(T, true) else {
        return;
    };
    let _serial = serial();
    let o = tap_probe_link_ping_tcp(&rig, T, 91);
    let plic_source = o
        .irq
        .lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "PLIC")?;
            w.get(i + 1)?.parse::<u32>().ok()
        })
        .unwrap_or_else(|| panic!("eth0 is not a PLIC interrupt:\n{}", o.irq));
    assert_eq!(plic_source, 34, "eth0's PLIC source:\n{}", o.irq);
    assert!(o.irqs > 0);

    let ran = qemu_args(&o.run.script_log);
    assert!(!ran.is_empty(), "boot-guest.sh logged no QEMU arguments");
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DRIVER-DEVELOPMENT.md"),
    )
    .expect("docs/DRIVER-DEVELOPMENT.md");
    let guide = guide_command(&doc, "qemu-system-riscv64");
    assert_same_command(&guide, &ran);
}

/// QEMU's argv as boot-guest.sh --show-qemu logged it.
fn qemu_args(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once("] qemu arg: ").map(|(_, a)| a.to_string()))
        .collect()
}

/// The first `$ PROGRAM ...` command of a console block in `doc`, split into words as
/// the shell would (backslash-newline continues the line; single quotes).
fn guide_command(doc: &str, program: &str) -> Vec<String> {
    let start = doc
        .find(&format!("$ {program} "))
        .unwrap_or_else(|| panic!("the guide has no `$ {program}` command"));
    let mut text = String::new();
    for line in doc[start + 2..].lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(l) => {
                text.push_str(l);
                text.push(' ');
            }
            None => {
                text.push_str(line);
                break;
            }
        }
    }
    let (mut words, mut w, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut w));
                    any = false;
                }
            }
            c => {
                w.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in the guide's {program} command");
    if any {
        words.push(w);
    }
    words
}

/// The guide's command is the one that ran, word for word, except: the program is named,
/// not a path; `-kernel` and `-initrd` name the reader's own files; the guide's `-append`
/// is the start of the test's (which adds the rig's own parameters); the vfio-user
/// socket is /tmp/ne.sock.
fn assert_same_command(guide: &[String], ran: &[String]) {
    let show = || format!("guide: {guide:?}\nran:   {ran:?}");
    assert_eq!(guide.len(), ran.len(), "word count differs\n{}", show());
    let sock = ran
        .iter()
        .find_map(|a| {
            let (_, rest) = a.split_once("\"path\":\"")?;
            rest.split('"').next()
        })
        .unwrap_or_else(|| panic!("no vfio-user socket in the QEMU arguments\n{}", show()));
    for (i, (g, r)) in guide.iter().zip(ran).enumerate() {
        let prev = if i > 0 { ran[i - 1].as_str() } else { "" };
        let same = match prev {
            _ if i == 0 => Path::new(r).file_name().is_some_and(|n| *n == **g),
            "-kernel" | "-initrd" => true,
            "-append" => r.starts_with(g.as_str()),
            _ => *g == r.replace(sock, "/tmp/ne.sock"),
        };
        assert!(same, "word {i}: guide {g:?}, ran {r:?}\n{}", show());
    }
}
