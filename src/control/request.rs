//! Reading a control request: one line of JSON, checked field by field. Whatever is
//! wrong is an error that names the field; nothing here touches the device.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::backend::RecordLimits;

/// The command names, for `query-commands` and "unknown command" messages.
pub const COMMANDS: [&str; 8] = [
    "info",
    "link",
    "stats",
    "lints",
    "record",
    "replay",
    "impair",
    "query-commands",
];

/// Kind of a control error (the `class` of an error reply, as in QMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The line is not a JSON object of the right shape.
    InvalidRequest,
    /// No such command.
    CommandNotFound,
    /// A command's arguments are missing or of the wrong kind.
    InvalidArgument,
    /// This nic-emu's backend cannot do that (no pcap replay, no impairment).
    NotSupported,
    /// Understood but failed (a file that cannot be created, ...).
    GenericError,
}

impl ErrorClass {
    /// The name in the reply.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::CommandNotFound => "CommandNotFound",
            Self::InvalidArgument => "InvalidArgument",
            Self::NotSupported => "NotSupported",
            Self::GenericError => "GenericError",
        }
    }
}

/// A request that cannot be done; the description names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {desc}", class.name())]
pub struct RequestError {
    /// Kind.
    pub class: ErrorClass,
    /// What is wrong.
    pub desc: String,
}

impl RequestError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        Self {
            class,
            desc: desc.into(),
        }
    }
}

fn invalid(desc: impl Into<String>) -> RequestError {
    RequestError::new(ErrorClass::InvalidArgument, desc)
}

/// Format of the `stats` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsFormat {
    /// Nested JSON objects.
    Json,
    /// The Prometheus text format, as one string.
    Prometheus,
}

/// A command with its arguments, checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `info`.
    Info,
    /// `link`: plug (`up`) or pull the cable.
    Link {
        /// The new state.
        up: bool,
    },
    /// `stats`.
    Stats(StatsFormat),
    /// `lints`: the findings, optionally forgotten after this reply.
    Lints {
        /// Forget the findings once reported (between two runs of a driver).
        clear: bool,
    },
    /// `record` `start`.
    RecordStart {
        /// The file to create.
        file: PathBuf,
        /// When recording stops by itself.
        limits: RecordLimits,
    },
    /// `record` `stop`.
    RecordStop,
    /// `record` `status`.
    RecordStatus,
    /// `replay` `pause`.
    ReplayPause,
    /// `replay` `resume`.
    ReplayResume,
    /// `replay` `status`.
    ReplayStatus,
    /// `impair` `get`.
    ImpairGet,
    /// `impair` `set`.
    ImpairSet {
        /// `key=value` settings in the order given (keys of backends.toml's impairments).
        settings: Vec<(String, String)>,
        /// Start from no impairment instead of the current settings.
        reset: bool,
    },
    /// `query-commands`.
    QueryCommands,
}

/// A checked request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The client's `id`, repeated in the reply.
    pub id: Option<Value>,
    /// What to do.
    pub command: Command,
}

/// The arguments of one command: every field read is ticked off, and fields left over
/// are an error (a typo is never silently ignored).
struct Args<'a> {
    command: &'a str,
    map: Map<String, Value>,
}

impl<'a> Args<'a> {
    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    fn bool(&mut self, field: &str) -> Result<Option<bool>, RequestError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(invalid(format!(
                "{}: `{field}` must be true or false, not {v}",
                self.command
            ))),
        }
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, RequestError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(invalid(format!(
                "{}: `{field}` must be a string, not {v}",
                self.command
            ))),
        }
    }

    fn u64(&mut self, field: &str) -> Result<Option<u64>, RequestError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                invalid(format!(
                    "{}: `{field}` must be a non-negative integer, not {v}",
                    self.command
                ))
            }),
        }
    }

    fn required<T>(&self, field: &str, v: Option<T>) -> Result<T, RequestError> {
        v.ok_or_else(|| invalid(format!("{} needs `{field}`", self.command)))
    }

    fn action(&mut self, allowed: &[&str]) -> Result<String, RequestError> {
        let a = self.string("action")?;
        let a = self.required("action", a)?;
        if allowed.contains(&a.as_str()) {
            Ok(a)
        } else {
            Err(invalid(format!(
                "{}: `action` must be one of {}, not {a:?}",
                self.command,
                allowed.join(", ")
            )))
        }
    }

    fn done(self) -> Result<(), RequestError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(invalid(format!("{}: unknown argument `{k}`", self.command))),
        }
    }
}

