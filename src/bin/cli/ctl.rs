//! `nic-emu-cli ctl`: one request to a running nic-emu-cli's control socket, its reply
//! printed (as `key: value` lines, or the JSON line itself with `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use nic_emu::control::client;
use nic_emu::control::request::{Command, RecordCommand, RecordStart, StatsFormat};

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

#[derive(Subcommand, Debug)]
enum Op {
    #[command(flatten)]
    Command(Command),
    /// Send one raw JSON request line, e.g. '{"execute":"query-commands"}'.
    Raw {
        /// The request.
        request: String,
    },
}

/// The request line for `op`: the command serialized as the server reads it.
fn build(op: &Op) -> Result<Value, String> {
    match op {
        Op::Command(Command::Record(RecordCommand::Start(start))) => {
            // The server resolves a relative path against its own directory: send ours.
            let file = std::path::absolute(&start.file)
                .map_err(|e| format!("{}: {e}", start.file.display()))?;
            let start = RecordStart {
                file,
                ..start.clone()
            };
            Ok(Command::Record(RecordCommand::Start(start)).to_request())
        }
        Op::Command(c) => Ok(c.to_request()),
        Op::Raw { request } => {
            serde_json::from_str(request).map_err(|e| format!("the request is not JSON: {e}"))
        }
    }
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
        Op::Command(Command::Record(RecordCommand::Start(start))) => {
            match std::fs::File::create(&start.file) {
                Ok(f) => Some((f, start.file.clone())),
                Err(e) => {
                    eprintln!("nic-emu-cli ctl: record: {}: {e}", start.file.display());
                    return ExitCode::FAILURE;
                }
            }
        }
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
            (
                Op::Command(Command::Stats {
                    format: StatsFormat::Prometheus,
                }),
                Some(text),
            ) => print!("{text}"),
            _ => print!("{}", client::to_lines(ret)),
        }
    }
    ExitCode::SUCCESS
}
