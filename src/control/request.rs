//! Control requests: one definition of every command and its arguments. The wire's
//! `{"execute": NAME, "arguments": {...}}` is [`Command`]'s serde form and `nic-emu-cli
//! ctl NAME ...` its clap form (feature `cli`), so `ctl` builds a request by serializing
//! what it parsed and the server reads one by deserializing it. Whatever is wrong is an
//! error that names the field; nothing here touches the device.

use std::path::PathBuf;

#[cfg(feature = "cli")]
use clap::builder::TypedValueParser;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatsFormat {
    /// Nested JSON objects.
    #[default]
    Json,
    /// The Prometheus text format, as one string.
    Prometheus,
}

/// A command with its arguments: `{"execute": "link", "arguments": {"up": false}}` on
/// the wire, `ctl link down` on the command line. Commands without arguments are
/// written `Info {}` so that their `arguments`, when given, must be an empty object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "execute",
    content = "arguments",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
pub enum Command {
    /// Version, backend, MAC, link, whether QEMU is connected, uptime.
    Info {},
    /// Plug the cable in (up) or pull it (down): the guest sees the change at once.
    Link {
        /// up or down (on the wire `up`: true or false).
        #[cfg_attr(
            feature = "cli",
            arg(
                value_name = "STATE",
                action = clap::ArgAction::Set,
                value_parser = clap::builder::PossibleValuesParser::new(["up", "down"])
                    .map(|s| s == "up")
            )
        )]
        up: bool,
    },
    /// Every counter: nic-emu's, the statistics registers (not cleared), the backend's.
    Stats {
        /// In the Prometheus text format (on the wire `format`: json or prometheus).
        #[serde(default)]
        #[cfg_attr(
            feature = "cli",
            arg(
                long = "prometheus",
                action = clap::ArgAction::SetTrue,
                value_parser = clap::builder::BoolishValueParser::new()
                    .map(|p| if p { StatsFormat::Prometheus } else { StatsFormat::Json })
            )
        )]
        format: StatsFormat,
    },
    /// What the guest's driver did wrong: each lint that fired, its count, its first
    /// occurrence and message.
    Lints {
        /// Forget the findings after printing them (between two runs of a driver).
        #[serde(default)]
        #[cfg_attr(feature = "cli", arg(long))]
        clear: bool,
    },
    /// Record both directions to a pcap file, from now until `record stop`.
    #[cfg_attr(feature = "cli", command(subcommand))]
    Record(RecordCommand),
    /// Pause or resume a pcap replay backend, or show where it is.
    #[cfg_attr(feature = "cli", command(subcommand))]
    Replay(ReplayCommand),
    /// Show or change the impairments (backends started with loss=, delay=, ...).
    #[cfg_attr(feature = "cli", command(subcommand))]
    Impair(ImpairCommand),
    /// The command names.
    QueryCommands {},
}

/// `record`'s actions (`{"action": "start", "file": ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
pub enum RecordCommand {
    /// Start recording to FILE (created or truncated by nic-emu-cli).
    #[serde(deserialize_with = "naming_the_field")]
    Start(RecordStart),
    /// Finish the recording (the file is complete when this returns).
    Stop {},
    /// Whether recording, to which file, how much.
    Status {},
}

/// `record start`'s arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RecordStart {
    /// The pcap file. `ctl` creates (or truncates) it with the caller's rights and passes
    /// its descriptor with the request, so a sandboxed nic-emu-cli opens no file; without
    /// a descriptor the server creates it (a relative path is then the server's: `ctl`
    /// sends an absolute one).
    pub file: PathBuf,
    /// Stop by itself at this file size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES"))]
    pub max_bytes: Option<u64>,
    /// Stop by itself after this many frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_frames: Option<u64>,
}

impl RecordStart {
    /// When the recording stops by itself.
    pub fn limits(&self) -> RecordLimits {
        RecordLimits {
            max_bytes: self.max_bytes,
            max_frames: self.max_frames,
        }
    }
}

/// `replay`'s actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
pub enum ReplayCommand {
    /// Stop offering frames from the capture (the position in the file is kept).
    Pause {},
    /// Go on from where the replay was paused.
    Resume {},
    /// Where the replay is.
    Status {},
}

/// `impair`'s actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
pub enum ImpairCommand {
    /// The impairments in force and what they did.
    Get {},
    /// Change impairments: KEY=VALUE as in backends.toml (loss=10 rx_delay=20ms ...).
    #[serde(deserialize_with = "naming_the_field")]
    Set(ImpairSet),
}

