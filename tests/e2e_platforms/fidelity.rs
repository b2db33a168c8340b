//! End-to-end: the card as Linux's own diagnostics see it, with Debian's `ethtool` in the
//! test guest (scripts/build-guest.sh adds it).
//!
//! Scenarios (10.233.3x.0/24): 31 `ethtool -t eth0 offline` passes all five tests on the
//! 82540EM and not one frame reaches the tap while it runs (the loopback test's frames
//! stay inside the card); 32 the same on the 82545EM, whose driver also takes `ethtool
//! -C` (interrupt coalescing) and moderates its interrupts by it; 33 `ethtool -E` writes
//! a byte of the EEPROM that `ethtool -e` reads back, in the same boot and, with
//! `--eeprom FILE`, after nic-emu-cli restarts; 34 `ethtool -s eth0 wol g` is refused
//! (the card claims no PME; see `PMC_NO_PME`) and `ethtool -s eth0 speed 100 duplex full
//! autoneg off` is what `ethtool eth0` reports afterwards, with traffic still flowing.
//!
//! Root and the provisioned rig (scripts/provision.sh) are needed; like the other e2e
//! suites the scenarios run one at a time and skip (`SKIP:`) when they cannot run.
//!
//! Run: `cargo test --test e2e_platforms fidelity:: -- --nocapture` (as root, after provisioning).

use crate::support::e2e;

use std::time::{Duration, Instant};

use e2e::*;

/// A tap in a fresh namespace and nic-emu-cli serving it, with `extra` options.
struct Card<'a> {
    ns: Netns,
    cli: Proc,
    sock: std::path::PathBuf,
    rig: &'a Rig,
}

fn start_card<'a>(
    rig: &'a Rig,
    wd: &Workdir,
    tag: &str,
    host_cidr: &str,
    mac: &str,
    extra: &[&str],
) -> Card<'a> {
    let mut ns = Netns::new(tag);
    ns.add_tap("ne-tap0", host_cidr);
    let sock = wd.path("ne.sock");
    let cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(wd, "nic-emu", &sock, extra);
    Card { ns, cli, sock, rig }
}

impl Card<'_> {
    fn boot(&self, wd: &Workdir, name: &str, guest_cidr: &str, cmd: &str) -> Guest {
        let sock_s = self.sock.display().to_string();
        Guest::boot(
            self.rig,
            wd,
            name,
            &[
                "--nic",
                "vfio-user",
                "--socket",
                &sock_s,
                "--guest-ip",
                guest_cidr,
            ],
            cmd,
        )
    }

    /// Frames nic-emu wrote into the tap so far (the tap's receive counter).
    fn tap_rx_frames(&self) -> u64 {
        let v = self.ns.sysfs("ne-tap0", "statistics/rx_packets");
        v.parse()
            .unwrap_or_else(|_| panic!("tap rx_packets: {v:?}"))
    }
}

/// Guest lines: no IPv6 on eth0 (nothing sent on its own), then `ethtool -t eth0
/// offline` bracketed by markers the host counts the tap's frames at.
const SELFTEST: &str = "echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6\n\
     sleep 1\necho ST-READY; sleep 2\n\
     echo BEGIN-SELFTEST; ethtool -t eth0 offline; echo END-SELFTEST rc=$?\n\
     echo ST-DONE; sleep 2\n";

