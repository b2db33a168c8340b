//! The impairment's parameters and counters: what `impair` takes in `backends.toml`, inline
//! specs and the control socket's `impair set`, how it prints them back, and what it
//! reports (the wrapper itself is [`crate::backend::Impair`]).

use std::fmt;
use std::time::Duration;

/// What happens to the frames of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImpairParams {
    /// Frames lost, percent.
    pub loss: f64,
    /// Frames sent twice, percent.
    pub dup: f64,
    /// Frames with one bit flipped, percent.
    pub corrupt: f64,
    /// Frames held back to leave after the next one, percent.
    pub reorder: f64,
    /// Added delay.
    pub delay: Duration,
    /// Delay varies by up to this much either way (uniformly).
    pub jitter: Duration,
    /// Bits per second the direction carries at most (frames wait their turn).
    pub rate: Option<u64>,
}

impl ImpairParams {
    /// Whether this does nothing.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// Impairments of both directions and the generator's seed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImpairSpec {
    /// Toward the guest.
    pub rx: ImpairParams,
    /// From the guest.
    pub tx: ImpairParams,
    /// Seed of the generator (same seed, same decisions).
    pub seed: u64,
}

// Specs compare with `==` in BackendSpec; the floats are parsed percentages, never NaN.
impl Eq for ImpairSpec {}

/// The keys [`ImpairSpec::set`] takes: each of these applies to both directions, and
/// with an `rx_` or `tx_` prefix to one; plus `seed`.
pub const IMPAIR_KEYS: [&str; 7] = [
    "loss", "dup", "corrupt", "reorder", "delay", "jitter", "rate",
];

/// Whether `key` is an impairment key (`loss`, `rx_delay`, `seed`, ...).
pub fn is_impair_key(key: &str) -> bool {
    let base = key
        .strip_prefix("rx_")
        .or_else(|| key.strip_prefix("tx_"))
        .unwrap_or(key);
    key == "seed" || IMPAIR_KEYS.contains(&base)
}

fn percent(v: &str) -> Result<f64, String> {
    let n: f64 = v
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{v}` is not a percentage (0 to 100)"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{v}` is not a percentage (0 to 100)"));
    }
    Ok(n)
}

