//! The README's shell examples, run as written.
//!
//! * Every `nic-emu-cli` line of every ```sh and ```console block parses: a server line
//!   with `--print-config` appended exits 0 (options, backend spec and files are good), a
//!   `ctl` line reaches the point of connecting (clap accepted it). No root needed.
//! * Every QEMU line that attaches nic-emu keeps QEMU's own NIC out (`-nic none` or
//!   `-nodefaults`), and the tap example's address is the one the test guest pings.
//! * As root, in a sandbox of its own (new network and mount namespaces, private /tmp and
//!   /run, so the README's paths, ports and tap0 are used as they are): the blocks of
//!   "A QEMU guest with an e1000 on a tap" (nic-emu-cli and `ip addr`), "Two VMs on one
//!   wire", "Networking without root" (the nic-emu-cli line), "Any number of VMs",
//!   "Replaying a capture", "A worse wire", "The card itself", "A tap without root"
//!   (`sudo` a shim, as the test is root; contrib/open-tap drops to `nobody`) run, every
//!   nic-emu-cli stays up until SIGTERM and then exits 0; the "Steering a running
//!   nic-emu" console session runs command by command and each output has the shape the
//!   README shows.
//!
//! Not run here: QEMU and `scripts/boot-guest.sh` lines (tests/e2e_basics/readme.rs boots the
//! tap example's guest), `passt` (tests/e2e_networking/networking.rs), `systemd-socket-activate`
//! (tests/e2e_faults/control.rs), `cargo build`/`cargo run` lines (CI's build steps) and
//! `scripts/build-deb.sh` with `apt install` (scripts/package-check.sh in CI).
#![cfg(feature = "cli")]

use crate::support;
use crate::support::readme;

use std::process::Command;

use readme::*;

const BIN: &str = env!("CARGO_BIN_EXE_nic-emu-cli");

/// A pcap file with one Ethernet frame, for the replay example's `capture.pcap`.
fn write_capture(path: &std::path::Path) {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    let frame = [
        [0x02, 0, 0, 0, 0, 1].as_slice(),
        &[0x02, 0, 0, 0, 0, 2],
        &[0x08, 0x06],
        &[0u8; 46],
    ]
    .concat();
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    f.extend_from_slice(&frame);
    std::fs::write(path, f).unwrap();
}

/// Every README command line that starts with `nic-emu-cli` (`$ ` stripped), with the
/// heading it is under.
fn cli_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in blocks() {
        let cmds: Vec<String> = match b.lang.as_str() {
            "sh" => commands(&b),
            "console" => b
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix("$ "))
                .map(str::to_string)
                .collect(),
            _ => continue,
        };
        for c in cmds {
            if c.starts_with("nic-emu-cli ") {
                out.push((b.heading.clone(), c));
            }
        }
    }
    out
}

