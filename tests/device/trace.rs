//! The register and frame traces (src/device/trace.rs) on the fake bus: what the lines
//! say, and that the Linux driver's whole bring-up reads by register name.

use crate::support;

use std::sync::Mutex;

use nic_emu::device::regs::*;
use support::*;

struct Capture(Mutex<Vec<(String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "nic_emu::regs" || m.target() == "nic_emu::frames"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = r.args().to_string();
            self.0.lock().unwrap().push((r.target().to_string(), line));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn lines(target: &str) -> Vec<String> {
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == target)
        .map(|(_, l)| l.clone())
        .collect()
}

/// `R NAME ...` / `W NAME ...` with a datasheet name (arrays with an index).
fn named(line: &str) -> bool {
    let mut w = line.split(' ');
    let (Some(rw), Some(name)) = (w.next(), w.next()) else {
        return false;
    };
    let base = name.split('[').next().unwrap_or("");
    (rw == "R" || rw == "W")
        && !base.is_empty()
        && base
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && base.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

#[test]
fn traces_read_like_the_manual() {
    let _log = support::log_to(&CAPTURE);
    log::set_max_level(log::LevelFilter::Trace);
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, 8);
    g.wr(RCTL, 0x0400_8002);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    wire.inject(&frame([0xFF; 6], PEER, 0x0806, 46, 2));
    wire.inject(&frame([0x02, 0, 0, 0, 0, 9], PEER, 0x0800, 46, 3));
    g.advance_us(100);
    let icr = g.rd(ICR);
    g.wr(TDT, (g.tx_tail + 3) % 8);

    let regs = lines("nic_emu::regs");
    assert!(regs.len() > 500, "{} register lines", regs.len());
    let raw: Vec<&String> = regs.iter().filter(|l| !named(l)).collect();
    assert!(raw.is_empty(), "lines without a register name: {raw:?}");
    let has = |want: &str| {
        assert!(
            regs.iter().any(|l| l == want),
            "no {want:?} in the register trace; e.g. {:?}",
            regs.iter()
                .filter(|l| l.starts_with(&want[..6]))
                .take(5)
                .collect::<Vec<_>>()
        )
    };
    has("W RCTL 0x04008002 EN|BAM|BSIZE=2048|SECRC");
    has(&format!(
        "R ICR -> {icr:#010x} TXDW|TXQE|LSC|RXT0|TXD_LOW|INT_ASSERTED"
    ));
    has("W TDT 4 (3 descriptors queued)");
    has("W RDT 7 (7 descriptors free)");
    has("W MTA[127] 0x00000000");
    assert!(regs
        .iter()
        .any(|l| l.starts_with("W CTRL ") && l.contains("|RST")));
    assert!(regs
        .iter()
        .any(|l| l.starts_with("W EECD ") && l.contains("EE_REQ")));
    assert!(regs
        .iter()
        .any(|l| l.starts_with("W MDIC ") && l.contains("read PHY 1 reg 1")));

    let frames = lines("nic_emu::frames");
    assert!(
        frames
            .iter()
            .any(|l| l
                .starts_with("TX desc 0 @0x10000: legacy addr=0x100000 len=114 CMD=EOP|IFCS|RS")),
        "{frames:#?}"
    );
    assert!(
        frames.iter().any(|l| l.ends_with(
            "02:00:00:00:00:02 -> ff:ff:ff:ff:ff:ff type 0x0806: accepted: broadcast, RCTL.BAM=1 RCTL.MPE=0"
        )),
        "{frames:#?}"
    );
    assert!(
        frames.iter().any(|l| l.ends_with(
            "type 0x0800: dropped: unicast 02:00:00:00:00:09 matches no RAL/RAH with AV (RCTL.UPE=0)"
        )),
        "{frames:#?}"
    );
    // The guide quotes some of these lines.
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/DRIVER-DEVELOPMENT.md"
    ))
    .expect("docs/DRIVER-DEVELOPMENT.md");
    let quoted = doc
        .split_once("<!-- trace-example -->\n```text\n")
        .and_then(|(_, b)| b.split_once("```"))
        .expect("the guide's trace example")
        .0;
    for l in quoted.lines() {
        assert!(
            regs.iter().chain(&frames).any(|t| t == l),
            "the guide quotes {l:?}, which the trace does not have"
        );
    }
    // Off: nothing at all is produced.
    CAPTURE.0.lock().unwrap().clear();
    log::set_max_level(log::LevelFilter::Info);
    g.wr(RCTL, 0x0400_801A);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    assert!(CAPTURE.0.lock().unwrap().is_empty());
}
