//! End-to-end: backends that fail safely (issue 22), with a real QEMU guest running the
//! Linux e1000 driver. (a) The tap is deleted under a running nic-emu: one log line, the
//! guest's carrier drops (LSC), the control socket says why; a tap of that name is
//! created again and nic-emu reattaches, the guest's carrier and pings come back. (b) The
//! disk fills up during a recording (a 256 KiB tmpfs): the guest's download goes on, the
//! recording stops with a warning, and tcpdump reads the file to its end without a torn
//! record. (c) The UDP peer goes away and comes back: the guest's pings fail meanwhile,
//! nic-emu counts the ICMP errors, and the pings work again with nothing done to nic-emu.
//!
//! Addresses 10.233.22x.0/24. Needs root and the rig of scripts/provision.sh (skips with
//! `SKIP:` otherwise, fails under `NIC_EMU_NO_SKIP=1`).
//!
//! Run: `cargo test --test e2e_faults faults:: -- --nocapture` (as root, after provisioning).

use crate::support;
use crate::support::e2e;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// `nic-emu-cli ctl --control CTL args...`, which must succeed; its output.
fn ctl(ctl_sock: &Path, args: &[&str]) -> String {
    let mut c = Command::new(cli());
    c.arg("ctl").arg("--control").arg(ctl_sock).args(args);
    run_ok(&mut c)
}

/// The value of `key: value` in `ctl` output.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

/// Guest shell: wait (up to `secs`) until eth0's carrier reads `want`.
fn wait_carrier(want: u8, secs: u32) -> String {
    format!(
        "i=0; while [ \"$(cat /sys/class/net/eth0/carrier)\" != {want} ] && [ $i -lt {secs} ]; \
         do sleep 1; i=$((i+1)); done\n"
    )
}

