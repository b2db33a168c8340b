//! Which system calls each kind of thread may make, and why: the lists the seccomp
//! filters are compiled from (`seccomp.rs`) and `docs/SECURITY.md` prints
//! ([`markdown`]).
//!
//! A list is a union of groups. Each entry names one call (by its name, resolved for
//! x86_64 and aarch64 when compiled), what its arguments must be, and the code that makes
//! it. Groups that belong to a backend are included only when the configuration uses that
//! backend ([`Needs`]). Every entry was seen in use: `--sandbox log` runs of the whole
//! end-to-end suite, with the kernel's audit log naming each unlisted call and its thread.
//!
//! A call outside the list kills the process (after `sigsys.rs` has said which call);
//! the few calls in [`SOFT`] fail with an error number instead, because a library makes
//! them and copes with the failure.

use std::fmt::Write as _;

/// The kinds of thread nic-emu runs, each with its own list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThreadKind {
    /// The program's main thread: serves the vfio-user socket
    /// ([`VfioUserServer::serve`](crate::frontend::vfio_user::VfioUserServer::serve)),
    /// carries the guest's register accesses to the device (and so transmits), and shuts
    /// the program down (joins the others, removes its socket files, flushes the backend).
    Main,
    /// The device's event loop (`nic-emu-io`): receives from the backend, fires timers.
    EventLoop,
    /// The control socket's listener (`nic-emu-control`) and its client threads
    /// (`nic-emu-control-client`, which inherit the listener's filter).
    Control,
    /// The Prometheus endpoint (`nic-emu-metrics`).
    Metrics,
    /// `nic-emu-cli`'s ticker (`nic-emu-ticker`): passes a stop signal on to the server
    /// and logs the counters every `--stats-interval`.
    Ticker,
    /// The device embedded in another program (the C API, [`FakePciBus`]): only what
    /// the device model itself needs; the embedder adds its own calls.
    ///
    /// [`FakePciBus`]: crate::frontend::fake_bus::FakePciBus
    Embedded,
}

impl ThreadKind {
    /// The kinds nic-emu-cli runs.
    pub const PROGRAM: [ThreadKind; 5] = [
        ThreadKind::Main,
        ThreadKind::EventLoop,
        ThreadKind::Control,
        ThreadKind::Metrics,
        ThreadKind::Ticker,
    ];

    /// A short name, as in reports and the documentation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::EventLoop => "event loop",
            Self::Control => "control",
            Self::Metrics => "metrics",
            Self::Ticker => "ticker",
            Self::Embedded => "embedded",
        }
    }

    fn groups(self) -> Vec<&'static Group> {
        match self {
            Self::Main => vec![&RUNTIME, &DEVICE, &VFIO_USER, &SHUTDOWN],
            Self::EventLoop => vec![&RUNTIME, &DEVICE],
            Self::Control => vec![&RUNTIME, &SPAWN, &DEVICE, &CONTROL],
            Self::Metrics => vec![&RUNTIME, &HTTP],
            Self::Ticker => vec![&RUNTIME, &TICKER],
            Self::Embedded => vec![&RUNTIME],
        }
    }

    /// Whether this kind runs the device (and so its backend's calls are added).
    fn runs_backend(self) -> bool {
        self.groups().iter().any(|g| std::ptr::eq(*g, &DEVICE))
    }
}

/// What the configuration needs beyond the fixed lists: the backend's calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// A tap: frames through its descriptor (opened by name, or inherited: `fd=N`).
    pub tap: bool,
    /// A tap opened by name: once deleted, it is looked for by name and reopened
    /// through `/dev/net/tun` (an inherited descriptor is not).
    pub tap_reattach: bool,
    /// A UDP tunnel or multicast segment, or VXLAN.
    pub udp: bool,
    /// A stream socket (QEMU framing, passt).
    pub stream: bool,
    /// A stream client, which makes new sockets of these address families to reconnect
    /// (`AF_UNIX`, `AF_INET`, `AF_INET6`).
    pub socket_families: Vec<i32>,
    /// A stream server (takes the next peer with accept).
    pub stream_listen: bool,
    /// A pcap replay.
    pub replay: bool,
    /// Recording (always possible in nic-emu-cli: `ctl record start`).
    pub record: bool,
    /// An EEPROM image file the guest's writes are saved to (`--eeprom FILE`).
    pub eeprom: bool,
    /// The C embedder's own calls (by name, any arguments), for [`ThreadKind::Embedded`].
    pub extra: Vec<String>,
}

