//! Scenario building blocks: the host and guest halves of a tap round (pings both
//! ways, the guest held up with `nc -l` until the host is done), two-guest pings, and
//! small checks shared by the scenarios.

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::*;

/// Longest wait for a guest to print RIG-READY (boot + driver probe + carrier, TCG).
pub const READY: Duration = Duration::from_secs(90);

/// Host side of a tap scenario after the guest is up: ping the guest from the namespace,
/// then let the guest power off (it waits on `nc -l` so the host ping has a live peer).
pub fn host_pings_then_releases(rig: &Rig, ns: &Netns, guest_ip: &str, size: u32) -> String {
    let bb = rig.busybox();
    let size = size.to_string();
    let ping = run(&mut ns.cmd(&bb, &["ping", "-c", "3", "-W", "2", "-s", &size, guest_ip]));
    let ping_out = format!(
        "{}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
    release_guest(rig, ns, guest_ip);
    ping_out
}

/// Connect to the guest's `nc -l -p 7777` (retrying while it is not listening yet); the
/// guest then stops waiting.
pub fn release_guest(rig: &Rig, ns: &Netns, guest_ip: &str) {
    let bb = rig.busybox();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let out = run(&mut ns.cmd(&bb, &["nc", "-w", "2", guest_ip, "7777"]));
        if out.status.success() {
            return;
        }
        sleep(Duration::from_millis(300));
    }
    eprintln!("e2e: could not reach the guest's release port; it will time out");
}

/// Guest command for a tap scenario: run `pre`, print PRE-DONE (the host starts pinging
/// then), wait for the host's release in the background, ping the host with `size`-byte
/// payloads, wait, report.
pub fn tap_guest_cmd(host_ip: &str, pre: &str, size: u32) -> String {
    format!(
        "{pre}echo PRE-DONE\n\
         (timeout 40 nc -l -p 7777 </dev/null >/dev/null; echo RELEASED=$?) &\n\
         {}wait\n{}",
        guest_ping_sized("G2H", host_ip, 3, size),
        guest_report()
    )
}

/// What a tap round does besides the defaults.
#[derive(Clone, Copy)]
pub struct RoundOpts<'a> {
    /// Guest shell lines run before the pings.
    pub pre: &'a str,
    /// ICMP payload bytes of both pings.
    pub size: u32,
}

/// Plain 56-byte pings, nothing before.
pub const DEFAULT_ROUND: RoundOpts<'static> = RoundOpts { pre: "", size: 56 };

/// A tap-backed nic-emu-cli's setting: rig, work dir, namespace, vfio-user socket.
pub struct TapSetup<'a> {
    /// The rig.
    pub rig: &'a Rig,
    /// Where logs go.
    pub wd: &'a Workdir,
    /// The namespace holding the tap.
    pub ns: &'a Netns,
    /// nic-emu-cli's socket.
    pub sock: &'a Path,
}

impl TapSetup<'_> {
    /// One guest on the socket: pings both ways. Returns the guest's run and the host's
    /// ping output.
    pub fn round(
        &self,
        name: &str,
        host_ip: &str,
        guest_cidr: &str,
        opts: RoundOpts,
    ) -> (GuestRun, String) {
        let guest_ip = guest_cidr.split('/').next().unwrap_or(guest_cidr);
        let sock_s = self.sock.display().to_string();
        let mut g = Guest::boot(
            self.rig,
            self.wd,
            name,
            &[
                "--nic",
                "vfio-user",
                "--socket",
                &sock_s,
                "--guest-ip",
                guest_cidr,
            ],
            &tap_guest_cmd(host_ip, opts.pre, opts.size),
        );
        g.wait_console("PRE-DONE", READY);
        let host_ping = host_pings_then_releases(self.rig, self.ns, guest_ip, opts.size);
        (g.finish(), host_ping)
    }
}

