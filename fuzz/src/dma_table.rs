//! The `dma_table` target: DMA_MAP/UNMAP sequences against [`GuestRam`], checked against
//! a model that is a plain list of ranges and a byte copy of each host mapping.
//!
//! For every operation the table and the model must agree on success or failure (and on
//! the bytes an unmap removed); a read must return the model's bytes; after a write, each
//! host mapping must equal the model's copy byte for byte (a DMA lands only where the
//! model says the range is mapped and writable, and nowhere else).

use std::sync::Arc;

use arbitrary::Arbitrary;
use nic_emu::memory::{GuestRam, HostMapping, MemoryError};
use vm_memory::{MmapRegion, VolatileMemory};

/// Bytes of each of the two host mappings.
pub const HOST_LEN: usize = 0x4000;

/// An address: small (collisions are likely) or near the top of the address space.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Addr {
    /// `n`.
    Low(u16),
    /// `n * 4096`.
    Page(u8),
    /// `u64::MAX - n`.
    High(u16),
    /// Any.
    Any(u64),
}

impl Addr {
    fn get(self) -> u64 {
        match self {
            Self::Low(n) => u64::from(n),
            Self::Page(n) => u64::from(n) * 4096,
            Self::High(n) => u64::MAX - u64::from(n),
            Self::Any(n) => n,
        }
    }
}

/// One operation.
#[derive(Arbitrary, Clone, Debug)]
pub enum DmaOp {
    /// Map `[addr, addr+len)` onto host mapping `host & 1` at `offset`.
    Map {
        addr: Addr,
        len: Addr,
        host: u8,
        offset: u16,
        writable: bool,
    },
    /// A range without memory.
    MapUnbacked { addr: Addr, len: Addr },
    /// Unmap.
    Unmap { addr: Addr, len: Addr },
    /// Remove everything.
    Clear,
    /// Read `len` bytes.
    Read { addr: Addr, len: u16 },
    /// Write `len` bytes of `fill`, counting up.
    Write { addr: Addr, len: u16, fill: u8 },
}

#[derive(Clone, Debug)]
struct ModelRange {
    start: u64,
    len: u64,
    /// Host index and offset.
    host: Option<(usize, usize)>,
    writable: bool,
}

impl ModelRange {
    fn end(&self) -> u128 {
        u128::from(self.start) + u128::from(self.len)
    }
}

/// The model: ranges (unsorted) and the bytes of each host mapping.
struct Model {
    ranges: Vec<ModelRange>,
    hosts: [Vec<u8>; 2],
}

impl Model {
    fn at(&self, a: u64) -> Option<&ModelRange> {
        self.ranges
            .iter()
            .find(|r| r.start <= a && u128::from(a) < r.end())
    }

    /// Host byte for device address `a`, if mapped, backed, and (for writes) writable.
    fn locate(&self, a: u64, write: bool) -> Option<(usize, usize)> {
        let r = self.at(a)?;
        if write && !r.writable {
            return None;
        }
        let (h, off) = r.host?;
        Some((h, off + (a - r.start) as usize))
    }

    fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = u128::from(start) + u128::from(len);
        self.ranges
            .iter()
            .any(|r| u128::from(r.start) < end && u128::from(start) < r.end())
    }
}

/// Empty, or past the end of the address space (ending exactly at 2^64 is fine: QEMU
/// unmaps such ranges).
fn bad_range(addr: u64, len: u64) -> bool {
    len == 0 || u128::from(addr) + u128::from(len) > 1u128 << 64
}