impl Needs {
    /// Everything a backend may need: the lists printed in the documentation.
    pub fn everything() -> Self {
        Self {
            tap: true,
            tap_reattach: true,
            udp: true,
            stream: true,
            socket_families: vec![libc::AF_UNIX, libc::AF_INET, libc::AF_INET6],
            stream_listen: true,
            replay: true,
            record: true,
            eeprom: true,
            extra: Vec::new(),
        }
    }

    fn backend_groups(&self) -> Vec<&'static Group> {
        let mut g = Vec::new();
        for (on, group) in [
            (self.tap, &TAP),
            (self.tap_reattach, &TAP_REATTACH),
            (self.udp, &UDP),
            (self.stream, &STREAM),
            (!self.socket_families.is_empty(), &RECONNECT),
            (self.stream_listen, &STREAM_LISTEN),
            (self.replay, &REPLAY),
            (self.record, &RECORD),
        ] {
            if on {
                g.push(group);
            }
        }
        g
    }
}

/// A constant with the name it has in C, for the documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Named {
    /// The value.
    pub value: u64,
    /// Its name.
    pub name: &'static str,
}

const fn named(value: u64, name: &'static str) -> Named {
    Named { value, name }
}

/// What an entry lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Args {
    /// Any arguments.
    Any,
    /// Argument `.0` (its low 32 bits) is one of these values.
    OneOf(u8, &'static [Named]),
    /// Argument `.0` has none of the bits of `.1` set.
    Clear(u8, Named),
    /// Argument `.0` has all the bits of `.1` set.
    Set(u8, Named),
    /// Argument 0 is one of the address families in [`Needs::socket_families`].
    Families,
}

/// Architectures a call exists on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// Both (the usual case).
    Both,
    /// x86_64 only: its older calls that aarch64 replaced by the `*at`/`p*` forms
    /// listed beside them (glibc uses the older ones on x86_64).
    X86_64,
    /// aarch64 only: the names it gives the calls x86_64 calls otherwise.
    Aarch64,
}

/// One allowed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name (as in `syscalls(2)`).
    pub call: &'static str,
    /// What its arguments must be.
    pub args: Args,
    /// Where it exists.
    pub only: Only,
    /// Who makes it, and why.
    pub why: &'static str,
}

const fn any(call: &'static str, why: &'static str) -> Entry {
    Entry {
        call,
        args: Args::Any,
        only: Only::Both,
        why,
    }
}

const fn x86(call: &'static str, why: &'static str) -> Entry {
    Entry {
        call,
        args: Args::Any,
        only: Only::X86_64,
        why,
    }
}

const fn arm(call: &'static str, why: &'static str) -> Entry {
    Entry {
        call,
        args: Args::Any,
        only: Only::Aarch64,
        why,
    }
}

const fn with(call: &'static str, args: Args, why: &'static str) -> Entry {
    Entry {
        call,
        args,
        only: Only::Both,
        why,
    }
}

/// Every group, in the documentation's order.
pub fn all_groups() -> [&'static Group; 18] {
    [
        &RUNTIME,
        &SPAWN,
        &DEVICE,
        &TAP,
        &TAP_REATTACH,
        &UDP,
        &STREAM,
        &RECONNECT,
        &STREAM_LISTEN,
        &REPLAY,
        &RECORD,
        &VFIO_USER,
        &EEPROM,
        &SHUTDOWN,
        &CONTROL,
        &HTTP,
        &TICKER,
        &NARROWING,
    ]
}

/// Whether `call` is listed only for the architecture other than `on_x86_64`'s.
pub fn only_elsewhere(call: &str, on_x86_64: bool) -> bool {
    let other = if on_x86_64 {
        Only::Aarch64
    } else {
        Only::X86_64
    };
    all_groups()
        .iter()
        .flat_map(|g| g.entries)
        .any(|e| e.call == call && e.only == other)
}

/// A set of calls that belong together.
#[derive(Debug)]
pub struct Group {
    /// Its name in the documentation.
    pub name: &'static str,
    /// What it is for.
    pub what: &'static str,
    /// The calls.
    pub entries: &'static [Entry],
}

