//! backends.toml: named packet backends, the default one, and device settings.
//!
//! ```toml
//! default = "lo"                 # which [backends.NAME] to use without --backend
//!
//! [device]
//! mac = "52:54:00:00:00:01"      # optional (unicast; default 52:54:00:e1:00:00)
//! link_up = true                 # optional: cable plugged in at power-on
//! model = "82540em"              # optional: or "82545em"
//! eeprom = "card.eeprom"         # optional: keep the EEPROM in this file
//! autoneg_ms = 500               # optional: link down while the PHY renegotiates
//!
//! [backends.lo]
//! kind = "loopback"
//!
//! [backends.wire]
//! kind = "udp"
//! local = "127.0.0.1:7001"
//! remote = "127.0.0.1:7002"
//! record = "wire.pcap"           # any backend: record both directions
//! ```
//!
//! The keys of a backend table are those of [`BackendSpec`] (see
//! [`crate::config::spec`]). Unknown keys, values of the wrong type and missing
//! required keys are errors that name the key and the file. Without `default`, the
//! backend named `loopback` is used if defined, else a built-in loopback.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::spec::{BackendKind, BackendSpec, SpecError};
use crate::device::Model;
use crate::mac::MacAddress;

/// Largest `[device] autoneg_ms` accepted (a minute).
pub const MAX_AUTONEG_MS: u64 = 60_000;

/// A configuration that could not be loaded or used. Every message names the file
/// (or "built-in defaults") and the key or name at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse, or a key is unknown, mistyped or missing.
    #[error("config file {origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("config file {origin}: key `{key}`: {message}")]
    BadValue {
        /// The file.
        origin: String,
        /// The key, dotted (`device.mac`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `default` names a backend the file does not define.
    #[error("config file {origin}: key `default` names backend `{name}`, which is not defined (defined: {defined})")]
    UnknownDefault {
        /// The file.
        origin: String,
        /// The name.
        name: String,
        /// The names that are defined.
        defined: String,
    },
    /// `--backend NAME`: a plain word that is neither a defined name nor a backend kind.
    #[error("backend `{name}` is not defined in {origin} (defined: {defined}), nor a backend kind for an inline spec such as `tap,ifname=tap0` ({reason})")]
    UnknownBackend {
        /// The file (or "built-in defaults").
        origin: String,
        /// The name given.
        name: String,
        /// The names that are defined.
        defined: String,
        /// Why it is not an inline spec either.
        reason: String,
    },
    /// `--backend SPEC`: an inline spec (it has a `,` or `=`, or starts with a kind) that
    /// does not parse.
    #[error("inline backend spec `{spec}`: {reason}")]
    InlineSpec {
        /// The spec given.
        spec: String,
        /// What is wrong with it.
        reason: SpecError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default: Option<String>,
    device: Option<RawDevice>,
    #[serde(default)]
    backends: BTreeMap<String, BackendSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    mac: Option<String>,
    link_up: Option<bool>,
    model: Option<String>,
    eeprom: Option<PathBuf>,
    autoneg_ms: Option<u64>,
}

/// A loaded configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where it came from: a file path, or `None` for the built-in defaults.
    pub source: Option<PathBuf>,
    /// Name of the backend used when none is asked for.
    pub default_backend: String,
    /// `[device] mac`, if given.
    pub mac: Option<MacAddress>,
    /// `[device] link_up` (default true).
    pub link_up: bool,
    /// `[device] model`, if given (default: the 82540EM).
    pub model: Option<Model>,
    /// `[device] eeprom`: the file the card's EEPROM lives in, if any. nic-emu reads it
    /// at start and replaces it (a new file in the same directory, renamed over it) each
    /// time the guest programs the EEPROM, so a sandbox must allow both.
    pub eeprom: Option<PathBuf>,
    /// `[device] autoneg_ms`: how long the link stays down while the PHY negotiates
    /// again, in milliseconds, if given (default 500, as QEMU; 0: at once).
    pub autoneg_ms: Option<u64>,
    /// `[backends.NAME]` tables.
    pub backends: BTreeMap<String, BackendSpec>,
}

