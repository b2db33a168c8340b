//! The worked session of docs/DRIVER-DEVELOPMENT.md, run: a first e1000 driver with the
//! three mistakes course drivers are known for, what nic-emu says about it, the fixes
//! one by one, and the quiet end. The guide quotes the lines this test produces between
//! `<!-- session:NAME -->` markers; the test fails when the two differ, so the guide
//! cannot rot.

use crate::support;

use std::sync::Mutex;

use nic_emu::device::lint::Severity;
use nic_emu::device::regs::*;
use support::*;

/// Collects the `nic_emu::lint` log lines as nic-emu-cli prints them (without the
/// timestamp).
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "nic_emu::lint"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("[{:<5} {}] {}", r.level(), r.target(), r.args());
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn take_lines() -> Vec<String> {
    std::mem::take(&mut *CAPTURE.0.lock().unwrap())
}

/// The lines the guide quotes between `<!-- session:NAME -->` and the end of the code
/// block after it.
fn quoted(doc: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- session:{name} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/DRIVER-DEVELOPMENT.md has no {marker}"))
        .1;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, b)| b.split_once("```"))
        .unwrap_or_else(|| panic!("no ```text block after {marker}"))
        .0;
    block.lines().map(String::from).collect()
}

const RING: u32 = 16;

/// The driver: `rdt_at_enable` is the RDT it writes after enabling the receiver (0 is the
/// mistake), `bam` whether RCTL.BAM is set, `tx_cmd` the CMD byte of its descriptors.
struct Driver {
    rdt_at_enable: u32,
    bam: bool,
    tx_cmd: u8,
}

impl Driver {
    fn init(&self, g: &mut FakeGuest) {
        g.enable_bus_master();
        g.wr(IMC, 0xFFFF_FFFF);
        g.wr(CTRL, CTRL_RST);
        g.wr(IMC, 0xFFFF_FFFF);
        g.rd(ICR);
        g.tx_count = RING;
        g.rx_count = RING;
        g.tx_tail = 0;
        g.rx_next = 0;
        g.wr(TDBAL, TX_RING as u32);
        g.wr(TDBAH, 0);
        g.wr(TDLEN, RING * 16);
        g.wr(TDH, 0);
        g.wr(TDT, 0);
        g.wr(TCTL, TCTL_EN | TCTL_PSP | (0x10 << 4) | (0x40 << 12));
        g.wr(TIPG, 10 | (8 << 10) | (6 << 20));
        for i in 0..MTA_WORDS {
            g.wr(MTA + 4 * i, 0);
        }
        g.post_rx_buffers();
        g.wr(RDBAL, RX_RING as u32);
        g.wr(RDBAH, 0);
        g.wr(RDLEN, RING * 16);
        g.wr(RDH, 0);
        g.wr(RDT, 0);
        let bam = if self.bam { RCTL_BAM } else { 0 };
        g.wr(RCTL, RCTL_EN | RCTL_SECRC | bam);
        if self.rdt_at_enable != 0 {
            g.wr(RDT, self.rdt_at_enable);
        }
    }

    /// Send one frame (an ARP request for the peer).
    fn transmit(&self, g: &mut FakeGuest) {
        let f = frame([0xFF; 6], MAC, 0x0806, 46, 9);
        let addr = TX_BUFS;
        g.bus.ram().write(addr, &f).unwrap();
        g.write_tx_desc(addr, f.len() as u16, self.tx_cmd, 0);
        g.wr(TDT, g.tx_tail);
    }
}

/// One run of the session: the driver initialises the card, sends an ARP request, the
/// peer answers with a broadcast ARP and a unicast frame, a second and a half passes.
/// Returns the lint lines and the frames the driver received.
fn session(driver: Driver) -> (Vec<String>, usize, nic_emu::device::drops::Drops) {
    let (mut g, wire) = FakeGuest::with_wire();
    let _ = take_lines();
    driver.init(&mut g);
    driver.transmit(&mut g);
    wire.inject(&frame([0xFF; 6], PEER, 0x0806, 46, 3));
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 4));
    for _ in 0..15 {
        g.advance_us(100_000);
    }
    let mut received = 0;
    while g.recv_full().is_some() {
        received += 1;
    }
    assert_eq!(
        wire.take_sent().len(),
        1,
        "the ARP request went out every time"
    );
    let drops = g.bus.device().drops();
    let lints = g.bus.device().lint_total(Severity::Warn);
    let lines = take_lines();
    let warn_lines = lines.iter().filter(|l| l.starts_with("[WARN")).count() as u64;
    assert_eq!(
        lints, warn_lines,
        "every warn-level finding is logged once here"
    );
    (lines, received, drops)
}

/// The guide's lint table is the catalogue, row for row.
#[test]
fn the_guides_lint_table_is_the_catalogue() {
    use nic_emu::device::lint::{Repeat, CATALOGUE};
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/DRIVER-DEVELOPMENT.md"
    ))
    .expect("docs/DRIVER-DEVELOPMENT.md");
    let rows: Vec<&str> = doc
        .split_once("<!-- lint-table -->\n")
        .expect("the guide's lint table")
        .1
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .skip(2) // header and rule
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<String> = CATALOGUE
        .iter()
        .map(|l| {
            format!(
                "| `{}` | {} | {} | {} | {} |",
                l.name,
                l.severity.name(),
                match l.repeat {
                    Repeat::Every => "every time",
                    Repeat::OncePerReset => "once per reset",
                },
                l.section,
                l.check
            )
        })
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn the_guides_worked_session() {
    let _log = support::log_to(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/DRIVER-DEVELOPMENT.md"
    ))
    .expect("docs/DRIVER-DEVELOPMENT.md");

    // 1. The first version: RDT left at 0, no BAM, CMD = RS | EOP.
    let (lines, received, _) = session(Driver {
        rdt_at_enable: 0,
        bam: false,
        tx_cmd: TXD_RS | TXD_EOP,
    });
    assert_eq!(received, 0);
    assert_eq!(
        lines,
        quoted(&doc, "first"),
        "step 1 of the guide's session"
    );

    // 2. RDT = 15: the ring has buffers. Now the broadcast is dropped.
    let (lines, received, drops) = session(Driver {
        rdt_at_enable: RING - 1,
        bam: false,
        tx_cmd: TXD_RS | TXD_EOP,
    });
    assert_eq!(received, 1, "the unicast frame arrives");
    assert_eq!(drops.rx_filtered_broadcast, 1);
    assert_eq!(
        lines,
        quoted(&doc, "second"),
        "step 2 of the guide's session"
    );

    // 3. BAM and IFCS: quiet, and both frames arrive.
    let (lines, received, drops) = session(Driver {
        rdt_at_enable: RING - 1,
        bam: true,
        tx_cmd: TXD_RS | TXD_EOP | TXD_IFCS,
    });
    assert_eq!(received, 2);
    assert_eq!(drops.total(), 0);
    assert_eq!(
        lines,
        quoted(&doc, "fixed"),
        "step 3 of the guide's session"
    );
}