// Constants: the same values on x86_64 and aarch64 (asm-generic ioctl and fcntl numbers).
const PROT_EXEC: Named = named(0x4, "PROT_EXEC");
const CLONE_THREAD: Named = named(0x1_0000, "CLONE_THREAD");
const STDERR: [Named; 1] = [named(2, "2 (stderr)")];
const PR_SET_NAME: Named = named(15, "PR_SET_NAME");
const PR_SET_NO_NEW_PRIVS: Named = named(38, "PR_SET_NO_NEW_PRIVS");
const SECCOMP_SET_MODE_FILTER: Named = named(1, "SECCOMP_SET_MODE_FILTER");
const SIGABRT: Named = named(6, "SIGABRT");
const SIGCANCEL: Named = named(32, "SIGCANCEL (SIGRTMIN)");
const SIGSETXID: Named = named(33, "SIGSETXID (SIGRTMIN+1)");
const F_GETFD: Named = named(1, "F_GETFD");
const F_GETFL: Named = named(3, "F_GETFL");
const F_SETFL: Named = named(4, "F_SETFL");
const F_DUPFD_CLOEXEC: Named = named(1030, "F_DUPFD_CLOEXEC");
const F_GET_SEALS: Named = named(1034, "F_GET_SEALS");
const FIONBIO: Named = named(0x5421, "FIONBIO");
const TUNSETIFF: Named = named(0x4004_54CA, "TUNSETIFF");
const TUNSETOFFLOAD: Named = named(0x4004_54D0, "TUNSETOFFLOAD");
const SIOCGIFINDEX: Named = named(0x8933, "SIOCGIFINDEX");
const AF_UNIX: Named = named(1, "AF_UNIX");
const MSG_ERRQUEUE: Named = named(0x2000, "MSG_ERRQUEUE");
const SOL_SOCKET: Named = named(1, "SOL_SOCKET");
const IPPROTO_TCP: Named = named(6, "IPPROTO_TCP");

/// Every thread: memory, locks, time, signals, logging.
pub static RUNTIME: Group = Group {
    name: "runtime",
    what: "every thread: memory, locks, time, signals, the log",
    entries: &[
        any("futex", "std's Mutex, Condvar and thread join"),
        any("brk", "the allocator grows and shrinks the heap"),
        with(
            "mmap",
            Args::Clear(2, PROT_EXEC),
            "the allocator, thread stacks, guest RAM (DMA maps); never executable",
        ),
        with(
            "mprotect",
            Args::Clear(2, PROT_EXEC),
            "the allocator's arenas, a new thread's guard page; never executable",
        ),
        any("munmap", "freed memory, unmapped guest RAM"),
        any("mremap", "the allocator resizes a large block"),
        any(
            "madvise",
            "the allocator returns memory (MADV_DONTNEED), a thread's stack at exit",
        ),
        any(
            "rt_sigreturn",
            "return from a signal handler (SIGTERM, SIGINT)",
        ),
        any(
            "rt_sigprocmask",
            "glibc masks signals around thread start and exit, and in abort()",
        ),
        any(
            "sigaltstack",
            "std's stack-overflow handler: each thread's alternate signal stack",
        ),
        any("exit", "a thread ends"),
        any(
            "exit_group",
            "the process ends (also the SIGSYS report and a second SIGTERM)",
        ),
        any("clock_gettime", "clocks, when the vDSO does not answer"),
        any("clock_nanosleep", "thread::sleep"),
        any("nanosleep", "thread::sleep (older glibc)"),
        any(
            "sched_yield",
            "spinning: the socket thread's polling, lock back-off",
        ),
        any("getrandom", "std's HashMap keys"),
        with(
            "write",
            Args::OneOf(0, &STDERR),
            "log lines and the SIGSYS report go to stderr",
        ),
        any("close", "a descriptor is dropped"),
        with(
            "fcntl",
            Args::OneOf(1, &[F_GETFD]),
            "std's debug builds check that a descriptor is open before closing it",
        ),
        any("getpid", "abort() (raise SIGABRT on a fatal error)"),
        any("gettid", "a panic's message names the thread"),
        any(
            "getcwd",
            "a panic's backtrace (RUST_BACKTRACE) shows paths relative to the working directory",
        ),
        x86(
            "readlink",
            "a panic's backtrace looks for the executable (/proc/self/exe; opening it is \
             refused, so frames print without names)",
        ),
        any("readlinkat", "the same on aarch64"),
        with(
            "tgkill",
            Args::OneOf(2, &[SIGABRT]),
            "abort(): the process ends with SIGABRT, not with a sandbox report",
        ),
    ],
};

/// Threads that start threads.
pub static SPAWN: Group = Group {
    name: "spawn",
    what: "threads that start threads (the control listener, one thread per client)",
    entries: &[
        with(
            "clone",
            Args::Set(0, CLONE_THREAD),
            "std::thread::spawn: glibc's pthread_create; threads only, never a new process \
             (clone3 fails with ENOSYS, so glibc uses clone, whose flags the filter checks)",
        ),
        any(
            "rseq",
            "glibc registers restartable sequences in a new thread",
        ),
        any(
            "set_robust_list",
            "glibc registers the new thread's robust futex list",
        ),
        with(
            "prctl",
            Args::OneOf(0, &[PR_SET_NAME]),
            "std names the new thread",
        ),
        any(
            "sched_getaffinity",
            "glibc's pthread_getattr_np, which std calls in a new thread to find its stack",
        ),
        with(
            "rt_sigaction",
            Args::OneOf(0, &[SIGCANCEL, SIGSETXID]),
            "glibc installs its internal signals' handlers when the first thread starts",
        ),
    ],
};

