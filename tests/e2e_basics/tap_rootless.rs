//! End-to-end: a tap without root in nic-emu-cli (issue 22), with a real QEMU guest
//! running the Linux e1000 driver. (a) `tap,fd=N`: contrib/open-tap opens the tap (as
//! root, in a namespace the test creates) and nic-emu-cli inherits the descriptor; the
//! guest pings the host both ways; the tap is deleted and created again, and the link
//! stays down with `ctl info` saying why (an inherited descriptor cannot be reopened).
//! Descriptors that are not usable taps are refused with the key named. (b) A persistent
//! tap owned by `nobody`, opened by nic-emu-cli running as `nobody` with no capability;
//! the guest pings the host both ways. Taps it may not open are refused with what to do.
//!
//! Addresses 10.233.22x.0/24. Needs root (namespaces, setpriv, python3 for the opener)
//! and the rig of scripts/provision.sh (skips with `SKIP:` otherwise, fails under
//! `NIC_EMU_NO_SKIP=1`).
//!
//! Run: `cargo test --test e2e_basics tap_rootless:: -- --nocapture` (as root, after provisioning).

use crate::support;
use crate::support::e2e;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::*;

/// contrib/open-tap.
fn open_tap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/open-tap")
}

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

/// Wait until `path` exists (a socket a child creates).
fn wait_for_path(p: &mut Proc, path: &Path) {
    let t0 = Instant::now();
    while !path.exists() {
        if let Some(st) = p.try_wait() {
            panic!("{} exited ({st}):\n{}", p.name, p.log_tail(30));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{}: no {} after 20 s:\n{}",
            p.name,
            path.display(),
            p.log_tail(30)
        );
        sleep(Duration::from_millis(50));
    }
}

