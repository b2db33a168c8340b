//! The event loop that runs the device's service step beside a frontend's thread: it
//! sleeps until woken or something is due, never spins on a full ring, and lets a
//! frame taken by another thread go without losing sight of the next.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nic_emu::backend::Loopback;
use nic_emu::frontend::event_loop::EventLoop;
use nic_emu::frontend::SharedDevice;
use nic_emu::irq::NoIrq;
use nic_emu::{Clock, DeviceConfig, MonotonicClock, E1000};

fn device() -> (SharedDevice, Arc<dyn Clock>) {
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let d = E1000::new(
        DeviceConfig::default(),
        Box::new(Loopback::new()),
        Box::new(NoIrq),
        clock.clone(),
    );
    (SharedDevice::new(d), clock)
}

#[test]
fn waker_cuts_the_sleep_short_and_stop_joins() {
    let (dev, clock) = device();
    let mut lp = EventLoop::new(dev, clock).unwrap();
    lp.set_max_sleep(Duration::from_secs(5));
    let waker = lp.waker();
    waker.wake();
    let t = Instant::now();
    let it = lp.iterate().unwrap();
    assert!(it.woken);
    assert!(t.elapsed() < Duration::from_secs(1));

    // Spawned: stop() returns promptly although max_sleep is 5 s.
    let mut h = lp.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    h.stop();
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// A backend fed through a Unix datagram socket, so it has a real readable fd.
struct SocketBackend(std::os::unix::net::UnixDatagram);

impl nic_emu::backend::PacketBackend for SocketBackend {
    fn name(&self) -> String {
        "socket".into()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        Ok(true)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.0.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.0.as_raw_fd())
    }
}

