//! Doing a checked request: each command takes the device lock once, for as long as it
//! needs (files are created before, replies formatted after).

use std::fs::File;

use serde_json::{json, Map, Value};

use super::prometheus;
use super::request::{
    parse, Command, ErrorClass, ImpairCommand, RecordCommand, ReplayCommand, RequestError,
    StatsFormat, COMMANDS,
};
use super::snapshot::{LinkState, Snapshot};
use super::ControlContext;
use crate::backend::control::{RecordStatus, ReplayStatus};
use crate::backend::impair::{is_impair_key, DirCounters, ImpairCounters, ImpairSpec};
use crate::backend::{BackendReply, BackendRequest};
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

/// Ask the backend chain, under the device lock.
fn ask(ctx: &ControlContext, request: BackendRequest) -> Result<BackendReply, RequestError> {
    let what = match &request {
        BackendRequest::ReplayPause
        | BackendRequest::ReplayResume
        | BackendRequest::ReplayStatus => "pcap replay",
        BackendRequest::ImpairGet | BackendRequest::ImpairSet(_) => {
            "impairment (loss=, delay=, ...)"
        }
        _ => "pcap recorder",
    };
    match ctx.with_device(|d| d.backend_mut().control(request)) {
        Some(BackendReply::Failed(msg)) => Err(RequestError::new(ErrorClass::GenericError, msg)),
        Some(r) => Ok(r),
        None => Err(not_supported(what, ctx)),
    }
}

/// Do `command`.
pub fn execute(ctx: &ControlContext, command: Command) -> Result<Value, RequestError> {
    execute_with(ctx, command, None)
}

/// A file passed with `record start` must be a regular, empty file open for writing.
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
        Command::Record(RecordCommand::Start(start)) => {
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
                // Created here, not under the device lock.
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
            let r = ask(
                ctx,
                BackendRequest::RecordStart {
                    file: f,
                    path: path.clone(),
                    limits,
                },
            );
            if r.is_err() && created {
                let _ = std::fs::remove_file(&path);
            }
            record_reply(r?)
        }
        Command::Record(RecordCommand::Stop {}) => {
            record_reply(ask(ctx, BackendRequest::RecordStop)?)
        }
        Command::Record(RecordCommand::Status {}) => {
            record_reply(ask(ctx, BackendRequest::RecordStatus)?)
        }
        Command::Replay(ReplayCommand::Pause {}) => {
            replay_reply(ask(ctx, BackendRequest::ReplayPause)?)
        }
        Command::Replay(ReplayCommand::Resume {}) => {
            replay_reply(ask(ctx, BackendRequest::ReplayResume)?)
        }
        Command::Replay(ReplayCommand::Status {}) => {
            replay_reply(ask(ctx, BackendRequest::ReplayStatus)?)
        }
        Command::Impair(ImpairCommand::Get {}) => {
            impair_reply(ask(ctx, BackendRequest::ImpairGet)?)
        }
        Command::Impair(ImpairCommand::Set(set)) => impair_set(ctx, &set.settings, set.reset),
    }
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
    // Read, change and write back under one lock, so two clients cannot interleave.
    let reply = ctx.with_device(|d| {
        let current = match d.backend_mut().control(BackendRequest::ImpairGet) {
            Some(BackendReply::Impair(b)) => b.0,
            _ => return Err(not_supported("impairment (loss=, delay=, ...)", ctx)),
        };
        let mut spec = if reset {
            ImpairSpec::default()
        } else {
            current
        };
        for (k, v) in settings {
            spec.set(k, v)
                .map_err(|e| invalid(format!("impair: `settings.{k}`: {e}")))?;
        }
        d.backend_mut()
            .control(BackendRequest::ImpairSet(spec))
            .ok_or_else(|| not_supported("impairment", ctx))
    })?;
    impair_reply(reply)
}

fn unexpected(r: &BackendReply) -> RequestError {
    RequestError::new(
        ErrorClass::GenericError,
        format!("the backend answered with something else: {r:?}"),
    )
}

fn record_reply(r: BackendReply) -> Result<Value, RequestError> {
    let BackendReply::Record(RecordStatus {
        recording,
        path,
        frames,
        bytes,
        stopped,
    }) = r
    else {
        return Err(unexpected(&r));
    };
    Ok(json!({
        "recording": recording,
        "file": path.map(|p| p.display().to_string()),
        "frames": frames,
        "bytes": bytes,
        "stopped": stopped,
    }))
}

fn replay_reply(r: BackendReply) -> Result<Value, RequestError> {
    let BackendReply::Replay(ReplayStatus {
        paused,
        finished,
        delivered,
        passes,
    }) = r
    else {
        return Err(unexpected(&r));
    };
    Ok(json!({
        "paused": paused,
        "finished": finished,
        "delivered": delivered,
        "passes": passes,
    }))
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

fn impair_reply(r: BackendReply) -> Result<Value, RequestError> {
    let BackendReply::Impair(b) = r else {
        return Err(unexpected(&r));
    };
    let (spec, ImpairCounters { rx, tx }) = *b;
    let settings: Map<String, Value> = spec
        .items()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    Ok(json!({
        "settings": settings,
        "counters": { "rx": dir_json(&rx), "tx": dir_json(&tx) },
    }))
}