/// Run one input.
pub fn run(ops: &[DmaOp]) {
    // The two host mappings and their start pattern are made once per thread and reset
    // to the pattern for each input (an mmap, page faults and munmap of both per input
    // were about a third of the target's time). Only this input's `GuestRam` holds
    // them, and it is gone when the input ends.
    thread_local! {
        static HOSTS: ([HostMapping; 2], [Vec<u8>; 2]) = {
            // A pattern, so a write of zeroes in the wrong place shows.
            let pattern =
                |i: usize| -> Vec<u8> { (0..HOST_LEN).map(|j| (j * 7 + i * 13) as u8).collect() };
            (
                [
                    Arc::new(MmapRegion::new(HOST_LEN).unwrap()),
                    Arc::new(MmapRegion::new(HOST_LEN).unwrap()),
                ],
                [pattern(0), pattern(1)],
            )
        };
    }
    let (hosts, pattern) = HOSTS.with(|(h, p)| (h.clone(), p.clone()));
    for (h, bytes) in hosts.iter().zip(&pattern) {
        h.get_slice(0, HOST_LEN).unwrap().copy_from(bytes);
    }
    let mut model = Model {
        ranges: Vec::new(),
        hosts: pattern,
    };
    let mut now = vec![0u8; HOST_LEN];
    let mut ram = GuestRam::empty();
    for op in ops {
        match *op {
            DmaOp::Map {
                addr,
                len,
                host,
                offset,
                writable,
            } => {
                let (a, l) = (addr.get(), len.get());
                let h = usize::from(host & 1);
                let off = usize::from(offset);
                let fits = usize::try_from(l)
                    .ok()
                    .and_then(|l| off.checked_add(l))
                    .is_some_and(|e| e <= HOST_LEN);
                let r = ram.map(a, l, hosts[h].clone(), off, writable);
                let want_ok = fits && !bad_range(a, l) && !model.overlaps(a, l);
                assert_eq!(r.is_ok(), want_ok, "{op:?}: {r:?}");
                if let Err(MemoryError::Overlap { .. }) = r {
                    assert!(model.overlaps(a, l));
                }
                if want_ok {
                    model.ranges.push(ModelRange {
                        start: a,
                        len: l,
                        host: Some((h, off)),
                        writable,
                    });
                }
            }
            DmaOp::MapUnbacked { addr, len } => {
                let (a, l) = (addr.get(), len.get());
                let r = ram.map_unbacked(a, l);
                let want_ok = !bad_range(a, l) && !model.overlaps(a, l);
                assert_eq!(r.is_ok(), want_ok, "{op:?}: {r:?}");
                if want_ok {
                    model.ranges.push(ModelRange {
                        start: a,
                        len: l,
                        host: None,
                        writable: false,
                    });
                }
            }
            DmaOp::Unmap { addr, len } => {
                let (a, l) = (addr.get(), len.get());
                let r = ram.unmap(a, l);
                if bad_range(a, l) {
                    assert!(r.is_err(), "{op:?}: {r:?}");
                } else {
                    let end = u128::from(a) + u128::from(l);
                    let touched =
                        |m: &ModelRange| u128::from(m.start) < end && u128::from(a) < m.end();
                    let cut = model
                        .ranges
                        .iter()
                        .any(|m| touched(m) && (m.start < a || m.end() > end));
                    if cut {
                        assert!(matches!(r, Err(MemoryError::Split { .. })), "{op:?}: {r:?}");
                    } else {
                        let bytes: u64 = model
                            .ranges
                            .iter()
                            .filter(|m| touched(m))
                            .map(|m| m.len)
                            .sum();
                        assert_eq!(r, Ok(bytes), "{op:?}");
                        model.ranges.retain(|m| !touched(m));
                    }
                }
            }
            DmaOp::Clear => {
                ram.clear();
                model.ranges.clear();
            }
            DmaOp::Read { addr, len } => {
                let a = addr.get();
                let mut buf = vec![0u8; usize::from(len % 600)];
                let r = ram.read(a, &mut buf);
                let want: Option<Vec<u8>> = (0..buf.len() as u64)
                    .map(|i| {
                        let b = a.checked_add(i)?;
                        let (h, o) = model.locate(b, false)?;
                        Some(model.hosts[h][o])
                    })
                    .collect();
                match want {
                    Some(bytes) => {
                        assert_eq!(r, Ok(()), "{op:?}");
                        assert_eq!(buf, bytes, "{op:?}: read back other bytes");
                    }
                    None => assert!(r.is_err(), "{op:?}: read of unmapped memory succeeded"),
                }
            }
            DmaOp::Write { addr, len, fill } => {
                let a = addr.get();
                let data: Vec<u8> = (0..usize::from(len % 600))
                    .map(|i| fill.wrapping_add(i as u8))
                    .collect();
                let r = ram.write(a, &data);
                let places: Option<Vec<(usize, usize)>> = (0..data.len() as u64)
                    .map(|i| model.locate(a.checked_add(i)?, true))
                    .collect();
                match places {
                    Some(p) => {
                        assert_eq!(r, Ok(()), "{op:?}");
                        for ((h, o), b) in p.into_iter().zip(&data) {
                            model.hosts[h][o] = *b;
                        }
                    }
                    None => assert!(r.is_err(), "{op:?}: write to unmapped memory succeeded"),
                }
                for (i, h) in hosts.iter().enumerate() {
                    h.get_slice(0, HOST_LEN).unwrap().copy_to(&mut now[..]);
                    if now != model.hosts[i] {
                        let at = now.iter().zip(&model.hosts[i]).position(|(x, y)| x != y);
                        panic!("{op:?}: host mapping {i} differs from the model at {at:?}");
                    }
                }
            }
        }
        assert_eq!(ram.region_count(), model.ranges.len(), "{op:?}");
    }
}