/// Threads that run the device: its service step, the guest's accesses, control commands.
pub static DEVICE: Group = Group {
    name: "device",
    what: "threads that run the device (main, event loop, control): interrupts, wake-ups, \
           the backend",
    entries: &[
        any(
            "read",
            "eventfds (the event loop's wake-up), the backend's descriptor",
        ),
        any(
            "write",
            "eventfds (INTx to the client, waking the event loop), the backend, a recording",
        ),
        x86(
            "poll",
            "waiting for the backend, the waker, the client's next message",
        ),
        any("ppoll", "the same on aarch64 (glibc's poll)"),
    ],
};

/// A tap backend.
pub static TAP: Group = Group {
    name: "tap",
    what: "backend `tap` (by name, or an inherited descriptor: `fd=N`)",
    entries: &[any(
        "writev",
        "frames to the tap (virtio-net header and frame)",
    )],
};

/// A tap opened by name, reattached after its deletion.
pub static TAP_REATTACH: Group = Group {
    name: "tap reattach",
    what: "backend `tap,ifname=...`: once deleted (`ip link del`), the tap is looked for \
           every second and reopened by name when it exists again",
    entries: &[
        with(
            "socket",
            Args::OneOf(0, &[AF_UNIX]),
            "a throwaway datagram socket to ask whether the interface exists \
             (`SIOCGIFINDEX`, as if_nametoindex does), so the look never creates it; \
             nothing may connect or bind it (no `connect`, `bind` in this list)",
        ),
        any(
            "openat",
            "reopening /dev/net/tun once the interface exists again (Landlock allows that \
             file only)",
        ),
        with(
            "ioctl",
            Args::OneOf(1, &[SIOCGIFINDEX, TUNSETIFF, TUNSETOFFLOAD]),
            "whether the interface exists; attaching the new descriptor to it; its \
             receive offloads",
        ),
        with(
            "fcntl",
            Args::OneOf(1, &[F_GETFL, F_SETFL]),
            "the reattached descriptor made non-blocking",
        ),
        any(
            "geteuid",
            "a refused reattach says which user to give the tap to (`ip tuntap ... user`)",
        ),
    ],
};

/// A UDP tunnel or multicast segment.
pub static UDP: Group = Group {
    name: "udp",
    what: "backends `udp` (tunnel and multicast) and `vxlan`",
    entries: &[
        any(
            "recvmmsg",
            "up to 32 datagrams per call (NIC_EMU_UDP_RX_BATCH)",
        ),
        any("sendto", "one frame per datagram"),
        with(
            "recvmsg",
            Args::Set(2, MSG_ERRQUEUE),
            "ICMP errors about sent datagrams (IP_RECVERR: the peer is gone) taken from \
             the socket's error queue, at most 64 at a time, never blocking",
        ),
    ],
};

/// A stream socket.
pub static STREAM: Group = Group {
    name: "stream",
    what: "backend `stream` (QEMU's -netdev stream framing, passt)",
    entries: &[
        any("recvfrom", "length-prefixed frames from the peer"),
        any("sendto", "queued frames to the peer (MSG_NOSIGNAL)"),
        with(
            "ioctl",
            Args::OneOf(1, &[FIONBIO]),
            "std's set_nonblocking on a new connection",
        ),
        with(
            "fcntl",
            Args::OneOf(1, &[F_GETFL, F_SETFL]),
            "a new connection made non-blocking",
        ),
        with(
            "setsockopt",
            Args::OneOf(1, &[IPPROTO_TCP]),
            "TCP_NODELAY on a new TCP connection",
        ),
    ],
};

/// A stream client that reconnects.
pub static RECONNECT: Group = Group {
    name: "stream client",
    what: "backend `stream,connect=...`: reconnecting after the peer went away",
    entries: &[
        with(
            "socket",
            Args::Families,
            "a new socket of the configured address's family only",
        ),
        any("connect", "to the configured address"),
        any("getsockopt", "SO_ERROR of a TCP connect with a timeout"),
    ],
};

/// A stream server.
pub static STREAM_LISTEN: Group = Group {
    name: "stream server",
    what: "backend `stream,listen=...`: taking the next peer",
    entries: &[any("accept4", "the next peer")],
};

/// A pcap replay.
pub static REPLAY: Group = Group {
    name: "replay",
    what: "backend `pcap,replay=...`",
    entries: &[
        any("lseek", "back to the start for the next pass (repeat=N)"),
        with(
            "fcntl",
            Args::OneOf(1, &[F_DUPFD_CLOEXEC]),
            "the file opened at start, duplicated for the next pass (no path is opened)",
        ),
    ],
};

