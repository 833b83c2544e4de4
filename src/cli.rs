//! The command line (clap derive types) and their one-time conversion into the library's
//! validated configurations. Nothing outside the binary sees these types.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use smsrefresh::output::Format;
use smsrefresh::run::{Input, RunConfig};
use smsrefresh::synthetic::GenConfig;

#[derive(Debug, Parser)]
#[command(
    name = "smsrefresh",
    version,
    about = "Policy-driven batch credential refresh for ISVA WebSEAL sessions"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run pdadmin command files (or `-` for stdin) against a site, one result per command.
    Run(RunArgs),
    /// Run one pdadmin command; exit 0 or 1 as pdadmin does. Options go before the command.
    Exec(ExecArgs),
    /// An interactive `pdadmin>` prompt (reads stdin when it is not a terminal).
    Shell(ShellArgs),
    /// Print the message for a status code (hex `0x…` or decimal) or message ID.
    Errtext {
        /// The code or message ID.
        code: String,
    },
    /// Write a synthetic site, byte-identical for the same parameters and seed.
    Gen(GenArgs),
}

/// The output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Pdadmin,
    Jsonl,
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Pdadmin => Format::Pdadmin,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// Options shared by every command that works on a site.
#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The site directory (default: $SMSREFRESH_SITE).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// "Now" for session expiry, RFC 3339 (default: the wall clock).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Execute but do not save the site's sessions afterwards.
    #[arg(long)]
    pub no_save: bool,
    /// Report what each command would do; change nothing on disk.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for another run's lock on the site.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub lock_timeout: f64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// pdadmin command files; `-` reads standard input. Run in the order given.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub site: SiteArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "pdadmin")]
    pub format: FormatArg,
    /// Write results to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Stop at the first failed command (the rest are reported as not run).
    #[arg(long)]
    pub fail_fast: bool,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub site: SiteArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "pdadmin")]
    pub format: FormatArg,
    /// The command, as words (`server task S sms …`) or as one quoted string.
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Directory to write the site into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Mean sessions per user.
    #[arg(long, value_name = "MEAN", default_value_t = 3.0)]
    pub sessions_per_user: f64,
    #[arg(long, default_value_t = 2)]
    pub realms: u32,
    #[arg(long, default_value_t = 4)]
    pub servers: u32,
    /// Size of the group pool.
    #[arg(long, default_value_t = 50)]
    pub groups: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The validated site options.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub site: PathBuf,
    pub now: Option<i64>,
    pub save: bool,
    pub dry_run: bool,
    pub lock_timeout: Duration,
}

impl SiteArgs {
    pub fn validate(&self) -> Result<SiteConfig> {
        let site = smsrefresh::site::resolve(self.site.as_deref())?;
        let now = self
            .now
            .as_deref()
            .map(smsrefresh::time::parse_timestamp)
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("--now")?;
        if !(self.lock_timeout.is_finite() && self.lock_timeout >= 0.0) {
            bail!(
                "--lock-timeout: expected a number of seconds, got {}",
                self.lock_timeout
            );
        }
        Ok(SiteConfig {
            site,
            now,
            save: !self.no_save && !self.dry_run,
            dry_run: self.dry_run,
            lock_timeout: Duration::from_secs_f64(self.lock_timeout),
        })
    }
}

impl RunArgs {
    pub fn validate(&self) -> Result<RunConfig> {
        let s = self.site.validate()?;
        let inputs = self
            .inputs
            .iter()
            .map(|p| {
                if p.as_os_str() == "-" {
                    Input::Stdin
                } else {
                    Input::Commands(p.clone())
                }
            })
            .collect::<Vec<_>>();
        if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
            bail!("standard input (`-`) can be given only once");
        }
        Ok(RunConfig {
            site: s.site,
            inputs,
            format: self.format.into(),
            dry_run: s.dry_run,
            save: s.save,
            fail_fast: self.fail_fast,
            now: s.now,
            lock_timeout: s.lock_timeout,
        })
    }
}

impl GenArgs {
    pub fn validate(&self) -> Result<GenConfig> {
        if !(self.sessions_per_user.is_finite() && self.sessions_per_user >= 1.0) {
            bail!(
                "--sessions-per-user: expected a mean of at least 1, got {}",
                self.sessions_per_user
            );
        }
        if self.realms == 0 || self.servers == 0 || self.groups == 0 {
            bail!("--realms, --servers and --groups must be at least 1");
        }
        Ok(GenConfig {
            out: self.out.clone(),
            users: self.users,
            sessions_per_user: self.sessions_per_user,
            realms: self.realms,
            servers: self.servers,
            groups: self.groups,
            seed: self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
