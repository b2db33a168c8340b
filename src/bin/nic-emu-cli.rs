//! nic-emu-cli: serve an emulated Intel 82540EM (e1000) to QEMU over vfio-user.
//!
//! Thin by design: parse the command line, load the configuration, open the backend,
//! build the vfio-user server, run until SIGINT/SIGTERM. Everything else is library code.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{ArgAction, CommandFactory, Parser, Subcommand};

use nic_emu::backend::PcapRecorder;
use nic_emu::config::{BackendContext, Config, Opened};
use nic_emu::control::http::MetricsServer;
use nic_emu::control::{ControlContext, ControlServer};
use nic_emu::device::eeprom::default_image;
use nic_emu::device::{Model, DEFAULT_AUTONEG_DELAY};
use nic_emu::eeprom_file::EepromFile;
use nic_emu::frontend::activation;
use nic_emu::frontend::vfio_user::{Listen, VfioUserServer};
use nic_emu::sandbox::{self, ThreadKind};
use nic_emu::{DeviceConfig, MacAddress};

#[path = "cli/ctl.rs"]
mod ctl;
#[path = "cli/generate.rs"]
mod generate;
#[path = "cli/logging.rs"]
mod logging;

const ABOUT: &str = "Serve an emulated Intel 82540EM (e1000) NIC to QEMU over vfio-user";

const LONG_ABOUT: &str = "\
Serve an emulated Intel 82540EM (e1000) NIC to QEMU over vfio-user.

nic-emu-cli listens on a Unix socket. QEMU (10.1 or later) attaches with
  -device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"/tmp/nic-emu.sock\"}}'
and needs guest RAM it can share, and no NIC of its own (else the guest's eth0 is QEMU's):
  -object memory-backend-memfd,id=mem0,size=512M,share=on -machine memory-backend=mem0
  -nic none
