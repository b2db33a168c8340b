//! Segmentation handed on to a backend that segments itself (a tap with a virtio-net
//! header): a 64 KiB TSO packet leaves the device whole, with a partial checksum in
//! Linux's form. The test cuts it as Linux's TCP segmentation does and checks every
//! segment with etherparse, as the device's own segmentation is checked; packets that
//! cannot be handed on fall back to the device's segmentation.

use crate::support;
use crate::support::tx;

use std::io;
use std::sync::{Arc, Mutex};

use nic_emu::backend::Gso;
use nic_emu::device::regs::*;
use nic_emu::PacketBackend;
use support::*;
use tx::*;

/// Frames sent plainly, and packets handed on whole.
#[derive(Default)]
struct Sent {
    frames: Vec<Vec<u8>>,
    whole: Vec<(Vec<u8>, Gso)>,
}

/// A backend that takes segmentation offload, as a tap with `IFF_VNET_HDR` does.
#[derive(Clone, Default)]
struct GsoWire(Arc<Mutex<Sent>>);

impl PacketBackend for GsoWire {
    fn name(&self) -> String {
        "gso-wire".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.0.lock().unwrap().frames.push(frame.to_vec());
        Ok(true)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn accepts_gso(&self) -> bool {
        true
    }
    fn send_gso(&mut self, frame: &[u8], gso: &Gso) -> io::Result<bool> {
        self.0.lock().unwrap().whole.push((frame.to_vec(), *gso));
        Ok(true)
    }
}

fn opened_gso() -> (FakeGuest, GsoWire) {
    let wire = GsoWire::default();
    let mut g = FakeGuest::new(Box::new(wire.clone()));
    g.linux_probe();
    g.linux_open(4096, 8);
    g.rd(ICR);
    (g, wire)
}

fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xFFFF) + (s >> 16)) as u16
}