/// A directory anyone may create files in, and a copy of nic-emu-cli anyone may run (the
/// build directory may not be reachable by `nobody`).
fn open_dir_and_cli(wd: &Workdir) -> (PathBuf, PathBuf) {
    std::fs::set_permissions(&wd.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let d = wd.path("socks");
    std::fs::create_dir_all(&d).expect("socket dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let bin = wd.path("nic-emu-cli");
    std::fs::copy(cli(), &bin).expect("copy nic-emu-cli");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (d, bin)
}

/// A field of /proc/PID/status.
fn status_field(pid: u32, key: &str) -> String {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    st.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// (a) A tap descriptor passed to nic-emu-cli.
#[test]
fn e2e_tap_fd_inherited_carries_the_guest_and_its_loss_is_final() {
    const T: &str = "e2e_tap_fd_inherited_carries_the_guest_and_its_loss_is_final";
    let Some(rig) = Rig::get(T, true) else { return };
    if !support::can_run(
        T,
        Command::new("python3").arg("--version").output().is_ok(),
        "no python3",
    ) {
        return;
    }
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("tapfd");
    let mut ns = Netns::new("tapfd");

    // Descriptors that are not usable taps: refused at start, naming the key.
    let refused = |mut c: Command, want: &str| {
        let out = run(&mut c);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{c:?} was accepted");
        assert!(err.contains("`fd`=") && err.contains(want), "{c:?}: {err}");
    };
    let sock = wd.path("ne.sock");
    let sock_s = sock.display().to_string();
    let cli_s = cli().display().to_string();
    // Each is given 60 s, so that one accepted by mistake cannot hang the test.
    let nic = |backend: &str| {
        ns.cmd(
            "timeout",
            &["60", &cli_s, "--backend", backend, "--socket", &sock_s],
        )
    };
    refused(nic("tap,fd=0"), "not a tap");
    refused(nic("tap,fd=77"), "no such open");
    // A tap opened without IFF_NO_PI (frames would carry a packet-information header):
    // /sys in the namespace shows it, and nic-emu refuses it.
    let py = "import fcntl, os, struct, sys\n\
              fd = os.open('/dev/net/tun', os.O_RDWR)\n\
              fcntl.ioctl(fd, 0x400454CA, struct.pack('16sH22x', b'ne-pi0', 0x0002))\n\
              os.set_inheritable(fd, True)\n\
              args = [a.replace('{fd}', str(fd)) for a in sys.argv[1:]]\n\
              os.execv(args[0], args)\n";
    refused(
        ns.cmd(
            "timeout",
            &[
                "60",
                "python3",
                "-c",
                py,
                &cli_s,
                "--backend",
                "tap,fd={fd}",
                "--socket",
                &sock_s,
            ],
        ),
        "IFF_NO_PI",
    );

    let ctl_sock = wd.path("ne.ctl");
    let ctl_s = ctl_sock.display().to_string();
    let mac = "52:54:00:e2:22:11";
    let opener = open_tap().display().to_string();
    let c = ns.cmd(
        "python3",
        &[
            &opener,
            "ne-fd0",
            "--",
            &cli_s,
            "--backend",
            "tap,fd={fd}",
            "--socket",
            &sock_s,
            "--control",
            &ctl_s,
            "--mac",
            mac,
        ],
    );
    let mut c = c;
    c.current_dir(&wd.0);
    let mut nic = Proc::spawn("nic-emu", c, &wd.path("nic-emu.log"));
    wait_for_path(&mut nic, &sock);
    let log = nic.log_text();
    assert!(
        log.contains("tap ne-fd0: attached through inherited fd=") && log.contains("IFF_VNET_HDR"),
        "{log}"
    );
    run_ok(&mut ns.cmd("ip", &["addr", "add", "10.233.224.1/24", "dev", "ne-fd0"]));
    run_ok(&mut ns.cmd("ip", &["link", "set", "ne-fd0", "up"]));

    let carrier = "$(cat /sys/class/net/eth0/carrier)";
    let pre = format!(
        "echo WAIT-DOWN\n\
         i=0; while [ \"{carrier}\" != 0 ] && [ $i -lt 90 ]; do sleep 1; i=$((i+1)); done\n\
         echo CARRIER_DOWN={carrier}\necho DOWN-SEEN\nsleep 8\necho CARRIER_LATER={carrier}\n"
    );
    let script = format!(
        "{}{pre}{}",
        guest_ping("G2H", "10.233.224.1", 3),
        guest_report()
    );
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
            "10.233.224.2/24",
        ],
        &script,
    );
    g.wait_console("WAIT-DOWN", READY);
    let bb = rig.busybox();
    let ping = run(&mut ns.cmd(&bb, &["ping", "-c", "3", "-W", "2", "10.233.224.2"]));
    assert_host_ping("guest", &String::from_utf8_lossy(&ping.stdout));

    // The tap goes, and comes back under the same name: an inherited descriptor is not
    // reopened; the link stays down and the control socket says why.
    run_ok(&mut ns.cmd("ip", &["link", "del", "ne-fd0"]));
    g.wait_console("DOWN-SEEN", Duration::from_secs(120));
    ns.add_tap("ne-fd0", "10.233.224.1/24");
    sleep(Duration::from_secs(3));
    let info = ctl(&ctl_sock, &["info"]);
    assert_eq!(field(&info, "link_up"), Some("false"), "{info}");
    assert_eq!(field(&info, "backend_carrier"), Some("false"), "{info}");
    let note = field(&info, "backend_carrier_note").unwrap_or_default();
    assert!(
        note.contains("inherited") && note.contains("restart nic-emu"),
        "{info}"
    );
    let run = g.finish();
    run.assert_ok();
    run.assert_no_e1000_errors();
    let dmesg = run.dmesg();
    assert!(
        dmesg.contains("NIC Link is Up") && dmesg.contains(&mac.to_ascii_lowercase()),
        "{dmesg}"
    );
    assert!(dmesg.contains("NIC Link is Down"), "no LSC:\n{dmesg}");
    run.assert_ping("G2H", 3);
    assert_eq!(run.value("CARRIER_DOWN").as_deref(), Some("0"));
    assert_eq!(
        run.value("CARRIER_LATER").as_deref(),
        Some("0"),
        "the link came back"
    );
    assert_cli_alive(&mut nic);
    stop_cli(&mut nic);
    let log = nic.log_text();
    assert_eq!(log.matches("the interface is gone").count(), 1, "{log}");
    assert!(log.contains("nic-emu cannot reopen the tap"), "{log}");
    eprintln!("e2e: {T}: passed in {:.1}s", t0.elapsed().as_secs_f64());
}

/// `setpriv` arguments that make the rest run as `nobody`/`nogroup` with no capability.
const AS_NOBODY: [&str; 5] = [
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
];

/// (b) A persistent tap owned by `nobody`, opened by nic-emu-cli running as `nobody`.
#[test]
fn e2e_user_owned_tap_opened_by_nic_emu_as_nobody_without_capabilities() {
    const T: &str = "e2e_user_owned_tap_opened_by_nic_emu_as_nobody_without_capabilities";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let wd = Workdir::new("tapuser");
    let (socks, bin) = open_dir_and_cli(&wd);
    let ns = Netns::new("tapuser");
    run_ok(&mut ns.cmd(
        "ip",
        &[
            "tuntap", "add", "dev", "ne-usr0", "mode", "tap", "user", "nobody",
        ],
    ));
    run_ok(&mut ns.cmd("ip", &["addr", "add", "10.233.225.1/24", "dev", "ne-usr0"]));
    run_ok(&mut ns.cmd("ip", &["link", "set", "ne-usr0", "up"]));
    // A tap of root's, which nobody may not open. (One with no owner and no group is
    // open to every user who may open /dev/net/tun.)
    run_ok(&mut ns.cmd(
        "ip",
        &[
            "tuntap", "add", "dev", "ne-root0", "mode", "tap", "user", "root",
        ],
    ));
    let nobody_uid = run_ok(Command::new("id").args(["-u", "nobody"]))
        .trim()
        .to_string();
    let bin_s = bin.display().to_string();
    // nic-emu-cli as nobody in the namespace, with /dev/net/tun of mode `tun_mode`. The
    // clone device is usually 0666 (udev); this machine's may not be, so the namespace's
    // own mounts (`ip netns exec` gives it a private mount table) get a fresh node.
    // A run that must fail is given 60 s, so that one that does not cannot hang the test.
    let as_nobody = |tun_mode: &str, must_fail: bool, args: &[&str]| {
        let script = format!(
            "mount -t tmpfs -o mode=0755,size=16k nic-emu-e2e /dev/net && \
             mknod -m {tun_mode} /dev/net/tun c 10 200 && exec \"$@\""
        );
        let mut v: Vec<&str> = vec!["-c", &script, "sh"];
        if must_fail {
            v.extend_from_slice(&["timeout", "60"]);
        }
        v.push("setpriv");
        v.extend_from_slice(&AS_NOBODY);
        v.push("--");
        v.push(&bin_s);
        v.extend_from_slice(args);
        let mut c = ns.cmd("sh", &v);
        c.current_dir(&wd.0).env("RUST_BACKTRACE", "1");
        c
    };

    // Refusals say what to do.
    let sock = socks.join("ne.sock");
    let sock_s = sock.display().to_string();
    for (tun_mode, tap, want) in [
        ("0600", "ne-usr0", "chmod 0666 /dev/net/tun".to_string()),
        (
            "0666",
            "ne-root0",
            format!("ip tuntap add dev ne-root0 mode tap user {nobody_uid}"),
        ),
        (
            "0666",
            "ne-none0",
            "creating a tap needs CAP_NET_ADMIN".to_string(),
        ),
    ] {
        let out = run(&mut as_nobody(
            tun_mode,
            true,
            &[
                "--backend",
                &format!("tap,ifname={tap}"),
                "--socket",
                &sock_s,
            ],
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tap} opened as nobody");
        assert!(
            err.contains("ermission denied") && err.contains(&want),
            "{tap}: {err}"
        );
    }
    assert_eq!(
        run(&mut ns.cmd("cat", &["/sys/class/net/ne-none0/ifindex"]))
            .status
            .code(),
        Some(1),
        "a refused open created a tap"
    );

    let mac = "52:54:00:e2:22:12";
    let c = as_nobody(
        "0666",
        false,
        &[
            "--backend",
            "tap,ifname=ne-usr0",
            "--socket",
            &sock_s,
            "--mac",
            mac,
        ],
    );
    let mut nic = Proc::spawn("nic-emu", c, &wd.path("nic-emu.log"));
    wait_for_path(&mut nic, &sock);
    // sh and setpriv exec nic-emu-cli: the process we started is nic-emu-cli.
    let pid = nic.pid();
    assert_eq!(
        status_field(pid, "Uid:").split_whitespace().next(),
        Some(nobody_uid.as_str()),
        "runs as nobody"
    );
    for cap in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(
            status_field(pid, cap),
            "0000000000000000",
            "{cap} of nic-emu-cli"
        );
    }
    let log = nic.log_text();
    assert!(log.contains("tap ne-usr0: attached"), "{log}");

    let setup = TapSetup {
        rig: &rig,
        wd: &wd,
        ns: &ns,
        sock: &sock,
    };
    let (run, host_ping) = setup.round("guest", "10.233.225.1", "10.233.225.2/24", DEFAULT_ROUND);
    run.assert_ok();
    run.assert_e1000_healthy(mac);
    run.assert_ping("G2H", 3);
    assert_host_ping("guest", &host_ping);
    assert_cli_alive(&mut nic);
    stop_cli(&mut nic);
    eprintln!("e2e: {T}: passed in {:.1}s", t0.elapsed().as_secs_f64());
}