/// Pcap recording.
pub static RECORD: Group = Group {
    name: "record",
    what: "pcap recording (--record, `record=`, `ctl record start`)",
    entries: &[any(
        "ftruncate",
        "a recording cut back to its last whole frame after a write error",
    )],
};

/// The vfio-user socket thread.
pub static VFIO_USER: Group = Group {
    name: "vfio-user",
    what: "the main thread serving the vfio-user client",
    entries: &[
        any("accept4", "the next client, after poll says one is there"),
        any(
            "recvmsg",
            "the client's messages, with descriptors (guest RAM, the INTx eventfd)",
        ),
        any("sendmsg", "replies"),
        any("sendto", "replies"),
        any("writev", "replies with data: header and bytes in one call"),
        any("statx", "the size of a guest RAM file (DMA_MAP)"),
        any("fstat", "the same where statx is missing"),
        with(
            "fcntl",
            Args::OneOf(1, &[F_GET_SEALS, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC]),
            "guest RAM must be sealed against shrinking; the INTx eventfd made \
             non-blocking; the client's stream duplicated (polling, shutdown)",
        ),
        x86(
            "readlink",
            "/proc/self/fd/N: is the INTx descriptor an eventfd?",
        ),
        any("readlinkat", "the same on aarch64"),
        any("shutdown", "a client disconnected for shutdown"),
    ],
};

/// The EEPROM image file.
pub static EEPROM: Group = Group {
    name: "eeprom",
    what: "`--eeprom FILE`: the main thread saves what the guest programs into the card's \
           EEPROM (the guest's register writes arrive there), atomically",
    entries: &[
        any(
            "openat",
            "a temporary file in the image's directory (created), then that directory \
             (for its fsync); Landlock allows creating, writing and renaming files in that \
             directory only",
        ),
        any(
            "fsync",
            "the temporary file's data, then the directory's entry",
        ),
        x86(
            "rename",
            "the temporary file over the image: a crash leaves old or new",
        ),
        arm("renameat2", "the same on aarch64 (glibc's rename)"),
        x86(
            "unlink",
            "the temporary file, when writing it failed (a full disk)",
        ),
        any("unlinkat", "the same on aarch64"),
    ],
};

/// The main thread at exit.
pub static SHUTDOWN: Group = Group {
    name: "shutdown",
    what: "the main thread at exit",
    entries: &[
        x86(
            "unlink",
            "the socket files nic-emu created (Landlock: their directories only)",
        ),
        any("unlinkat", "the same on aarch64"),
        any("statx", "the socket file is still ours (device and inode)"),
        x86("newfstatat", "the same where statx is missing"),
        arm("fstatat", "the same on aarch64"),
    ],
};

/// The control socket.
pub static CONTROL: Group = Group {
    name: "control",
    what: "the control socket's listener and client threads",
    entries: &[
        any(
            "accept4",
            "the next control client, after poll says one is there",
        ),
        x86(
            "poll",
            "waiting for a client with a timeout (the stop flag)",
        ),
        any("ppoll", "the same on aarch64"),
        any(
            "recvmsg",
            "request lines, with the descriptor of a file to record into (SCM_RIGHTS)",
        ),
        any("sendto", "reply lines"),
        with(
            "setsockopt",
            Args::OneOf(1, &[SOL_SOCKET]),
            "read and write timeouts of a client's connection",
        ),
        any("shutdown", "a client that sent an over-long line"),
        any(
            "statx",
            "the descriptor passed for `record start` is an empty regular file",
        ),
        any("fstat", "the same where statx is missing"),
        with(
            "fcntl",
            Args::OneOf(1, &[F_GETFL]),
            "the descriptor passed for `record start` is open for writing",
        ),
    ],
};

/// The Prometheus endpoint.
pub static HTTP: Group = Group {
    name: "metrics",
    what: "the Prometheus endpoint",
    entries: &[
        any("accept4", "the next HTTP client"),
        x86(
            "poll",
            "waiting for a client with a timeout (the stop flag)",
        ),
        any("ppoll", "the same on aarch64"),
        any("recvfrom", "the request head"),
        any("sendto", "the response"),
        any(
            "write",
            "the response; waking the event loop after reading the counters",
        ),
        with(
            "setsockopt",
            Args::OneOf(1, &[SOL_SOCKET]),
            "read and write timeouts",
        ),
        any("shutdown", "the response is complete"),
    ],
};

/// nic-emu-cli's ticker.
pub static TICKER: Group = Group {
    name: "ticker",
    what: "nic-emu-cli's ticker (stop signal, periodic counters)",
    entries: &[any(
        "shutdown",
        "disconnecting the client when asked to stop",
    )],
};

