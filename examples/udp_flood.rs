//! A fixed-rate UDP sender: the host side of `scripts/bench-e2e.sh --dpdk`, which offers
//! frames to a guest whose DPDK testpmd counts what its NIC receives (`rxonly`).
//!
//! Datagrams leave in batches of up to 32 through one `sendmmsg` each, paced so that
//! after `t` seconds `t * PPS` have been offered: the sender's own cost stays small next
//! to the guest's, and both NICs of a benchmark see the same offered load. A send the
//! kernel refuses (a full queue) is counted, not retried.
//!
//! Run: `udp_flood DST_IP:PORT PPS SECONDS [PAYLOAD_BYTES]` (payload default 18: with
//! the UDP, IPv4 and Ethernet headers a 60-byte frame, 64 on the wire with the CRC).
//! The destination needs a neighbour entry when nobody answers ARP for it (a NIC
//! driven by DPDK does not): `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
//! It prints one line: datagrams offered, seconds, rate and refused sends.

use std::error::Error;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Datagrams per `sendmmsg`.
const BATCH: usize = 32;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> Result<T, String> {
    let s = args.get(i).ok_or_else(|| format!("missing {name}"))?;
    s.parse()
        .map_err(|_| format!("{name}: cannot parse {s:?} (see the usage line)"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        return Err("usage: udp_flood DST_IP:PORT PPS SECONDS [PAYLOAD_BYTES]".into());
    }
    let dst: SocketAddr = arg(&args, 1, "DST_IP:PORT")?;
    let pps: u64 = arg(&args, 2, "PPS")?;
    let secs: f64 = arg(&args, 3, "SECONDS")?;
    let len: usize = if args.len() == 5 {
        arg(&args, 4, "PAYLOAD_BYTES")?
    } else {
        18
    };
    if pps == 0 || !(secs > 0.0 && secs < 86_400.0) || len > 65_507 {
        return Err("PPS must be > 0, SECONDS in (0, 86400), PAYLOAD_BYTES <= 65507".into());
    }
    let bind: SocketAddr = if dst.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(dst)?;
    sock.set_nonblocking(true)?;

    let mut payload = vec![0x5Au8; len];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: mmsghdr is plain data; all-zero is a valid value (no name, no control).
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    for m in &mut msgs {
        m.msg_hdr.msg_iov = &mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }

    let total = (secs * pps as f64) as u64;
    let start = Instant::now();
    let (mut sent, mut refused) = (0u64, 0u64);
    while sent + refused < total {
        let t = start.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        let due = ((t * pps as f64) as u64).min(total);
        let done = sent + refused;
        if done >= due {
            // Sleep until the next batch is due (at least 50 us: the timer's grain).
            let next = (done + BATCH as u64) as f64 / pps as f64;
            std::thread::sleep(Duration::from_secs_f64((next - t).max(50e-6)));
            continue;
        }
        let n = (due - done).min(BATCH as u64) as u32;
        // SAFETY: `msgs` holds BATCH initialised headers, each pointing at `iov`, which
        // points at `payload`; all three outlive the call, and n <= BATCH.
        let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n, 0) };
        if r > 0 {
            sent += r as u64;
        } else {
            // A full socket or device queue: the batch is lost, as a NIC would lose it.
            refused += u64::from(n);
        }
    }
    let t = start.elapsed().as_secs_f64();
    println!(
        "udp_flood: {sent} datagrams of {len} bytes to {dst} in {t:.3} s ({:.0}/s), \
         {refused} refused by the kernel",
        sent as f64 / t
    );
    Ok(())
}
