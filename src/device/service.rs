//! The device's side of the frontend contract: one service step that does whatever is due,
//! and what a register access asks of the frontend.
//!
//! A frontend gives the device three things to do that no register access does by
//! itself: fire mitigation timers when they are due, finish transmit work left at the
//! engine's budget, and take frames the backend has. [`E1000::service`] does all three
//! and says when it wants to run again; it is the only way a frontend drives the device
//! apart from register and configuration accesses. Each access returns an
//! [`AccessEffect`], computed here from the register's meaning, so a frontend never
//! needs to know a register by name.

use std::time::Instant;

use super::E1000;

/// What one [`E1000::service`] step did, and what the device needs next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Frames delivered into the guest's receive ring.
    pub delivered: usize,
    /// Frames taken from the backend (delivered, filtered or dropped).
    pub taken: u64,
    /// The device can take the next frame now: watch the backend's fd
    /// ([`rx_fd`](crate::PacketBackend::rx_fd)). False while the receiver is off, the
    /// link or bus mastering is down, the ring has no free descriptor or too few for the
    /// frame waiting in the device, and after the backend's `recv` failed (see
    /// `rx_deadline`): a readable fd would then only make the caller spin.
    pub rx_ready: bool,
    /// When to run the step again for the backend even without an fd event: when the
    /// backend next has a frame (pcap replay, held impairment), if it knows and the
    /// device can take one (a deadline while the ring is full would only make the caller
    /// spin); or, after its `recv` failed, when to try it again ([`RX_RETRY`] later).
    pub rx_deadline: Option<Instant>,
    /// When a timer next falls due, in [`Clock`](crate::Clock) nanoseconds.
    pub timer_deadline: Option<u64>,
    /// When the backend wants the service step again to look after its wire (reopen a
    /// tap that was deleted, reconnect a stream), whatever the receive ring's state.
    pub backend_deadline: Option<Instant>,
    /// Transmit work is left at the engine's budget: service again at once (after
    /// letting other threads take the device).
    pub more: bool,
}

/// What a register or configuration access asks of the frontend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessEffect {
    /// [`E1000::service`] has new work because of this access (receive buffers given
    /// after the device stopped for lack of them, transmit work left at the budget, the
    /// receiver, transmitter, link or bus mastering set up anew): a frontend that runs
    /// the service step on another thread should wake it now.
    pub service_due: bool,
    /// Drivers follow this access with another within microseconds (a transmit
    /// doorbell; an interrupt mask change, which Linux flushes with a read): a frontend
    /// for which each wake-up is expensive may poll for the next access.
    pub next_access_soon: bool,
}

impl AccessEffect {
    /// Nothing for the frontend to do.
    pub const NONE: Self = Self {
        service_due: false,
        next_access_soon: false,
    };
    /// The service step has work.
    pub const SERVICE: Self = Self {
        service_due: true,
        next_access_soon: false,
    };

    /// Both effects of two accesses.
    pub fn and(self, other: Self) -> Self {
        Self {
            service_due: self.service_due || other.service_due,
            next_access_soon: self.next_access_soon || other.next_access_soon,
        }
    }
}

/// How long after a failed `recv` the backend is tried again.
pub const RX_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

impl E1000 {
    /// Do what is due: fire timers, resume transmit work left at the budget, take frames
    /// from the backend while the receive ring has room, and let the link follow the
    /// backend's carrier ([`PacketBackend::carrier`](crate::PacketBackend::carrier)).
    /// Frontends call this when [`Service::timer_deadline`], [`Service::rx_deadline`] or
    /// [`Service::backend_deadline`] passes, when the backend's fd becomes readable, at
    /// once when [`Service::more`] is set, and after an access whose
    /// [`AccessEffect::service_due`] is set.
    pub fn service(&mut self) -> Service {
        self.run_timers();
        self.resume_tx();
        let before = self.rx_taken();
        let delivered = self.poll_backend();
        // After the backend was used: a send or receive may just have found its wire
        // gone. A link that comes back takes frames at once (in `set_carrier`).
        let carrier = self.backend.carrier();
        self.set_carrier(carrier.up);
        let taken = self.rx_taken().wrapping_sub(before);
        let now = self.now();
        self.lint_tick(now);
        let can_take = self.rx_can_take();
        // An RDT write that gives buffers back after this makes service due again.
        self.rx_stalled = !can_take;
        let failed = self.rx_recv_failed();
        let rx_ready = can_take && !failed;
        let rx_deadline = if failed {
            Some(Instant::now() + RX_RETRY)
        } else {
            self.backend.next_rx_deadline().filter(|_| rx_ready)
        };
        Service {
            delivered,
            taken,
            rx_ready,
            rx_deadline,
            timer_deadline: self.next_timer_deadline(),
            backend_deadline: carrier.recheck_at,
            more: self.tx_pending(),
        }
    }

    /// Frames taken from the backend so far, whatever became of them.
    fn rx_taken(&self) -> u64 {
        let m = &self.metrics;
        m.rx_frames
            .wrapping_add(m.rx_filtered)
            .wrapping_add(m.rx_dropped)
    }
}