The guest's unmodified e1000 driver then drives the emulated card. Frames the guest
sends go to the packet backend (tap, UDP tunnel or multicast segment, VXLAN, a
QEMU-style stream socket such as passt's, pcap replay, loopback), and frames
the backend delivers reach the guest. One client is served at a time; when it
disconnects, the device is reset and the next client is accepted.

When the tap is deleted under a running nic-emu, the guest sees its cable pulled
(link down) until a tap of that name exists again, when nic-emu reattaches (a tap
given as fd=N stays down; `ctl info` says why). A stream backend's link follows its
peer the same way; a UDP tunnel's does not (connectionless), but a peer that is gone
is counted (udp_peer_unreachable).

Backends are named in a configuration file (backends.toml; a commented example is in
the source tree, and in /usr/share/doc/nic-emu/examples/ when installed from the Debian
package) or given inline in QEMU style. Relative paths in a file are relative to the
file. Without --config, ./backends.toml is read if it exists; otherwise the built-in
default is a loopback backend (every frame the guest sends comes back), which needs
no privileges.

nic-emu-cli stays in the foreground and logs to standard error (the journal under
systemd). Stop it with SIGINT (Ctrl-C) or SIGTERM: the socket file is removed, a
recording is flushed and a summary of the device's counters is logged. A second signal
exits at once. A pcap replay that reaches its end keeps the device up until then.

Steering a running nic-emu: with --control PATH it answers JSON requests on a Unix
socket (one per line, QMP style), and `nic-emu-cli ctl --control PATH ...` sends them:
  link up|down                    plug or pull the cable (the guest sees it at once)
  stats [--prometheus]            every counter (statistics registers not cleared)
  record start FILE | stop | status   pcap recording of both directions, at run time
  replay pause|resume|status      a pcap replay backend
  impair get | set KEY=VALUE...   the impairments (loss=, delay=, ...)
  info                            version, backend, MAC, link, client, uptime
--metrics-listen 127.0.0.1:9100 serves the counters to Prometheus at /metrics.

Service managers: under systemd socket activation (LISTEN_FDS=1, fd 3) or with
--fd N, the vfio-user socket is the one handed over, and nic-emu never removes
its file (contrib/systemd/ has a unit pair, nic-emu@.socket and nic-emu@.service).

Least privilege: once everything is open and before the first client is served,
nic-emu-cli drops every capability, sets no_new_privs, limits its file access
with Landlock (where the kernel has it) and each of its threads to the system
calls it needs (seccomp; a call outside the list is reported and ends the
process with status 159). --user NAME [--group NAME] also makes a process
started as root become that user for good. --sandbox off turns the sandbox off
for debugging; --sandbox log allows and logs (dmesg) the calls it would kill.
docs/SECURITY.md has the threat model and the lists.";

const EXAMPLES: &str = "\
Examples:
  # Loopback (the built-in default), socket /tmp/nic-emu.sock:
  nic-emu-cli

  # A tap interface (needs CAP_NET_ADMIN), recording all traffic:
  nic-emu-cli --backend tap,ifname=tap0 --record /tmp/e1000.pcap

  # A tap without root: created once by root for this user, then opened with no
  # capability (as that user):
  #   ip tuntap add dev tap0 mode tap user $(id -un) && ip link set tap0 up
  nic-emu-cli --backend tap,ifname=tap0

  # A tap descriptor opened (TUNSETIFF) and passed down by whoever starts nic-emu,
  # as QEMU's -netdev tap,fd=N (the README has a runnable opener):
  nic-emu-cli --backend tap,fd=3

  # A UDP tunnel to another emulator or a test program:
  nic-emu-cli --backend udp,local=127.0.0.1:7001,remote=127.0.0.1:7002

  # Replay a capture into the guest, as fast as it takes frames, addressed to it:
  nic-emu-cli --backend pcap,replay=in.pcap,timing=fast,rewrite_dst=guest

  # User-mode networking without root through passt (passt --socket /tmp/passt.sock):
  nic-emu-cli --backend stream,connect=unix:/tmp/passt.sock

  # Any number of guests on one multicast segment (also QEMU's -netdev dgram):
  nic-emu-cli --backend udp,mcast=239.255.0.1:5000

  # A VXLAN segment (VNI 42) with a Linux `ip link add vx0 type vxlan id 42 remote
  # THIS_HOST dstport 4789` on 192.0.2.7; or flood-and-learn over a multicast group:
  nic-emu-cli --backend vxlan,remote=192.0.2.7,vni=42
  nic-emu-cli --backend vxlan,group=239.1.1.1,vni=42,local=eth0

  # A lossy, slow wire: 10% loss and 20 ms delay both ways, reproducible:
  nic-emu-cli --backend udp,mcast=239.255.0.1:5000,loss=10,delay=20ms,seed=1

  # A backend named in a configuration file, own socket and MAC, debug logs:
  nic-emu-cli --config my-backends.toml --backend wire \\
      --socket /run/nic0.sock --mac 52:54:00:00:00:01 -v

  # Open a tap as root, then run as nobody (sandboxed, as always):
  nic-emu-cli --backend tap,ifname=tap0 --user nobody --group nogroup

  # Show the configuration that would be used, and exit:
  nic-emu-cli --config my-backends.toml --print-config

Inline backend specs (keys as in backends.toml; a comma inside a value is ,,):
  loopback
  tap[,ifname=NAME]                       (default tap%d; a persistent tap owned by
                                           the user needs no capability)
  tap,fd=N                                (a tap descriptor inherited from the caller)
  udp,local=IP:PORT[,remote=IP:PORT]      (remote learned from the first datagram)
  udp,mcast=GROUP:PORT[,local=IFACE-IP]   (IPv4 multicast segment)
  vxlan,remote=HOST[:PORT],vni=N[,local=IP[:PORT]]   (RFC 7348; port 4789)
  vxlan,group=ADDR[:PORT],vni=N[,local=IFNAME|IFACE-IP]   (flood and learn)
      [,ttl=N][,src_port=N]   (default source port: by inner flow)
  stream,connect=unix:PATH|IP:PORT        (QEMU -netdev stream framing; reconnects)
  stream,listen=unix:PATH|IP:PORT
  pcap,replay=FILE[,timing=original|fast|<N>pps][,repeat=N]   (repeat 0 = forever)
      [,rewrite_dst=guest|MAC][,rewrite_src=MAC]
  any of them [,record=FILE.pcap][,record_max_bytes=N][,record_max_frames=N]
  any of them [,loss=PCT][,dup=PCT][,corrupt=PCT][,reorder=PCT][,delay=20ms]
      [,jitter=5ms][,rate=1mbit][,seed=N]   (rx_KEY / tx_KEY: one direction only)

A session on the control socket:
  nic-emu-cli --backend tap,ifname=tap0 --control /run/nic0.ctl &
  nic-emu-cli ctl --control /run/nic0.ctl link down
  nic-emu-cli ctl --control /run/nic0.ctl record start /tmp/window.pcap
  nic-emu-cli ctl --control /run/nic0.ctl record stop
  nic-emu-cli ctl --control /run/nic0.ctl stats --json
  echo '{\"execute\":\"link\",\"arguments\":{\"up\":true}}' | socat - UNIX-CONNECT:/run/nic0.ctl

Environment: RUST_LOG overrides the log level set by -v/-q (e.g. RUST_LOG=nic_emu=trace).";

#[derive(Parser, Debug)]
#[command(
    name = "nic-emu-cli",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    after_help = "Run with --help for examples and the inline backend syntax.",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,

    /// Configuration file (TOML: `default`, `[device]`, `[backends.NAME]`).
    /// Default: ./backends.toml if it exists, else built-in defaults (loopback).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Packet backend: a NAME defined in the configuration, or an inline spec such as
    /// `loopback`, `tap,ifname=tap0`, `udp,local=127.0.0.1:7001,remote=127.0.0.1:7002` or
    /// `pcap,replay=in.pcap`. Default: the configuration's `default`.
    #[arg(short, long, value_name = "NAME|SPEC")]
    backend: Option<String>,

    /// Unix socket to listen on for the vfio-user client. A stale socket file is
    /// replaced; one with a live server behind it is an error. Ignored when a socket is
    /// handed over (--fd, systemd socket activation).
    #[arg(
        short,
        long,
        visible_alias = "socket-path",
        value_name = "PATH",
        default_value = "/tmp/nic-emu.sock"
    )]
    socket: PathBuf,

    /// Serve the vfio-user client on this already-listening Unix socket, inherited
    /// from whoever started nic-emu (its file is left alone at exit). Not with --socket.
    #[arg(long, value_name = "N", conflicts_with = "socket")]
    fd: Option<RawFd>,

    /// Answer control requests (JSON lines; `nic-emu-cli ctl`) on this Unix socket.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,

    /// Serve the counters in the Prometheus text format at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<SocketAddr>,

    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t)]
    log_format: logging::LogFormat,

    /// MAC address of the card (in its EEPROM), a unicast address like 52:54:00:00:00:01.
    /// Default: `[device] mac` of the configuration, else 52:54:00:e1:00:00.
    #[arg(long, value_name = "MAC")]
    mac: Option<MacAddress>,

    /// Record every frame, both directions, to this pcap file (wraps whatever backend is
    /// chosen; replaces the backend's own `record`).
    #[arg(long, value_name = "FILE.pcap")]
    record: Option<PathBuf>,

    /// Start with the cable unplugged (link down).
    #[arg(long)]
    link_down: bool,

    /// Which controller to emulate: 82540em (8086:100E) or 82545em (8086:100F, copper).
    /// Default: `[device] model` of the configuration, else 82540em.
    #[arg(long, value_name = "MODEL")]
    model: Option<Model>,

    /// Keep the card's EEPROM in FILE (128 bytes: 64 little-endian words): loaded and
    /// checked at start (created with the default image if missing), rewritten
    /// atomically whenever the guest programs the EEPROM (`ethtool -E`). Its MAC (words
    /// 0-2) is the card's. Default: `[device] eeprom`, else the EEPROM lives in memory.
    #[arg(long, value_name = "FILE")]
    eeprom: Option<PathBuf>,

    /// Milliseconds the link stays down while the PHY negotiates again (after the guest
    /// restarts autonegotiation, resets the PHY or powers it up); LSC when it is back.
    /// 0: at once. Default: `[device] autoneg_ms`, else 500 (as QEMU's e1000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=nic_emu::config::MAX_AUTONEG_MS))]
    autoneg_ms: Option<u64>,

    /// Log the device's counters every SECONDS (0: only at exit).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    stats_interval: u64,

    /// Print the configuration and the backend that would be used, check what can be
    /// checked without opening it (a replay file is readable, a recording's directory
    /// exists), then exit: status 0 if all is well.
    #[arg(long)]
    print_config: bool,

    /// After start-up, become this user (a name or a number) for good: start as root to
    /// open a tap or sockets in root's directories, then run as USER. The group is the
    /// user's own unless --group says otherwise; supplementary groups are cleared.
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// After start-up, become this group (a name or a number) for good.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,

    /// The sandbox (no capabilities, no_new_privs, Landlock, per-thread seccomp
    /// filters): `on`; `off` for debugging; `log` to allow and log (dmesg) the system
    /// calls it would refuse.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = SandboxMode::On)]
    sandbox: SandboxMode,

    /// More log output: -v debug, -vv trace (default: info). The register and frame
    /// traces stay off unless named with --trace.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Trace the driver's work, decoded with the manual's names (comma-separated):
    /// `regs` every register access (target nic_emu::regs), `frames` every transmit
    /// descriptor fetched and every received frame with the filter's decision
    /// (nic_emu::frames). Off by default; RUST_LOG can set them too.
    #[arg(long, value_name = "WHAT", value_enum, value_delimiter = ',')]
    trace: Vec<logging::Trace>,

    /// Less log output: warnings and errors only.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

