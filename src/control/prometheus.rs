//! The counters in the Prometheus text exposition format (version 0.0.4): every family
//! with its `# HELP` and `# TYPE` lines, names prefixed `nic_emu_`.
//!
//! * nic-emu's metrics are counters: `nic_emu_tx_frames_total`, ...
//! * The statistics registers clear when the guest's driver reads them (it does every
//!   two seconds), so they are one gauge family, `nic_emu_stats_register{register="GPRC"}`:
//!   the count since the driver last read it.
//! * The backend's counters: `nic_emu_backend_<name>_total`.
//! * Lints: `nic_emu_lint_total{id="tx-no-ifcs",severity="warn"}`, one per catalogue entry;
//!   drop reasons: `nic_emu_drop_total{direction="rx",reason="filtered_broadcast"}`.
//! * State: `nic_emu_info` (labels version, backend, mac), `nic_emu_link_up`,
//!   `nic_emu_client_connected`, `nic_emu_clients_served_total`, `nic_emu_uptime_seconds`.

use std::fmt::Write;

use super::snapshot::Snapshot;

/// `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text with `\` and newlines escaped.
fn help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Only `[a-zA-Z0-9_]` in a metric name; anything else becomes `_`.
fn name(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn family(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help(text));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Render `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8192);
    family(
        &mut out,
        "nic_emu_info",
        "gauge",
        "nic-emu build and configuration (always 1)",
    );
    let _ = writeln!(
        out,
        "nic_emu_info{{version=\"{}\",backend=\"{}\",mac=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        label(&s.backend_spec),
        label(&s.mac.to_string())
    );
    family(
        &mut out,
        "nic_emu_link_up",
        "gauge",
        "1 when the guest sees a link (cable plugged and backend carrier)",
    );
    let _ = writeln!(out, "nic_emu_link_up {}", u8::from(s.link_up));
    family(
        &mut out,
        "nic_emu_backend_carrier",
        "gauge",
        "1 while the backend's wire works (a tap that exists, a connected stream peer)",
    );
    let _ = writeln!(
        out,
        "nic_emu_backend_carrier {}",
        u8::from(s.backend_carrier)
    );
    if let Some(c) = s.client_connected {
        family(
            &mut out,
            "nic_emu_client_connected",
            "gauge",
            "1 while a vfio-user client (QEMU) is connected",
        );
        let _ = writeln!(out, "nic_emu_client_connected {}", u8::from(c));
    }
    if let Some(n) = s.clients_served {
        family(
            &mut out,
            "nic_emu_clients_served_total",
            "counter",
            "vfio-user clients accepted",
        );
        let _ = writeln!(out, "nic_emu_clients_served_total {n}");
    }
    family(
        &mut out,
        "nic_emu_uptime_seconds",
        "gauge",
        "Seconds since nic-emu started",
    );
    let _ = writeln!(out, "nic_emu_uptime_seconds {:.3}", s.uptime.as_secs_f64());
    for (field, text, v) in s.metrics.named() {
        let n = format!("nic_emu_{field}_total");
        family(&mut out, &n, "counter", text);
        let _ = writeln!(out, "{n} {v}");
    }
    family(
        &mut out,
        "nic_emu_lint_total",
        "counter",
        "Driver mistakes nic-emu noticed, by lint id (docs/DRIVER-DEVELOPMENT.md)",
    );
    for (id, severity, n) in s.lint_counts() {
        let _ = writeln!(
            out,
            "nic_emu_lint_total{{id=\"{id}\",severity=\"{severity}\"}} {n}"
        );
    }
    family(
        &mut out,
        "nic_emu_drop_total",
        "counter",
        "Frames not delivered and descriptors not processed, by direction and reason",
    );
    for (dir, reason, _, n) in s.drops.fields() {
        let _ = writeln!(
            out,
            "nic_emu_drop_total{{direction=\"{dir}\",reason=\"{reason}\"}} {n}"
        );
    }
    family(
        &mut out,
        "nic_emu_stats_register",
        "gauge",
        "82540EM statistics register (datasheet name): the count since the guest's driver \
         last read it, which clears it",
    );
    for (reg, v) in &s.registers {
        let _ = writeln!(
            out,
            "nic_emu_stats_register{{register=\"{}\"}} {v}",
            label(reg)
        );
    }
    for c in &s.backend {
        let n = format!("nic_emu_backend_{}_total", name(&c.name));
        family(&mut out, &n, "counter", c.help);
        let _ = writeln!(out, "{n} {}", c.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(name("impair-rx lost"), "impair_rx_lost");
    }
}