/// Calls that are allowed while the process filter is the only one: the threads install
/// their own filters on top of it, and the main thread its own last.
pub static NARROWING: Group = Group {
    name: "narrowing",
    what: "only before a thread's own filter: installing it",
    entries: &[
        with(
            "prctl",
            Args::OneOf(0, &[PR_SET_NO_NEW_PRIVS]),
            "seccompiler sets no_new_privs before installing a filter",
        ),
        with(
            "seccomp",
            Args::OneOf(0, &[SECCOMP_SET_MODE_FILTER]),
            "a thread installs its own filter (stacked: it can only narrow)",
        ),
    ],
};

/// A call answered with an error number instead of a kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Soft {
    /// The call.
    pub call: &'static str,
    /// The error it fails with.
    pub errno: i32,
    /// The errno's name.
    pub errno_name: &'static str,
    /// Why an error and not a kill.
    pub why: &'static str,
}

/// Calls that fail with an error on every thread (where they are not allowed).
pub const SOFT: [Soft; 2] = [
    Soft {
        call: "clone3",
        errno: libc::ENOSYS,
        errno_name: "ENOSYS",
        why: "glibc's pthread_create tries clone3 first and falls back to clone when the \
              kernel lacks it; the filter cannot read clone3's flags (they are in memory), \
              it can read clone's",
    },
    Soft {
        call: "openat",
        errno: libc::EACCES,
        errno_name: "EACCES",
        why: "glibc's allocator reads /proc/sys/vm/overcommit_memory the first time a \
              thread's heap shrinks, and copes with the failure; Landlock answers the same \
              where the call is allowed",
    },
];

/// The resolved list for one thread kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallList {
    /// Call name -> the arguments it may have.
    pub calls: std::collections::BTreeMap<&'static str, Allowed>,
    /// Extra names (the embedder's), any arguments.
    pub extra: Vec<String>,
    /// Soft refusals that apply (calls not in `calls`).
    pub soft: Vec<Soft>,
}

/// The arguments a call may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Any.
    Any,
    /// Those that meet one of these conditions (never empty).
    When(Vec<Cond>),
}

impl Allowed {
    fn merge(&mut self, other: &Allowed) {
        match (&mut *self, other) {
            (Allowed::Any, _) => {}
            (_, Allowed::Any) => *self = Allowed::Any,
            (Allowed::When(mine), Allowed::When(theirs)) => {
                for c in theirs {
                    if !mine.contains(c) {
                        mine.push(c.clone());
                    }
                }
            }
        }
    }
}

/// One condition on a call's arguments (the resolved form of [`Args`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Argument `.0` (32 bits) equals `.1`.
    Eq(u8, u64),
    /// Argument `.0` ANDed with `.1` equals `.2`.
    Masked(u8, u64, u64),
}

impl CallList {
    fn add(&mut self, e: &Entry, needs: &Needs) {
        let allowed = match e.args {
            Args::Any => Allowed::Any,
            Args::OneOf(i, values) => {
                Allowed::When(values.iter().map(|v| Cond::Eq(i, v.value)).collect())
            }
            Args::Clear(i, m) => Allowed::When(vec![Cond::Masked(i, m.value, 0)]),
            Args::Set(i, m) => Allowed::When(vec![Cond::Masked(i, m.value, m.value)]),
            Args::Families => Allowed::When(
                needs
                    .socket_families
                    .iter()
                    .filter_map(|&f| u64::try_from(f).ok())
                    .map(|f| Cond::Eq(0, f))
                    .collect(),
            ),
        };
        self.allow(e.call, &allowed);
    }

    fn allow(&mut self, call: &'static str, allowed: &Allowed) {
        if matches!(allowed, Allowed::When(c) if c.is_empty()) {
            return; // no value can pass: the call is not allowed
        }
        match self.calls.get_mut(call) {
            Some(a) => a.merge(allowed),
            None => {
                self.calls.insert(call, allowed.clone());
            }
        }
    }

    /// Whether `call` may be made with some arguments.
    pub fn allows(&self, call: &str) -> bool {
        self.calls.contains_key(call) || self.extra.iter().any(|c| c == call)
    }

