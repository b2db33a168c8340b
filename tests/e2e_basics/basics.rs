//! End-to-end tests with real QEMU guests running the unmodified Linux e1000 driver on
//! nic-emu-cli over vfio-user.
//!
//! Scenarios (10.233.1x.0/24, x = scenario): 1+2 tap, pings both ways, then a second
//! QEMU on the same server; 3 two nic-emu guests on the UDP backend; 4 a nic-emu guest
//! and a QEMU-e1000 guest (`-netdev dgram`) on one UDP wire; 5 pcap replay into the
//! guest; 6 `--record` holds the ICMP of both directions. Bulk TCP and jumbo frames
//! are in `traffic`, a killed QEMU and `--link-down` in tests/e2e_faults/lifecycle.rs, iPXE
//! in tests/e2e_drivers/ipxe.rs.
//! Every guest's dmesg is checked: driver bound with the MAC, link up, carrier, no
//! EEPROM/checksum/probe errors, no "Detected Tx Unit Hang".
//!
//! Needs the rig of scripts/provision.sh (QEMU with vfio-user-pci, guest kernel and
//! busybox initramfs under /var/cache/nic-emu). Scenarios that make network namespaces
//! and taps need root; all of them skip (`SKIP: ...`) when they cannot run, and fail
//! instead under `NIC_EMU_NO_SKIP=1` (CI).
//!
//! The machine has two CPUs and each TCG guest wants one, so the scenarios take a global
//! lock and run one at a time (a scenario may run two guests together). Each scenario
//! uses its own namespace, socket, addresses and UDP ports. Set `NIC_EMU_E2E_KEEP=1` to
//! keep the consoles and logs of passing runs too (failing runs always keep them), and
//! `NIC_EMU_E2E_CLI=PATH` to test another nic-emu-cli build.
//!
//! Run: `cargo test --test e2e_basics basics:: -- --nocapture` (as root, after provisioning).

use crate::support;
use crate::support::e2e;

use std::process::Command;
use std::time::Instant;

use e2e::*;