/// A device with RAM at 0, bus mastering on and a receive ring of `n` descriptors (a
/// multiple of 8; buffers at 0x10000 + i * 2048), all given to the device but one.
fn rx_device(
    n: u32,
) -> (
    SharedDevice,
    Arc<dyn Clock>,
    std::os::unix::net::UnixDatagram,
) {
    use nic_emu::device::regs::*;
    let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let mut d = E1000::new(
        DeviceConfig::default(),
        Box::new(SocketBackend(theirs)),
        Box::new(NoIrq),
        clock.clone(),
    );
    let ram = nic_emu::memory::GuestRam::anonymous(0, 1 << 20).unwrap();
    for i in 0..u64::from(n) {
        ram.write_u64(0x1000 + i * 16, 0x10000 + i * 2048).unwrap();
    }
    d.set_memory(ram);
    d.config_write(4, &7u16.to_le_bytes());
    d.write_reg(RDBAL, 0x1000);
    d.write_reg(RDLEN, n * 16);
    d.write_reg(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    d.write_reg(RDT, n - 1);
    (SharedDevice::new(d), clock, ours)
}

/// Like pcap replay at `timing=fast`: no fd, always a frame, a deadline already past.
struct FastReplay;

impl nic_emu::backend::PacketBackend for FastReplay {
    fn name(&self) -> String {
        "fast-replay".into()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        Ok(true)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        buf[..64].fill(0xFF);
        Ok(Some(64))
    }
    fn next_rx_deadline(&self) -> Option<Instant> {
        Instant::now().checked_sub(Duration::from_millis(1))
    }
}

#[test]
fn a_past_backend_deadline_with_a_full_ring_does_not_spin() {
    use nic_emu::device::regs::*;
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let mut d = E1000::new(
        DeviceConfig::default(),
        Box::new(FastReplay),
        Box::new(NoIrq),
        clock.clone(),
    );
    let ram = nic_emu::memory::GuestRam::anonymous(0, 1 << 20).unwrap();
    for i in 0..8u64 {
        ram.write_u64(0x1000 + i * 16, 0x10000 + i * 2048).unwrap();
    }
    d.set_memory(ram);
    d.config_write(4, &7u16.to_le_bytes());
    d.write_reg(RDBAL, 0x1000);
    d.write_reg(RDLEN, 8 * 16);
    d.write_reg(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    d.write_reg(RDT, 7); // fills the ring at once: 7 frames
    let dev = SharedDevice::new(d);
    let mut lp = EventLoop::new(dev.clone(), clock).unwrap();
    lp.set_max_sleep(Duration::from_millis(50));
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_millis(200) {
        lp.iterate().unwrap();
        n += 1;
    }
    assert_eq!(dev.lock().metrics().rx_frames, 7);
    assert!(
        n <= 6,
        "{n} iterations in 200 ms with a full ring and a past deadline"
    );
}

#[test]
fn frames_arriving_later_are_delivered_and_a_full_ring_does_not_spin() {
    let (dev, clock, wire) = rx_device(8);
    let mut lp = EventLoop::new(dev.clone(), clock).unwrap();
    let iterations = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let it = iterations.clone();
    lp.set_hook(Box::new(move || {
        it.fetch_add(1, Ordering::Relaxed);
        None
    }));
    let waker = lp.waker();
    let _h = lp.spawn().unwrap();
    let frame = [0xFFu8; 64];
    let delivered = || dev.lock().metrics().rx_frames;
    wire.send(&frame).unwrap();
    let t = Instant::now();
    while delivered() < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "frame not delivered: {:?}",
            dev.lock().metrics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Fill the ring (7 usable descriptors) and queue more: the fd stays readable.
    for _ in 0..10 {
        wire.send(&frame).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(delivered(), 7);
    let before = iterations.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let spins = iterations.load(Ordering::Relaxed) - before;
    assert!(spins <= 10, "{spins} iterations in 300 ms with a full ring");
    // The guest frees descriptors (RDT write) and wakes the loop: the rest go in.
    {
        let mut d = dev.lock();
        let ram = d.memory().clone();
        for i in 0..8u64 {
            ram.write_u64(0x1000 + i * 16 + 8, 0).unwrap();
        }
        let rdh = d.read_reg(nic_emu::device::regs::RDH);
        d.write_reg(nic_emu::device::regs::RDT, (rdh + 7) % 8);
    }
    waker.wake();
    let t = Instant::now();
    while delivered() < 11 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "ring refilled but frames stuck"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_frame_taken_by_the_frontend_does_not_stop_the_loop_watching_the_backend() {
    let (dev, clock, wire) = rx_device(8);
    let mut lp = EventLoop::new(dev.clone(), clock).unwrap();
    lp.set_max_sleep(Duration::from_secs(3));
    let frame = [0xFFu8; 64];
    let send_later = |wire: &std::os::unix::net::UnixDatagram| {
        let w = wire.try_clone().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.send(&frame).unwrap();
        })
    };
    let t = send_later(&wire);
    assert!(lp.iterate().unwrap().rx_readable);
    t.join().unwrap();
    // The frontend's thread (a transmit polls the backend) takes the frame first.
    assert_eq!(dev.lock().service().delivered, 1);
    // The loop's next pass finds nothing, yet it must still see the next frame.
    let t = send_later(&wire);
    let start = Instant::now();
    let it = lp.iterate().unwrap();
    t.join().unwrap();
    assert!(it.rx_readable, "next frame not seen: {it:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(lp.iterate().unwrap().delivered, 1);
    assert_eq!(dev.lock().metrics().rx_frames, 2);
}

#[test]
fn hook_bounds_the_sleep() {
    let (dev, clock) = device();
    let mut lp = EventLoop::new(dev, clock).unwrap();
    lp.set_max_sleep(Duration::from_secs(5));
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    lp.set_hook(Box::new(move || {
        c.fetch_add(1, Ordering::Relaxed);
        Some(Duration::from_millis(2))
    }));
    let t = Instant::now();
    let it = lp.iterate().unwrap();
    assert!(!it.woken);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

/// Counts the loop's iterations through its hook.
fn counting(lp: &mut EventLoop) -> Arc<std::sync::atomic::AtomicU32> {
    let iterations = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let it = iterations.clone();
    lp.set_hook(Box::new(move || {
        it.fetch_add(1, Ordering::Relaxed);
        None
    }));
    iterations
}

#[test]
fn a_held_frame_needing_more_descriptors_than_are_free_does_not_spin() {
    use nic_emu::device::regs::*;
    let (dev, clock, wire) = rx_device(8);
    // Long frames allowed; buffers stay 2 KiB, so a 9000-byte frame needs 5.
    dev.lock()
        .write_reg(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_LPE);
    let mut lp = EventLoop::new(dev.clone(), clock).unwrap();
    let iterations = counting(&mut lp);
    let waker = lp.waker();
    let _h = lp.spawn().unwrap();
    let delivered = || dev.lock().metrics().rx_frames;
    // Five small frames leave two free descriptors; the jumbo frame waits in the
    // device, and the frames behind it keep the fd readable.
    for _ in 0..5 {
        wire.send(&[0xFFu8; 64]).unwrap();
    }
    let t = Instant::now();
    while delivered() < 5 {
        assert!(t.elapsed() < Duration::from_secs(2), "small frames stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    wire.send(&[0xFFu8; 9000]).unwrap();
    for _ in 0..3 {
        wire.send(&[0xFFu8; 64]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        dev.lock().rx_frame_held(),
        "the jumbo frame waits for buffers"
    );
    let before = iterations.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let spins = iterations.load(Ordering::Relaxed) - before;
    assert!(
        spins <= 10,
        "{spins} iterations in 300 ms with a held frame"
    );
    // The guest gives every buffer back: the held frame and those behind it go in.
    {
        let mut d = dev.lock();
        let rdh = d.read_reg(RDH);
        d.write_reg(RDT, (rdh + 7) % 8);
    }
    waker.wake();
    let t = Instant::now();
    while delivered() < 7 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "held frame stuck: {:?}",
            dev.lock().metrics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A backend whose fd is always readable and whose `recv` always fails.
struct Failing(std::os::unix::net::UnixDatagram);

impl nic_emu::backend::PacketBackend for Failing {
    fn name(&self) -> String {
        "failing".into()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        Ok(true)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Err(io::Error::other("the wire is broken"))
    }
    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.0.as_raw_fd())
    }
}

#[test]
fn a_backend_whose_receive_fails_is_retried_not_spun_on() {
    use nic_emu::device::regs::*;
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    a.send(b"never read").unwrap();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let mut d = E1000::new(
        DeviceConfig::default(),
        Box::new(Failing(b)),
        Box::new(NoIrq),
        clock.clone(),
    );
    let ram = nic_emu::memory::GuestRam::anonymous(0, 1 << 20).unwrap();
    d.set_memory(ram);
    d.config_write(4, &7u16.to_le_bytes());
    d.write_reg(RDBAL, 0x1000);
    d.write_reg(RDLEN, 8 * 16);
    d.write_reg(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    d.write_reg(RDT, 7);
    let s = d.service();
    assert!(!s.rx_ready, "a failed receive is not watched");
    let retry = s
        .rx_deadline
        .expect("a failed receive is tried again later");
    assert!(retry > Instant::now() + Duration::from_millis(50), "{s:?}");
    let dev = SharedDevice::new(d);
    let mut lp = EventLoop::new(dev.clone(), clock).unwrap();
    let iterations = counting(&mut lp);
    let _h = lp.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(350));
    let n = iterations.load(Ordering::Relaxed);
    assert!(n <= 10, "{n} iterations in 350 ms on a failing backend");
    let errors = dev.lock().metrics().backend_errors;
    assert!(errors >= 2, "the backend was tried again: {errors} errors");
}