/// The backend name of the built-in configuration.
pub const BUILTIN_BACKEND: &str = "loopback";

impl Default for Config {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Config {
    /// The built-in defaults: one backend, `loopback`, used by default.
    pub fn builtin() -> Self {
        let mut backends = BTreeMap::new();
        backends.insert(
            BUILTIN_BACKEND.to_string(),
            BackendSpec {
                kind: BackendKind::Loopback,
                record: None,
                impair: None,
            },
        );
        Self {
            source: None,
            default_backend: BUILTIN_BACKEND.into(),
            mac: None,
            link_up: true,
            model: None,
            eeprom: None,
            autoneg_ms: None,
            backends,
        }
    }

    /// Read and check the file at `path`. Relative paths in it (`record`, `replay`, a
    /// `unix:` socket) are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = Self::parse(&text, &path.display().to_string())?;
        c.source = Some(path.to_path_buf());
        // Paths in the file are relative to the file (a unit's --config /etc/nic-emu/X.toml
        // with record = "x.pcap" writes /etc/nic-emu/x.pcap, whatever its working directory).
        if let Some(dir) = path.parent() {
            for spec in c.backends.values_mut() {
                spec.resolve_paths(dir);
            }
        }
        Ok(c)
    }

    /// Check `text`; `origin` names it in errors (and becomes [`source`](Self::source)).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            message: describe_toml_error(text, &e),
        })?;
        let device = raw.device.unwrap_or(RawDevice {
            mac: None,
            link_up: None,
            model: None,
            eeprom: None,
            autoneg_ms: None,
        });
        let bad = |key: &str, message: String| ConfigError::BadValue {
            origin: origin.into(),
            key: key.into(),
            message,
        };
        let model = device
            .model
            .map(|m| {
                m.parse::<Model>()
                    .map_err(|e| bad("device.model", e.to_string()))
            })
            .transpose()?;
        if let Some(ms) = device.autoneg_ms {
            if ms > MAX_AUTONEG_MS {
                return Err(bad(
                    "device.autoneg_ms",
                    format!("{ms} ms is more than the {MAX_AUTONEG_MS} ms allowed"),
                ));
            }
        }
        if device
            .eeprom
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(bad("device.eeprom", "empty path".into()));
        }
        let mac = device
            .mac
            .map(|m| {
                let bad = |message: String| ConfigError::BadValue {
                    origin: origin.into(),
                    key: "device.mac".into(),
                    message,
                };
                let mac = m.parse::<MacAddress>().map_err(|e| bad(e.to_string()))?;
                mac.check_station().map_err(bad)?;
                Ok(mac)
            })
            .transpose()?;
        let mut backends = raw.backends;
        let default_backend = match raw.default {
            Some(name) => {
                if !backends.contains_key(&name) {
                    return Err(ConfigError::UnknownDefault {
                        origin: origin.into(),
                        name,
                        defined: names(&backends),
                    });
                }
                name
            }
            None => {
                backends
                    .entry(BUILTIN_BACKEND.to_string())
                    .or_insert(BackendSpec {
                        kind: BackendKind::Loopback,
                        record: None,
                        impair: None,
                    });
                BUILTIN_BACKEND.into()
            }
        };
        Ok(Self {
            source: Some(PathBuf::from(origin)),
            default_backend,
            mac,
            link_up: device.link_up.unwrap_or(true),
            model,
            eeprom: device.eeprom,
            autoneg_ms: device.autoneg_ms,
            backends,
        })
    }

    /// `path` if given; else `backends.toml` in the current directory if it exists; else
    /// the built-in defaults.
    pub fn discover(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => {
                let p = Path::new("backends.toml");
                if p.exists() {
                    Self::load(p)
                } else {
                    Ok(Self::builtin())
                }
            }
        }
    }

    /// Where the configuration came from, for messages.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "built-in defaults".into(),
        }
    }

    /// The backend to use: `choice` is a name defined here or an inline spec
    /// (`tap,ifname=tap0`); `None` is the default backend. Returns a label for logs (the
    /// name, or "inline") and the spec.
    pub fn resolve_backend(
        &self,
        choice: Option<&str>,
    ) -> Result<(String, BackendSpec), ConfigError> {
        let name = choice.unwrap_or(&self.default_backend);
        if let Some(spec) = self.backends.get(name) {
            return Ok((name.to_string(), spec.clone()));
        }
        match BackendSpec::parse_inline(name) {
            Ok(spec) => Ok(("inline".into(), spec)),
            // A plain word that names no kind: most likely a misspelt backend name.
            Err(e @ (SpecError::UnknownKind(_) | SpecError::Empty))
                if !name.contains([',', '=']) =>
            {
                Err(ConfigError::UnknownBackend {
                    origin: self.origin(),
                    name: name.to_string(),
                    defined: names(&self.backends),
                    reason: e.to_string(),
                })
            }
            // Clearly meant as a spec: its own error, alone.
            Err(reason) => Err(ConfigError::InlineSpec {
                spec: name.to_string(),
                reason,
            }),
        }
    }
}