#[test]
fn every_nic_emu_cli_line_parses() {
    let lines = cli_lines();
    assert!(lines.len() >= 15, "too few README lines found: {lines:?}");
    let dir = workdir("parse");
    write_capture(&dir.join("capture.pcap"));
    for (heading, line) in lines {
        let mut w = words(&line);
        if w.last().is_some_and(|l| l == "&") {
            w.pop();
        }
        // Shell plumbing after the command (`| grep ...`) is not ours.
        if let Some(i) = w.iter().position(|x| x == "|") {
            w.truncate(i);
        }
        let args = &w[1..];
        if args.first().is_some_and(|a| a == "ctl") {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend(["--timeout", "1"]);
            let o = Command::new(BIN)
                .args(&a)
                .current_dir(&dir)
                .output()
                .unwrap();
            let e = String::from_utf8_lossy(&o.stderr);
            // Exit 2 is clap's usage error; anything else means the line was understood
            // (here the control socket is missing: exit 1 "cannot connect").
            assert_ne!(o.status.code(), Some(2), "{heading}: `{line}`: {e}");
            continue;
        }
        let o = Command::new(BIN)
            .args(args)
            .arg("--print-config")
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{heading}: `{line} --print-config` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// QEMU adds an e1000 of its own (as eth0, with QEMU's default MAC) unless told not to:
/// every README QEMU line that attaches nic-emu says `-nic none` (or `-nodefaults`).
/// The tap example's address is in the test guest's subnet, and the boot-guest.sh line
/// pings it.
#[test]
fn qemu_lines_keep_qemus_own_nic_out_and_the_guest_pings_the_tap() {
    let mut qemu = 0;
    for b in blocks().iter().filter(|b| b.lang == "sh") {
        for c in commands(b) {
            if c.starts_with("qemu-system-x86_64") && c.contains("vfio-user-pci") {
                qemu += 1;
                let w = words(&c);
                let none = w.windows(2).any(|p| p[0] == "-nic" && p[1] == "none");
                assert!(
                    none || w.iter().any(|x| x == "-nodefaults"),
                    "{}: QEMU adds its own NIC: {c}",
                    b.heading
                );
            }
        }
    }
    assert!(qemu >= 2, "README QEMU lines with vfio-user-pci: {qemu}");

    let tap = block("A QEMU guest with an e1000 on a tap", "sh");
    let ip_line = commands(&tap)
        .into_iter()
        .find(|c| c.starts_with("ip addr add"))
        .expect("the tap example sets an address");
    let host = words(&ip_line)[3].clone();
    let host_ip = host.split('/').next().unwrap().to_string();
    let boot = blocks()
        .into_iter()
        .filter(|b| b.heading == tap.heading && b.lang == "sh")
        .flat_map(|b| commands(&b))
        .find(|c| c.starts_with("scripts/boot-guest.sh"))
        .expect("the tap example boots the test guest");
    assert!(
        boot.contains(&format!("ping -c3 {host_ip}")),
        "boot-guest.sh line does not ping {host_ip}: {boot}"
    );
    // boot-guest.sh's guest address, unless the line sets one: same /24 as the tap.
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/boot-guest.sh"),
    )
    .unwrap();
    let guest = words(&boot)
        .windows(2)
        .find(|p| p[0] == "--guest-ip")
        .map(|p| p[1].clone())
        .unwrap_or_else(|| {
            script
                .split("GUESTIP=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap()
                .to_string()
        });
    let net = |a: &str| a.rsplit_once('.').unwrap().0.to_string();
    assert_eq!(
        net(&guest),
        net(&host_ip),
        "guest {guest} and tap {host} are not on one /24"
    );
}

fn can_run_as_root(test: &str) -> bool {
    let unshare = Command::new("unshare")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    support::can_run(test, support::is_root(), "needs root (namespaces, tap)")
        && support::can_run(test, unshare, "needs unshare (util-linux)")
}

/// Run the `nic-emu-cli` lines of the ```sh block under `heading` (each in the
/// background), then its other lines that `also` accepts (e.g. `ip addr add`), check
/// every server is still up, stop them with SIGTERM and return their logs. With
/// `one_at_a_time` the lines are alternatives (same default socket): each is started,
/// checked and stopped before the next.
fn run_block(heading: &str, also: impl Fn(&str) -> bool, one_at_a_time: bool) -> String {
    let b = block(heading, "sh");
    let dir = workdir(&heading[..heading.len().min(12)].replace(' ', "_"));
    write_capture(&dir.join("capture.pcap"));
    let mut script = String::from(SERVE_FNS);
    let mut n = 0;
    let mut rest = Vec::new();
    for c in commands(&b) {
        if c.starts_with("nic-emu-cli ") {
            let line = c.trim_end_matches('&').trim_end();
            script.push_str(&format!("serve {n} {}\n", sh_quote(line)));
            if one_at_a_time {
                script.push_str(&format!("up {n}\nstop_all\nunset 'PIDS[{n}]'\n"));
            }
            n += 1;
        } else if also(&c) {
            rest.push(c);
        }
    }
    assert!(n > 0, "{heading}: no nic-emu-cli line");
    script.push_str("sleep 1\n");
    for c in rest {
        script.push_str(&format!("{c}\n"));
    }
    if !one_at_a_time {
        for i in 0..n {
            script.push_str(&format!("up {i}\n"));
        }
        script.push_str("stop_all\n");
    }
    let o = in_sandbox(&dir, &script);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{heading}:\n{out}");
    out
}

#[test]
fn readme_blocks_run_as_written() {
    const T: &str = "readme_blocks_run_as_written";
    if !can_run_as_root(T) {
        return;
    }
    let log = run_block(
        "A QEMU guest with an e1000 on a tap",
        |c| c.starts_with("ip "),
        false,
    );
    assert!(log.contains("tap tap0") || log.contains("tap0"), "{log}");
    assert!(log.contains("listening on /tmp/nic-emu.sock"), "{log}");

    let log = run_block("Two VMs on one wire", |_| false, false);
    assert!(
        log.contains("/tmp/a.sock") && log.contains("/tmp/b.sock"),
        "{log}"
    );

    // passt itself is the rig's (tests/e2e_networking/networking.rs); nic-emu reconnects meanwhile.
    let log = run_block("Networking without root", |_| false, false);
    assert!(log.contains("stream unix:/tmp/passt.sock"), "{log}");

    let log = run_block("Any number of VMs on one segment", |_| false, false);
    assert_eq!(log.matches("joined").count(), 2, "{log}");

    let log = run_block("Replaying a capture into a VM", |_| false, false);
    assert!(log.contains("capture.pcap"), "{log}");

    let log = run_block("A worse wire", |_| false, true);
    assert!(log.contains("joined") && log.contains("tap0"), "{log}");

    let log = run_block(
        "The card itself: model, EEPROM file, link timing",
        |_| false,
        false,
    );
    assert!(
        log.contains("82545EM (MAC") && log.contains("EEPROM card0.eeprom"),
        "{log}"
    );
}

/// "A tap without root", both blocks, as written, as root in the sandbox: `sudo` is a
/// shim that runs the command (the test is root already), so `$(id -un)` is root;
/// contrib/open-tap drops to `nobody`, which reaches nic-emu-cli through a copy on PATH
/// in the sandbox's /tmp. (tests/e2e_basics/tap_rootless.rs runs nic-emu-cli itself as
/// `nobody` on a tap of its own, with a guest.)
#[test]
fn readme_tap_without_root_runs_as_written() {
    const T: &str = "readme_tap_without_root_runs_as_written";
    if !can_run_as_root(T) {
        return;
    }
    let blocks: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.heading == "A tap without root" && b.lang == "sh")
        .collect();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let dir = workdir("rootless");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::os::unix::fs::symlink(root.join("contrib"), dir.join("contrib")).unwrap();
    let mut script = String::from(SERVE_FNS);
    script.push_str(&format!(
        "mkdir -p /tmp/bin
printf '#!/bin/sh\\nexec \"$@\"\\n' >/tmp/bin/sudo
         cp {} /tmp/bin/
chmod 755 /tmp/bin /tmp/bin/sudo /tmp/bin/nic-emu-cli
         export PATH=/tmp/bin:$PATH
",
        sh_quote(BIN)
    ));
    let mut n = 0;
    for b in &blocks {
        for c in commands(b) {
            if c.contains("nic-emu-cli ") {
                // Each line serves on /tmp/nic-emu.sock: one at a time.
                script.push_str(&format!(
                    "serve {n} {}
up {n}
stop_all
unset 'PIDS[{n}]'
",
                    sh_quote(&c)
                ));
                n += 1;
            } else {
                script.push_str(&format!("{c}\n"));
            }
        }
    }
    assert_eq!(n, 2, "two nic-emu-cli lines");
    let o = in_sandbox(&dir, &script);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{log}");
    assert!(log.contains("tap tap0: attached (IFF_TAP"), "{log}");
    assert!(
        log.contains("tap tap0: attached through inherited fd="),
        "{log}"
    );
}

/// The control-socket session, command by command: each output has the README's shape
/// (`...` stands for anything, numbers for any number).
#[test]
fn readme_control_session_runs_as_written() {
    const T: &str = "readme_control_session_runs_as_written";
    if !can_run_as_root(T) {
        return;
    }
    let b = block("Steering a running nic-emu", "console");
    // (command, expected output)
    let mut steps: Vec<(String, String)> = Vec::new();
    for l in &b.lines {
        if let Some(c) = l.strip_prefix("$ ") {
            steps.push((c.to_string(), String::new()));
        } else if let Some(last) = steps.last_mut() {
            last.1.push_str(l);
            last.1.push('\n');
        }
    }
    assert!(steps.len() >= 6, "{steps:?}");
    let (server, rest) = steps.split_first().unwrap();
    assert!(
        server.0.ends_with('&'),
        "the session starts a server: {}",
        server.0
    );
    let dir = workdir("ctl");
    let mut script = String::from(SERVE_FNS);
    script.push_str(&format!(
        "serve 0 {}\nsleep 1.5\nup 0 0\n",
        sh_quote(server.0.trim_end_matches('&').trim_end())
    ));
    for (i, (cmd, _)) in rest.iter().enumerate() {
        script.push_str(&format!(
            "st=0; ( {cmd} ) >out-{i}.txt 2>err-{i}.txt || st=$?; echo $st >rc-{i}.txt\n"
        ));
    }
    script.push_str("stop_all\n");
    let o = in_sandbox(&dir, &script);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{log}");
    for (i, (cmd, want)) in rest.iter().enumerate() {
        let got = std::fs::read_to_string(dir.join(format!("out-{i}.txt"))).unwrap();
        let err = std::fs::read_to_string(dir.join(format!("err-{i}.txt"))).unwrap();
        let rc = std::fs::read_to_string(dir.join(format!("rc-{i}.txt"))).unwrap();
        // Only an `error` reply exits non-zero (as the README's `raw nonsense` shows).
        let want_rc = if want.contains("\"error\"") { "1" } else { "0" };
        assert_eq!(rc.trim(), want_rc, "`{cmd}` exit status; stderr: {err}");
        assert!(
            shape_matches(want, &got),
            "`{cmd}` printed\n{got}\nwhich does not have the README's shape\n{want}"
        );
    }
}

#[test]
fn shape_matching_is_strict_where_it_should_be() {
    assert!(shape_matches("a: 1\nb: 2\n", "a: 17\nb: 0\n"));
    assert!(shape_matches(
        "{\"x\":{...},\"y\":1}\n",
        "{\"x\":{\"q\":[1,2]},\"y\":3}\n"
    ));
    assert!(shape_matches("...\n", "anything\nat all\n"));
    assert!(!shape_matches("a: 1\n", "b: 1\n"));
    assert!(!shape_matches("link_up: false\n", "link_up: true\n"));
    assert!(!shape_matches("a\n", "a\nb\n"));
}