/// `20ms`, `1.5s`, `500us`, `0`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("`{v}` is not a duration: use a number with us, ms or s (e.g. 20ms)");
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if v == "0" {
        ("0", 0.0)
    } else {
        return Err(bad());
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = n * scale;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("`{v}` is not a duration between 0 and 1 hour"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `1mbit`, `500kbit`, `1gbit`, `64000bit`.
pub fn parse_rate(v: &str) -> Result<u64, String> {
    let bad = || format!("`{v}` is not a rate: use <N>bit, <N>kbit, <N>mbit or <N>gbit");
    let n = v.strip_suffix("bit").ok_or_else(bad)?;
    let (n, mul) = match n.as_bytes().last() {
        Some(b'k') => (&n[..n.len() - 1], 1e3),
        Some(b'm') => (&n[..n.len() - 1], 1e6),
        Some(b'g') => (&n[..n.len() - 1], 1e9),
        _ => (n, 1.0),
    };
    let bits = n.parse::<f64>().map_err(|_| bad())? * mul;
    if !(1.0..=1e12).contains(&bits) {
        return Err(format!("`{v}` is not a rate between 1bit and 1000gbit"));
    }
    Ok(bits as u64)
}

fn fmt_rate(bits: u64) -> String {
    match bits {
        b if b % 1_000_000_000 == 0 => format!("{}gbit", b / 1_000_000_000),
        b if b % 1_000_000 == 0 => format!("{}mbit", b / 1_000_000),
        b if b % 1_000 == 0 => format!("{}kbit", b / 1_000),
        b => format!("{b}bit"),
    }
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

impl ImpairParams {
    fn set(&mut self, base: &str, v: &str) -> Result<(), String> {
        match base {
            "loss" => self.loss = percent(v)?,
            "dup" => self.dup = percent(v)?,
            "corrupt" => self.corrupt = percent(v)?,
            "reorder" => self.reorder = percent(v)?,
            "delay" => self.delay = parse_duration(v)?,
            "jitter" => self.jitter = parse_duration(v)?,
            "rate" => self.rate = Some(parse_rate(v)?),
            _ => return Err(format!("`{base}` is not an impairment")),
        }
        Ok(())
    }

    /// `key=value` items of the non-default settings, each key with `prefix`.
    fn items(&self, prefix: &str) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut pct = |k: &str, x: f64| {
            if x != 0.0 {
                v.push((format!("{prefix}{k}"), format!("{x}")));
            }
        };
        pct("loss", self.loss);
        pct("dup", self.dup);
        pct("corrupt", self.corrupt);
        pct("reorder", self.reorder);
        if !self.delay.is_zero() {
            v.push((format!("{prefix}delay"), fmt_duration(self.delay)));
        }
        if !self.jitter.is_zero() {
            v.push((format!("{prefix}jitter"), fmt_duration(self.jitter)));
        }
        if let Some(r) = self.rate {
            v.push((format!("{prefix}rate"), fmt_rate(r)));
        }
        v
    }
}

impl ImpairSpec {
    /// Set one key from its text: `loss=10` (both directions), `rx_delay=20ms` (toward
    /// the guest only), `seed=7`. The error says what is wrong with the value; the caller
    /// names the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key == "seed" {
            self.seed = value
                .parse()
                .map_err(|_| format!("`{value}` is not a non-negative integer"))?;
            return Ok(());
        }
        if let Some(base) = key.strip_prefix("rx_") {
            return self.rx.set(base, value);
        }
        if let Some(base) = key.strip_prefix("tx_") {
            return self.tx.set(base, value);
        }
        self.rx.set(key, value)?;
        self.tx.set(key, value)
    }

    /// The settings as `key=value` items that [`set`](Self::set) reads back: shared keys
    /// where both directions agree, `rx_`/`tx_` keys where they differ.
    pub fn items(&self) -> Vec<(String, String)> {
        let rx = self.rx.items("");
        let tx = self.tx.items("");
        let mut out = Vec::new();
        for item in &rx {
            if tx.contains(item) {
                out.push(item.clone());
            } else {
                out.push((format!("rx_{}", item.0), item.1.clone()));
            }
        }
        for item in &tx {
            if !rx.contains(item) {
                out.push((format!("tx_{}", item.0), item.1.clone()));
            }
        }
        // A key set only on one side shows as rx_/tx_; one set on both with different
        // values too; a key on both with the same value is shared.
        out.push(("seed".into(), self.seed.to_string()));
        out
    }
}

/// What happened to the frames of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirCounters {
    /// Frames that entered.
    pub frames_in: u64,
    /// Frames that left (duplicates included).
    pub frames_out: u64,
    /// Frames lost on purpose.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames with a bit flipped.
    pub corrupted: u64,
    /// Frames held back to leave after the next one.
    pub reordered: u64,
    /// Frames given a delay (delay or jitter).
    pub delayed: u64,
    /// Frames that waited for the rate limit.
    pub rate_limited: u64,
    /// Frames dropped because [`QUEUE_LIMIT`](crate::backend::impair::QUEUE_LIMIT) frames were already held.
    pub queue_full: u64,
}

/// Counters of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairCounters {
    /// Toward the guest.
    pub rx: DirCounters,
    /// From the guest.
    pub tx: DirCounters,
}

impl fmt::Display for DirCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in, {} out, {} lost, {} duplicated, {} corrupted, {} reordered, {} delayed, \
             {} rate-limited, {} dropped (queue full)",
            self.frames_in,
            self.frames_out,
            self.lost,
            self.duplicated,
            self.corrupted,
            self.reordered,
            self.delayed,
            self.rate_limited,
            self.queue_full
        )
    }
}
