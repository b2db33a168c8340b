//! The sandbox refuses what it must: a child process applies the sandbox nic-emu-cli
//! applies (`nic_emu::sandbox::apply`, then one thread kind's filter) and attempts one
//! call outside the lists; the parent checks how that ended. Calls outside a list end the
//! process with status 159 and a report naming the call; opening a file outside the
//! Landlock rules fails with EACCES. Each attempt also has a control that must succeed
//! (the same call with allowed arguments), so a refusal is the filter's doing.
//!
//! No root needed: seccomp and Landlock work for any user once no_new_privs is set.
//!
//! `cargo test --test sandbox -- --bench` instead prints what the filters cost per call
//! (a child measures before and after applying the main thread's filters).
//! A harness of its own (`harness = false`): the sandbox needs a process with one thread,
//! which libtest's children are not.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use nic_emu::sandbox::{self, Plan, ThreadKind};

const PROBE: &str = "NIC_EMU_SANDBOX_PROBE";
const ALLOWED: &str = "NIC_EMU_SANDBOX_ALLOWED";

/// What the child tries, after the sandbox.
const ATTEMPTS: &[&str] = &[
    "execve",
    "open-outside",
    "open-allowed",
    "socket-packet",
    "socket-unix",
    "ptrace",
    "mmap-exec",
    "mmap-rw",
    "mprotect-exec",
    "fork",
    "thread",
    "kill",
    "panic",
];

fn kind_named(name: &str) -> ThreadKind {
    ThreadKind::PROGRAM
        .into_iter()
        .chain([ThreadKind::Embedded])
        .find(|k| k.name().replace(' ', "-") == name)
        .unwrap_or_else(|| panic!("no thread kind {name}"))
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Report an outcome on stderr (the one descriptor every thread may write) and leave (status 0: the call returned).
fn outcome(rc: i64) -> ! {
    if rc < 0 {
        eprintln!(
            "returned error {}",
            std::io::Error::from_raw_os_error(errno())
        );
    } else {
        eprintln!("returned ok");
    }
    std::process::exit(0)
}

/// The child: sandbox as nic-emu-cli does for a tap backend (which may open
/// /dev/net/tun) and a stream client to a Unix socket, plus one allowed file; become a
/// thread of `kind`; attempt `what`.
/// The C API's filter: the embedded device's calls plus `getppid`, then an attempt.
fn child_embedded(what: &str) -> ! {
    let extra = [c"getppid".as_ptr()];
    // SAFETY: one NUL-terminated string.
    let st = unsafe { nic_emu::capi::nic_emu_sandbox_thread(extra.as_ptr(), extra.len()) };
    if st != nic_emu::capi::NicEmuStatus::Ok {
        eprintln!("nic_emu_sandbox_thread: {st:?}");
        std::process::exit(2);
    }
    // SAFETY: both take no arguments.
    match what {
        "extra" => outcome(unsafe { libc::getppid() }.into()),
        "unlisted" => outcome(unsafe { libc::getuid() }.into()),
        other => panic!("unknown attempt {other}"),
    }
}

/// A stream client (opened before the sandbox, as nic-emu-cli does) whose peer closes
/// the first connection: under `kind`'s filter it reconnects and receives a frame on the
/// second. Over TCP, a connection to another port is then tried (Landlock refuses it).
fn child_stream(kind: &str, addr: &str, other: Option<&str>) -> ! {
    use nic_emu::backend::stream::{StreamAddr, StreamBackend, StreamRole};
    use nic_emu::config::BackendKind;
    use nic_emu::PacketBackend;
    let addr: StreamAddr = addr.parse().expect("a stream address");
    let mut b = StreamBackend::open(addr.clone(), StreamRole::Connect).expect("open");
    let mut plan = Plan::default();
    nic_emu::config::sandbox::add_backend(
        &mut plan,
        &BackendKind::Stream {
            addr,
            role: StreamRole::Connect,
        },
    );
    plan.needs.record = true;
    if let Err(e) = sandbox::apply(&plan) {
        eprintln!("apply: {e}");
        std::process::exit(2);
    }
    sandbox::enter(kind_named(kind));
    let mut buf = vec![0u8; 2048];
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(15) {
        match b.recv(&mut buf) {
            Ok(Some(n)) => {
                eprintln!("got {n} bytes after {} connects", b.counters().connects);
                if let Some(o) = other {
                    let r = std::net::TcpStream::connect(o);
                    eprintln!("other port: {:?}", r.map(|_| ()).map_err(|e| e.kind()));
                }
                std::process::exit(0);
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => {
                eprintln!("recv: {e}");
                std::process::exit(3);
            }
        }
    }
    eprintln!("no frame");
    std::process::exit(4)
}

/// Nanoseconds per call of `f`, best of 5 rounds of 200 000.
fn ns_per_call(f: impl Fn()) -> f64 {
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..200_000 {
                f();
            }
            t.elapsed().as_nanos() as f64 / 200_000.0
        })
        .fold(f64::INFINITY, f64::min)
}

