//! The README's code blocks, read the way a user copies them: each ```sh or ```console
//! block with the heading it sits under, and helpers to run its lines as written inside
//! a sandbox (new mount and network namespaces, a private /tmp and /run) so that paths
//! such as /tmp/nic-emu.sock, ports such as 127.0.0.1:9914 and interfaces such as tap0
//! are the README's own and collide with nothing else on the machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One fenced block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The `###` (or `##`) heading above it.
    pub heading: String,
    /// `sh`, `console`, `text`, ...
    pub lang: String,
    /// Its lines, as in the file.
    pub lines: Vec<String>,
}

pub fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// Every fenced block of the README.
pub fn blocks() -> Vec<Block> {
    let text = readme();
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut current: Option<Block> = None;
    for line in text.lines() {
        if let Some(b) = current.as_mut() {
            if line.starts_with("```") {
                out.push(current.take().unwrap());
            } else {
                b.lines.push(line.to_string());
            }
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            current = Some(Block {
                heading: heading.clone(),
                lang: lang.trim().to_string(),
                lines: Vec::new(),
            });
        } else if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_string();
        }
    }
    out
}

/// The block under the heading that starts with `heading`, of language `lang`.
pub fn block(heading: &str, lang: &str) -> Block {
    blocks()
        .into_iter()
        .find(|b| b.heading.starts_with(heading) && b.lang == lang)
        .unwrap_or_else(|| panic!("README has no ```{lang} block under \"{heading}...\""))
}

/// `line` without a trailing `# comment` (a `#` outside quotes, after a space).
pub fn strip_comment(line: &str) -> String {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return line[..i].trim_end().to_string()
            }
            _ => {}
        }
        prev = c;
    }
    line.trim_end().to_string()
}

/// The commands of a ```sh block: comments gone, `\` continuations joined, blank lines
/// dropped.
pub fn commands(b: &Block) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in &b.lines {
        let l = strip_comment(line);
        if let Some(head) = l.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(&l);
        let cmd = pending.trim().to_string();
        pending.clear();
        if !cmd.is_empty() {
            out.push(cmd);
        }
    }
    out
}

/// Split a command line into words as sh does for these lines: single and double
/// quotes group, nothing is expanded.
pub fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut w = String::new();
    let mut in_word = false;
    let (mut single, mut double) = (false, false);
    for c in cmd.chars() {
        match c {
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if in_word {
                    out.push(std::mem::take(&mut w));
                    in_word = false;
                }
            }
            c => {
                w.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(w);
    }
    out
}

/// Glob match of `text` against `pattern`, where `...` in the pattern stands for any
/// text (lines included) and every run of digits in either stands for any number (a
/// transcript's counters differ from run to run).
pub fn shape_matches(pattern: &str, text: &str) -> bool {
    fn digits_to_zero(s: &str) -> Vec<char> {
        let mut out = Vec::new();
        let mut in_num = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !in_num {
                    out.push('0');
                }
                in_num = true;
            } else {
                out.push(c);
                in_num = false;
            }
        }
        out
    }
    let p: Vec<char> = digits_to_zero(&pattern.replace("...", "\u{0}"));
    let t = digits_to_zero(text);
    // Iterative wildcard matching with one backtrack point.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == '\u{0}' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '\u{0}' {
        i += 1;
    }
    i == p.len()
}

/// The directory of the nic-emu-cli cargo built, to put first on PATH.
pub fn cli_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_nic-emu-cli"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh working directory outside /tmp (the sandbox mounts its own /tmp).
pub fn workdir(tag: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `script` with bash (`set -euo pipefail`) in the sandbox: new mount and network
/// namespaces (only `lo`, up), empty tmpfs on /tmp and /run, `nic-emu-cli` first on
/// PATH, `dir` the working directory. Needs root.
pub fn in_sandbox(dir: &Path, script: &str) -> Output {
    let prelude = format!(
        "set -euo pipefail\n\
         mount -t tmpfs tmpfs /tmp\n\
         mount -t tmpfs tmpfs /run\n\
         ip link set lo up\n\
         export PATH={}:$PATH\n\
         cd {}\n",
        cli_dir().display(),
        dir.display()
    );
    Command::new("unshare")
        .args(["--mount", "--net", "--fork", "bash", "-c"])
        .arg(format!("{prelude}{script}"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run unshare")
}

/// Shell functions for running README server lines: `serve N 'LINE'` starts LINE in the
/// background with its log in serve-N.log; `up N [SECONDS]` fails unless it is still
/// running after SECONDS (default 1.5); `stop_all` sends SIGTERM to every one and fails
/// unless each exits with status 0, printing every log.
pub const SERVE_FNS: &str = r#"
declare -A PIDS
serve() { bash -c "$2" >"serve-$1.log" 2>&1 & PIDS[$1]=$!; }
up() {
  sleep "${2:-1.5}"
  if ! kill -0 "${PIDS[$1]}" 2>/dev/null; then
    echo "README line $1 exited early:"; cat "serve-$1.log"; exit 1
  fi
}
stop_all() {
  local rc=0
  for n in "${!PIDS[@]}"; do kill -TERM "${PIDS[$n]}" 2>/dev/null || true; done
  for n in "${!PIDS[@]}"; do
    local st=0; wait "${PIDS[$n]}" || st=$?
    echo "=== serve $n: exit $st"; cat "serve-$n.log"
    [ "$st" = 0 ] || rc=1
  done
  return $rc
}
"#;

/// A single-quoted sh word holding `s`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