/// Read one request line. On error, the `id` (if one could be read) comes back too, so
/// the reply can carry it.
pub fn parse(line: &[u8]) -> Result<Request, (Option<Value>, RequestError)> {
    let bad = |desc: String| (None, RequestError::new(ErrorClass::InvalidRequest, desc));
    let text = std::str::from_utf8(line).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad("a request is a JSON object".into()));
    };
    let id = obj.remove("id");
    let with_id = |e: RequestError| (id.clone(), e);
    let command = match obj.remove("execute") {
        Some(Value::String(s)) => s,
        Some(v) => {
            return Err(with_id(RequestError::new(
                ErrorClass::InvalidRequest,
                format!("`execute` must be a command name, not {v}"),
            )))
        }
        None => {
            return Err(with_id(RequestError::new(
                ErrorClass::InvalidRequest,
                "missing `execute` (the command name)",
            )))
        }
    };
    let map = match obj.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(with_id(RequestError::new(
                ErrorClass::InvalidRequest,
                format!("`arguments` must be an object, not {v}"),
            )))
        }
    };
    if let Some(k) = obj.keys().next() {
        return Err(with_id(RequestError::new(
            ErrorClass::InvalidRequest,
            format!("unknown member `{k}` (a request has execute, arguments, id)"),
        )));
    }
    let args = Args {
        command: &command,
        map,
    };
    let command = command_of(args).map_err(with_id)?;
    Ok(Request { id, command })
}

fn command_of(mut a: Args) -> Result<Command, RequestError> {
    let cmd = match a.command {
        "info" => Command::Info,
        "query-commands" => Command::QueryCommands,
        "link" => {
            let up = a.bool("up")?;
            Command::Link {
                up: a.required("up", up)?,
            }
        }
        "stats" => match a.string("format")?.as_deref() {
            None | Some("json") => Command::Stats(StatsFormat::Json),
            Some("prometheus") => Command::Stats(StatsFormat::Prometheus),
            Some(f) => {
                return Err(invalid(format!(
                    "stats: `format` must be json or prometheus, not {f:?}"
                )))
            }
        },
        "lints" => Command::Lints {
            clear: a.bool("clear")?.unwrap_or(false),
        },
        "record" => match a.action(&["start", "stop", "status"])?.as_str() {
            "start" => {
                let file = a.string("file")?;
                let file = a.required("file", file)?;
                if file.is_empty() {
                    return Err(invalid("record: `file` is empty"));
                }
                let limits = RecordLimits {
                    max_bytes: a.u64("max_bytes")?,
                    max_frames: a.u64("max_frames")?,
                };
                Command::RecordStart {
                    file: PathBuf::from(file),
                    limits,
                }
            }
            "stop" => Command::RecordStop,
            _ => Command::RecordStatus,
        },
        "replay" => match a.action(&["pause", "resume", "status"])?.as_str() {
            "pause" => Command::ReplayPause,
            "resume" => Command::ReplayResume,
            _ => Command::ReplayStatus,
        },
        "impair" => match a.action(&["get", "set"])?.as_str() {
            "get" => Command::ImpairGet,
            _ => {
                let reset = a.bool("reset")?.unwrap_or(false);
                let settings = impair_settings(a.take("settings"))?;
                if settings.is_empty() && !reset {
                    return Err(invalid("impair set needs `settings` (or `reset`: true)"));
                }
                Command::ImpairSet { settings, reset }
            }
        },
        other => {
            return Err(RequestError::new(
                ErrorClass::CommandNotFound,
                format!(
                    "unknown command `{}`; the commands are {}",
                    other.chars().take(64).collect::<String>(),
                    COMMANDS.join(", ")
                ),
            ))
        }
    };
    a.done()?;
    Ok(cmd)
}

fn impair_settings(v: Option<Value>) -> Result<Vec<(String, String)>, RequestError> {
    let map = match v {
        None => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(invalid(format!(
                "impair: `settings` must be an object such as {{\"loss\": 10}}, not {v}"
            )))
        }
    };
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(invalid(format!(
                        "impair: `settings.{k}` must be a string or a number, not {other}"
                    )))
                }
            };
            Ok((k, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> RequestError {
        parse(line.as_bytes()).unwrap_err().1
    }

    #[test]
    fn good_requests() {
        let r = parse(br#"{"execute":"link","arguments":{"up":false},"id":7}"#).unwrap();
        assert_eq!(r.command, Command::Link { up: false });
        assert_eq!(r.id, Some(Value::from(7)));
        let r = parse(br#"{"execute":"impair","arguments":{"action":"set","settings":{"loss":10,"delay":"20ms"}}}"#)
            .unwrap();
        assert_eq!(
            r.command,
            Command::ImpairSet {
                settings: vec![
                    ("delay".into(), "20ms".into()),
                    ("loss".into(), "10".into())
                ],
                reset: false
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err("garbage").class, ErrorClass::InvalidRequest);
        assert_eq!(err("[1,2]").class, ErrorClass::InvalidRequest);
        assert_eq!(
            err(r#"{"execute":"reboot"}"#).class,
            ErrorClass::CommandNotFound
        );
        let e = err(r#"{"execute":"link","arguments":{"up":"no"}}"#);
        assert!(e.desc.contains("`up`"), "{e}");
        let e = err(r#"{"execute":"link"}"#);
        assert!(e.desc.contains("needs `up`"), "{e}");
        let e = err(r#"{"execute":"link","arguments":{"up":true,"upp":1}}"#);
        assert!(e.desc.contains("`upp`"), "{e}");
        let e = err(
            r#"{"execute":"record","arguments":{"action":"start","file":"x","max_frames":-1}}"#,
        );
        assert!(e.desc.contains("`max_frames`"), "{e}");
        let (id, _) = parse(br#"{"execute":"nope","id":"a"}"#).unwrap_err();
        assert_eq!(id, Some(Value::from("a")));
    }
}
