//! `nic-emu-cli generate`: the man page nic-emu-cli(1) and the shell completion scripts,
//! generated from the clap definitions at run time, so they always describe the options
//! this binary takes (including the `ctl` subcommands). The Debian package is built with
//! them (scripts/build-deb.sh).

use std::io::Write;
use std::process::ExitCode;

use clap::{Command, ValueEnum};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The man page nic-emu-cli(1), in roff (`man -l FILE` shows it).
    Man,
    /// bash completions (install as /usr/share/bash-completion/completions/nic-emu-cli).
    Bash,
    /// zsh completions (install as _nic-emu-cli in a directory of $fpath).
    Zsh,
    /// fish completions (install as nic-emu-cli.fish in fish's vendor_completions.d).
    Fish,
}

/// `nic-emu-cli generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The man page or a shell's completion script.
    #[arg(value_enum)]
    output: Output,
}

/// Print what was asked for on standard output.
pub fn run(args: GenerateArgs, cmd: Command) -> ExitCode {
    let mut out = Vec::new();
    render(args.output, cmd, &mut out);
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nic-emu-cli generate: writing to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the Debian package (scripts/build-deb.sh) puts what the page mentions.
const FILES: &str = "\
/usr/share/doc/nic-emu/examples/backends.toml
  The commented example configuration: every backend kind and key.
/usr/lib/systemd/system/nic-emu@.{socket,service}
  A socket-activated instance per NAME, configured by /etc/nic-emu/NAME.toml, with
  its vfio-user socket at /run/nic-emu/NAME.sock and its control socket at
  /run/nic-emu/NAME.ctl (systemctl enable --now nic-emu@NAME.socket).
/usr/share/vfio-user/50-nic-emu-e1000.json
  The vfio-user backend description (binary, type) for management tools.";

/// Render `output` for the command tree `cmd` into `out`.
pub fn render(output: Output, mut cmd: Command, out: &mut Vec<u8>) {
    let name = cmd.get_name().to_string();
    match output {
        Output::Man => {
            let mut cmd = with_aliases_in_help(cmd);
            cmd.build();
            man_page(&cmd, out);
        }
        Output::Bash => clap_complete::generate(Shell::Bash, &mut cmd, name, out),
        Output::Zsh => clap_complete::generate(Shell::Zsh, &mut cmd, name, out),
        Output::Fish => clap_complete::generate(Shell::Fish, &mut cmd, name, out),
    }
}

/// clap_mangen lists an option under its name only: say its visible aliases
/// (`--socket-path`) in its description.
fn with_aliases_in_help(mut cmd: Command) -> Command {
    let aliased: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let aliases = a.get_visible_aliases()?;
            let list = aliases.iter().map(|s| format!("--{s}")).collect::<Vec<_>>();
            Some((a.get_id().clone(), list.join(", ")))
        })
        .collect();
    for (id, list) in aliased {
        cmd = cmd.mut_arg(id, |a| {
            let help = a.get_long_help().or(a.get_help()).map(|h| h.to_string());
            a.long_help(format!("{} Also: {list}.", help.unwrap_or_default()))
        });
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, with_aliases_in_help);
    }
    cmd
}

/// The roff preamble every `Roff` rendering starts with; written once per page.
fn preamble() -> String {
    Roff::new().render()
}

/// One of clap_mangen's sections, without the preamble.
fn section(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = f(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.strip_prefix(&preamble())
        .map(str::to_string)
        .unwrap_or(text)
}

/// Help text as roff: a blank line starts a paragraph, lines indented by two spaces or
/// more (command lines, lists) are kept as they are.
fn text_block(roff: &mut Roff, text: &str) {
    let mut verbatim = false;
    for line in text.lines() {
        let indented = line.starts_with("  ");
        if line.trim().is_empty() {
            if verbatim {
                roff.control("fi", []);
                verbatim = false;
            }
            roff.control("PP", []);
            continue;
        }
        if indented != verbatim {
            roff.control(if indented { "nf" } else { "fi" }, []);
            verbatim = indented;
        }
        roff.text([roman(line)]);
    }
    if verbatim {
        roff.control("fi", []);
    }
}

/// The page: clap_mangen's title, name, synopsis and options; the long description and
/// the examples with their command lines kept as lines; then every subcommand (`ctl`
/// and its requests) with its usage and options.
fn man_page(cmd: &Command, out: &mut Vec<u8>) {
    let man = Man::new(cmd.clone()).manual("nic-emu");
    let mut page = preamble();
    page += &section(|w| man.render_title(w));
    page += &section(|w| man.render_name_section(w));
    page += &section(|w| man.render_synopsis_section(w));

    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]);
    let about = cmd.get_long_about().or(cmd.get_about());
    text_block(&mut roff, &about.map(|a| a.to_string()).unwrap_or_default());
    page += &roff.to_roff();

    page += &section(|w| man.render_options_section(w));

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    page += &roff.to_roff();
    for sub in cmd.get_subcommands() {
        subcommand_sections(sub, &[], &mut page);
    }

    if let Some(after) = cmd.get_after_long_help() {
        let mut roff = Roff::new();
        roff.control("SH", ["EXAMPLES"]);
        text_block(&mut roff, &after.to_string());
        page += &roff.to_roff();
    }
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    text_block(&mut roff, FILES);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "qemu-system-x86_64(1), systemd.socket(5), systemd-socket-activate(1), passt(1)",
    )]);
    page += &roff.to_roff();
    page += &section(|w| man.render_version_section(w));
    out.extend_from_slice(page.as_bytes());
}

/// `.SS` for `cmd` (usage line, description, its own options), then for each of its
/// subcommands. Options a parent made global (`ctl --control`) are described once, at
/// that parent; clap's --help and --version once, in OPTIONS.
fn subcommand_sections(cmd: &Command, globals: &[clap::Id], page: &mut String) {
    if cmd.get_name() == "help" || cmd.is_hide_set() {
        return;
    }
    let path = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let mut roff = Roff::new();
    roff.control("SS", [path.as_str()]);
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    roff.control("nf", []);
    roff.text([bold(usage)]);
    roff.control("fi", []);
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        roff.control("PP", []);
        text_block(&mut roff, &about.to_string());
    }
    *page += &roff.to_roff();

    let described_above = |a: &clap::Arg| {
        matches!(a.get_id().as_str(), "help" | "version") || globals.contains(a.get_id())
    };
    let mut c = cmd.clone();
    let mut own = false;
    for a in cmd.get_arguments() {
        if described_above(a) {
            c = c.mut_arg(a.get_id().clone(), |a| a.hide(true));
        } else {
            own |= !a.is_hide_set();
        }
    }
    if own {
        let opts = section(|w| Man::new(c).render_options_section(w));
        // Under this subcommand's heading rather than a page-level OPTIONS heading.
        *page += &opts.replacen(".SH OPTIONS\n", "", 1);
    }
    let mut globals = globals.to_vec();
    globals.extend(
        cmd.get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().clone()),
    );
    for sub in cmd.get_subcommands() {
        subcommand_sections(sub, &globals, page);
    }
}
