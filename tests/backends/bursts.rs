//! The device tells its backend where a doorbell's frames begin and end
//! (`begin_burst` / `end_burst`), so a backend can send them together; the wrappers the
//! CLI puts around a backend (recording, impairment, a box) pass both calls on.

use crate::support;

use std::io;
use std::sync::{Arc, Mutex};

use nic_emu::backend::{Impair, ImpairSpec, PacketBackend, PcapRecorder};
use nic_emu::device::regs::*;
use support::*;

#[derive(Clone, Debug, PartialEq)]
enum Event {
    Begin,
    Send(Vec<u8>),
    End,
}

/// Records what the device asks of it, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<Event>>>);

impl Journal {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl PacketBackend for Journal {
    fn name(&self) -> String {
        "journal".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.0.lock().unwrap().push(Event::Send(frame.to_vec()));
        Ok(true)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn begin_burst(&mut self) {
        self.0.lock().unwrap().push(Event::Begin);
    }
    fn end_burst(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().push(Event::End);
        Ok(())
    }
}

fn frames(n: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| frame(PEER, MAC, 0x0800, 60 + usize::from(i), i))
        .collect()
}

/// Five frames posted, one TDT write: one burst around all five, in order.
fn one_doorbell_is_one_burst(backend: Box<dyn PacketBackend>, journal: &Journal) {
    let mut g = FakeGuest::new(backend);
    g.linux_probe();
    g.linux_open(16, 16);
    journal.take();
    let fs = frames(5);
    for f in &fs {
        let slot = g.tx_tail;
        let addr = TX_BUFS + u64::from(slot) * TX_SLOT;
        g.bus.ram().write(addr, f).unwrap();
        g.write_tx_desc(addr, f.len() as u16, TXD_EOP | TXD_IFCS | TXD_RS, 0);
    }
    g.wr(TDT, g.tx_tail);
    let mut want = vec![Event::Begin];
    want.extend(fs.iter().cloned().map(Event::Send));
    want.push(Event::End);
    assert_eq!(journal.take(), want);
    // A doorbell with nothing new sends nothing and opens no burst.
    g.wr(TDT, g.tx_tail);
    assert_eq!(journal.take(), vec![]);
}

#[test]
fn the_device_brackets_a_doorbells_frames() {
    let j = Journal::default();
    one_doorbell_is_one_burst(Box::new(j.clone()), &j);
}

#[test]
fn recorder_impairment_and_box_pass_bursts_on() {
    let j = Journal::default();
    let wrapped = PcapRecorder::idle(Impair::new(
        Box::new(j.clone()) as Box<dyn PacketBackend>,
        ImpairSpec::default(),
    ));
    one_doorbell_is_one_burst(Box::new(wrapped), &j);
}