/// The host's ping got 3 of 3 answers.
pub fn assert_host_ping(name: &str, out: &str) {
    assert!(
        out.contains("3 packets transmitted, 3 packets received"),
        "{name}: host -> guest ping:\n{out}"
    );
}

/// nic-emu-cli is still running.
pub fn assert_cli_alive(cli: &mut Proc) {
    if let Some(st) = cli.try_wait() {
        panic!("{} exited ({st}):\n{}", cli.name, cli.log_tail(40));
    }
    assert_sandbox_log(cli);
}

/// nic-emu-cli ran sandboxed (the default) and its sandbox refused no call.
pub fn assert_sandbox_log(cli: &Proc) {
    let log = cli.log_text();
    assert!(
        log.contains("sandbox: running as"),
        "{} did not apply its sandbox:\n{}",
        cli.name,
        cli.log_tail(40)
    );
    assert!(
        !log.contains("nic-emu: sandbox: system call"),
        "{}: the sandbox refused a call:\n{}",
        cli.name,
        cli.log_tail(40)
    );
}

/// `/proc/PID/status` and that of every thread of a sandboxed nic-emu-cli: seccomp
/// filtering (mode 2), no_new_privs, no capability in any set, and the user and group
/// it was told to become.
pub fn assert_sandboxed(pid: u32, uid: u32, gid: u32) {
    let tasks: Vec<std::path::PathBuf> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process's threads")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(tasks.len() >= 3, "threads of {pid}: {tasks:?}");
    let mut names = Vec::new();
    for dir in std::iter::once(std::path::PathBuf::from(format!("/proc/{pid}"))).chain(tasks) {
        let status = std::fs::read_to_string(dir.join("status")).expect("status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| panic!("{k} in {}:\n{status}", dir.display()))
        };
        let name = field("Name:");
        for (k, want) in [
            ("Seccomp:", "2".to_string()),
            ("NoNewPrivs:", "1".to_string()),
            ("CapInh:", "0000000000000000".to_string()),
            ("CapPrm:", "0000000000000000".to_string()),
            ("CapEff:", "0000000000000000".to_string()),
            ("CapBnd:", "0000000000000000".to_string()),
            ("CapAmb:", "0000000000000000".to_string()),
            ("Uid:", format!("{uid} {uid} {uid} {uid}")),
            ("Gid:", format!("{gid} {gid} {gid} {gid}")),
            ("Groups:", String::new()),
        ] {
            assert_eq!(field(k), want, "{k} of {name} ({})", dir.display());
        }
        names.push(name);
    }
    eprintln!("e2e: {pid} sandboxed (uid {uid}, gid {gid}), threads: {names:?}");
}

/// Stop nic-emu-cli with SIGTERM: it must exit 0 within 5 s, sandboxed all along.
pub fn stop_cli(cli: &mut Proc) {
    assert_sandbox_log(cli);
    let st = cli.stop(Duration::from_secs(5));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}: SIGTERM did not end it cleanly ({st:?}):\n{}",
        cli.name,
        cli.log_tail(40)
    );
}

/// Guest command for a two-guest scenario: ping the peer, then stay up until the peer's
/// pings have arrived too (at least 3 echo requests, or 30 s), report.
pub fn peer_guest_cmd(peer_ip: &str) -> String {
    format!(
        "{}echos() {{ awk '/^Icmp:/ {{ if (!c) {{ for (i = 2; i <= NF; i++) if ($i == \"InEchos\") c = i }} else print $c }}' /proc/net/snmp; }}\n\
         i=0; while [ \"$(echos)\" -lt 3 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done\n\
         sleep 1\necho IN_ECHOS=$(echos)\n{}",
        guest_ping("PEER", peer_ip, 3),
        guest_report()
    )
}

/// The guest answered at least 3 echo requests (its peer's pings).
pub fn assert_got_echos(r: &GuestRun) {
    let n: u64 = r
        .value("IN_ECHOS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        n >= 3,
        "{}: only {n} echo requests arrived from the peer",
        r.name
    );
}

