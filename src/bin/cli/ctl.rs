//! `nic-emu-cli ctl`: one request to a running nic-emu-cli's control socket, its reply
//! printed (as `key: value` lines, or the JSON line itself with `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use nic_emu::control::client;

/// Talk to a running nic-emu-cli through its control socket.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The control socket (nic-emu-cli --control PATH).
    #[arg(long, value_name = "PATH", global = true)]
    control: Option<PathBuf>,

    /// Print the reply as the JSON line the server sent.
    #[arg(long, global = true)]
    json: bool,

    /// Seconds to wait for the reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, global = true)]
    timeout: u64,

    #[command(subcommand)]
    op: Op,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LinkState {
    Up,
    Down,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReplayAction {
    Pause,
    Resume,
    Status,
}

#[derive(Subcommand, Debug)]
enum Op {
    /// Version, backend, MAC, link, whether QEMU is connected, uptime.
    Info,
    /// Plug the cable in (up) or pull it (down): the guest sees the change at once.
    Link {
        /// up or down.
        state: LinkState,
    },
    /// Every counter: nic-emu's, the statistics registers (not cleared), the backend's.
    Stats {
        /// In the Prometheus text format.
        #[arg(long)]
        prometheus: bool,
    },
    /// What the guest's driver did wrong: each lint that fired, its count, its first
    /// occurrence and message.
    Lints {
        /// Forget the findings after printing them (between two runs of a driver).
        #[arg(long)]
        clear: bool,
    },
    /// Record both directions to a pcap file, from now until `record stop`.
    #[command(subcommand)]
    Record(RecordOp),
    /// Pause or resume a pcap replay backend, or show where it is.
    Replay {
        /// pause, resume or status.
        action: ReplayAction,
    },
    /// Show or change the impairments (backends started with loss=, delay=, ...).
    #[command(subcommand)]
    Impair(ImpairOp),
    /// Send one raw JSON request line, e.g. '{"execute":"query-commands"}'.
    Raw {
        /// The request.
        request: String,
    },
}

#[derive(Subcommand, Debug)]
enum RecordOp {
    /// Start recording to FILE: created (or truncated) here, with your rights, and
    /// handed to nic-emu-cli over the socket (a sandboxed nic-emu-cli opens no file).
    Start {
        /// The pcap file.
        file: PathBuf,
        /// Stop by itself at this file size.
        #[arg(long, value_name = "BYTES")]
        max_bytes: Option<u64>,
        /// Stop by itself after this many frames.
        #[arg(long, value_name = "N")]
        max_frames: Option<u64>,
    },
    /// Finish the recording (the file is complete when this returns).
    Stop,
    /// Whether recording, to which file, how much.
    Status,
}

#[derive(Subcommand, Debug)]
enum ImpairOp {
    /// The impairments in force and what they did.
    Get,
    /// Change impairments: KEY=VALUE as in backends.toml (loss=10 rx_delay=20ms ...).
    Set {
        /// The settings.
        #[arg(value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Start from no impairment instead of the current settings.
        #[arg(long)]
        reset: bool,
    },
}

fn build(op: &Op) -> Result<Value, String> {
    let action = |a: &str| json!({ "action": a });
    Ok(match op {
        Op::Info => client::request("info", Value::Null),
        Op::Link { state } => {
            client::request("link", json!({ "up": matches!(state, LinkState::Up) }))
        }
        Op::Stats { prometheus } => client::request(
            "stats",
            json!({ "format": if *prometheus { "prometheus" } else { "json" } }),
        ),
        Op::Lints { clear } => client::request("lints", json!({ "clear": clear })),
        Op::Record(RecordOp::Start {
            file,
            max_bytes,
            max_frames,
        }) => {
            // The server resolves a relative path against its own directory: send ours.
            let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let mut a = json!({ "action": "start", "file": file.display().to_string() });
            if let Some(n) = max_bytes {
                a["max_bytes"] = json!(n);
            }
            if let Some(n) = max_frames {
                a["max_frames"] = json!(n);
            }
            client::request("record", a)
        }
        Op::Record(RecordOp::Stop) => client::request("record", action("stop")),
        Op::Record(RecordOp::Status) => client::request("record", action("status")),
        Op::Replay { action: a } => {
            let a = match a {
                ReplayAction::Pause => "pause",
                ReplayAction::Resume => "resume",
                ReplayAction::Status => "status",
            };
            client::request("replay", action(a))
        }
        Op::Impair(ImpairOp::Get) => client::request("impair", action("get")),
        Op::Impair(ImpairOp::Set { settings, reset }) => {
            let mut m = Map::new();
            for s in settings {
                let (k, v) = s
                    .split_once('=')
                    .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
                m.insert(k.to_string(), Value::from(v));
            }
            client::request(
                "impair",
                json!({ "action": "set", "settings": m, "reset": reset }),
            )
        }
        Op::Raw { request } => {
            serde_json::from_str(request).map_err(|e| format!("the request is not JSON: {e}"))?
        }
    })
}

/// Run `ctl`: exit status 0 for a `return` reply, 1 for an `error` reply or no reply.
pub fn run(args: CtlArgs) -> ExitCode {
    let Some(path) = args.control.as_deref() else {
        eprintln!("nic-emu-cli ctl: --control PATH is required");
        return ExitCode::FAILURE;
    };
    let request = match build(&args.op) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nic-emu-cli ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `record start FILE`: the file is created here and its descriptor sent along.
    let record_to = match &args.op {
        Op::Record(RecordOp::Start { file, .. }) => match std::fs::File::create(file) {
            Ok(f) => Some((f, file.clone())),
            Err(e) => {
                eprintln!("nic-emu-cli ctl: record: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let reply = client::call_with_file(path, &request, record_to.as_ref().map(|r| &r.0), timeout);
    let failed = !matches!(&reply, Ok(r) if r.get("error").is_none());
    if let (true, Some((_, file))) = (failed, &record_to) {
        let _ = std::fs::remove_file(file);
    }
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nic-emu-cli ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{reply}");
    }
    if let Some(e) = reply.get("error") {
        let class = e.get("class").and_then(Value::as_str).unwrap_or("Error");
        let desc = e.get("desc").and_then(Value::as_str).unwrap_or("");
        eprintln!("nic-emu-cli ctl: {class}: {desc}");
        return ExitCode::FAILURE;
    }
    if !args.json {
        let ret = reply.get("return").unwrap_or(&Value::Null);
        match (&args.op, ret.get("text").and_then(Value::as_str)) {
            // The exposition text itself, as /metrics serves it.
            (Op::Stats { prometheus: true }, Some(text)) => print!("{text}"),
            _ => print!("{}", client::to_lines(ret)),
        }
    }
    ExitCode::SUCCESS
}