/// `--sandbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SandboxMode {
    /// Sandboxed; a system call outside the lists ends the process.
    On,
    /// No sandbox (--user and --group still apply).
    Off,
    /// Sandboxed, but system calls outside the lists are allowed and logged by the
    /// kernel: for finding what a new setup needs.
    Log,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send one request to a running nic-emu-cli's control socket and print the reply
    /// (link up|down, stats, record, replay, impair, info).
    Ctl(ctl::CtlArgs),
    /// Print the man page (roff) or a shell completion script (bash, zsh, fish), generated
    /// from these definitions.
    Generate(generate::GenerateArgs),
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    match args.command.take() {
        Some(Cmd::Ctl(c)) => return ctl::run(c),
        Some(Cmd::Generate(g)) => return generate::run(g, Args::command()),
        None => {}
    }
    let level = match (args.quiet, args.verbose) {
        (true, _) => log::LevelFilter::Warn,
        (false, 0) => log::LevelFilter::Info,
        (false, 1) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    };
    logging::init(level, args.log_format, &args.trace);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nic-emu-cli: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The listening socket handed over by whoever started us: `--fd N`, or systemd's
/// (`LISTEN_PID`/`LISTEN_FDS`, fd 3). The variables are removed so that nothing we
/// start believes they are meant for it.
fn inherited_listener(fd: Option<RawFd>) -> anyhow::Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let fd = match fd {
        Some(n) => Some(n),
        None => activation::systemd_fd(pid.as_deref(), fds.as_deref(), std::process::id())
            .context("systemd socket activation")?,
    };
    let Some(fd) = fd else { return Ok(None) };
    // SAFETY: called first thing in `run`, before this process opened any descriptor of
    // its own: `fd` was inherited from our parent for this purpose, nothing else owns it.
    let l = unsafe { activation::take_listener(fd) }.context("the inherited socket")?;
    Ok(Some(l))
}