/// `impair set`'s arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ImpairSet {
    /// The settings (on the wire an object: `{"loss": 10, "delay": "20ms"}`), applied in
    /// the order of their keys.
    #[serde(default, with = "settings")]
    #[cfg_attr(
        feature = "cli",
        arg(value_name = "KEY=VALUE", value_parser = key_value)
    )]
    pub settings: Vec<(String, String)>,
    /// Start from no impairment instead of the current settings.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub reset: bool,
}

/// `KEY=VALUE` of `ctl impair set`.
#[cfg(feature = "cli")]
fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// The impairment settings as a JSON object whose values are strings or numbers.
mod settings {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        let map = Map::deserialize(d)?;
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                other => Err(serde::de::Error::custom(format_args!(
                    "`{k}` must be a string or a number, not {other}"
                ))),
            })
            .collect()
    }
}

/// The fields of an action's arguments, read with their names in errors: serde reads an
/// internally tagged enum (`action`) through a buffer that loses the path of a field of
/// the wrong type, so this variant's fields are read on their own.
fn naming_the_field<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    serde_path_to_error::deserialize(d).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner
        } else {
            serde::de::Error::custom(format_args!("`{path}`: {inner}"))
        }
    })
}

/// A checked request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The client's `id`, repeated in the reply.
    pub id: Option<Value>,
    /// What to do.
    pub command: Command,
}

