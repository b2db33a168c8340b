//! Guests booted with scripts/boot-guest.sh (or a QEMU command line of the test's own),
//! and what their consoles say.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{tail, Proc, Rig, Workdir, GUEST_TIMEOUT};

/// A guest booted by scripts/boot-guest.sh, console in a log file.
pub struct Guest {
    /// Name for messages.
    pub name: String,
    proc: Proc,
    console: PathBuf,
    started: Instant,
    /// QEMU run directly (not by boot-guest.sh): the status comes from RIG-EXIT.
    direct: bool,
    /// Seconds after which boot-guest.sh kills QEMU.
    timeout: u32,
}

/// How a guest ended.
pub struct GuestRun {
    /// Name for messages.
    pub name: String,
    /// boot-guest.sh's status (the guest command's, 124 timeout, 125 no RIG-EXIT).
    pub rc: Option<i32>,
    /// Serial console, carriage returns removed.
    pub console: String,
    /// boot-guest.sh's own output (its summary line).
    pub script_log: String,
    /// Wall time from start to exit.
    pub wall: Duration,
}

impl Guest {
    /// Boot a guest of the rig's architecture: `args` are boot-guest.sh options (the
    /// NIC), `cmd` the guest command.
    pub fn boot(rig: &Rig, wd: &Workdir, name: &str, args: &[&str], cmd: &str) -> Guest {
        Self::boot_for(rig, wd, name, args, cmd, GUEST_TIMEOUT)
    }

    /// [`boot`](Self::boot) for a guest that may run `timeout` seconds instead of
    /// [`GUEST_TIMEOUT`].
    pub fn boot_for(
        rig: &Rig,
        wd: &Workdir,
        name: &str,
        args: &[&str],
        cmd: &str,
        timeout: u32,
    ) -> Guest {
        let console = wd.path(&format!("{name}.console"));
        let mut c = Command::new("bash");
        c.arg(rig.boot_script())
            .args(["--arch", rig.arch])
            .args(args)
            .args(["--quiet", "--timeout", &timeout.to_string(), "--log"])
            .arg(&console)
            .arg("--")
            .arg(cmd);
        let proc = Proc::spawn(name, c, &wd.path(&format!("{name}.boot.log")));
        Guest {
            name: name.to_string(),
            proc,
            console,
            started: Instant::now(),
            direct: false,
            timeout,
        }
    }

    /// A QEMU the test starts itself (`qemu` must write the serial console to
    /// `console`). [`finish`](Self::finish) waits at most [`GUEST_TIMEOUT`] and takes the
    /// status from the console's `RIG-EXIT=` line (125 when there is none).
    pub fn qemu(wd: &Workdir, name: &str, qemu: Command, console: PathBuf) -> Guest {
        let proc = Proc::spawn(name, qemu, &wd.path(&format!("{name}.qemu.log")));
        Guest {
            name: name.to_string(),
            proc,
            console,
            started: Instant::now(),
            direct: true,
            timeout: GUEST_TIMEOUT,
        }
    }

    /// The console so far, carriage returns removed.
    pub fn console(&self) -> String {
        fs::read_to_string(&self.console)
            .unwrap_or_default()
            .replace('\r', "")
    }