/// The five results of `ethtool -t` (register, EEPROM, interrupt, loopback, link).
fn selftest_results(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter(|l| l.contains("(offline)") || l.contains("(on/offline)"))
        .filter_map(|l| {
            let (name, v) = l.rsplit_once(char::is_whitespace)?;
            Some((name.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Boot a guest that runs the self-test; returns its run and the frames the tap saw
/// while the test ran.
fn run_selftest(
    card: &Card,
    wd: &Workdir,
    name: &str,
    guest_cidr: &str,
    after: &str,
) -> (GuestRun, u64) {
    let mut g = card.boot(
        wd,
        name,
        guest_cidr,
        &format!("{SELFTEST}{after}{}", guest_report()),
    );
    g.wait_console("ST-READY", READY);
    let before = card.tap_rx_frames();
    g.wait_console("ST-DONE", Duration::from_secs(120));
    let during = card.tap_rx_frames() - before;
    let run = g.finish();
    eprintln!(
        "{name}: ethtool -t eth0 offline ({during} frames reached the tap meanwhile):\n{}",
        run.section("SELFTEST")
    );
    (run, during)
}

fn assert_selftest_passed(run: &GuestRun, frames_on_tap: u64) {
    let out = run.section("SELFTEST");
    let results = selftest_results(&out);
    assert_eq!(results.len(), 5, "{}: five results:\n{out}", run.name);
    assert!(
        out.contains("The test result is PASS"),
        "{}:\n{out}",
        run.name
    );
    for (test, v) in &results {
        assert_eq!(*v, 0, "{}: {test}:\n{out}", run.name);
    }
    assert_eq!(
        frames_on_tap, 0,
        "{}: the tap saw {frames_on_tap} frames during the self-test (its loopback frames must stay inside the card)",
        run.name
    );
}

/// Scenario 31: `ethtool -t eth0 offline` on the 82540EM: PASS, all five 0, and the
/// tap sees no frame while it runs; the card carries traffic afterwards.
#[test]
fn e2e_ethtool_selftest_passes_and_loopback_stays_in_the_card() {
    const T: &str = "e2e_ethtool_selftest_passes_and_loopback_stays_in_the_card";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("selftest");
    let mac = "52:54:00:e2:e0:31";
    let mut card = start_card(&rig, &wd, "selftest", "10.233.31.1/24", mac, &[]);
    let after = guest_ping("G2H", "10.233.31.1", 3);
    let (run, during) = run_selftest(&card, &wd, "guest", "10.233.31.2/24", &after);
    run.assert_ok();
    assert_selftest_passed(&run, during);
    run.assert_ping("G2H", 3);
    assert_cli_alive(&mut card.cli);
    stop_cli(&mut card.cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// The value of `KEY: value` lines (`ethtool eth0` output), trimmed.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
}

/// Scenario 32: the 82545EM (`--model 82545em`): the driver binds 8086:100F, `ethtool
/// -t` passes with no frame on the tap, `ethtool -C eth0 rx-usecs 100` is taken and
/// reported back, and the interrupt moderation it sets is real: under the same fixed
/// load (pings every 2 ms) the guest counts far fewer interrupts with a long interval
/// than with none.
#[test]
fn e2e_82545em_selftest_and_interrupt_coalescing() {
    const T: &str = "e2e_82545em_selftest_and_interrupt_coalescing";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("82545em");
    let mac = "52:54:00:e2:e0:32";
    let mut card = start_card(
        &rig,
        &wd,
        "82545em",
        "10.233.32.1/24",
        mac,
        &["--model", "82545em"],
    );
    // Interrupts of eth0 while pinging the host every 2 ms, 750 times, with rx-usecs U.
    let load = |u: u32| {
        format!(
            "ethtool -C eth0 rx-usecs {u}; echo COALESCE_{u}_RC=$?\n\
             ethtool -c eth0 | grep '^rx-usecs:' | sed 's/^/COALESCE_{u}_/; s/: */=/'\n\
             a=$(awk '/eth0/ {{print $2}}' /proc/interrupts)\n\
             ping -q -c 750 -i 0.002 -W 2 10.233.32.1 >/tmp/p{u} 2>&1\n\
             b=$(awk '/eth0/ {{print $2}}' /proc/interrupts)\n\
             echo INTS_{u}=$((b - a)); grep -o '[0-9]* packets received' /tmp/p{u} | sed 's/^/RECV_{u}=/'\n"
        )
    };
    let after = format!(
        "echo ID=$(cat /sys/class/net/eth0/device/device)\n{}{}{}{}",
        load(0),
        load(10000),
        load(100),
        guest_ping("G2H", "10.233.32.1", 3)
    );
    let (run, during) = run_selftest(&card, &wd, "guest", "10.233.32.2/24", &after);
    run.assert_ok();
    assert_eq!(run.value("ID").as_deref(), Some("0x100f"), "the 82545EM");
    assert!(
        run.dmesg().contains("Intel(R) PRO/1000 Network Connection"),
        "{}",
        run.dmesg()
    );
    assert_selftest_passed(&run, during);
    for u in [0, 10000, 100] {
        assert_eq!(
            run.value(&format!("COALESCE_{u}_RC")).as_deref(),
            Some("0"),
            "ethtool -C eth0 rx-usecs {u}:\n{}",
            tail(&run.console, 40)
        );
        assert_eq!(
            run.value(&format!("COALESCE_{u}_rx-usecs")).as_deref(),
            Some(u.to_string().as_str()),
            "ethtool -c reports rx-usecs {u}"
        );
    }
    let ints = |u: u32| -> u64 {
        run.value(&format!("INTS_{u}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INTS_{u}:\n{}", tail(&run.console, 40)))
    };
    let (free, slow, fast) = (ints(0), ints(10000), ints(100));
    eprintln!(
        "{T}: eth0 interrupts over 750 pings 2 ms apart: rx-usecs 0: {free}, 100: {fast}, 10000: {slow}"
    );
    // 10 ms between interrupts (at most 100 per second) against none: the direction is
    // clear whatever the machine's speed.
    assert!(
        slow * 2 < free,
        "rx-usecs 10000 should cut the interrupts: {slow} vs {free} with rx-usecs 0"
    );
    assert!(
        run.value("RECV_10000")
            .is_some_and(|v| v.starts_with("750")),
        "no ping lost"
    );
    run.assert_ping("G2H", 3);
    stop_cli(&mut card.cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 33: `ethtool -E` writes an EEPROM byte that `ethtool -e` reads back; with
/// `--eeprom FILE` the file holds it (with a valid checksum), and after nic-emu-cli
/// restarts a new guest reads it too.
#[test]
fn e2e_ethtool_eeprom_write_reads_back_and_persists_across_a_restart() {
    const T: &str = "e2e_ethtool_eeprom_write_reads_back_and_persists_across_a_restart";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("eeprom");
    let mac = "52:54:00:e2:e0:33";
    let image = wd.path("card.eeprom");
    let image_s = image.display().to_string();
    let dump = "echo BEGIN-EE; ethtool -e eth0 offset 0x60 length 4; echo END-EE\n";
    let mut card = start_card(
        &rig,
        &wd,
        "eeprom",
        "10.233.33.1/24",
        mac,
        &["--eeprom", &image_s],
    );
    let cmd = format!(
        "{dump}ethtool -E eth0 magic 0x100E8086 offset 0x61 value 0x5a; echo EE_SET_RC=$?\n\
         ethtool -e eth0 offset 0x61 length 1 raw on | od -An -tx1 | tr -d ' ' | sed 's/^/EE_61=/'\n\
         {}",
        guest_report()
    );
    let mut g = card.boot(&wd, "guest1", "10.233.33.2/24", &cmd);
    let run = {
        g.wait_console("EE_61=", READY);
        g.finish()
    };
    run.assert_ok();
    eprintln!("guest1 ethtool -e before the write:\n{}", run.section("EE"));
    assert_eq!(
        run.value("EE_SET_RC").as_deref(),
        Some("0"),
        "{}",
        tail(&run.console, 30)
    );
    assert_eq!(
        run.value("EE_61").as_deref(),
        Some("5a"),
        "{}",
        tail(&run.console, 30)
    );
    run.assert_no_e1000_errors();
    stop_cli(&mut card.cli);

    let bytes = std::fs::read(&image).expect("EEPROM file");
    assert_eq!(bytes.len(), 128);
    assert_eq!(bytes[0x61], 0x5A, "the file holds the byte");
    let sum = bytes.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    assert_eq!(sum, 0xBABA, "the driver rewrote the checksum word");

    // nic-emu-cli again, same file: a new guest reads the byte.
    let sock = card.sock.clone();
    card.cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&card.ns),
    }
    .start_with(&wd, "nic-emu-2", &sock, &["--eeprom", &image_s]);
    let cmd = format!(
        "ethtool -e eth0 offset 0x61 length 1 raw on | od -An -tx1 | tr -d ' ' | sed 's/^/EE_61=/'\n{}",
        guest_report()
    );
    let run = card.boot(&wd, "guest2", "10.233.33.2/24", &cmd).finish();
    run.assert_ok();
    assert_eq!(
        run.value("EE_61").as_deref(),
        Some("5a"),
        "{}",
        tail(&run.console, 30)
    );
    run.assert_e1000_healthy(mac);
    stop_cli(&mut card.cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 34: `ethtool -s eth0 wol g` is refused (the card claims no PME: nothing could
/// wake the guest through vfio-user), and `ethtool -s eth0 speed 100 duplex full autoneg
/// off` is what `ethtool eth0` reports once the link is back; pings still flow.
#[test]
fn e2e_ethtool_wol_refused_and_forced_speed_reported() {
    const T: &str = "e2e_ethtool_wol_refused_and_forced_speed_reported";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("speed");
    let mac = "52:54:00:e2:e0:34";
    let mut card = start_card(&rig, &wd, "speed", "10.233.34.1/24", mac, &[]);
    let cmd = format!(
        "echo BEGIN-WOL; ethtool eth0 | grep -i wake; ethtool -s eth0 wol g; echo END-WOL rc=$?\n\
         ethtool -s eth0 speed 100 duplex full autoneg off; echo FORCE_RC=$?\n\
         sleep 1; i=0; until [ \"$(cat /sys/class/net/eth0/carrier)\" = 1 ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done\n\
         echo BEGIN-ETHTOOL; ethtool eth0; echo END-ETHTOOL\n\
         {}{}",
        guest_ping("G2H", "10.233.34.1", 3),
        guest_report()
    );
    let run = card.boot(&wd, "guest", "10.233.34.2/24", &cmd).finish();
    run.assert_ok();
    let wol = run.section("WOL");
    eprintln!("{T}: wake-on-LAN:\n{wol}");
    assert!(
        wol.contains("Operation not supported"),
        "wol g must be refused:\n{wol}"
    );
    assert!(!wol.contains("Wake-on: g"), "{wol}");
    assert_eq!(run.value("FORCE_RC").as_deref(), Some("0"));
    let info = run.section("ETHTOOL");
    eprintln!("{T}: ethtool eth0 after forcing:\n{info}");
    assert_eq!(field(&info, "Speed"), Some("100Mb/s"), "{info}");
    assert_eq!(field(&info, "Duplex"), Some("Full"), "{info}");
    assert_eq!(field(&info, "Auto-negotiation"), Some("off"), "{info}");
    assert_eq!(field(&info, "Link detected"), Some("yes"), "{info}");
    run.assert_ping("G2H", 3);
    stop_cli(&mut card.cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
