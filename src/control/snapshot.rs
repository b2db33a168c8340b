//! Every counter at one moment, copied under one short device lock: what `stats`,
//! `info` and the Prometheus endpoint show.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::ControlContext;
use crate::backend::BackendCounter;
use crate::device::drops::Drops;
use crate::device::lint::{Finding, CATALOGUE};
use crate::device::Metrics;
use crate::mac::MacAddress;

/// The counters and state of the device, its backend and its frontend.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// nic-emu's own counters.
    pub metrics: Metrics,
    /// What the driver did wrong so far.
    pub lints: Vec<Finding>,
    /// Frames and descriptors not delivered, by reason.
    pub drops: Drops,
    /// The statistics registers by datasheet name, as the guest would read them now.
    pub registers: Vec<(&'static str, u64)>,
    /// The backend's counters (every layer).
    pub backend: Vec<BackendCounter>,
    /// Link state: what the guest sees (cable plugged and backend carrier).
    pub link_up: bool,
    /// The host's cable ([`E1000::set_link`](crate::E1000::set_link)).
    pub cable_plugged: bool,
    /// The backend's carrier (a tap that exists, a connected stream peer).
    pub backend_carrier: bool,
    /// Why the backend has no carrier, and what would bring it back.
    pub backend_carrier_note: Option<String>,
    /// The card's MAC address.
    pub mac: MacAddress,
    /// The backend's own name.
    pub backend_name: String,
    /// The backend as configured.
    pub backend_spec: String,
    /// A client connected (if the frontend tells).
    pub client_connected: Option<bool>,
    /// Clients served (if the frontend counts them).
    pub clients_served: Option<u64>,
    /// Time since the program started.
    pub uptime: Duration,
}

/// The link as the guest sees it, and the two things it follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// What the guest sees.
    pub up: bool,
    /// The host's cable.
    pub cable_plugged: bool,
    /// The backend's carrier.
    pub backend_carrier: bool,
    /// Why the backend has no carrier (its own words).
    pub backend_carrier_note: Option<String>,
}

impl LinkState {
    /// Read from the device (under its lock).
    pub fn of(d: &mut crate::E1000) -> Self {
        Self {
            up: d.link_up(),
            cable_plugged: d.cable_plugged(),
            backend_carrier: d.backend_carrier(),
            backend_carrier_note: d.backend_mut().carrier_note(),
        }
    }

    /// The fields of a `link` or `info` reply.
    pub fn json(&self) -> Value {
        json!({
            "link_up": self.up,
            "cable_plugged": self.cable_plugged,
            "backend_carrier": self.backend_carrier,
            "backend_carrier_note": self.backend_carrier_note,
        })
    }
}

impl Snapshot {
    /// Copy everything under one device lock.
    pub fn take(ctx: &ControlContext) -> Self {
        let (metrics, lints, drops, registers, backend, link, mac, backend_name) =
            ctx.with_device(|d| {
                let backend = d.backend_mut().backend_counters();
                (
                    d.metrics(),
                    d.lints(),
                    d.drops(),
                    d.stats().named().collect::<Vec<_>>(),
                    backend,
                    LinkState::of(d),
                    d.mac(),
                    d.backend_mut().name(),
                )
            });
        Self {
            metrics,
            lints,
            drops,
            registers,
            backend,
            link_up: link.up,
            cable_plugged: link.cable_plugged,
            backend_carrier: link.backend_carrier,
            backend_carrier_note: link.backend_carrier_note,
            mac,
            backend_name,
            backend_spec: ctx.backend.clone(),
            client_connected: ctx.target.client_connected(),
            clients_served: ctx.target.clients_served(),
            uptime: ctx.started.elapsed(),
        }
    }

    /// `info`'s answer.
    pub fn info_json(&self) -> Value {
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "backend": self.backend_spec,
            "backend_name": self.backend_name,
            "mac": self.mac.to_string(),
            "link_up": self.link_up,
            "cable_plugged": self.cable_plugged,
            "backend_carrier": self.backend_carrier,
            "backend_carrier_note": self.backend_carrier_note,
            "client_connected": self.client_connected,
            "clients_served": self.clients_served,
            "uptime_seconds": self.uptime.as_secs_f64(),
        })
    }

    /// `stats`'s answer in JSON: `metrics`, `registers` and `backend` objects of numbers.
    pub fn stats_json(&self) -> Value {
        let metrics: Map<String, Value> = self
            .metrics
            .named()
            .iter()
            .map(|&(name, _, v)| (name.to_string(), Value::from(v)))
            .collect();
        let registers: Map<String, Value> = self
            .registers
            .iter()
            .map(|&(name, v)| (name.to_string(), Value::from(v)))
            .collect();
        let backend: Map<String, Value> = self
            .backend
            .iter()
            .map(|c| (c.name.clone(), Value::from(c.value)))
            .collect();
        json!({
            "link_up": self.link_up,
            "metrics": metrics,
            "lints": self.lint_counts().into_iter().filter(|&(_, _, n)| n > 0)
                .map(|(id, _, n)| (id.to_string(), Value::from(n)))
                .collect::<Map<String, Value>>(),
            "drops": self.drops_json(),
            "registers": registers,
            "backend": backend,
        })
    }

    /// Every lint of the catalogue with its severity and count (0 for those that never
    /// fired).
    pub fn lint_counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        CATALOGUE
            .iter()
            .map(|l| {
                let n = self
                    .lints
                    .iter()
                    .find(|f| f.id == l.id)
                    .map_or(0, |f| f.count);
                (l.name, l.severity.name(), n)
            })
            .collect()
    }

    /// The drop reasons as `{"rx": {reason: n}, "tx": {reason: n}}`.
    fn drops_json(&self) -> Value {
        let mut rx = Map::new();
        let mut tx = Map::new();
        for (dir, reason, _, n) in self.drops.fields() {
            let m = if dir == "rx" { &mut rx } else { &mut tx };
            m.insert(reason.to_string(), Value::from(n));
        }
        json!({ "rx": rx, "tx": tx })
    }
}
