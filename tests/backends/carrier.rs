//! The link the guest sees follows two things: the host's cable (`E1000::set_link`, the
//! control socket's `link up|down`) and the backend's carrier (a tap deleted, a stream
//! peer gone). It is up only while both are; each change the guest can see raises LSC
//! and flips STATUS.LU, as a real cable would. The service step asks the backend, and
//! the event loop wakes when the backend wants to look after its wire again.

use crate::support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nic_emu::backend::{Carrier, PacketBackend};
use nic_emu::device::regs::*;
use nic_emu::frontend::event_loop::EventLoop;
use nic_emu::frontend::SharedDevice;
use nic_emu::irq::NoIrq;
use nic_emu::{Clock, DeviceConfig, MonotonicClock, E1000};
use support::{FakeGuest, TestWire, MAC, PEER};

/// A [`TestWire`] whose carrier the test sets, counting how often it is asked.
#[derive(Clone, Default)]
struct CarrierWire {
    wire: TestWire,
    carrier: Arc<Mutex<(bool, Option<Instant>, u64)>>,
}

impl CarrierWire {
    fn new() -> Self {
        let w = Self::default();
        w.set(true, None);
        w
    }
    fn set(&self, up: bool, recheck_at: Option<Instant>) {
        let mut c = self.carrier.lock().unwrap();
        c.0 = up;
        c.1 = recheck_at;
    }
    fn asked(&self) -> u64 {
        self.carrier.lock().unwrap().2
    }
}

impl PacketBackend for CarrierWire {
    fn name(&self) -> String {
        "carrier-wire".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.wire.send(frame)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.wire.recv(buf)
    }
    fn carrier(&mut self) -> Carrier {
        let mut c = self.carrier.lock().unwrap();
        c.2 += 1;
        Carrier {
            up: c.0,
            recheck_at: c.1,
        }
    }
    fn carrier_note(&self) -> Option<String> {
        let c = self.carrier.lock().unwrap();
        (!c.0).then(|| "unplugged by the test".to_string())
    }
}

fn lu(g: &mut FakeGuest) -> bool {
    g.rd(STATUS) & STATUS_LU != 0
}

/// Read ICR (which clears it) and say whether LSC was set.
fn lsc(g: &mut FakeGuest) -> bool {
    g.rd(ICR) & ICR_LSC != 0
}

fn opened_guest() -> (FakeGuest, CarrierWire) {
    let w = CarrierWire::new();
    let mut g = FakeGuest::new(Box::new(w.clone()));
    assert!(g.linux_probe().link_up);
    g.linux_open(8, 8);
    g.bus.poll();
    let _ = g.rd(ICR);
    (g, w)
}

#[test]
fn a_lost_carrier_is_a_pulled_cable_and_its_return_plugs_it_back() {
    let (mut g, w) = opened_guest();
    assert!(lu(&mut g));

    w.set(false, None);
    g.bus.poll();
    assert!(!lu(&mut g), "STATUS.LU clear without carrier");
    assert!(lsc(&mut g), "LSC raised when the carrier goes");
    assert!(!g.bus.device().link_up());
    assert!(
        g.bus.device().cable_plugged(),
        "the host's cable is untouched"
    );
    assert!(!g.bus.device().backend_carrier());
    // The PHY agrees (BMSR link status, read twice as drivers do).
    let _ = g.mdic_read(1);
    assert_eq!(g.mdic_read(1) & 0x0004, 0, "BMSR.LS clear");

    // Frames waiting at the backend stay there while the link is down; the guest
    // sends nothing onto a dead wire.
    let f = support::frame(MAC, PEER, 0x88B5, 100, 1);
    w.wire.inject(&f);
    g.bus.poll();
    assert_eq!(g.recv(), None);
    g.send(&support::frame(PEER, MAC, 0x88B5, 100, 2));
    g.bus.poll();
    assert!(w.wire.take_sent().is_empty());
    assert_eq!(g.bus.device().metrics().tx_no_link, 1);

    // Asked again with nothing changed: no new LSC.
    g.bus.poll();
    assert!(!lsc(&mut g));

    w.set(true, None);
    g.bus.poll();
    assert!(lu(&mut g), "STATUS.LU back with the carrier");
    assert!(lsc(&mut g), "LSC raised when the carrier returns");
    assert_eq!(
        g.recv().as_deref(),
        Some(&f[..]),
        "the waiting frame arrives"
    );
}

#[test]
fn the_link_is_up_only_while_both_the_cable_and_the_carrier_are() {
    let (mut g, w) = opened_guest();

    // Cable pulled by the host, then the backend loses its carrier too.
    g.bus.device().set_link(false);
    assert!(!lu(&mut g));
    assert!(lsc(&mut g));
    w.set(false, None);
    g.bus.poll();
    assert!(!lsc(&mut g), "no change the guest can see: no LSC");

    // The carrier returns while the cable is still out: the link stays down.
    w.set(true, None);
    g.bus.poll();
    assert!(!lu(&mut g));
    assert!(!lsc(&mut g));

    // The carrier goes again; plugging the cable in brings no link yet.
    w.set(false, None);
    g.bus.poll();
    g.bus.device().set_link(true);
    assert!(g.bus.device().cable_plugged());
    assert!(!g.bus.device().link_up());
    assert!(!lu(&mut g));
    assert!(!lsc(&mut g));

    // Only with both: link up, one LSC.
    w.set(true, None);
    g.bus.poll();
    assert!(lu(&mut g));
    assert!(lsc(&mut g));

    // A device reset keeps what the cable and the carrier say.
    w.set(false, None);
    g.bus.poll();
    let ctrl = g.rd(CTRL);
    g.wr(CTRL, ctrl | CTRL_RST);
    assert!(!lu(&mut g), "reset does not invent a link");
}

#[test]
fn a_backend_without_carrier_at_creation_starts_with_the_link_down() {
    let w = CarrierWire::new();
    w.set(false, None);
    let mut g = FakeGuest::new(Box::new(w.clone()));
    assert!(!g.linux_probe().link_up);
    assert!(!lu(&mut g));
    w.set(true, None);
    g.bus.poll();
    assert!(lu(&mut g));
}

#[test]
fn the_service_step_passes_on_when_the_backend_wants_to_look_again() {
    let (mut g, w) = opened_guest();
    let at = Instant::now() + Duration::from_millis(700);
    w.set(false, Some(at));
    let s = g.bus.device().service();
    assert_eq!(s.backend_deadline, Some(at));
    assert!(!s.rx_ready, "no link, no receiving");
    w.set(true, None);
    assert_eq!(g.bus.device().service().backend_deadline, None);
}

#[test]
fn the_event_loop_wakes_for_the_backend_deadline_not_its_long_sleep() {
    let w = CarrierWire::new();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let d = E1000::new(
        DeviceConfig::default(),
        Box::new(w.clone()),
        Box::new(NoIrq),
        clock.clone(),
    );
    let mut lp = EventLoop::new(SharedDevice::new(d), clock).unwrap();
    lp.set_max_sleep(Duration::from_secs(600));
    w.set(false, Some(Instant::now() + Duration::from_millis(50)));
    let t = Instant::now();
    let before = w.asked();
    lp.iterate().unwrap();
    // Generous bound: what matters is that it is far below the 600 s sleep.
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "slept {:?}",
        t.elapsed()
    );
    assert!(w.asked() > before);
}
