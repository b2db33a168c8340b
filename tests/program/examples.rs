//! The Rust examples run and print what they claim: each is run with `cargo run
//! --example` (no default features, in a target directory of its own so the nested cargo
//! never waits on the outer build's lock) and its output checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `<target dir>/examples-run`, beside the outer build's own directories.
fn nested_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("examples-run")
}

/// Run an example; returns its standard output, failing the test if it failed.
fn run_example(name: &str) -> String {
    run_example_with(name, &[])
}

/// [`run_example`] with arguments.
fn run_example_with(name: &str, args: &[&str]) -> String {
    // One nested cargo at a time: two would only queue on the directory lock.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--no-default-features", "--example", name])
        .arg("--target-dir")
        .arg(nested_target_dir())
        .arg("--")
        .args(args)
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_lines(stdout: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            stdout.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn loopback_demo_loops_every_frame_back() {
    let out = run_example("loopback_demo");
    assert_lines(
        &out,
        &[
            "device up: mac 52:54:00:e1:00:00 (from the EEPROM), link up",
            "frame 0: sent 19 bytes, received 1 frame(s) of [60] bytes, contents match",
            "frame 2: sent 214 bytes, received 1 frame(s) of [214] bytes, contents match",
            "looped back: 3/3 frames",
            "metrics: tx_frames 3 tx_bytes 334 rx_frames 3 rx_bytes 334 rx_dropped 0 dma_errors 0",
            "statistics registers: GPTC 3 GPRC 3",
        ],
    );
    let irq = out
        .lines()
        .find_map(|l| l.strip_prefix("interrupts: "))
        .expect("interrupt line");
    assert!(irq.contains("TXDW") && irq.contains("RXT0"), "{irq}");
    assert!(!irq.starts_with("0 rising"), "{irq}");
}

#[test]
fn custom_backend_echoes_with_swapped_macs() {
    let out = run_example("custom_backend");
    assert_lines(
        &out,
        &[
            "received 0: 60 bytes from 02:00:00:00:00:0b to 52:54:00:00:00:0a: \"ping 0\"",
            "received 1: 60 bytes from 02:00:00:00:00:0b to 52:54:00:00:00:0a: \"ping 2\"",
            "echo peer: saw 3, echoed 2, ignored 1",
            "device: tx_frames 3 rx_frames 2 interrupts 2",
        ],
    );
}

#[test]
fn udp_flood_offers_what_it_says_at_the_rate_asked() {
    // The benchmark's sender (scripts/bench-e2e.sh --dpdk), to a local socket: 2000
    // datagrams/s for 0.5 s.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let dst = rx.local_addr().unwrap().to_string();
    let counter = std::thread::spawn(move || {
        let (mut n, mut buf) = (0u64, [0u8; 64]);
        // Until half a second of silence after the first datagram (or 60 s for none:
        // the nested cargo may build first).
        let start = std::time::Instant::now();
        loop {
            match rx.recv(&mut buf) {
                Ok(len) => {
                    assert_eq!(len, 18, "default payload: 18 bytes (a 64-byte frame)");
                    n += 1;
                }
                Err(_) if n > 0 || start.elapsed().as_secs() > 60 => return n,
                Err(_) => {}
            }
        }
    });
    let out = run_example_with("udp_flood", &[&dst, "2000", "0.5"]);
    let received = counter.join().unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("udp_flood: "))
        .expect(&out);
    let offered: u64 = line["udp_flood: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(line.contains(" 0 refused by the kernel"), "{line}");
    // Paced: rate x time at most (a sender starved near the end offers fewer).
    assert!((500..=1000).contains(&offered), "{line}");
    // Loopback may drop a few if the counting thread is starved; never more than sent.
    assert!(
        received <= offered && received >= offered * 9 / 10,
        "{received} received: {line}"
    );
}