/// Scenarios 1 and 2: nic-emu-cli on a tap in a namespace; a guest pings the host 3/3
/// and the host pings the guest 3/3; the e1000 driver probed cleanly (MAC, link up,
/// carrier, no EEPROM/checksum/probe errors, no TX hang). The guest powers off and a
/// second QEMU connects to the same nic-emu-cli and does it all again.
#[test]
fn e2e_vfio_user_tap_ping_both_ways_then_second_qemu() {
    const T: &str = "e2e_vfio_user_tap_ping_both_ways_then_second_qemu";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("tap");
    let mut ns = Netns::new("tap");
    ns.add_tap("ne-tap0", "10.233.11.1/24");
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:11";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    assert_eq!(ns.sysfs("ne-tap0", "carrier"), "1", "tap has no reader");

    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    for round in 1..=2 {
        let name = format!("guest{round}");
        let (run, host_ping) = setup.round(&name, "10.233.11.1", "10.233.11.2/24", DEFAULT_ROUND);
        run.assert_ok();
        run.assert_e1000_healthy(mac);
        run.assert_ping("G2H", 3);
        assert_host_ping(&name, &host_ping);
        assert_eq!(
            run.value("RELEASED").as_deref(),
            Some("0"),
            "{name}: release"
        );
        assert_cli_alive(&mut cli);
        eprintln!(
            "e2e: {T}: {name} passed, guest wall {:.1}s",
            run.wall.as_secs_f64()
        );
    }
    stop_cli(&mut cli);
    assert_no_lints(
        "e2e_vfio_user_tap_ping_both_ways_then_second_qemu",
        &cli,
        &[],
    );
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 6: as scenario 1 with `--record`; the recording holds ICMP echo requests and
/// replies of both directions (read back with tcpdump).
#[test]
fn e2e_tap_record_pcap_has_icmp_both_ways() {
    const T: &str = "e2e_tap_record_pcap_has_icmp_both_ways";
    let Some(rig) = Rig::get(T, true) else { return };
    let have_tcpdump = run(Command::new("sh").args(["-c", "command -v tcpdump"]))
        .status
        .success();
    if !support::can_run(T, have_tcpdump, "needs tcpdump (apt-get install tcpdump)") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("record");
    let mut ns = Netns::new("record");
    ns.add_tap("ne-tap0", "10.233.16.1/24");
    let sock = wd.path("ne.sock");
    let pcap = wd.path("record.pcap");
    let mac = "52:54:00:e2:e0:16";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: Some(pcap.clone()),
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);
    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run, host_ping) = setup.round("guest", "10.233.16.1", "10.233.16.2/24", DEFAULT_ROUND);
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    stop_cli(&mut cli);

    let out = e2e::run(
        Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&pcap)
            .arg("icmp"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |from: &str, to: &str, what: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("{from} > {to}: ICMP echo {what}")))
            .count()
    };
    let (g, h) = ("10.233.16.2", "10.233.16.1");
    for (from, to, what) in [
        (g, h, "request"),
        (h, g, "reply"),
        (h, g, "request"),
        (g, h, "reply"),
    ] {
        assert!(
            count(from, to, what) >= 3,
            "recording lacks 3 ICMP echo {what}s {from} > {to}:\n{text}"
        );
    }
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 3: two guests, each with its own nic-emu-cli, joined by the UDP backend on
/// 127.0.0.1, ping each other (no tap).
#[test]
fn e2e_udp_two_nic_emu_guests_ping_each_other() {
    const T: &str = "e2e_udp_two_nic_emu_guests_ping_each_other";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("udp2");
    let ports = free_udp_ports(2);
    let (pa, pb) = (ports[0], ports[1]);
    let (mac_a, mac_b) = ("52:54:00:e2:e0:a3", "52:54:00:e2:e0:b3");
    let (sock_a, sock_b) = (wd.path("a.sock"), wd.path("b.sock"));
    let mut cli_a = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        mac: mac_a,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu-a", &sock_a);
    let mut cli_b = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pb},remote=127.0.0.1:{pa}"),
        mac: mac_b,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu-b", &sock_b);
    let (ip_a, ip_b) = ("10.233.13.2", "10.233.13.3");
    let sa = sock_a.display().to_string();
    let sb = sock_b.display().to_string();
    let ga = Guest::boot(
        &rig,
        &wd,
        "guest-a",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sa,
            "--guest-ip",
            "10.233.13.2/24",
        ],
        &peer_guest_cmd(ip_b),
    );
    let gb = Guest::boot(
        &rig,
        &wd,
        "guest-b",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &sb,
            "--guest-ip",
            "10.233.13.3/24",
        ],
        &peer_guest_cmd(ip_a),
    );
    let (ra, rb) = (ga.finish(), gb.finish());
    for (r, mac) in [(&ra, mac_a), (&rb, mac_b)] {
        r.assert_ok();
        r.assert_e1000_healthy(mac);
        r.assert_ping("PEER", 3);
        assert_got_echos(r);
    }
    assert_cli_alive(&mut cli_a);
    assert_cli_alive(&mut cli_b);
    stop_cli(&mut cli_a);
    stop_cli(&mut cli_b);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Scenario 4: a nic-emu guest (UDP backend) and a guest on QEMU's own e1000 with
