//! Doing a checked request: a command on the device takes its lock once, for as long as
//! it needs (replies are formatted after); `record`, `replay` and `impair` act on the
//! wrapper's handle ([`ControlContext::handles`]) and never take the device lock (files
//! are created before).

use std::fs::File;

use serde_json::{json, Map, Value};

use super::prometheus;
use super::request::{
    parse, Command, ErrorClass, ImpairCommand, RecordCommand, ReplayCommand, RequestError,
    StatsFormat, COMMANDS,
};
use super::snapshot::{LinkState, Snapshot};
use super::ControlContext;
use crate::backend::impair::{is_impair_key, DirCounters, ImpairCounters, ImpairSpec};
#[cfg(feature = "pcap")]
use crate::backend::pcap_record::RecordStatus;
#[cfg(feature = "pcap")]
use crate::backend::pcap_replay::ReplayStatus;
use crate::device::lint::{Finding, Severity};

/// Answer one request line with one reply line (without the newline).
pub fn reply_line(ctx: &ControlContext, line: &[u8]) -> String {
    reply_line_with(ctx, line, None)
}

/// [`reply_line`] for a line that came with a file descriptor (`record start`'s file).
pub fn reply_line_with(ctx: &ControlContext, line: &[u8], file: Option<File>) -> String {
    let reply = match parse(line) {
        Ok(req) => {
            let r = execute_with(ctx, req.command, file);
            with_id(r, req.id)
        }
        Err((id, e)) => with_id(Err(e), id),
    };
    reply.to_string()
}

/// The reply object for `result`: `{"return": ...}` or `{"error": {"class", "desc"}}`,
/// with the request's `id` when it had one.
pub fn with_id(result: Result<Value, RequestError>, id: Option<Value>) -> Value {
    let mut obj = Map::new();
    match result {
        Ok(v) => {
            obj.insert("return".into(), v);
        }
        Err(e) => {
            obj.insert(
                "error".into(),
                json!({"class": e.class.name(), "desc": e.desc}),
            );
        }
    }
    if let Some(id) = id {
        obj.insert("id".into(), id);
    }
    Value::Object(obj)
}

fn not_supported(what: &str, ctx: &ControlContext) -> RequestError {
    RequestError::new(
        ErrorClass::NotSupported,
        format!("the backend ({}) has no {what}", ctx.backend),
    )
}

/// Do `command`.
pub fn execute(ctx: &ControlContext, command: Command) -> Result<Value, RequestError> {
    execute_with(ctx, command, None)
}

/// A file passed with `record start` must be a regular, empty file open for writing.
#[cfg(feature = "pcap")]
fn check_passed(file: &File, path: &std::path::Path) -> Result<(), RequestError> {
    use std::os::fd::AsRawFd;
    let bad = |why: String| {
        RequestError::new(
            ErrorClass::InvalidArgument,
            format!(
                "record: the descriptor passed for {}: {why}",
                path.display()
            ),
        )
    };
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() != 0 {
        return Err(bad(format!("not empty ({} bytes)", meta.len())));
    }
    // SAFETY: F_GETFL on a descriptor `file` owns; no memory is passed.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(bad("not open for writing".into()));
    }
    Ok(())
}

/// Do `command`; `file` is a descriptor the client passed with it (used by `record
/// start`, dropped otherwise).
pub fn execute_with(
    ctx: &ControlContext,
    command: Command,
    file: Option<File>,
) -> Result<Value, RequestError> {
    match command {
        Command::Info {} => Ok(Snapshot::take(ctx).info_json()),
        Command::QueryCommands {} => Ok(json!(COMMANDS)),
        Command::Link { up } => {
            let link = ctx.with_device(|d| {
                d.set_link(up);
                LinkState::of(d)
            });
            log::info!(
                "control: cable {}; link {}{}",
                if up { "plugged" } else { "pulled" },
                if link.up { "up" } else { "down" },
                match &link.backend_carrier_note {
                    Some(n) if !link.backend_carrier => format!(" (no backend carrier: {n})"),
                    _ => String::new(),
                }
            );
            Ok(link.json())
        }
        Command::Stats {
            format: StatsFormat::Json,
        } => Ok(Snapshot::take(ctx).stats_json()),
        Command::Lints { clear } => {
            let findings = ctx.with_device(|d| {
                let f = d.lints();
                if clear {
                    d.clear_lints();
                }
                f
            });
            Ok(lints_json(&findings))
        }
        Command::Stats {
            format: StatsFormat::Prometheus,
        } => Ok(json!({ "text": prometheus::render(&Snapshot::take(ctx)) })),
        Command::Record(command) => {
            let r = record(ctx, command, file);
            ctx.target.wake();
            r
        }
        Command::Replay(command) => {
            let r = replay(ctx, command);
            ctx.target.wake();
            r
        }
        Command::Impair(ImpairCommand::Get {}) => {
            let h = impair_handle(ctx)?;
            let (spec, counters) = h.get();
            Ok(impair_json(spec, counters))
        }
        Command::Impair(ImpairCommand::Set(set)) => {
            let r = impair_set(ctx, &set.settings, set.reset);
            ctx.target.wake();
            r
        }
    }
}