/// `n` pseudo-random bytes (xorshift64), so compression or a zero page hides nothing.
pub fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// md5 of a file, computed by the guest's busybox on the host.
pub fn md5_file(rig: &Rig, path: &Path) -> String {
    let out = run_ok(Command::new(rig.busybox()).arg("md5sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Seconds between two `/proc/uptime` values the guest printed.
pub fn guest_secs(r: &GuestRun, from: &str, to: &str) -> f64 {
    let v = |k: &str| {
        r.value(k)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    v(to) - v(from)
}

/// The `Udp:` counters of /proc/net/snmp as (name, value).
pub fn snmp_udp(snmp: &str) -> Vec<(String, u64)> {
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (Some(names), Some(values)) = (lines.first(), lines.get(1)) else {
        panic!("no Udp lines in /proc/net/snmp:\n{snmp}");
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(u64::MAX)))
        .collect()
}

/// busybox httpd on `ip:8080` in the namespace, serving `/blob`: `len` pseudo-random
/// bytes. Returns the server and the blob's path.
pub fn start_httpd(
    rig: &Rig,
    wd: &Workdir,
    ns: &Netns,
    ip: &str,
    len: usize,
) -> (Proc, std::path::PathBuf) {
    let www = wd.path("www");
    std::fs::create_dir_all(&www).expect("www dir");
    let blob = www.join("blob");
    std::fs::write(&blob, random_bytes(len, 0x9E37_79B9_7F4A_7C15)).expect("blob");
    let www_s = www.display().to_string();
    let addr = format!("{ip}:8080");
    let httpd = Proc::spawn(
        "httpd",
        ns.cmd(rig.busybox(), &["httpd", "-f", "-p", &addr, "-h", &www_s]),
        &wd.path("httpd.log"),
    );
    (httpd, blob)
}

/// The rig's initramfs with `/ne/cmd` = `cmd` appended as a second gzip'd cpio (what
/// boot-guest.sh does), written to `out`: for guests the test boots without it.
pub fn guest_initrd(rig: &Rig, wd: &Workdir, cmd: &str, out: &std::path::Path) {
    let ov = wd.path("overlay");
    std::fs::create_dir_all(ov.join("ne")).expect("overlay dir");
    std::fs::write(ov.join("ne/cmd"), format!("{cmd}\n")).expect("overlay cmd");
    let script = "cd \"$1\" && find . | LC_ALL=C sort | \"$2\" cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 >\"$3\"";
    let ov_gz = wd.path("overlay.cpio.gz");
    run_ok(
        Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&ov)
            .arg(rig.busybox())
            .arg(&ov_gz),
    );
    let mut initrd = std::fs::read(rig.guest_dir().join("initramfs.cpio.gz")).expect("initramfs");
    initrd.extend(std::fs::read(&ov_gz).expect("overlay cpio"));
    std::fs::write(out, initrd).expect("write initrd");
}

/// The lints nic-emu-cli logged at warn level (`[id] message` lines on the
/// `nic_emu::lint` target), as (id, line).
pub fn warn_lints(cli: &Proc) -> Vec<(String, String)> {
    cli.log_text()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("nic_emu::lint"))
        .filter_map(|l| {
            let id = l.split("] [").nth(1)?.split(']').next()?.to_string();
            Some((id, l.to_string()))
        })
        .collect()
}

/// A driver that is right raises no lint at warn level, except the ones in `allowed`
/// (each justified where the test names it).
pub fn assert_no_lints(name: &str, cli: &Proc, allowed: &[&str]) {
    let bad: Vec<String> = warn_lints(cli)
        .into_iter()
        .filter(|(id, _)| !allowed.contains(&id.as_str()))
        .map(|(_, l)| l)
        .collect();
    assert!(
        bad.is_empty(),
        "{name}: nic-emu reported driver mistakes:\n{}",
        bad.join("\n")
    );
}
