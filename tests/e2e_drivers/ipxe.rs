//! End to end, network boot: iPXE (QEMU's own e1000 option ROM) netboots Linux over HTTP
//! through the emulated card, and Linux's e1000 driver takes the same card over.

use crate::support;
use crate::support::e2e;

use std::process::Command;
use std::time::Instant;

use e2e::*;

/// Network boot with iPXE, QEMU's own e1000 option ROM (pxe-e1000.rom) run
/// by SeaBIOS on our device. iPXE gets a DHCP lease (busybox udhcpd on the tap), fetches
/// a script, a kernel and an initrd over HTTP (13 MB), boots Linux, and Linux's e1000
/// driver takes the same card over and pings the host.
#[test]
fn e2e_ipxe_netboots_linux_over_http() {
    const T: &str = "e2e_ipxe_netboots_linux_over_http";
    let Some(rig) = Rig::get(T, true) else { return };
    let rom_ok = rig.qemu_share().join("pxe-e1000.rom").exists();
    if !support::can_run(T, rom_ok, "QEMU's pxe-e1000.rom (iPXE) is not in the rig") {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("ipxe");
    let mut ns = Netns::new("ipxe");
    ns.add_tap("ne-tap0", "10.233.20.1/24");
    let (_httpd, _blob) = start_httpd(&rig, &wd, &ns, "10.233.20.1", 1);
    let www = wd.path("www");
    std::fs::copy(rig.guest_dir().join("vmlinuz"), www.join("vmlinuz")).expect("kernel");
    let guest_cmd = format!("{}{}", guest_ping("G2H", "10.233.20.1", 3), guest_report());
    guest_initrd(&rig, &wd, &guest_cmd, &www.join("initrd"));
    std::fs::write(
        www.join("boot.ipxe"),
        "#!ipxe\n\
         echo nic-emu: iPXE boots Linux over HTTP\n\
         kernel http://10.233.20.1:8080/vmlinuz console=ttyS0 panic=-1 quiet ne.ip=10.233.20.2/24 ne.mods=e1000\n\
         initrd http://10.233.20.1:8080/initrd\n\
         boot\n",
    )
    .expect("boot.ipxe");
    let conf = wd.path("udhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "start 10.233.20.2\nend 10.233.20.2\ninterface ne-tap0\n\
             lease_file {}\npidfile {}\nsiaddr 10.233.20.1\n\
             boot_file http://10.233.20.1:8080/boot.ipxe\n\
             option subnet 255.255.255.0\noption lease 600\n",
            wd.path("leases").display(),
            wd.path("udhcpd.pid").display()
        ),
    )
    .expect("udhcpd.conf");
    std::fs::write(wd.path("leases"), b"").expect("leases");
    let conf_s = conf.display().to_string();
    let _dhcpd = Proc::spawn(
        "udhcpd",
        ns.cmd(rig.busybox(), &["udhcpd", "-f", &conf_s]),
        &wd.path("udhcpd.log"),
    );
    let sock = wd.path("ne.sock");
    let mac = "52:54:00:e2:e0:20";
    let mut cli = NicEmu {
        backend: "tap,ifname=ne-tap0".into(),
        mac,
        record: None,
        netns: Some(&ns),
    }
    .start(&wd, "nic-emu", &sock);

    let console = wd.path("guest.console");
    let mut q = Command::new(&rig.qemu);
    q.args(["-nodefaults", "-no-user-config", "-accel", "tcg"])
        .args(["-machine", "pc,graphics=off", "-m", "256"])
        .args(["-object", "memory-backend-memfd,id=mem0,size=256M,share=on"])
        .args(["-machine", "memory-backend=mem0"])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-boot",
            "n",
        ])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-device")
        .arg(format!(
            "{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"type\":\"unix\",\"path\":\"{}\"}},\
             \"romfile\":\"pxe-e1000.rom\",\"bootindex\":1}}",
            sock.display()
        ));
    let run = Guest::qemu(&wd, "guest", q, console).finish();
    let c = &run.console;
    for want in [
        "using 82540em on 0000:00:02.0",
        "[Link:up",
        "net0: 10.233.20.2/255.255.255.0",
        "boot.ipxe... ok",
        "vmlinuz... ok",
        "initrd... ok",
    ] {
        assert!(
            c.contains(want),
            "iPXE console lacks {want:?}:\n{}",
            tail(c, 40)
        );
    }
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    stop_cli(&mut cli);
    assert_no_lints(T, &cli, &[]);
    eprintln!(
        "e2e: {T}: {:.1}s (guest {:.1}s)",
        t0.elapsed().as_secs_f64(),
        run.wall.as_secs_f64()
    );
}