impl Command {
    /// The command's name on the wire (`execute`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Info {} => "info",
            Self::Link { .. } => "link",
            Self::Stats { .. } => "stats",
            Self::Lints { .. } => "lints",
            Self::Record(_) => "record",
            Self::Replay(_) => "replay",
            Self::Impair(_) => "impair",
            Self::QueryCommands {} => "query-commands",
        }
    }

    /// The request line's JSON (`{"execute": ..., "arguments": {...}}`).
    pub fn to_request(&self) -> Value {
        serde_json::to_value(self).expect("a command serializes")
    }

    /// What serde cannot say: values that are of the right type but make no sense.
    fn check(&self) -> Result<(), RequestError> {
        match self {
            Self::Record(RecordCommand::Start(s)) if s.file.as_os_str().is_empty() => {
                Err(invalid("record: `file` is empty"))
            }
            Self::Impair(ImpairCommand::Set(s)) if s.settings.is_empty() && !s.reset => {
                Err(invalid("impair set needs `settings` (or `reset`: true)"))
            }
            _ => Ok(()),
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
    let name = match obj.remove("execute") {
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
    let arguments = match obj.remove("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
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
    if !COMMANDS.contains(&name.as_str()) {
        return Err(with_id(RequestError::new(
            ErrorClass::CommandNotFound,
            format!(
                "unknown command `{}`; the commands are {}",
                name.chars().take(64).collect::<String>(),
                COMMANDS.join(", ")
            ),
        )));
    }
    let command = command_of(&name, arguments).map_err(with_id)?;
    Ok(Request { id, command })
}

/// `Command` from its name and arguments, read in that order (the tag first, so serde
/// reads the arguments as they come and errors keep the field's path).
fn command_of(name: &str, arguments: Value) -> Result<Command, RequestError> {
    use serde::de::value::MapDeserializer;
    let fields = [("execute", Value::from(name)), ("arguments", arguments)];
    let d = MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
    let command: Command = serde_path_to_error::deserialize(d).map_err(|e| {
        let path = e.path().to_string();
        let field = path
            .strip_prefix("arguments")
            .map(|p| p.trim_start_matches('.'))
            .unwrap_or("");
        let inner = e.into_inner();
        if field.is_empty() {
            invalid(format!("{name}: {inner}"))
        } else {
            invalid(format!("{name}: `{field}`: {inner}"))
        }
    })?;
    command.check()?;
    Ok(command)
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
            Command::Impair(ImpairCommand::Set(ImpairSet {
                settings: vec![
                    ("delay".into(), "20ms".into()),
                    ("loss".into(), "10".into())
                ],
                reset: false
            }))
        );
        for (line, command) in [
            (r#"{"execute":"info"}"#, Command::Info {}),
            (r#"{"execute":"info","arguments":null}"#, Command::Info {}),
            (
                r#"{"execute":"stats"}"#,
                Command::Stats {
                    format: StatsFormat::Json,
                },
            ),
            (
                r#"{"execute":"stats","arguments":{"format":"prometheus"}}"#,
                Command::Stats {
                    format: StatsFormat::Prometheus,
                },
            ),
            (r#"{"execute":"lints"}"#, Command::Lints { clear: false }),
            (
                r#"{"execute":"record","arguments":{"action":"start","file":"/x","max_frames":3}}"#,
                Command::Record(RecordCommand::Start(RecordStart {
                    file: "/x".into(),
                    max_bytes: None,
                    max_frames: Some(3),
                })),
            ),
            (
                r#"{"execute":"replay","arguments":{"action":"pause"}}"#,
                Command::Replay(ReplayCommand::Pause {}),
            ),
            (
                r#"{"execute":"impair","arguments":{"action":"set","reset":true}}"#,
                Command::Impair(ImpairCommand::Set(ImpairSet {
                    settings: vec![],
                    reset: true,
                })),
            ),
        ] {
            assert_eq!(parse(line.as_bytes()).unwrap().command, command, "{line}");
        }
    }

    /// Every command's request, as `ctl` sends it, reads back to the same command; every
    /// name in `COMMANDS` is a command and every command is in `COMMANDS`.
    #[test]
    fn requests_read_back_and_commands_are_listed() {
        let all = [
            Command::Info {},
            Command::Link { up: true },
            Command::Stats {
                format: StatsFormat::Prometheus,
            },
            Command::Lints { clear: true },
            Command::Record(RecordCommand::Start(RecordStart {
                file: "/tmp/a b.pcap".into(),
                max_bytes: Some(1 << 20),
                max_frames: None,
            })),
            Command::Record(RecordCommand::Stop {}),
            Command::Record(RecordCommand::Status {}),
            Command::Replay(ReplayCommand::Resume {}),
            Command::Replay(ReplayCommand::Status {}),
            Command::Impair(ImpairCommand::Get {}),
            Command::Impair(ImpairCommand::Set(ImpairSet {
                settings: vec![
                    ("loss".into(), "10".into()),
                    ("rx_delay".into(), "5ms".into()),
                ],
                reset: true,
            })),
            Command::QueryCommands {},
        ];
        for c in &all {
            let line = c.to_request().to_string();
            assert_eq!(&parse(line.as_bytes()).unwrap().command, c, "{line}");
            assert!(COMMANDS.contains(&c.name()), "{} not listed", c.name());
        }
        for name in COMMANDS {
            assert!(all.iter().any(|c| c.name() == name), "{name} is no command");
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err("garbage").class, ErrorClass::InvalidRequest);
        assert_eq!(err("[1,2]").class, ErrorClass::InvalidRequest);
        assert_eq!(
            err(r#"{"execute":"reboot"}"#).class,
            ErrorClass::CommandNotFound
        );
        assert_eq!(
            err(r#"{"execute":"info","arguments":[1]}"#).class,
            ErrorClass::InvalidRequest
        );
        for (line, field) in [
            (r#"{"execute":"link","arguments":{"up":"no"}}"#, "`up`"),
            (r#"{"execute":"link"}"#, "`up`"),
            (
                r#"{"execute":"link","arguments":{"up":true,"upp":1}}"#,
                "`upp`",
            ),
            (r#"{"execute":"info","arguments":{"x":1}}"#, "`x`"),
            (
                r#"{"execute":"stats","arguments":{"format":"xml"}}"#,
                "`format`",
            ),
            (
                r#"{"execute":"record","arguments":{"action":"start","file":"x","max_frames":-1}}"#,
                "`max_frames`",
            ),
            (
                r#"{"execute":"record","arguments":{"action":"start","file":7}}"#,
                "`file`",
            ),
            (
                r#"{"execute":"record","arguments":{"action":"start","file":""}}"#,
                "`file`",
            ),
            (
                r#"{"execute":"record","arguments":{"action":"stop","file":"x"}}"#,
                "`file`",
            ),
            (
                r#"{"execute":"record","arguments":{"action":"go"}}"#,
                "`action`",
            ),
            (r#"{"execute":"replay"}"#, "`action`"),
            (
                r#"{"execute":"impair","arguments":{"action":"set","settings":{"loss":[1]}}}"#,
                "`loss`",
            ),
            (
                r#"{"execute":"impair","arguments":{"action":"set","settings":3}}"#,
                "`settings`",
            ),
            (
                r#"{"execute":"impair","arguments":{"action":"set"}}"#,
                "`settings`",
            ),
        ] {
            let e = err(line);
            assert_eq!(e.class, ErrorClass::InvalidArgument, "{line}: {e}");
            assert!(e.desc.contains(field), "{line}: {e}");
        }
        let (id, _) = parse(br#"{"execute":"nope","id":"a"}"#).unwrap_err();
        assert_eq!(id, Some(Value::from("a")));
    }
}