/// Cut a packet handed on whole as Linux's TCP segmentation does: headers copied, IP
/// length (IPv4 identification + i and header checksum), sequence number + i * MSS,
/// PSH and FIN on the last segment only, and the TCP checksum finished from the partial
/// one with the segment's length in place of the whole packet's.
fn linux_segments(frame: &[u8], gso: &Gso) -> Vec<Vec<u8>> {
    let (hdr, css) = (usize::from(gso.hdr_len), usize::from(gso.csum_start));
    let cso = css + usize::from(gso.csum_offset);
    let mss = usize::from(gso.mss);
    let whole_l4 = (frame.len() - css) as u16;
    let partial = u16::from_be_bytes([frame[cso], frame[cso + 1]]);
    let payload = &frame[hdr..];
    let n = payload.len().div_ceil(mss);
    (0..n)
        .map(|i| {
            let chunk = &payload[i * mss..((i + 1) * mss).min(payload.len())];
            let mut s = frame[..hdr].to_vec();
            s.extend_from_slice(chunk);
            let len = s.len();
            if gso.ipv6 {
                s[18..20].copy_from_slice(&((len - 54) as u16).to_be_bytes());
            } else {
                s[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
                let id = u16::from_be_bytes([s[18], s[19]]).wrapping_add(i as u16);
                s[18..20].copy_from_slice(&id.to_be_bytes());
                s[24..26].copy_from_slice(&[0, 0]);
                let c = !ones_sum(&[&s[14..34]]);
                s[24..26].copy_from_slice(&c.to_be_bytes());
            }
            let seq = u32::from_be_bytes([s[css + 4], s[css + 5], s[css + 6], s[css + 7]])
                .wrapping_add((i * mss) as u32);
            s[css + 4..css + 8].copy_from_slice(&seq.to_be_bytes());
            if i + 1 < n {
                s[css + 13] &= !0x09; // PSH, FIN
            }
            let seg_l4 = (len - css) as u16;
            let seeded = add(add(partial, !whole_l4), seg_l4);
            s[cso..cso + 2].copy_from_slice(&seeded.to_be_bytes());
            let c = !ones_sum(&[&s[css..]]);
            s[cso..cso + 2].copy_from_slice(&c.to_be_bytes());
            s
        })
        .collect()
}

fn handed_on_whole(v6: bool) {
    let (mut g, wire) = opened_gso();
    // What Linux sends at most: 44 segments of 1448 bytes in one packet.
    let t = post_tso(&mut g, v6, 4096, 1448, 44 * 1448);
    let sent = std::mem::take(&mut *wire.0.lock().unwrap());
    assert!(sent.frames.is_empty(), "nothing segmented by the device");
    assert_eq!(sent.whole.len(), 1, "one packet handed on");
    let (frame, gso) = &sent.whole[0];
    assert_eq!(frame.len(), t.hdrlen + t.payload.len());
    assert_eq!(
        *gso,
        Gso {
            ipv6: v6,
            segment: true,
            hdr_len: t.hdrlen as u16,
            mss: 1448,
            csum_start: t.hdrlen as u16 - 20,
            csum_offset: 16,
        }
    );
    let n = check_segments(&t, &linux_segments(frame, gso));
    // The guest sees what it would with the device segmenting.
    let s = g.bus.device().stats().clone();
    assert_eq!(
        (s.peek(TSCTC), s.peek(TSCTFC), s.peek(GPTC)),
        (1, 0, n as u64)
    );
    let m = g.bus.device().metrics();
    assert_eq!((m.tx_frames, m.tx_malformed), (n as u64, 0));
    assert_eq!(g.rd(TDH), g.tx_tail);
}

#[test]
fn a_64k_tso_packet_over_ipv4_is_handed_on_whole_and_cuts_right() {
    handed_on_whole(false);
}

#[test]
fn a_64k_tso_packet_over_ipv6_is_handed_on_whole_and_cuts_right() {
    handed_on_whole(true);
}

#[test]
fn a_tso_packet_of_one_segment_is_finished_by_the_device() {
    let (mut g, wire) = opened_gso();
    // Payload within one MSS: nothing to cut, so the device finishes the checksums and
    // sends one plain frame.
    let t = post_tso(&mut g, false, 4096, 1448, 1000);
    let sent = std::mem::take(&mut *wire.0.lock().unwrap());
    assert!(sent.whole.is_empty());
    assert_eq!(check_segments(&t, &sent.frames), 1);
    assert_eq!(g.bus.device().stats().peek(TSCTC), 1);
}

#[test]
fn packets_the_backend_cannot_cut_fall_back_to_the_device() {
    // 64 KiB of payload plus headers is more than one IP datagram holds: the device
    // segments it itself, even for a backend that takes offload.
    let (mut g, wire) = opened_gso();
    let t = post_tso_64k(&mut g, false, 4096, 1448);
    let sent = std::mem::take(&mut *wire.0.lock().unwrap());
    assert!(sent.whole.is_empty());
    check_segments(&t, &sent.frames);
    // A plain wire: the device segments, as before (the same check as offload.rs).
    let (mut g, wire) = opened(4096);
    let t = post_tso_64k(&mut g, false, 4096, 1448);
    check_segments(&t, &wire.take_sent());
    // A wrapper that does not take offload (recording, impairment) keeps it that way:
    // the default of the trait.
    struct Plain(GsoWire);
    impl PacketBackend for Plain {
        fn name(&self) -> String {
            "plain".into()
        }
        fn send(&mut self, f: &[u8]) -> io::Result<bool> {
            self.0.send(f)
        }
        fn recv(&mut self, b: &mut [u8]) -> io::Result<Option<usize>> {
            self.0.recv(b)
        }
    }
    let inner = GsoWire::default();
    let mut g = FakeGuest::new(Box::new(Plain(inner.clone())));
    g.linux_probe();
    g.linux_open(4096, 8);
    let t = post_tso_64k(&mut g, true, 4096, 1448);
    let sent = std::mem::take(&mut *inner.0.lock().unwrap());
    assert!(sent.whole.is_empty());
    check_segments(&t, &sent.frames);
}

/// The packets in a pcap file.
#[cfg(feature = "pcap")]
fn pcap_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data().to_vec());
    }
    out
}

#[test]
#[cfg(feature = "pcap")]
fn a_recorder_hands_whole_packets_on_and_records_the_segments_the_wire_carries() {
    use nic_emu::backend::{PcapRecorder, RecordLimits};
    let dir = std::env::temp_dir().join(format!("nic-emu-gso-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tx.pcap");
    for recording in [true, false] {
        let wire = GsoWire::default();
        let rec = if recording {
            PcapRecorder::create(wire.clone(), &path, RecordLimits::default()).unwrap()
        } else {
            PcapRecorder::idle(wire.clone())
        };
        let mut g = FakeGuest::new(Box::new(rec));
        g.linux_probe();
        g.linux_open(4096, 8);
        g.rd(ICR);
        let t = post_tso(&mut g, false, 4096, 1448, 44 * 1448);
        g.bus.device().backend_mut().flush().unwrap();
        let sent = std::mem::take(&mut *wire.0.lock().unwrap());
        assert!(
            sent.frames.is_empty(),
            "recording {recording}: nothing cut by the device"
        );
        assert_eq!(
            sent.whole.len(),
            1,
            "recording {recording}: one packet handed on"
        );
        if recording {
            // What the recording holds is what the wire carries: 44 checked segments.
            let frames = pcap_frames(&path);
            assert_eq!(check_segments(&t, &frames), 44);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