#[cfg(feature = "pcap")]
fn record(
    ctx: &ControlContext,
    command: RecordCommand,
    file: Option<File>,
) -> Result<Value, RequestError> {
    let handle = || {
        ctx.handles
            .recorder
            .as_ref()
            .ok_or_else(|| not_supported("pcap recorder", ctx))
    };
    match command {
        RecordCommand::Start(start) => {
            let (path, limits) = (start.file.clone(), start.limits());
            let (f, created) = match file {
                Some(f) => {
                    check_passed(&f, &path)?;
                    (f, false)
                }
                None if !ctx.create_files => {
                    return Err(RequestError::new(
                        ErrorClass::GenericError,
                        format!(
                            "record: this nic-emu runs sandboxed and cannot create {}; pass \
                             the file's descriptor with the request (`nic-emu-cli ctl record \
                             start FILE` opens FILE and does)",
                            path.display()
                        ),
                    ))
                }
                None => (
                    File::create(&path).map_err(|e| {
                        RequestError::new(
                            ErrorClass::GenericError,
                            format!("record: `file` {}: {e}", path.display()),
                        )
                    })?,
                    true,
                ),
            };
            let r = handle().and_then(|h| {
                h.start(f, path.clone(), limits)
                    .map(|()| h.status())
                    .map_err(|e| RequestError::new(ErrorClass::GenericError, e.to_string()))
            });
            if r.is_err() && created {
                let _ = std::fs::remove_file(&path);
            }
            Ok(record_json(r?))
        }
        RecordCommand::Stop {} => {
            let h = handle()?;
            h.finish();
            Ok(record_json(h.status()))
        }
        RecordCommand::Status {} => Ok(record_json(handle()?.status())),
    }
}

/// Without the `pcap` feature there is no recorder (a passed file is dropped).
#[cfg(not(feature = "pcap"))]
fn record(
    ctx: &ControlContext,
    _command: RecordCommand,
    _file: Option<File>,
) -> Result<Value, RequestError> {
    Err(not_supported("pcap recorder", ctx))
}

#[cfg(feature = "pcap")]
fn replay(ctx: &ControlContext, command: ReplayCommand) -> Result<Value, RequestError> {
    let h = ctx
        .handles
        .replay
        .as_ref()
        .ok_or_else(|| not_supported("pcap replay", ctx))?;
    match command {
        ReplayCommand::Pause {} => {
            h.pause();
        }
        ReplayCommand::Resume {} => {
            h.resume();
        }
        ReplayCommand::Status {} => {}
    }
    Ok(replay_json(h.status()))
}

#[cfg(not(feature = "pcap"))]
fn replay(ctx: &ControlContext, _command: ReplayCommand) -> Result<Value, RequestError> {
    Err(not_supported("pcap replay", ctx))
}

fn impair_handle(
    ctx: &ControlContext,
) -> Result<&crate::backend::impair::ImpairHandle, RequestError> {
    ctx.handles
        .impair
        .as_ref()
        .ok_or_else(|| not_supported("impairment (loss=, delay=, ...)", ctx))
}

/// `lints`'s answer: each finding, and the totals by severity.
pub fn lints_json(findings: &[Finding]) -> Value {
    let total = |s: Severity| -> u64 {
        findings
            .iter()
            .filter(|f| f.id.lint().severity == s)
            .map(|f| f.count)
            .sum()
    };
    let list: Vec<Value> = findings
        .iter()
        .map(|f| {
            let l = f.id.lint();
            json!({
                "id": l.name,
                "severity": l.severity.name(),
                "section": l.section,
                "count": f.count,
                "first_ns": f.first_ns,
                "first_access": f.first_access,
                "message": f.message,
            })
        })
        .collect();
    json!({
        "warn_total": total(Severity::Warn),
        "info_total": total(Severity::Info),
        "findings": list,
    })
}

fn impair_set(
    ctx: &ControlContext,
    settings: &[(String, String)],
    reset: bool,
) -> Result<Value, RequestError> {
    let invalid = |d: String| RequestError::new(ErrorClass::InvalidArgument, d);
    if let Some((k, _)) = settings.iter().find(|(k, _)| !is_impair_key(k)) {
        return Err(invalid(format!(
            "impair: `settings.{k}` is not an impairment (loss, dup, corrupt, reorder, \
             delay, jitter, rate, each also rx_/tx_; seed)"
        )));
    }
    let h = impair_handle(ctx)?;
    // Read, change and write back under the impairment's one lock, so two clients
    // cannot interleave.
    let (spec, counters) = h.update(|spec| {
        if reset {
            *spec = ImpairSpec::default();
        }
        for (k, v) in settings {
            spec.set(k, v)
                .map_err(|e| invalid(format!("impair: `settings.{k}`: {e}")))?;
        }
        Ok(())
    })?;
    Ok(impair_json(spec, counters))
}

#[cfg(feature = "pcap")]
fn record_json(status: RecordStatus) -> Value {
    let RecordStatus {
        recording,
        path,
        frames,
        bytes,
        stopped,
    } = status;
    json!({
        "recording": recording,
        "file": path.map(|p| p.display().to_string()),
        "frames": frames,
        "bytes": bytes,
        "stopped": stopped,
    })
}

#[cfg(feature = "pcap")]
fn replay_json(status: ReplayStatus) -> Value {
    let ReplayStatus {
        paused,
        finished,
        delivered,
        passes,
    } = status;
    json!({
        "paused": paused,
        "finished": finished,
        "delivered": delivered,
        "passes": passes,
    })
}

fn dir_json(c: &DirCounters) -> Value {
    json!({
        "frames_in": c.frames_in,
        "frames_out": c.frames_out,
        "lost": c.lost,
        "duplicated": c.duplicated,
        "corrupted": c.corrupted,
        "reordered": c.reordered,
        "delayed": c.delayed,
        "rate_limited": c.rate_limited,
        "queue_full": c.queue_full,
    })
}

fn impair_json(spec: ImpairSpec, ImpairCounters { rx, tx }: ImpairCounters) -> Value {
    let settings: Map<String, Value> = spec
        .items()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    json!({
        "settings": settings,
        "counters": { "rx": dir_json(&rx), "tx": dir_json(&tx) },
    })
}
