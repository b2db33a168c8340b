//! nic-emu-cli as a user runs it: help, argument and configuration errors, and a real
//! start/stop on a socket.
#![cfg(feature = "cli")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nic-emu-cli");

/// A fresh empty directory (so no ./backends.toml is picked up by accident).
fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("nic-emu-cli-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run with a config file containing `text`; expect failure; return stderr.
fn config_error(text: &str) -> (String, String) {
    let dir = scratch();
    let file = dir.join("my-backends.toml");
    std::fs::write(&file, text).unwrap();
    let o = run_in(
        &dir,
        &["--config", file.to_str().unwrap(), "--print-config"],
    );
    assert!(!o.status.success(), "config {text:?} should be rejected");
    (stderr(&o), file.display().to_string())
}

#[test]
fn help_documents_every_option_with_examples() {
    let o = run_in(&scratch(), &["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--config",
        "--backend",
        "--socket",
        "--mac",
        "--record",
        "--link-down",
        "--model",
        "--eeprom",
        "--autoneg-ms",
        "82545em",
        "--stats-interval",
        "--print-config",
        "--verbose",
        "--quiet",
        "--version",
        "Examples:",
        "tap,ifname=tap0",
        "udp,local=",
        "pcap,replay=",
        "loopback",
        "/tmp/nic-emu.sock",
        "backends.toml",
        "SIGTERM",
        "--user",
        "--group",
        "--sandbox",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}:\n{help}");
    }
}

#[test]
fn bad_mac_names_the_option() {
    let o = run_in(
        &scratch(),
        &["--mac", "52:54:00:zz:00:01", "--print-config"],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--mac") && e.contains("52:54:00:zz:00:01"),
        "{e}"
    );
}

#[test]
fn bad_model_and_autoneg_name_the_option() {
    let o = run_in(&scratch(), &["--model", "82599", "--print-config"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--model") && e.contains("82599") && e.contains("82545em"),
        "{e}"
    );
    let o = run_in(&scratch(), &["--autoneg-ms", "100000", "--print-config"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--autoneg-ms"), "{}", stderr(&o));
    let o = run_in(
        &scratch(),
        &["--model", "82545EM", "--autoneg-ms", "0", "--print-config"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("model 82545em, autonegotiation 0 ms"), "{out}");
}

#[test]
fn a_bad_eeprom_image_is_an_error_naming_the_file_and_the_problem() {
    let dir = scratch();
    std::fs::write(dir.join("card.eeprom"), [0u8; 64]).unwrap();
    let sock = dir.join("s.sock");
    let o = run_in(
        &dir,
        &[
            "--eeprom",
            "card.eeprom",
            "--socket",
            sock.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("card.eeprom") && e.contains("64 bytes") && e.contains("128"),
        "{e}"
    );
    assert!(!sock.exists(), "no server started");
    // A missing file is created with the card's image, whose MAC is --mac's.
    let mut child = spawn_in(
        &dir,
        &[
            "--eeprom",
            "new.eeprom",
            "--mac",
            "52:54:00:aa:bb:cc",
            "--socket",
            sock.to_str().unwrap(),
        ],
    );
    wait_exists(&sock, &mut child);
    let (status, _) = sigterm_and_wait(&mut child);
    assert!(status.success());
    let img = std::fs::read(dir.join("new.eeprom")).unwrap();
    assert_eq!(img.len(), 128);
    assert_eq!(&img[..6], &[0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
    let sum = img.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    assert_eq!(sum, 0xBABA);
}

#[test]
fn unknown_backend_name_lists_what_is_defined() {
    let o = run_in(&scratch(), &["--backend", "nosuch", "--print-config"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("`nosuch`") && e.contains("built-in defaults"),
        "{e}"
    );

    let dir = scratch();
    let file = dir.join("b.toml");
    std::fs::write(&file, "[backends.wire]\nkind = \"loopback\"\n").unwrap();
    let o = run_in(
        &dir,
        &[
            "-c",
            file.to_str().unwrap(),
            "-b",
            "wirez",
            "--print-config",
        ],
    );
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("`wirez`") && e.contains("wire") && e.contains("b.toml"),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let cases = [
        ("colour = \"blue\"\n", "`colour`"),
        ("[device]\nlink_up = \"yes\"\n", "`device.link_up`"),
        ("[device]\nmac = \"52:54\"\n", "`device.mac`"),
        (
            "[backends.w]\nkind = \"udp\"\nlocal = 7001\n",
            "`backends.w.local`",
        ),
        ("[backends.w]\nkind = \"udp\"\n", "`local`"),
        (
            "[backends.w]\nkind = \"loopback\"\nspeed = 10\n",
            "`backends.w.speed`",
        ),
        ("[backends.w]\nkind = \"warp\"\n", "warp"),
        (
            "default = \"gone\"\n[backends.w]\nkind = \"loopback\"\n",
            "`gone`",
        ),
    ];
    for (text, key) in cases {
        let (e, file) = config_error(text);
        assert!(
            e.contains(key),
            "error for {text:?} does not name {key}: {e}"
        );
        assert!(
            e.contains(&file),
            "error for {text:?} does not name the file: {e}"
        );
    }
    let o = run_in(&scratch(), &["--config", "/nonexistent/x.toml"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/x.toml"));
}

#[test]
fn documented_backends_toml_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("backends.toml");
    let o = run_in(
        &scratch(),
        &["--config", file.to_str().unwrap(), "--print-config"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("backend loopback: loopback"), "{out}");
    // Inline spec and overrides show in the effective settings.
    let o = run_in(
        &scratch(),
        &[
            "-b",
            "udp,local=127.0.0.1:7001",
            "--mac",
            "02:00:00:00:00:09",
            "--record",
            "r.pcap",
            "--print-config",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("udp,local=127.0.0.1:7001,record=r.pcap"),
        "{out}"
    );
    assert!(out.contains("02:00:00:00:00:09"), "{out}");
}

/// What `--print-config` prints loads back as a configuration, even when a value it shows
/// in its comment lines holds a newline (the fuzzing of issue 15 found the file part;
/// the effective-settings comments are checked here).
#[test]
fn printed_config_loads_back_even_with_a_newline_in_the_socket_path() {
    let dir = scratch();
    let o = run_in(&dir, &["--socket", "/tmp/a\nsocket = 1", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = dir.join("printed.toml");
    std::fs::write(&printed, &o.stdout).unwrap();
    let again = run_in(
        &dir,
        &["--config", printed.to_str().unwrap(), "--print-config"],
    );
    assert!(
        again.status.success(),
        "printed config does not load back: {}\n{}",
        stderr(&again),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn spawn_in(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_exists(p: &Path, child: &mut Child) {
    let t = Instant::now();
    while !p.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut e = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut e);
            panic!("nic-emu-cli exited early ({status}): {e}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm_and_wait(child: &mut Child) -> (std::process::ExitStatus, String) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut e = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut e);
            return (status, e);
        }
        if t.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("nic-emu-cli did not exit within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn starts_with_loopback_and_stops_cleanly_on_sigterm() {
    let dir = scratch();
    let sock = dir.join("nic.sock");
    let rec = dir.join("rec.pcap");
    let mut child = spawn_in(
        &dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--record",
            rec.to_str().unwrap(),
        ],
    );
    wait_exists(&sock, &mut child);
    // A second server on the same socket is refused while the first is alive.
    let o = run_in(&dir, &["--socket", sock.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already listening"), "{}", stderr(&o));

    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "exit status {status}: {log}");
    assert!(!sock.exists(), "socket file left behind");
    assert!(
        log.contains("listening on") && log.contains(sock.to_str().unwrap()),
        "{log}"
    );
    assert!(log.contains("loopback"), "{log}");
    assert!(log.contains("stopped after"), "no exit summary: {log}");
    // The recording was flushed: at least a pcap global header.
    let pcap = std::fs::read(&rec).unwrap();
    assert!(pcap.len() >= 24, "recording has {} bytes", pcap.len());
    let magic = u32::from_le_bytes(pcap[..4].try_into().unwrap());
    assert!(
        [0xa1b2_c3d4, 0xa1b2_3c4d, 0x0a0d_0d0a].contains(&magic),
        "not a pcap file: {magic:#x}"
    );
}

#[test]
fn stale_socket_file_is_replaced() {
    let dir = scratch();
    let sock = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let mut child = spawn_in(&dir, &["-q", "--socket", sock.to_str().unwrap()]);
    // Wait until the new server accepts connections on the same path.
    let t = Instant::now();
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    assert!(!sock.exists());
}

#[test]
fn stats_interval_logs_counters_periodically() {
    let dir = scratch();
    let sock = dir.join("s.sock");
    let mut child = spawn_in(
        &dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--stats-interval",
            "1",
            "--link-down",
        ],
    );
    wait_exists(&sock, &mut child);
    std::thread::sleep(Duration::from_millis(1600));
    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    assert!(
        log.contains("stats: tx 0 frames"),
        "no periodic stats line: {log}"
    );
    assert!(log.contains("link down"), "{log}");
}

/// Every `--long` option a help text lists.
fn long_options(help: &str) -> Vec<String> {
    let mut v: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_lowercase())
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions are indented further than the names.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// `--help` of `path` and of every subcommand below it: (command path, help text).
fn help_tree(path: &[String]) -> Vec<(Vec<String>, String)> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let o = run_in(&scratch(), &args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut all = vec![(path.to_vec(), help.clone())];
    for sub in subcommands(&help) {
        let mut p = path.to_vec();
        p.push(sub);
        all.extend(help_tree(&p));
    }
    all
}

fn generated(what: &str) -> String {
    let o = run_in(&scratch(), &["generate", what]);
    assert!(o.status.success(), "generate {what}: {}", stderr(&o));
    String::from_utf8(o.stdout).expect("generated text is UTF-8")
}

/// The man page and the completion scripts come from the same clap definitions as
/// `--help`: every long option and subcommand that any `--help` (the program's, `ctl`'s
/// and each control request's) lists is in the page and in every script.
#[test]
fn man_page_and_completions_cover_every_option_of_help() {
    let tree = help_tree(&[]);
    assert!(tree.len() >= 12, "help tree too small: {tree:?}");
    let paths: Vec<String> = tree.iter().map(|(p, _)| p.join(" ")).collect();
    for want in [
        "ctl",
        "ctl link",
        "ctl stats",
        "ctl record start",
        "ctl impair set",
    ] {
        assert!(paths.iter().any(|p| p == want), "no `{want}` in {paths:?}");
    }
    // roff writes a hyphen as \- (and the page is read with the escapes undone).
    let man = generated("man").replace("\\-", "-");
    let bash = generated("bash");
    let zsh = generated("zsh");
    let fish = generated("fish");
    assert!(man.contains(".TH nic-emu-cli 1"), "no title line");
    for (path, help) in &tree {
        let here = format!("`nic-emu-cli {}`", path.join(" "));
        if let Some(last) = path.last() {
            let full = format!("nic-emu-cli {}", path.join(" "));
            assert!(man.contains(&full), "man page has no section for {here}");
            assert!(bash.contains(last.as_str()), "bash: no {here}");
            assert!(zsh.contains(last.as_str()), "zsh: no {here}");
            assert!(fish.contains(last.as_str()), "fish: no {here}");
        }
        for opt in long_options(help) {
            let bare = &opt[2..];
            assert!(man.contains(&opt), "man page lacks {opt} of {here}");
            assert!(bash.contains(&opt), "bash completion lacks {opt} of {here}");
            assert!(zsh.contains(&opt), "zsh completion lacks {opt} of {here}");
            // clap_complete's fish script completes two levels of subcommands
            // (`ctl record`), not the options of a third (`ctl record start --max-bytes`).
            if path.len() < 3 {
                assert!(
                    fish.contains(&format!("-l {bare}")),
                    "fish completion lacks {opt} of {here}"
                );
            }
        }
    }
    // The bash script is valid bash.
    let dir = scratch();
    let f = dir.join("nic-emu-cli.bash");
    std::fs::write(&f, &bash).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
}

/// A group (multicast or broadcast) or all-zero MAC is refused, on the command line and
/// in a configuration file, before anything starts: the guest's driver would refuse
/// the card.
#[test]
fn group_and_zero_macs_are_refused() {
    for mac in [
        "01:00:5e:00:00:01",
        "ff:ff:ff:ff:ff:ff",
        "53:54:00:00:00:01",
        "00:00:00:00:00:00",
    ] {
        let o = run_in(&scratch(), &["--mac", mac, "--print-config"]);
        assert_eq!(o.status.code(), Some(1), "--mac {mac} accepted");
        let e = stderr(&o);
        assert!(e.contains("--mac") && e.contains(mac), "{e}");
    }
    let (e, file) = config_error("[device]\nmac = \"33:33:00:00:00:01\"\n");
    assert!(
        e.contains("device.mac") && e.contains(&file) && e.contains("multicast"),
        "{e}"
    );
}

/// The default MAC is not QEMU's default (QEMU adds an e1000 with 52:54:00:12:34:56
/// unless told `-nic none`); choosing QEMU's address anyway gets a warning that says
/// what to do.
#[test]
fn default_mac_differs_from_qemus_and_qemus_is_warned_about() {
    let o = run_in(&scratch(), &["--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("# effective: mac 52:54:00:e1:00:00,"), "{out}");

    for (mac, warned) in [(None, false), (Some("52:54:00:12:34:56"), true)] {
        let dir = scratch();
        let sock = dir.join("m.sock");
        let mut args = vec!["--socket", sock.to_str().unwrap()];
        if let Some(m) = mac {
            args.extend(["--mac", m]);
        }
        let mut child = spawn_in(&dir, &args);
        wait_exists(&sock, &mut child);
        let (status, log) = sigterm_and_wait(&mut child);
        assert!(status.success(), "{log}");
        assert_eq!(log.contains("-nic none"), warned, "{mac:?}: {log}");
    }
}

/// An inline spec that does not parse is reported alone (its own error, the keys its
/// kind takes), not buried in "not defined ... and not an inline spec".
#[test]
fn inline_spec_errors_come_alone() {
    let o = run_in(
        &scratch(),
        &["--backend", "tap,ifnam=tap0", "--print-config"],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("inline backend spec `tap,ifnam=tap0`")
            && e.contains("unknown key `ifnam`")
            && e.contains("`ifname`"),
        "{e}"
    );
    assert!(
        !e.contains("is not defined") && !e.contains("built-in defaults"),
        "{e}"
    );
    let o = run_in(&scratch(), &["--backend", "udp", "--print-config"]);
    let e = stderr(&o);
    assert!(
        e.contains("inline backend spec `udp`") && e.contains("`local`"),
        "{e}"
    );
    assert!(e.lines().count() == 1 && e.len() < 200, "{e}");
    // A plain word is taken for a backend name and still lists the names defined.
    let o = run_in(&scratch(), &["--backend", "wire", "--print-config"]);
    let e = stderr(&o);
    assert!(
        e.contains("`wire` is not defined") && e.contains("defined: loopback"),
        "{e}"
    );
}

/// `--print-config` checks what it can without opening the backend: a missing replay
/// file or a recording into a missing directory is an error (status 1) naming it.
#[test]
fn print_config_fails_on_a_missing_replay_file() {
    let dir = scratch();
    let o = run_in(
        &dir,
        &[
            "--backend",
            "pcap,replay=nonexistent.pcap",
            "--print-config",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("replay file nonexistent.pcap"), "{e}");
    let o = run_in(
        &dir,
        &["--record", "/nonexistent-dir/r.pcap", "--print-config"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent-dir"), "{}", stderr(&o));
    // Present: fine.
    std::fs::write(dir.join("in.pcap"), b"").unwrap();
    let o = run_in(
        &dir,
        &["--backend", "pcap,replay=in.pcap", "--print-config"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Relative `record`, `replay` and `unix:` paths in a configuration file are relative to
/// the file's directory (a unit runs `--config /etc/nic-emu/X.toml` from `/`), while
/// inline specs on the command line stay relative to the working directory.
#[test]
fn config_paths_are_relative_to_the_config_file() {
    let dir = scratch();
    let conf_dir = dir.join("etc");
    std::fs::create_dir(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("cap.pcap"), b"").unwrap();
    let file = conf_dir.join("n.toml");
    std::fs::write(
        &file,
        "default = \"r\"\n[backends.r]\nkind = \"pcap\"\nreplay = \"cap.pcap\"\n\
         record = \"out/r.pcap\"\n[backends.s]\nkind = \"stream\"\nconnect = \"unix:p.sock\"\n",
    )
    .unwrap();
    std::fs::create_dir(conf_dir.join("out")).unwrap();
    let elsewhere = scratch();
    let o = run_in(
        &elsewhere,
        &["--config", file.to_str().unwrap(), "--print-config"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let c = conf_dir.display();
    for want in [
        format!("replay = \"{c}/cap.pcap\""),
        format!("record = \"{c}/out/r.pcap\""),
        format!("connect = \"unix:{c}/p.sock\""),
    ] {
        assert!(out.contains(&want), "no {want} in:\n{out}");
    }
    // The same file read from its own directory with a relative --config.
    let o = run_in(&conf_dir, &["--config", "n.toml", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Inline: the working directory (`elsewhere` has no cap.pcap).
    let o = run_in(
        &elsewhere,
        &["-b", "pcap,replay=cap.pcap", "--print-config"],
    );
    assert_eq!(o.status.code(), Some(1));
}

/// A start logs at info only what the user set up: the haltpoll note about this
/// machine's idle CPUs is a debug line (shown with -v where it applies).
#[test]
fn the_halt_poll_note_is_a_debug_line() {
    let halts_at_once =
        std::fs::read_to_string("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
            .is_ok_and(|v| v.trim() == "0");
    for (verbose, shown) in [(false, false), (true, halts_at_once)] {
        let dir = scratch();
        let sock = dir.join("h.sock");
        let mut args = vec!["--socket", sock.to_str().unwrap()];
        if verbose {
            args.push("-v");
        }
        let mut child = spawn_in(&dir, &args);
        wait_exists(&sock, &mut child);
        let (status, log) = sigterm_and_wait(&mut child);
        assert!(status.success(), "{log}");
        assert_eq!(
            log.contains("guest_halt_poll_ns"),
            shown,
            "-v {verbose}: {log}"
        );
        if !verbose {
            assert!(
                log.lines()
                    .all(|l| l.contains(" INFO ") || l.contains(" WARN ")),
                "{log}"
            );
        }
    }
}

/// After each client nic-emu logs the device's counters as text, not a Rust debug dump.
#[test]
fn per_client_summary_is_readable() {
    let dir = scratch();
    let sock = dir.join("c.sock");
    let mut child = spawn_in(&dir, &["--socket", sock.to_str().unwrap()]);
    wait_exists(&sock, &mut child);
    // A client that connects and leaves without a word.
    drop(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("after client #1: "))
        .unwrap_or_else(|| panic!("no per-client summary: {log}"));
    assert!(
        line.contains("after client #1: tx 0 frames / 0 bytes"),
        "{line}"
    );
    assert!(
        !line.contains("Metrics {") && !line.contains("reg_reads"),
        "{line}"
    );
}

/// `ctl stats --prometheus` prints the exposition text itself: every line a comment or
/// `name{labels} value`, as /metrics serves it.
#[test]
fn ctl_stats_prometheus_is_exposition_text() {
    let dir = scratch();
    let sock = dir.join("p.sock");
    let ctl = dir.join("p.ctl");
    let mut child = spawn_in(
        &dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--control",
            ctl.to_str().unwrap(),
        ],
    );
    wait_exists(&ctl, &mut child);
    let o = run_in(
        &dir,
        &[
            "ctl",
            "--control",
            ctl.to_str().unwrap(),
            "stats",
            "--prometheus",
        ],
    );
    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("# HELP nic_emu_"), "{text}");
    assert!(text.contains("\nnic_emu_rx_frames_total 0\n"), "{text}");
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            !metric.is_empty()
                && metric
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && (name == metric || name.ends_with('}')),
            "bad metric name in {line:?}"
        );
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
    }
}

/// `scripts/demo.sh --help` prints its usage and starts nothing (no root needed).
#[test]
fn demo_help_prints_usage() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let t = Instant::now();
    let o = Command::new("bash")
        .arg(&script)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Usage: sudo scripts/demo.sh") && out.contains("Exit status"),
        "{out}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "--help ran something"
    );
    let o = Command::new("bash")
        .arg(&script)
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
}

/// The vfio-user backend conventions: `--socket-path` names the socket, `--fd` an
/// inherited one, and the two together are an error.
#[test]
fn fd_and_socket_path_exclude_each_other() {
    let o = run_in(
        &scratch(),
        &[
            "--fd",
            "3",
            "--socket-path",
            "/tmp/x.sock",
            "--print-config",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = run_in(
        &scratch(),
        &["--socket-path", "/tmp/x.sock", "--print-config"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("socket /tmp/x.sock"));
}

#[test]
fn an_unknown_user_or_group_is_an_error_naming_the_option() {
    let o = run_in(
        &scratch(),
        &["--user", "no-such-user-here", "--socket", "x.sock"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--user no-such-user-here: no such user"),
        "{}",
        stderr(&o)
    );
    let o = run_in(
        &scratch(),
        &["--group", "no-such-group-here", "--socket", "x.sock"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--group no-such-group-here"),
        "{}",
        stderr(&o)
    );
}

fn ctl(dir: &Path, control: &Path, args: &[&str]) -> Output {
    let mut a = vec!["ctl", "--control", control.to_str().unwrap()];
    a.extend_from_slice(args);
    run_in(dir, &a)
}

/// Sandboxed (the default), nic-emu-cli opens no path for `record start`: `ctl` creates
/// the file and passes its descriptor; a raw request without one is refused with a
/// message saying why, and a failed start leaves no file behind.
#[test]
fn a_sandboxed_server_records_into_the_file_ctl_passes() {
    let dir = scratch();
    let sock = dir.join("s.sock");
    let control = dir.join("s.ctl");
    let mut child = spawn_in(
        &dir,
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--control",
            control.to_str().unwrap(),
        ],
    );
    wait_exists(&control, &mut child);
    let pcap = dir.join("w.pcap");
    let o = ctl(&dir, &control, &["record", "start", pcap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("recording: true"));
    let o = ctl(&dir, &control, &["record", "stop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(bytes.len(), 24, "a pcap header and no frame");
    assert_eq!(
        u32::from_le_bytes(bytes[..4].try_into().unwrap()),
        0xa1b2_c3d4
    );

    let raw = dir.join("raw.pcap");
    let req = format!(
        r#"{{"execute":"record","arguments":{{"action":"start","file":"{}"}}}}"#,
        raw.display()
    );
    let o = ctl(&dir, &control, &["raw", &req]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("runs sandboxed and cannot create"),
        "{}",
        stderr(&o)
    );
    assert!(!raw.exists());

    // A path ctl cannot create: it says so, and nothing is sent.
    let o = ctl(&dir, &control, &["record", "start", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("record:"), "{}", stderr(&o));

    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    assert!(log.contains("sandbox: running as"), "{log}");
    assert!(!log.contains("nic-emu: sandbox: system call"), "{log}");
}

/// With `--sandbox off` the server still creates the file itself for a raw request.
#[test]
fn without_the_sandbox_a_raw_record_start_creates_the_file() {
    let dir = scratch();
    let sock = dir.join("s.sock");
    let control = dir.join("s.ctl");
    let mut child = spawn_in(
        &dir,
        &[
            "--sandbox",
            "off",
            "--socket",
            sock.to_str().unwrap(),
            "--control",
            control.to_str().unwrap(),
        ],
    );
    wait_exists(&control, &mut child);
    let raw = dir.join("raw.pcap");
    let req = format!(
        r#"{{"execute":"record","arguments":{{"action":"start","file":"{}"}}}}"#,
        raw.display()
    );
    let o = ctl(&dir, &control, &["raw", &req]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(raw.exists());
    let (status, log) = sigterm_and_wait(&mut child);
    assert!(status.success(), "{log}");
    assert!(log.contains("sandbox off"), "{log}");
}