/// `--bench`: a wake-up (eventfd write and read, no argument checks: the kernel's action
/// cache answers them) and fcntl(F_GETFD) (an argument check: the BPF programs run),
/// before and after the sandbox of a tap configuration's main thread.
fn child_bench() -> ! {
    // SAFETY: eventfd takes two integers; the descriptor is ours for the process's life.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    let one = 1u64.to_ne_bytes();

    // SAFETY: 8-byte buffers we own, on our eventfd.
    let wake = || unsafe {
        let mut got = [0u8; 8];
        libc::write(efd, one.as_ptr().cast(), 8);
        libc::read(efd, got.as_mut_ptr().cast(), 8);
    };
    // SAFETY: F_GETFD on our eventfd reads no memory.
    let getfd = || unsafe {
        libc::fcntl(efd, libc::F_GETFD);
    };
    let before = (ns_per_call(wake), ns_per_call(getfd));
    let mut plan = Plan::default();
    nic_emu::config::sandbox::add_backend(
        &mut plan,
        &nic_emu::config::BackendKind::Tap {
            ifname: "tap0".into(),
        },
    );
    plan.needs.record = true;
    sandbox::apply(&plan).expect("apply");
    sandbox::enter(ThreadKind::Main);
    let after = (ns_per_call(wake), ns_per_call(getfd));
    eprintln!(
        "eventfd write+read: {:.0} ns -> {:.0} ns per pair; fcntl(F_GETFD): {:.0} ns -> {:.0} ns \
         (main thread's filters: the process's and its own, stacked)",
        before.0, after.0, before.1, after.1
    );
    std::process::exit(0)
}

fn child(kind: &str, what: &str) -> ! {
    if kind == "embedded" {
        child_embedded(what);
    }
    if what == "bench" {
        child_bench();
    }
    if let Some(rest) = what.strip_prefix("stream=") {
        let mut parts = rest.split('|');
        let addr = parts.next().expect("address");
        child_stream(kind, addr, parts.next());
    }
    let allowed = PathBuf::from(std::env::var_os(ALLOWED).expect("allowed file"));
    let mut plan = Plan::default();
    nic_emu::config::sandbox::add_backend(
        &mut plan,
        &nic_emu::config::BackendKind::Tap {
            ifname: "tap0".into(),
        },
    );
    plan.needs.stream = true;
    plan.needs.socket_families.push(libc::AF_UNIX);
    plan.needs.record = true;
    plan.landlock.read.push(allowed.clone());
    if let Err(e) = sandbox::apply(&plan) {
        eprintln!("apply: {e}");
        std::process::exit(2);
    }
    sandbox::enter(kind_named(kind));
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY (every block below): each call is made with valid arguments (NUL-terminated
    // strings we own, null or live pointers) purely to see how the sandbox answers; no
    // result is used but the return value.
    match what {
        "execve" => {
            let prog = c(Path::new("/bin/true"));
            let argv = [prog.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            outcome(unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) }.into())
        }
        "open-outside" | "open-allowed" => {
            let p = if what == "open-allowed" {
                allowed
            } else {
                PathBuf::from("/etc/passwd")
            };
            let p = c(&p);
            outcome(unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }.into())
        }
        "socket-packet" => {
            outcome(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) }.into())
        }
        "socket-unix" => {
            outcome(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) }.into())
        }
        "ptrace" => outcome(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) }),
        "mmap-exec" | "mmap-rw" => {
            let prot = if what == "mmap-exec" {
                libc::PROT_READ | libc::PROT_EXEC
            } else {
                libc::PROT_READ | libc::PROT_WRITE
            };
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            outcome(if p == libc::MAP_FAILED { -1 } else { 0 })
        }
        "mprotect-exec" => {
            let v = vec![0u8; 3 * 4096];
            let page = (v.as_ptr() as usize + 4095) & !4095;
            outcome(
                unsafe {
                    libc::mprotect(
                        page as *mut libc::c_void,
                        4096,
                        libc::PROT_READ | libc::PROT_EXEC,
                    )
                }
                .into(),
            )
        }
        "fork" => {
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe { libc::_exit(0) };
            }
            outcome(pid.into())
        }
        "thread" => {
            let r = std::thread::Builder::new().spawn(|| 7).map(|t| t.join());
            eprintln!("thread: {r:?}");
            std::process::exit(0)
        }
        "kill" => outcome(unsafe { libc::kill(1, 0) }.into()),
        // A panic caught on the way (the vfio-user server catches the protocol
        // library's), with RUST_BACKTRACE=1 as the end-to-end tests run it: the
        // backtrace is printed without symbols rather than ending the process.
        "panic" => {
            let r = std::panic::catch_unwind(|| panic!("a test panic"));
            eprintln!("caught: {}", r.is_err());
            std::process::exit(0)
        }
        other => panic!("unknown attempt {other}"),
    }
}