/// (a) The tap deleted under a running guest, then created again.
#[test]
fn e2e_tap_deleted_under_a_guest_drops_its_link_and_a_new_tap_brings_it_back() {
    const T: &str = "e2e_tap_deleted_under_a_guest_drops_its_link_and_a_new_tap_brings_it_back";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("tapdel");
    let mut ns = Netns::new("tapdel");
    let (host, cidr) = ("10.233.221.1", "10.233.221.1/24");
    ns.add_tap("ne-del0", cidr);
    let sock = wd.path("ne.sock");
    let ctl_sock = wd.path("ne.ctl");
    let ctl_s = ctl_sock.display().to_string();
    let mac = "52:54:00:e2:22:01";
    let mut nic = NicEmu {
        backend: "tap,ifname=ne-del0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start_with(&wd, "nic-emu", &sock, &["--control", &ctl_s]);

    let script = format!(
        "{up1}echo WAIT-DOWN\n{down}echo CARRIER_DOWN=$(cat /sys/class/net/eth0/carrier)\n\
         echo DOWN-SEEN\n{up}echo CARRIER_UP=$(cat /sys/class/net/eth0/carrier)\n{up2}{report}",
        up1 = guest_ping("UP1", host, 3),
        down = wait_carrier(0, 90),
        up = wait_carrier(1, 120),
        up2 = guest_ping("UP2", host, 3),
        report = guest_report(),
    );
    let sock_s = sock.display().to_string();
    let mut g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            "10.233.221.2/24",
        ],
        &script,
    );
    g.wait_console("WAIT-DOWN", READY);

    run_ok(&mut ns.cmd("ip", &["link", "del", "ne-del0"]));
    g.wait_console("DOWN-SEEN", Duration::from_secs(120));
    let info = ctl(&ctl_sock, &["info"]);
    assert_eq!(field(&info, "link_up"), Some("false"), "{info}");
    assert_eq!(field(&info, "cable_plugged"), Some("true"), "{info}");
    assert_eq!(field(&info, "backend_carrier"), Some("false"), "{info}");
    let note = field(&info, "backend_carrier_note").unwrap_or_default();
    assert!(
        note.contains("ne-del0 was deleted") && note.contains("every 1 s"),
        "{info}"
    );
    // Some seconds without the tap: still one line about it, and no receive errors.
    sleep(Duration::from_secs(3));
    let log = nic.log_text();
    assert_eq!(
        log.matches("the interface is gone").count(),
        1,
        "one line for the deletion:\n{}",
        tail(&log, 30)
    );
    assert!(
        !log.contains("receive failed"),
        "receive errors logged:\n{}",
        tail(&log, 30)
    );
    // `ctl link up` cannot bring a link without a carrier.
    let up = ctl(&ctl_sock, &["link", "up"]);
    assert_eq!(field(&up, "link_up"), Some("false"), "{up}");

    // A tap of that name again (persistent, addressed, up): nic-emu reattaches.
    ns.add_tap("ne-del0", cidr);
    let run = g.finish();
    run.assert_ok();
    run.assert_ping("UP1", 3);
    assert_eq!(run.value("CARRIER_DOWN").as_deref(), Some("0"), "carrier");
    assert_eq!(run.value("CARRIER_UP").as_deref(), Some("1"), "carrier");
    run.assert_ping("UP2", 3);
    let dmesg = run.dmesg();
    assert!(
        dmesg.contains("NIC Link is Down"),
        "no LSC seen by the driver:\n{dmesg}"
    );
    assert!(
        dmesg.matches("NIC Link is Up").count() >= 2,
        "the link did not come back:\n{dmesg}"
    );
    run.assert_no_e1000_errors();
    assert_cli_alive(&mut nic);
    let info = ctl(&ctl_sock, &["info"]);
    assert_eq!(field(&info, "link_up"), Some("true"), "{info}");
    let stats = ctl(&ctl_sock, &["stats"]);
    assert_eq!(field(&stats, "backend.tap_lost"), Some("1"), "{stats}");
    assert_eq!(
        field(&stats, "backend.tap_reattached"),
        Some("1"),
        "{stats}"
    );
    stop_cli(&mut nic);
    let log = nic.log_text();
    assert!(log.contains("the interface is back: reattached"), "{log}");
    eprintln!("e2e: {T}: passed in {:.1}s", t0.elapsed().as_secs_f64());
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&dir).expect("mount point");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
                .arg("nic-emu-e2e")
                .arg(&dir),
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg(&self.0));
    }
}

/// The records of a classic pcap file (native microsecond format, as nic-emu writes
/// it): their captured lengths; panics on anything but whole records to the end.
fn whole_records(b: &[u8]) -> Vec<usize> {
    assert!(b.len() >= 24, "no pcap header ({} bytes)", b.len());
    assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 0xA1B2_C3D4);
    let mut at = 24;
    let mut out = Vec::new();
    while at < b.len() {
        assert!(at + 16 <= b.len(), "a torn record header at byte {at}");
        let incl = u32::from_ne_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        assert!(
            at + 16 + incl <= b.len(),
            "a torn record at byte {at}: {incl} bytes announced, {} there",
            b.len() - at - 16
        );
        out.push(incl);
        at += 16 + incl;
    }
    out
}