    /// Wait until the guest printed `marker` on its console (panics after `limit` or if
    /// the guest ended first).
    pub fn wait_console(&mut self, marker: &str, limit: Duration) {
        let t0 = Instant::now();
        loop {
            if self.console().contains(marker) {
                return;
            }
            if let Some(st) = self.proc.try_wait() {
                panic!(
                    "{}: ended ({st}) before printing {marker:?}:\n{}\n{}",
                    self.name,
                    tail(&self.console(), 40),
                    self.proc.log_tail(10)
                );
            }
            assert!(
                t0.elapsed() < limit,
                "{}: no {marker:?} after {limit:?}:\n{}",
                self.name,
                tail(&self.console(), 40)
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the guest to power off (QEMU's --timeout bounds it).
    pub fn finish(mut self) -> GuestRun {
        let limit = Duration::from_secs(u64::from(self.timeout) + 15);
        let st = self.proc.wait_for(limit);
        if st.is_none() {
            self.proc.stop(Duration::from_secs(5));
        }
        let console = self.console();
        let rc = if self.direct {
            let exit = console
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("RIG-EXIT="))
                .and_then(|v| v.trim().parse().ok());
            Some(exit.unwrap_or(125))
        } else {
            st.and_then(|s| s.code())
        };
        GuestRun {
            name: self.name.clone(),
            rc,
            console,
            script_log: self.proc.log_text(),
            wall: self.started.elapsed(),
        }
    }
}

impl GuestRun {
    /// Panic with the console tail unless the guest command exited 0.
    pub fn assert_ok(&self) {
        assert_eq!(
            self.rc,
            Some(0),
            "{}: boot-guest.sh rc {:?}\n--- console ---\n{}\n--- boot-guest.sh ---\n{}",
            self.name,
            self.rc,
            tail(&self.console, 80),
            tail(&self.script_log, 10)
        );
    }

    /// Lines between `BEGIN-<tag>` and `END-<tag>` (exclusive) printed by the guest.
    pub fn section(&self, tag: &str) -> String {
        let begin = format!("BEGIN-{tag}");
        let end = format!("END-{tag}");
        let mut out = String::new();
        let mut on = false;
        for l in self.console.lines() {
            if l.starts_with(&end) {
                break;
            }
            if on {
                out.push_str(l);
                out.push('\n');
            }
            if l.starts_with(&begin) {
                on = true;
            }
        }
        out
    }

    /// The value printed by the guest as `KEY=value` (last occurrence).
    pub fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.console
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_string())
    }

    /// The guest's `dmesg` (printed by [`guest_report`]).
    pub fn dmesg(&self) -> String {
        self.section("DMESG")
    }

    /// Assert the ping whose output the guest printed in section `tag` got `n` of `n`.
    pub fn assert_ping(&self, tag: &str, n: u32) {
        let out = self.section(tag);
        let want = format!("{n} packets transmitted, {n} packets received");
        assert!(
            out.contains(&want),
            "{}: ping {tag}: want {want:?}, got:\n{out}\n--- console tail ---\n{}",
            self.name,
            tail(&self.console, 60)
        );
    }

    /// The e1000 driver bound the device at 0000:00:02.0 with `mac`, saw the link come
    /// up, carrier is 1, and neither dmesg nor the console shows a driver error or a TX
    /// hang.
    pub fn assert_e1000_healthy(&self, mac: &str) {
        let dmesg = self.dmesg();
        assert!(!dmesg.is_empty(), "{}: no dmesg section", self.name);
        let mac = mac.to_ascii_lowercase();
        assert!(
            dmesg
                .lines()
                .any(|l| l.contains("e1000 0000:00:02.0 eth0:") && l.contains(&mac)),
            "{}: no e1000 eth0 line with MAC {mac}:\n{dmesg}",
            self.name
        );
        assert!(
            dmesg.contains("Intel(R) PRO/1000 Network Connection"),
            "{}: driver did not finish probe:\n{dmesg}",
            self.name
        );
        assert!(
            dmesg.contains("NIC Link is Up"),
            "{}: no 'Link is Up':\n{dmesg}",
            self.name
        );
        self.assert_no_e1000_errors();
        assert_eq!(
            self.value("CARRIER").as_deref(),
            Some("1"),
            "{}: eth0 carrier",
            self.name
        );
    }

    /// No e1000/eth0 line of dmesg mentions an EEPROM, checksum, probe, hang, reset or
    /// error, and the console shows no TX hang, oops or panic.
    pub fn assert_no_e1000_errors(&self) {
        const BAD: [&str; 8] = [
            "eeprom",
            "checksum",
            "probe",
            "tx unit hang",
            "reset adapter",
            "error",
            "fail",
            "timeout",
        ];
        for l in self.dmesg().lines() {
            let low = l.to_ascii_lowercase();
            if !(low.contains("e1000") || low.contains("eth0")) {
                continue;
            }
            if let Some(b) = BAD.iter().find(|b| low.contains(*b)) {
                panic!("{}: dmesg line mentions {b:?}: {l}", self.name);
            }
        }
        for bad in [
            "Detected Tx Unit Hang",
            "Kernel panic",
            "BUG:",
            "WARNING:",
            "Oops",
        ] {
            assert!(
                !self.console.contains(bad),
                "{}: console shows {bad:?}:\n{}",
                self.name,
                tail(&self.console, 60)
            );
        }
    }
}

/// Guest shell lines that print carrier, eth0 counters and dmesg in sections.
pub fn guest_report() -> &'static str {
    "echo CARRIER=$(cat /sys/class/net/eth0/carrier)\n\
     echo RX_PACKETS=$(cat /sys/class/net/eth0/statistics/rx_packets)\n\
     echo TX_PACKETS=$(cat /sys/class/net/eth0/statistics/tx_packets)\n\
     echo BEGIN-DMESG; dmesg; echo END-DMESG\n"
}

/// Guest shell lines: `ping -c N` to `ip`, output in section `tag`, after first waiting
/// (up to ~20 tries) for one answer, since the peer may still be booting.
pub fn guest_ping(tag: &str, ip: &str, n: u32) -> String {
    guest_ping_sized(tag, ip, n, 56)
}

/// [`guest_ping`] with `size` bytes of ICMP payload.
pub fn guest_ping_sized(tag: &str, ip: &str, n: u32, size: u32) -> String {
    format!(
        "i=0; until ping -c 1 -W 1 -s {size} {ip} >/dev/null 2>&1 || [ $i -ge 20 ]; do i=$((i+1)); done\n\
         echo BEGIN-{tag}; ping -c {n} -W 2 -s {size} {ip}; echo END-{tag} rc=$?\n"
    )
}