fn run(args: Args) -> anyhow::Result<()> {
    let inherited = if args.print_config {
        None
    } else {
        inherited_listener(args.fd)?
    };
    let config = Config::discover(args.config.as_deref())?;
    let (label, mut spec) = config.resolve_backend(args.backend.as_deref())?;
    if let Some(path) = args.record {
        if let Some(old) = &spec.record {
            log::warn!(
                "--record {} replaces the backend's record={}",
                path.display(),
                old.path.display()
            );
        }
        spec.record = Some(nic_emu::config::RecordSpec {
            path,
            limits: Default::default(),
        });
    }
    if let Some(m) = args.mac {
        m.check_station()
            .map_err(|e| anyhow::anyhow!("--mac: {e}"))?;
    }
    let mut mac = args.mac.or(config.mac).unwrap_or(MacAddress::DEFAULT);
    let link_up = config.link_up && !args.link_down;
    let model = args.model.or(config.model).unwrap_or_default();
    let autoneg_delay = args
        .autoneg_ms
        .or(config.autoneg_ms)
        .map_or(DEFAULT_AUTONEG_DELAY, Duration::from_millis);
    let eeprom_path = args.eeprom.clone().or(config.eeprom.clone());

    if args.print_config {
        print!("{config}");
        // Comment lines: a path or value with a newline must not end the comment.
        let socket = nic_emu::config::comment(&args.socket.display().to_string());
        let backend = nic_emu::config::comment(&format!("{label}: {spec}"));
        println!("\n# effective: socket {socket}");
        println!("# effective: backend {backend}");
        println!(
            "# effective: mac {mac}, link {}, model {model}, autonegotiation {} ms",
            if link_up { "up" } else { "down" },
            autoneg_delay.as_millis()
        );
        if let Some(p) = &eeprom_path {
            let p = nic_emu::config::comment(&p.display().to_string());
            println!("# effective: eeprom {p}");
        }
        // What can be checked without opening anything: a checker that passes a missing
        // replay file would be no checker.
        spec.check_paths()
            .with_context(|| format!("backend {label} ({spec})"))?;
        return Ok(());
    }

    let identity = sandbox::user::resolve(args.user.as_deref(), args.group.as_deref())?;

    // The EEPROM file, if any, holds the MAC the guest will see.
    let mut eeprom = None;
    let mut eeprom_store: Option<Arc<dyn nic_emu::device::EepromStore>> = None;
    if let Some(path) = &eeprom_path {
        let (file, words) =
            EepromFile::open(path, &default_image(mac.octets(), model.eeprom_identity()))?;
        let b = |i: usize| words[i].to_le_bytes();
        let stored = MacAddress::new([b(0)[0], b(0)[1], b(1)[0], b(1)[1], b(2)[0], b(2)[1]]);
        if stored != mac {
            log::info!(
                "eeprom {}: the card's MAC is the image's {stored}, not {mac}",
                path.display()
            );
            mac = stored;
        }
        eeprom = Some(words);
        eeprom_store = Some(Arc::new(file));
    }

    // SIGINT/SIGTERM: the first sets `stop`; a second one (once `stop` is set) exits.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    // Everything is opened first, with no thread started: the sandbox is applied while
    // the process has one thread, so that every thread starts inside it.
    let mut plan = sandbox::Plan {
        identity,
        mode: match args.sandbox {
            SandboxMode::Log => sandbox::Mode::Log,
            _ => sandbox::Mode::Enforce,
        },
        ..sandbox::Plan::default()
    };
    nic_emu::config::sandbox::add_backend(&mut plan, &spec.kind);
    plan.needs.record = true;
    if let Some(path) = &eeprom_path {
        plan.add_eeprom(path);
    }

    // The backend always sits in a pcap recorder, idle unless `record` is set, so that
    // a control client can record at run time.
    let mut opened = spec.clone();
    let record = opened.record.take();
    let Opened {
        backend: inner,
        mut handles,
    } = opened
        .open_with_handles(&BackendContext { guest_mac: mac })
        .with_context(|| format!("opening backend {label} ({spec})"))?;
    let recorder = PcapRecorder::idle(inner);
    if let Some(r) = record {
        let file = std::fs::File::create(&r.path)
            .with_context(|| format!("record: cannot create {}", r.path.display()))?;
        recorder.start(file, r.path, r.limits)?;
    }
    handles.recorder = Some(recorder.handle());
    let backend: Box<dyn nic_emu::PacketBackend> = Box::new(recorder);
    let backend_name = backend.name();
    let device_config = DeviceConfig {
        mac,
        link_up,
        model,
        eeprom,
        eeprom_store,
        autoneg_delay,
    };
    let inherited_socket = inherited.is_some();
    let mut server = match inherited {
        Some(l) => VfioUserServer::bind(Listen::Listener(l), device_config, backend),
        None => VfioUserServer::bind(Listen::Path(&args.socket), device_config, backend),
    }
    .context("starting the vfio-user server")?;
    if !inherited_socket {
        plan.add_own_socket(server.path().to_path_buf());
    }
    let sandboxed = args.sandbox != SandboxMode::Off;
    let mut control_ctx =
        ControlContext::new(Arc::new(server.device_handle()), format!("{label}: {spec}"))
            .with_handles(handles);
    // Sandboxed, a recording started at run time comes as a descriptor the client opened.
    control_ctx.create_files = !sandboxed;
    let ctx = Arc::new(control_ctx);
    let mut control = match &args.control {
        Some(p) => {
            plan.add_own_socket(p.clone());
            Some(ControlServer::bind(p, ctx.clone())?)
        }
        None => None,
    };
    let mut metrics = match args.metrics_listen {
        Some(a) => Some(MetricsServer::bind(a, ctx.clone())?),
        None => None,
    };

    if sandboxed {
        let report = sandbox::apply(&plan).context("applying the sandbox")?;
        log::info!("sandbox: {report}");
    } else if let Some(id) = &plan.identity {
        sandbox::user::switch(id).context("switching user")?;
        log::warn!(
            "sandbox off (--sandbox off): running as {} without it",
            id.label
        );
    } else {
        log::warn!("sandbox off (--sandbox off)");
    }

    server.spawn().context("starting the event loop")?;
    if let Some(c) = control.as_mut() {
        c.spawn().context("starting the control socket")?;
    }
    if let Some(m) = metrics.as_mut() {
        m.spawn().context("starting the metrics endpoint")?;
        log::info!("nic-emu-cli: metrics at http://{}/metrics", m.addr());
    }
    log::info!(
        "nic-emu-cli: listening on {}{} (vfio-user); backend {label}: {spec} ({backend_name}); \
         {} (MAC {mac}{}); link {}; config: {}{}",
        server.path().display(),
        if inherited_socket {
            " (inherited socket)"
        } else {
            ""
        },
        model.part(),
        match &eeprom_path {
            Some(p) => format!(", EEPROM {}", p.display()),
            None => String::new(),
        },
        if link_up { "up" } else { "down" },
        config.origin(),
        match &args.control {
            Some(p) => format!("; control socket {}", p.display()),
            None => String::new(),
        }
    );

    let device = server.device();
    let started = Instant::now();
    let served = Arc::new(AtomicBool::new(false));
    let ticker = {
        let device = device.clone();
        let stop = stop.clone();
        let served = served.clone();
        let handle = server.shutdown_handle();
        let every = (args.stats_interval > 0).then(|| Duration::from_secs(args.stats_interval));
        std::thread::Builder::new()
            .name("nic-emu-ticker".into())
            .spawn(move || {
                sandbox::enter(ThreadKind::Ticker);
                let mut next = every.map(|e| Instant::now() + e);
                while !served.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                    if stop.load(Ordering::Acquire) {
                        // Until serve() returns: a client accepted just after one
                        // shutdown is disconnected by the next.
                        handle.shutdown();
                    }
                    if let (Some(at), Some(e)) = (next.as_mut(), every) {
                        if Instant::now() >= *at {
                            *at += e;
                            let m = device.lock().metrics();
                            log::info!("stats: {m}");
                        }
                    }
                }
            })
            .context("starting the ticker thread")?
    };
    sandbox::enter(ThreadKind::Main);

    let result = server.serve();
    served.store(true, Ordering::Release);
    let _ = ticker.join();
    drop(control);
    drop(metrics);
    // Dropping the server stops the event loop and removes the socket file.
    let clients = server.clients_served();
    drop(server);
    let mut d = device.lock();
    if let Err(e) = d.backend_mut().flush() {
        log::error!("flushing backend {backend_name}: {e}");
    }
    log::info!(
        "nic-emu-cli: stopped after {:.1} s, {clients} client(s); {}",
        started.elapsed().as_secs_f64(),
        d.metrics()
    );
    result.context("serving vfio-user")
}