/// (b) The disk fills up during a recording.
#[test]
fn e2e_a_full_disk_stops_the_recording_not_the_traffic_and_leaves_whole_records() {
    const T: &str = "e2e_a_full_disk_stops_the_recording_not_the_traffic_and_leaves_whole_records";
    let Some(rig) = Rig::get(T, true) else { return };
    if !support::can_run(
        T,
        Command::new("tcpdump").arg("--version").output().is_ok(),
        "no tcpdump",
    ) {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("diskfull");
    let disk = SmallDisk::mount(wd.path("small"), "256k");
    let pcap = disk.0.join("rec.pcap");
    let mut ns = Netns::new("diskfull");
    let host = "10.233.222.1";
    ns.add_tap("ne-full0", "10.233.222.1/24");
    let (_httpd, blob) = start_httpd(&rig, &wd, &ns, host, 1 << 20);
    let want_md5 = md5_file(&rig, &blob);
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:22:02";
    let mut nic = NicEmu {
        backend: "tap,ifname=ne-full0".into(),
        mac,
        record: Some(pcap.clone()),
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);

    let script = format!(
        "{ping}wget -q -O /tmp/blob http://{host}:8080/blob; echo WGET_RC=$?\n\
         echo MD5=$(md5sum /tmp/blob | cut -d' ' -f1)\n{after}{report}",
        ping = guest_ping("BEFORE", host, 2),
        after = guest_ping("AFTER", host, 3),
        report = guest_report(),
    );
    let sock_s = sock.display().to_string();
    let g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            "10.233.222.2/24",
        ],
        &script,
    );
    let guest = g.finish();
    guest.assert_ok();
    assert_eq!(guest.value("WGET_RC").as_deref(), Some("0"), "download");
    assert_eq!(
        guest.value("MD5"),
        Some(want_md5),
        "downloaded data differs"
    );
    guest.assert_ping("AFTER", 3);
    assert_cli_alive(&mut nic);
    stop_cli(&mut nic);
    let log = nic.log_text();
    assert!(
        log.contains("recording stopped") && log.contains("No space left on device"),
        "no warning about the full disk:\n{}",
        tail(&log, 30)
    );
    assert_eq!(
        log.matches("recording stopped").count(),
        1,
        "one warning:\n{}",
        tail(&log, 30)
    );

    let bytes = std::fs::read(&pcap).expect("the recording");
    let _ = std::fs::write(wd.path("rec.pcap"), &bytes);
    let records = whole_records(&bytes);
    assert!(
        bytes.len() > 200 << 10,
        "the recording stopped early, at {} bytes",
        bytes.len()
    );
    let out = run(Command::new("tcpdump").args(["-n", "-r"]).arg(&pcap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stderr.contains("truncated"),
        "tcpdump: {}\n{stderr}",
        out.status
    );
    assert_eq!(
        stdout.lines().count(),
        records.len(),
        "tcpdump read them all"
    );
    drop(disk);
    eprintln!(
        "e2e: {T}: {} records, {} bytes kept; passed in {:.1}s",
        records.len(),
        bytes.len(),
        t0.elapsed().as_secs_f64()
    );
}

/// The far end of a UDP wire as a test thread: answers ARP for `ip` and ICMP echo
/// requests to it, with MAC `PEER_MAC`, until stopped.
struct UdpPeer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0xe2, 0x22, 0x03];

impl UdpPeer {
    fn start(addr: std::net::SocketAddr, ip: [u8; 4]) -> UdpPeer {
        let s = UdpSocket::bind(addr).expect("bind the peer's port");
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Acquire) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..n], ip) {
                    let _ = s.send_to(&reply, from);
                    answered += 1;
                }
            }
            answered
        });
        UdpPeer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop and close the socket; how many frames it answered.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Internet checksum of `b`.
