//! The client side of the control socket (`nic-emu-cli ctl`): send one request, read
//! one reply, and print it for people.

use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// Send `request` (`{"execute": ...}`) to the control socket at `path` and return the
/// reply object (`{"return": ...}` or `{"error": ...}`).
pub fn call(path: &Path, request: &Value, timeout: Duration) -> io::Result<Value> {
    call_with_file(path, request, None, timeout)
}

/// [`call`], passing `file`'s descriptor with the request (`SCM_RIGHTS`): the file
/// `record start` writes into, opened here with the caller's rights.
pub fn call_with_file(
    path: &Path,
    request: &Value,
    file: Option<&File>,
    timeout: Duration,
) -> io::Result<Value> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()));
    let stream = UnixStream::connect(path).map_err(named)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let line = format!("{request}\n");
    let mut bytes = line.as_bytes();
    if let Some(f) = file {
        let sent = stream
            .send_with_fd(bytes, f.as_raw_fd())
            .map_err(|e| named(io::Error::from_raw_os_error(e.errno())))?;
        bytes = bytes.get(sent..).unwrap_or_default();
    }
    (&stream).write_all(bytes).map_err(named)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(named)?;
    if line.is_empty() {
        return Err(named(io::Error::new(
            ErrorKind::UnexpectedEof,
            "closed without a reply",
        )));
    }
    serde_json::from_str(&line).map_err(|e| {
        named(io::Error::new(
            ErrorKind::InvalidData,
            format!("reply is not JSON: {e}"),
        ))
    })
}

/// `{"execute": command, "arguments": arguments}` (without `arguments` when it is null).
pub fn request(command: &str, arguments: Value) -> Value {
    if arguments.is_null() {
        json!({ "execute": command })
    } else {
        json!({ "execute": command, "arguments": arguments })
    }
}

/// A reply's `return` value as `key: value` lines, nested keys joined with dots; a
/// string (Prometheus text) is printed as it is.
pub fn to_lines(v: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) if prefix.is_empty() => out.push_str(s),
            Value::String(s) => out.push_str(&format!("{prefix}: {s}\n")),
            other if prefix.is_empty() => out.push_str(&format!("{other}\n")),
            other => out.push_str(&format!("{prefix}: {other}\n")),
        }
    }
    let mut out = String::new();
    walk("", v, &mut out);
    out
}