/// "line 3, key `backends.wire.local`: invalid type: ..." from a TOML error: the
/// parser's message names the problem; the key it happened at is read off the line the
/// error points to (and the table header above it).
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(pos) = e.span().map(|s| s.start) else {
        return message.to_string();
    };
    let Some(before) = text.get(..pos) else {
        return message.to_string();
    };
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let rest = text.get(line_start..).unwrap_or("");
    let line = rest.split('\n').next().unwrap_or("").trim();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    let table = text
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .find_map(|l| header(l.split('#').next().unwrap_or("")));
    let place = if let Some(h) = header(line) {
        // A key the spec rejected after parsing: point at its own line.
        let key_line = message
            .split_once("unknown key `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .and_then(|(key, _)| {
                rest.lines()
                    .enumerate()
                    .skip(1)
                    .take_while(|(_, l)| header(l).is_none())
                    .find(|(_, l)| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
                    .map(|(n, _)| (key, n))
            });
        if let Some((key, n)) = key_line {
            return format!("line {}, key `{h}.{key}`: {message}", line_no + n);
        }
        format!("table `{h}`")
    } else if let Some((key, _)) = line.split_once('=') {
        let key = key.trim();
        match table {
            Some(t) => format!("key `{t}.{key}`"),
            None => format!("key `{key}`"),
        }
    } else {
        return format!("line {line_no}: {message}");
    };
    format!("line {line_no}, {place}: {message}")
}

