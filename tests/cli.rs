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