/// `-netdev dgram` share one UDP "wire" and ping each other.
#[test]
fn e2e_udp_nic_emu_guest_pings_qemu_e1000_guest() {
    const T: &str = "e2e_udp_nic_emu_guest_pings_qemu_e1000_guest";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("dgram");
    let ports = free_udp_ports(2);
    let (pa, pb) = (ports[0], ports[1]);
    let mac = "52:54:00:e2:e0:14";
    let sock = wd.path("ne.sock");
    let mut cli = NicEmu {
        backend: format!("udp,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let (ip_a, ip_b) = ("10.233.14.2", "10.233.14.3");
    let s = sock.display().to_string();
    let (local_b, remote_b) = (format!("127.0.0.1:{pb}"), format!("127.0.0.1:{pa}"));
    let ga = Guest::boot(
        &rig,
        &wd,
        "guest-nic-emu",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.14.2/24",
        ],
        &peer_guest_cmd(ip_b),
    );
    let gb = Guest::boot(
        &rig,
        &wd,
        "guest-qemu-e1000",
        &[
            "--nic",
            "dgram-e1000",
            "--dgram-local",
            &local_b,
            "--dgram-remote",
            &remote_b,
            "--guest-ip",
            "10.233.14.3/24",
        ],
        &peer_guest_cmd(ip_a),
    );
    let (ra, rb) = (ga.finish(), gb.finish());
    ra.assert_ok();
    ra.assert_e1000_healthy(mac);
    ra.assert_ping("PEER", 3);
    rb.assert_ok();
    rb.assert_no_e1000_errors();
    rb.assert_ping("PEER", 3);
    assert_got_echos(&ra);
    assert_got_echos(&rb);
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}

/// Number of UDP datagrams in the replayed capture.
const REPLAY_N: usize = 200;

/// Scenario 5: nic-emu-cli replays a capture of `REPLAY_N` UDP datagrams (60 to 1514
/// byte frames) addressed to the guest, as fast as the guest takes them; the guest's
/// driver and IP stack receive every one (eth0 rx_packets, /proc/net/snmp Udp counters,
/// no checksum errors).
#[test]
fn e2e_pcap_replay_guest_receives_every_datagram() {
    const T: &str = "e2e_pcap_replay_guest_receives_every_datagram";
    let Some(rig) = Rig::get(T, false) else {
        return;
    };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("replay");
    let mac = "52:54:00:e2:e0:15";
    let frames: Vec<Vec<u8>> = (0..REPLAY_N)
        .map(|i| {
            let payload_len = if i % 10 == 9 {
                1472
            } else {
                18 + (i * 37) % 1455
            };
            let payload: Vec<u8> = (0..payload_len).map(|k| (k + i) as u8).collect();
            let b = etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 0x99], parse_mac(mac))
                .ipv4([10, 233, 15, 1], [10, 233, 15, 2], 64)
                .udp(40000, 9);
            let mut f = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut f, &payload).expect("build frame");
            f
        })
        .collect();
    assert_eq!(frames.iter().map(Vec::len).max(), Some(1514));
    let pcap = wd.path("in.pcap");
    write_pcap(&pcap, &frames);
    let sock = wd.path("ne.sock");
    let mut cli = NicEmu {
        backend: format!("pcap,replay={},timing=fast", pcap.display()),
        mac,
        record: None,
        netns: None,
    }
    .start(&wd, "nic-emu", &sock);
    let s = sock.display().to_string();
    let cmd = format!(
        "i=0; while [ $(cat /sys/class/net/eth0/statistics/rx_packets) -lt {REPLAY_N} ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done\n\
         sleep 1\n\
         echo BEGIN-SNMP; cat /proc/net/snmp; echo END-SNMP\n{}",
        guest_report()
    );
    let g = Guest::boot(
        &rig,
        &wd,
        "guest",
        &[
            "--nic",
            "vfio-user",
            "--socket",
            &s,
            "--guest-ip",
            "10.233.15.2/24",
        ],
        &cmd,
    );
    let r = g.finish();
    r.assert_ok();
    r.assert_e1000_healthy(mac);
    let rx: usize = r
        .value("RX_PACKETS")
        .and_then(|v| v.parse().ok())
        .expect("RX_PACKETS");
    assert_eq!(rx, REPLAY_N, "eth0 rx_packets");
    let udp = snmp_udp(&r.section("SNMP"));
    let get = |k: &str| udp.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    assert_eq!(
        get("InDatagrams") + get("NoPorts"),
        REPLAY_N as u64,
        "UDP datagrams delivered to the stack: {udp:?}"
    );
    assert_eq!(get("InErrors"), 0, "{udp:?}");
    assert_eq!(get("InCsumErrors"), 0, "{udp:?}");
    stop_cli(&mut cli);
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