fn names(backends: &BTreeMap<String, BackendSpec>) -> String {
    if backends.is_empty() {
        return "none".into();
    }
    backends
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` as a TOML basic string (quotes and backslashes escaped, control characters as
/// `\uXXXX`): what the file reads back as `s`. Rust's `{:?}` is not TOML (`\u{1b}`).
fn toml_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `s` fit for a `#` comment of a backends.toml: one line, control characters escaped
/// (what `--print-config` writes must load back).
pub fn comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl fmt::Display for Config {
    /// The configuration as a backends.toml (inline specs shown as comments), which
    /// [`Config::parse`] reads back as the same configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# from {}", comment(&self.origin()))?;
        writeln!(f, "default = {}", toml_string(&self.default_backend))?;
        writeln!(f, "\n[device]")?;
        if let Some(mac) = self.mac {
            writeln!(f, "mac = \"{mac}\"")?;
        }
        writeln!(f, "link_up = {}", self.link_up)?;
        if let Some(m) = self.model {
            writeln!(f, "model = \"{m}\"")?;
        }
        if let Some(p) = &self.eeprom {
            writeln!(f, "eeprom = {}", toml_string(&p.display().to_string()))?;
        }
        if let Some(ms) = self.autoneg_ms {
            writeln!(f, "autoneg_ms = {ms}")?;
        }
        for (name, spec) in &self.backends {
            let spec_line = comment(&spec.to_string());
            writeln!(f, "\n[backends.{}]  # {spec_line}", toml_string(name))?;
            writeln!(f, "kind = {}", toml_string(spec.kind.name()))?;
            for (key, value) in spec.items() {
                // These are integers in the file; everything else is a string.
                if matches!(
                    key.as_str(),
                    "repeat"
                        | "record_max_bytes"
                        | "record_max_frames"
                        | "vni"
                        | "ttl"
                        | "src_port"
                ) {
                    writeln!(f, "{key} = {value}")?;
                } else {
                    writeln!(f, "{key} = {}", toml_string(&value))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_and_resolution() {
        let c = Config::parse(
            r#"
default = "wire"
[device]
mac = "52:54:00:00:00:07"
link_up = false
model = "82545EM"
eeprom = "card.eeprom"
autoneg_ms = 0
[backends.wire]
kind = "udp"
local = "127.0.0.1:7001"
record = "w.pcap"
[backends.lo]
kind = "loopback"
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.mac, Some("52:54:00:00:00:07".parse().unwrap()));
        assert!(!c.link_up);
        assert_eq!(c.model, Some(Model::I82545Em));
        assert_eq!(c.eeprom.as_deref(), Some(Path::new("card.eeprom")));
        assert_eq!(c.autoneg_ms, Some(0));
        let (label, spec) = c.resolve_backend(None).unwrap();
        assert_eq!(label, "wire");
        assert!(matches!(spec.kind, BackendKind::Udp { remote: None, .. }));
        assert!(spec.record.is_some());
        assert_eq!(c.resolve_backend(Some("lo")).unwrap().0, "lo");
        let (label, spec) = c.resolve_backend(Some("tap,ifname=tap7")).unwrap();
        assert_eq!(label, "inline");
        assert_eq!(
            spec.kind,
            BackendKind::Tap {
                ifname: "tap7".into()
            }
        );
        let e = c.resolve_backend(Some("nosuch")).unwrap_err().to_string();
        assert!(
            e.contains("`nosuch`") && e.contains("t.toml") && e.contains("lo, wire"),
            "{e}"
        );
        // What Display prints reads back the same.
        let again = Config::parse(&c.to_string(), "again").unwrap();
        assert_eq!(again.backends, c.backends);
        assert_eq!(again.mac, c.mac);
        assert_eq!(
            (again.model, again.eeprom.clone(), again.autoneg_ms),
            (c.model, c.eeprom.clone(), c.autoneg_ms)
        );
    }

    #[test]
    fn errors_name_key_and_file() {
        let cases = [
            ("colour = 1\n", "colour"),
            ("[device]\nmac = 5\n", "mac"),
            ("[device]\nmac = \"nope\"\n", "device.mac"),
            ("[device]\nlink_up = \"yes\"\n", "link_up"),
            ("[device]\nmodel = \"82599\"\n", "device.model"),
            ("[device]\nmodel = 5\n", "model"),
            ("[device]\nautoneg_ms = 999999\n", "device.autoneg_ms"),
            ("[device]\nautoneg_ms = -1\n", "autoneg_ms"),
            ("[device]\neeprom = \"\"\n", "device.eeprom"),
            ("[device]\neeprom = 3\n", "eeprom"),
            ("[backends.a]\nkind = \"udp\"\n", "local"),
            ("[backends.a]\nkind = \"tap\"\nifnam = \"x\"\n", "ifnam"),
            (
                "default = \"zz\"\n[backends.a]\nkind = \"loopback\"\n",
                "zz",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(text, "my.toml").unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("my.toml"), "{text:?}: {e}");
        }
    }

    #[test]
    fn builtin_and_missing_default() {
        let b = Config::builtin();
        assert_eq!(
            b.resolve_backend(None).unwrap().1.kind,
            BackendKind::Loopback
        );
        let c = Config::parse("[backends.x]\nkind = \"loopback\"\n", "f").unwrap();
        assert_eq!(c.default_backend, BUILTIN_BACKEND);
        assert!(c.backends.contains_key("x"));
    }
}