/// How a child ended: its status and what it wrote on stderr (the report, if killed).
#[derive(Debug)]
struct Ended {
    status: Option<i32>,
    stderr: String,
}

fn run_child(kind: ThreadKind, what: &str, allowed: &Path) -> Ended {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(PROBE, format!("{}:{what}", kind.name().replace(' ', "-")))
        .env(ALLOWED, allowed)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the child");
    Ended {
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn killed_for(e: &Ended, call: &str, kind: ThreadKind) -> Result<(), String> {
    let want = format!("({call}) is not allowed in the {} thread", kind.name());
    if e.status == Some(sandbox::sigsys::EXIT_STATUS) && e.stderr.contains(&want) {
        Ok(())
    } else {
        Err(format!("expected a kill for {call}: {e:?}"))
    }
}

fn returned(e: &Ended, what: &str) -> Result<(), String> {
    if e.status == Some(0) && e.stderr.contains(what) {
        Ok(())
    } else {
        Err(format!("expected `{what}`: {e:?}"))
    }
}

/// Which kinds may open files and make Unix sockets with this plan (the tap and stream
/// client groups are the device threads').
fn runs_device(kind: ThreadKind) -> bool {
    matches!(
        kind,
        ThreadKind::Main | ThreadKind::EventLoop | ThreadKind::Control
    )
}

fn check(kind: ThreadKind, what: &str, e: &Ended) -> Result<(), String> {
    match what {
        "execve" => killed_for(e, "execve", kind),
        "socket-packet" => killed_for(e, "socket", kind),
        "ptrace" => killed_for(e, "ptrace", kind),
        "mmap-exec" => killed_for(e, "mmap", kind),
        "mprotect-exec" => killed_for(e, "mprotect", kind),
        "kill" => killed_for(e, "kill", kind),
        // glibc's fork is clone without CLONE_THREAD.
        "fork" => killed_for(e, "clone", kind),
        "mmap-rw" => returned(e, "returned ok"),
        // Landlock (device threads) or the soft refusal (the others): EACCES either way.
        "open-outside" => returned(e, "Permission denied"),
        "open-allowed" if runs_device(kind) => returned(e, "returned ok"),
        "open-allowed" => returned(e, "Permission denied"),
        "socket-unix" if runs_device(kind) => returned(e, "returned ok"),
        "socket-unix" => killed_for(e, "socket", kind),
        "panic" => returned(e, "caught: true"),
        "thread" if kind == ThreadKind::Control => returned(e, "thread: Ok(Ok(7))"),
        // glibc installs its internal signals' handlers at the first thread, then clones.
        "thread" => killed_for(e, "rt_sigaction", kind).or_else(|_| killed_for(e, "clone", kind)),
        other => Err(format!("no check for {other}")),
    }
}

/// Accept one connection within 10 s.
fn accept_within<S>(accept: impl Fn() -> std::io::Result<S>) -> Result<S, String> {
    let t = std::time::Instant::now();
    loop {
        match accept() {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
        if t.elapsed() > std::time::Duration::from_secs(10) {
            return Err("no connection within 10 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The peer side of `child_stream`: close the first connection, send one 60-byte frame
/// (QEMU's framing: a 4-byte big-endian length) on the second.
fn stream_reconnect(kind: ThreadKind, tcp: bool, dir: &Path) -> Result<(), String> {
    use std::io::Write;
    let frame: Vec<u8> = 60u32.to_be_bytes().into_iter().chain([0x5a; 60]).collect();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ALLOWED, dir.join("allowed.pcap"));
    let out = if tcp {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let other = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let what = format!(
            "stream={}|{}",
            l.local_addr().unwrap(),
            other.local_addr().unwrap()
        );
        cmd.env(PROBE, format!("{}:{what}", kind.name().replace(' ', "-")));
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let served = (|| {
            drop(accept_within(|| l.accept())?);
            let (mut s, _) = accept_within(|| l.accept())?;
            s.write_all(&frame).map_err(|e| e.to_string())
        })();
        if served.is_err() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        served?;
        out
    } else {
        let path = dir.join(format!("peer-{}.sock", kind.name().replace(' ', "-")));
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path).map_err(|e| e.to_string())?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let what = format!("stream=unix:{}", path.display());
        cmd.env(PROBE, format!("{}:{what}", kind.name().replace(' ', "-")));
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let served = (|| {
            drop(accept_within(|| l.accept())?);
            let (mut s, _) = accept_within(|| l.accept())?;
            s.write_all(&frame).map_err(|e| e.to_string())
        })();
        if served.is_err() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        served?;
        out
    };
    let e = Ended {
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    returned_status(&e, "got 60 bytes after 2 connects")?;
    if tcp && !e.stderr.contains("other port: Err(PermissionDenied)") {
        return Err(format!(
            "a TCP connect to another port was not refused: {e:?}"
        ));
    }
    Ok(())
}

fn returned_status(e: &Ended, what: &str) -> Result<(), String> {
    if e.status == Some(0) && e.stderr.contains(what) {
        Ok(())
    } else {
        Err(format!("expected `{what}`: {e:?}"))
    }
}

fn main() -> ExitCode {
    if let Ok(probe) = std::env::var(PROBE) {
        let (kind, what) = probe.split_once(':').expect("KIND:ATTEMPT");
        child(kind, what);
    }
    if std::env::args().any(|a| a == "--bench") {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(PROBE, "main:bench")
            .output()
            .expect("run the child");
        print!("{}", String::from_utf8_lossy(&out.stderr));
        return if out.status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    if sandbox::landlock::kernel_abi() < 1 {
        println!("SKIP: the kernel has no Landlock; the file checks need it");
        return ExitCode::FAILURE;
    }
    let dir = std::env::temp_dir().join(format!("nic-emu-sandbox-test.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let allowed = dir.join("allowed.pcap");
    std::fs::write(&allowed, b"x").unwrap();
    let (mut passed, mut failed) = (0, 0);
    for kind in ThreadKind::PROGRAM {
        for what in ATTEMPTS {
            let name = format!("{}_{what}", kind.name().replace(' ', "_"));
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let e = run_child(kind, what, &allowed);
            match check(kind, what, &e) {
                Ok(()) => {
                    println!("test {name} ... ok");
                    passed += 1;
                }
                Err(msg) => {
                    println!("test {name} ... FAILED\n  {msg}");
                    failed += 1;
                }
            }
        }
    }
    for kind in [ThreadKind::Main, ThreadKind::EventLoop] {
        for tcp in [false, true] {
            let name = format!(
                "{}_stream_{}_reconnects",
                kind.name().replace(' ', "_"),
                if tcp { "tcp" } else { "unix" }
            );
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            match stream_reconnect(kind, tcp, &dir) {
                Ok(()) => {
                    println!("test {name} ... ok");
                    passed += 1;
                }
                Err(msg) => {
                    println!("test {name} ... FAILED\n  {msg}");
                    failed += 1;
                }
            }
        }
    }
    for (what, check) in [
        ("extra", returned as fn(&Ended, &str) -> Result<(), String>),
        ("unlisted", |e: &Ended, _: &str| {
            killed_for(e, "getuid", ThreadKind::Embedded)
        }),
    ] {
        let name = format!("embedded_{what}");
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let e = run_child(ThreadKind::Embedded, what, &allowed);
        match check(&e, "returned ok") {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(msg) => {
                println!("test {name} ... FAILED\n  {msg}");
                failed += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
