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
//! Run: `cargo test --test e2e_fidelity -- --nocapture` (as root, after provisioning).

mod common;
mod e2e;

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
