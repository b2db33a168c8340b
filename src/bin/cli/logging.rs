//! Log output: env_logger's text, or one JSON object per line for log collectors.

use std::io::Write;

use clap::ValueEnum;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// env_logger's usual lines.
    #[default]
    Text,
    /// `{"ts":"...","level":"INFO","target":"nic_emu::...","msg":"..."}` per line.
    Json,
}

/// `--trace`: a trace of the driver's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Trace {
    /// Every register access, decoded (target `nic_emu::regs`).
    Regs,
    /// Every transmit descriptor fetched and received frame (target `nic_emu::frames`).
    Frames,
}

/// Install the logger at `level` with the traces in `traces` on (RUST_LOG still
/// overrides both).
pub fn init(level: log::LevelFilter, format: LogFormat, traces: &[Trace]) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    for (t, target) in [
        (Trace::Regs, nic_emu::device::trace::REGS),
        (Trace::Frames, nic_emu::device::trace::FRAMES),
    ] {
        let on = traces.contains(&t);
        b.filter_module(
            target,
            if on {
                log::LevelFilter::Trace
            } else {
                log::LevelFilter::Off
            },
        );
    }
    b.parse_default_env();
    if format == LogFormat::Json {
        b.format(|buf, rec| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": rec.level().as_str(),
                "target": rec.target(),
                "msg": rec.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    b.init();
}