    /// Number of distinct calls allowed.
    pub fn len(&self) -> usize {
        self.calls.len()
            + self
                .extra
                .iter()
                .filter(|c| !self.calls.contains_key(c.as_str()))
                .count()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn list_of(groups: &[&Group], needs: &Needs) -> CallList {
    let mut l = CallList::default();
    for g in groups {
        for e in g.entries {
            l.add(e, needs);
        }
    }
    l
}

/// The calls a thread of `kind` may make, for a configuration that `needs` these.
pub fn calls_for(kind: ThreadKind, needs: &Needs) -> CallList {
    let mut groups: Vec<&Group> = kind.groups();
    if kind.runs_backend() {
        groups.extend(needs.backend_groups());
    }
    // Only the vfio-user socket thread carries the guest's register writes.
    if kind == ThreadKind::Main && needs.eeprom {
        groups.push(&EEPROM);
    }
    let mut l = list_of(&groups, needs);
    if kind == ThreadKind::Embedded {
        l.extra = needs.extra.clone();
    }
    l.soft = soft_for(&l);
    l
}

/// The process filter: what every thread may do before it installs its own (the union
/// of the kinds nic-emu-cli runs, and installing filters).
pub fn calls_for_process(needs: &Needs) -> CallList {
    let mut l = list_of(&[&SPAWN, &NARROWING], needs);
    for kind in ThreadKind::PROGRAM {
        for (call, allowed) in &calls_for(kind, needs).calls {
            l.allow(call, allowed);
        }
    }
    l.soft = soft_for(&l);
    l
}

fn soft_for(l: &CallList) -> Vec<Soft> {
    SOFT.iter().filter(|s| !l.allows(s.call)).copied().collect()
}

/// Calls of `l` that exist on x86_64 (soft refusals included, as the filter has them).
fn x86_64_count(l: &CallList) -> usize {
    l.calls.keys().filter(|c| !only_elsewhere(c, true)).count() + l.soft.len()
}

fn args_text(a: &Args) -> String {
    let names = |v: &[Named]| v.iter().map(|n| n.name).collect::<Vec<_>>().join(", ");
    match a {
        Args::Any => String::new(),
        Args::OneOf(i, v) if v.len() == 1 => format!("arg{i} = {}", names(v)),
        Args::OneOf(i, v) => format!("arg{i} in {{{}}}", names(v)),
        Args::Clear(i, m) => format!("arg{i} without {}", m.name),
        Args::Set(i, m) => format!("arg{i} with {}", m.name),
        Args::Families => "arg0 = the configured address's family".into(),
    }
}

/// The lists as Markdown: which groups each thread kind has, then each group's calls
/// with their argument conditions and reasons. `docs/SECURITY.md` holds this text (a
/// test keeps them equal).
pub fn markdown() -> String {
    let mut out = String::new();
    let every = Needs::everything();
    // nic-emu-cli always wraps its backend in a recorder.
    let loopback = Needs {
        record: true,
        ..Needs::default()
    };
    out.push_str(
        "| thread | groups | calls on x86_64: loopback backend | every backend |\n\
         |---|---|---|---|\n",
    );
    for kind in ThreadKind::PROGRAM
        .iter()
        .chain(std::iter::once(&ThreadKind::Embedded))
    {
        let mut names: Vec<&str> = kind.groups().iter().map(|g| g.name).collect();
        if kind.runs_backend() {
            names.push("+ the backend's");
        }
        if *kind == ThreadKind::Main {
            names.push("+ eeprom (`--eeprom`)");
        }
        let few = x86_64_count(&calls_for(*kind, &loopback));
        let n = x86_64_count(&calls_for(*kind, &every));
        let _ = writeln!(
            out,
            "| {} | {} | {few} | {n} |",
            kind.name(),
            names.join(", ")
        );
    }
    let few = x86_64_count(&calls_for_process(&loopback));
    let n = x86_64_count(&calls_for_process(&every));
    let _ = writeln!(
        out,
        "| (process, until a thread installs its own) | all of the above, spawn, narrowing \
         | {few} | {n} |"
    );
    out.push('\n');
    for g in all_groups() {
        let _ = writeln!(
            out,
            "#### {}: {}\n\n| call | arguments | why |\n|---|---|---|",
            g.name, g.what
        );
        for e in g.entries {
            let only = match e.only {
                Only::Both => "",
                Only::X86_64 => " (x86_64)",
                Only::Aarch64 => " (aarch64)",
            };
            let _ = writeln!(
                out,
                "| `{}`{only} | {} | {} |",
                e.call,
                args_text(&e.args),
                e.why
            );
        }
        out.push('\n');
    }
    out.push_str(
        "#### answered with an error, not a kill\n\n| call | error | why |\n|---|---|---|\n",
    );
    for s in SOFT {
        let _ = writeln!(out, "| `{}` | {} | {} |", s.call, s.errno_name, s.why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_with_any_arguments_stays_any_whatever_else_lists_it() {
        let n = Needs::everything();
        let main = calls_for(ThreadKind::Main, &n);
        // RUNTIME allows write to stderr only; DEVICE any write.
        assert_eq!(main.calls.get("write"), Some(&Allowed::Any));
        let metrics = calls_for(ThreadKind::Metrics, &n);
        assert_eq!(metrics.calls.get("write"), Some(&Allowed::Any));
        let ticker = calls_for(ThreadKind::Ticker, &n);
        assert_eq!(
            ticker.calls.get("write"),
            Some(&Allowed::When(vec![Cond::Eq(0, 2)]))
        );
    }

    #[test]
    fn conditions_of_several_groups_are_merged() {
        let n = Needs::everything();
        let main = calls_for(ThreadKind::Main, &n);
        let Some(Allowed::When(fcntl)) = main.calls.get("fcntl") else {
            panic!("fcntl with conditions");
        };
        for cmd in [1034, 3, 4, 1030] {
            assert!(fcntl.contains(&Cond::Eq(1, cmd)), "{cmd} in {fcntl:?}");
        }
        let Some(Allowed::When(ioctl)) = main.calls.get("ioctl") else {
            panic!("ioctl with conditions");
        };
        assert!(ioctl.contains(&Cond::Eq(1, 0x4004_54CA)));
        assert!(ioctl.contains(&Cond::Eq(1, 0x5421)));
    }

    #[test]
    fn backend_calls_follow_the_configuration() {
        let loopback = Needs {
            record: true,
            ..Needs::default()
        };
        let l = calls_for(ThreadKind::EventLoop, &loopback);
        for call in [
            "socket", "connect", "ioctl", "openat", "recvmmsg", "accept4",
        ] {
            assert!(!l.allows(call), "{call} for a loopback");
        }
        assert!(l.soft.iter().any(|s| s.call == "openat"));
        let udp = Needs {
            udp: true,
            ..Needs::default()
        };
        assert!(calls_for(ThreadKind::EventLoop, &udp).allows("recvmmsg"));
        assert!(!calls_for(ThreadKind::Metrics, &udp).allows("recvmmsg"));
        let client = Needs {
            stream: true,
            socket_families: vec![libc::AF_UNIX],
            ..Needs::default()
        };
        let l = calls_for(ThreadKind::EventLoop, &client);
        assert_eq!(
            l.calls.get("socket"),
            Some(&Allowed::When(vec![Cond::Eq(0, libc::AF_UNIX as u64)]))
        );
    }

    #[test]
    fn no_thread_kind_may_exec_fork_trace_or_make_executable_memory() {
        let n = Needs::everything();
        let mut kinds: Vec<CallList> = ThreadKind::PROGRAM
            .iter()
            .map(|k| calls_for(*k, &n))
            .collect();
        kinds.push(calls_for_process(&n));
        for l in &kinds {
            for call in [
                "execve",
                "execveat",
                "fork",
                "vfork",
                "ptrace",
                "clone3",
                "kill",
                "mount",
                "setuid",
                "bpf",
                "io_uring_setup",
                "process_vm_writev",
            ] {
                assert!(!l.allows(call), "{call} allowed");
            }
            for call in ["mmap", "mprotect"] {
                assert_eq!(
                    l.calls.get(call),
                    Some(&Allowed::When(vec![Cond::Masked(2, 4, 0)])),
                    "{call} without PROT_EXEC"
                );
            }
            if let Some(c) = l.calls.get("clone") {
                assert_eq!(c, &Allowed::When(vec![Cond::Masked(0, 0x1_0000, 0x1_0000)]));
            }
        }
    }

    /// docs/SECURITY.md prints the lists as they are; `NIC_EMU_UPDATE_DOCS=1` rewrites
    /// its generated part.
    #[test]
    fn security_md_prints_these_lists() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SECURITY.md");
        let doc = std::fs::read_to_string(&path).expect("docs/SECURITY.md");
        let begin = doc.find("<!-- policy:begin").expect("the begin marker");
        let body = begin + doc[begin..].find("-->\n").expect("the marker's end") + 4;
        let end = doc.find("<!-- policy:end -->").expect("the end marker");
        let want = format!("\n{}", markdown());
        if std::env::var_os("NIC_EMU_UPDATE_DOCS").is_some() {
            let new = format!("{}{want}{}", &doc[..body], &doc[end..]);
            std::fs::write(&path, new).expect("write docs/SECURITY.md");
            return;
        }
        assert!(
            doc[body..end] == want,
            "docs/SECURITY.md is out of date: NIC_EMU_UPDATE_DOCS=1 cargo test --lib \
             sandbox::policy"
        );
    }

    #[test]
    fn only_the_process_filter_may_install_filters() {
        let n = Needs::everything();
        for k in ThreadKind::PROGRAM {
            assert!(!calls_for(k, &n).allows("seccomp"), "{k:?}");
        }
        assert!(calls_for_process(&n).allows("seccomp"));
    }
}
