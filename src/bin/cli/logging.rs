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

/// Install the logger at `level` (RUST_LOG still overrides it).
pub fn init(level: log::LevelFilter, format: LogFormat) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level).parse_default_env();
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