fn csum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ARP reply or ICMP echo reply to `f`, if it asks `ip`.
fn answer(f: &[u8], ip: [u8; 4]) -> Option<Vec<u8>> {
    let src: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0806 if f.len() >= 42 && f[20..22] == [0, 1] && f[38..42] == ip => {
            let mut r = f[..42].to_vec();
            r[0..6].copy_from_slice(&src);
            r[6..12].copy_from_slice(&PEER_MAC);
            r[21] = 2; // reply
            r[22..28].copy_from_slice(&PEER_MAC);
            r[28..32].copy_from_slice(&ip);
            r[32..38].copy_from_slice(&src);
            r[38..42].copy_from_slice(&f[28..32]);
            Some(r)
        }
        0x0800 if f.len() >= 42 && f[23] == 1 && f[30..34] == ip => {
            let ihl = usize::from(f[14] & 0x0F) * 4;
            let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
            let end = 14 + total;
            if f.len() < end || f.get(14 + ihl)? != &8 {
                return None;
            }
            let mut r = f[..end].to_vec();
            r[0..6].copy_from_slice(&src);
            r[6..12].copy_from_slice(&PEER_MAC);
            let (a, b) = (f[26..30].to_vec(), f[30..34].to_vec());
            r[26..30].copy_from_slice(&b);
            r[30..34].copy_from_slice(&a);
            let icmp = 14 + ihl;
            r[icmp] = 0; // echo reply
            r[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
            let c = csum(&r[icmp..end]);
            r[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
            Some(r)
        }
        _ => None,
    }
}

/// (c) The UDP peer goes away and comes back.
#[test]
fn e2e_udp_peer_gone_is_counted_and_its_return_brings_the_pings_back() {
    const T: &str = "e2e_udp_peer_gone_is_counted_and_its_return_brings_the_pings_back";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("udpgone");
    let ports = free_udp_ports(2);
    let (pa, pb) = (ports[0], ports[1]);
    let peer_addr: std::net::SocketAddr = format!("127.0.0.1:{pb}").parse().unwrap();
    let peer_ip = [10, 233, 223, 1];
    let peer = UdpPeer::start(peer_addr, peer_ip);
    let sock = wd.path("ne.sock");
    let ctl_sock = wd.path("ne.ctl");
    let ctl_s = ctl_sock.display().to_string();
    let mut nic = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        mac: "52:54:00:e2:22:04",
        record: None,
        netns: None,
    }
    .start_with(&wd, "nic-emu", &sock, &["--control", &ctl_s]);

    let host = "10.233.223.1";
    let script = format!(
        "{up1}echo GONE-NOW\nsleep 4\n\
         echo BEGIN-GONE; ping -c 3 -W 1 {host}; echo END-GONE rc=$?\n\
         echo CARRIER_GONE=$(cat /sys/class/net/eth0/carrier)\necho GONE-DONE\n\
         i=0; until ping -c 1 -W 1 {host} >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i+1)); done\n\
         echo BEGIN-UP2; ping -c 3 -W 2 {host}; echo END-UP2 rc=$?\n{report}",
        up1 = guest_ping("UP1", host, 3),
        report = guest_report(),
    );
    let sock_s = sock.display().to_string();
    let mut g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sock_s,
            "--guest-ip",
            "10.233.223.2/24",
        ],
        &script,
    );
    g.wait_console("GONE-NOW", READY);
    let answered = peer.stop();
    assert!(answered >= 3, "the peer answered {answered} frames");
    g.wait_console("GONE-DONE", Duration::from_secs(60));
    let stats = ctl(&ctl_sock, &["stats"]);
    let unreachable: u64 = field(&stats, "backend.udp_peer_unreachable")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(unreachable > 0, "no ICMP error counted:\n{stats}");
    assert_eq!(
        field(&stats, "link_up"),
        Some("true"),
        "a UDP wire keeps its link"
    );
    let _peer = UdpPeer::start(peer_addr, peer_ip);
    let run = g.finish();
    run.assert_ok();
    run.assert_ping("UP1", 3);
    let gone = run.section("GONE");
    assert!(
        gone.contains("3 packets transmitted, 0 packets received"),
        "pings answered with the peer gone:\n{gone}"
    );
    assert_eq!(run.value("CARRIER_GONE").as_deref(), Some("1"));
    run.assert_ping("UP2", 3);
    run.assert_no_e1000_errors();
    assert_cli_alive(&mut nic);
    stop_cli(&mut nic);
    let log = nic.log_text();
    let lines = log.matches("unreachable (").count() as u64;
    assert!(
        lines >= 1 && lines <= unreachable.min(8) + 64 - u64::from(unreachable.leading_zeros()),
        "{lines} log lines for {unreachable} ICMP errors:\n{}",
        tail(&log, 30)
    );
    eprintln!(
        "e2e: {T}: {unreachable} ICMP errors counted, {lines} logged; passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
