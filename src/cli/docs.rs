//! What the binary says about itself, for shells, `man` and editors: completion scripts
//! (`clap_complete`), one manual page with every subcommand (`clap_mangen`), and the JSON
//! Schema of a policy (from the library's policy types).

use std::io::{self, Write};

use anyhow::Result;
use clap::CommandFactory;

use super::args::{Cli, SchemaKind};
use super::terminal::PipeSafe;

/// `completions SHELL`: the script on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut out = PipeSafe::new(io::stdout().lock());
    clap_complete::generate(shell, &mut Cli::command(), "smsrefresh", &mut out);
    out.flush()?;
    Ok(0)
}

/// `man`: one page — the command, then a section per subcommand (and per subcommand of
/// `store` and `registry`) with its synopsis, description, options and examples.
pub fn man() -> Result<u8> {
    let mut page: Vec<u8> = Vec::new();
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let top = clap_mangen::Man::new(cmd.clone());
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    let mut sections = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        sections.push((format!("smsrefresh {}", sub.get_name()), sub.clone()));
        for nested in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("smsrefresh {} {}", sub.get_name(), nested.get_name());
            sections.push((name, nested.clone()));
        }
    }
    for (name, sub) in sections {
        section(&mut page, &name, &sub)?;
    }
    let mut out = PipeSafe::new(io::stdout().lock());
    out.write_all(ascii_roff(&String::from_utf8_lossy(&page)).as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// Non-ASCII characters as groff's `\[uXXXX]` glyphs, so the page renders the same with or
/// without a UTF-8 preprocessor.
fn ascii_roff(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// One subcommand as a `.SH` section: clap_mangen's sections, their headings demoted.
fn section(page: &mut Vec<u8>, name: &str, sub: &clap::Command) -> Result<()> {
    let man = clap_mangen::Man::new(sub.clone().bin_name(name));
    let mut body: Vec<u8> = Vec::new();
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut body)?;
    }
    if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
        man.render_extra_section(&mut body)?;
    }
    writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
    // Within the command's section, clap_mangen's headings become subsections.
    for line in String::from_utf8_lossy(&body).lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => writeln!(page, ".SS {heading}")?,
            None => writeln!(page, "{line}")?,
        }
    }
    Ok(())
}

/// `schema KIND`: the JSON Schema on standard output.
pub fn schema(kind: SchemaKind) -> Result<u8> {
    let schema = match kind {
        SchemaKind::Policy => smsrefresh::policy::json_schema(),
    };
    let mut out = PipeSafe::new(io::stdout().lock());
    writeln!(out, "{}", serde_json::to_string_pretty(&schema)?)?;
    out.flush()?;
    Ok(0)
}
