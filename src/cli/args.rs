//! The command line (clap derive types) and their one-time conversion into the library's
//! validated configurations. Nothing outside the binary sees these types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use smsrefresh::directory::ReadProgress;
use smsrefresh::engine::BatchConfig;
use smsrefresh::input::CsvDefaults;
use smsrefresh::output::Format;
use smsrefresh::policy::{Policy, PolicyAction};
use smsrefresh::run::{Input, RunConfig, Shard};
use smsrefresh::site::{RegistryKind, RegistryOptions, StoreOptions};
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
    /// Run a policy, CSV lists and pdadmin command files against a site, one result per command.
    #[command(
        after_help = "Examples:\n  smsrefresh run --site samples/demo --no-save samples/demo/commands.pdadmin\n  smsrefresh run --policy policies/hr-reorg-2026-11.yaml --dry-run --report dry.json\n  smsrefresh run --site samples/demo --format jsonl -o results.jsonl moves.csv\n  smsrefresh run --site samples/demo --retry-failed results.jsonl --format jsonl -o retry.jsonl\n  smsrefresh run --site samples/demo --action terminate --server default-webseald-cruz leavers.csv"
    )]
    Run(RunArgs),
    /// Run one pdadmin command; exit 0 or 1 as pdadmin does. Options go before the command.
    #[command(
        after_help = "Examples:\n  smsrefresh exec --site samples/demo --no-save server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\n  smsrefresh exec --site samples/demo --format jsonl \"server task default-webseald-cruz sms session list -realm ibm.com * 10\""
    )]
    Exec(ExecArgs),
    /// An interactive `pdadmin>` prompt (reads stdin when it is not a terminal).
    #[command(
        after_help = "Examples:\n  smsrefresh shell --site samples/demo --no-save\n  printf 'server list\\nhelp\\n' | smsrefresh shell --site samples/demo --no-save"
    )]
    Shell(ShellArgs),
    /// Answer the ISVA appliance's pdadmin REST API over HTTPS from a site (an emulator, for
    /// targets, scripts and rehearsals).
    ///
    /// The passwords come from SMSREFRESH_LMI_PASSWORD (Basic auth of --lmi-user) and
    /// SMSREFRESH_ADMIN_PASSWORD (the body's admin_pwd, of --admin-id).
    #[command(
        after_help = "Examples:\n  smsrefresh serve --site demo --listen 127.0.0.1:9443 --write-cert lmi-ca.pem\n  smsrefresh serve --site /srv/site --listen 0.0.0.0:9443 --tls-cert lmi.pem --tls-key lmi.key --save-every 30s"
    )]
    Serve(ServeArgs),
    /// Print the message for a status code (hex `0x…` or decimal) or message ID.
    #[command(
        after_help = "Examples:\n  smsrefresh errtext 0x14c012f2\n  smsrefresh errtext HPDMG0754W\n  smsrefresh errtext"
    )]
    Errtext {
        /// The code or message ID; without one, the whole catalog is listed.
        code: Option<String>,
    },
    /// Print the pdadmin command file a policy resolves to (commands on stdout only).
    #[command(
        after_help = "Examples:\n  smsrefresh plan policies/refresh-payroll-managers.yaml\n  smsrefresh plan policies/hr-reorg-2026-11.yaml > hr.pdadmin"
    )]
    Plan(PlanArgs),
    /// Check policies without running them; exit 0 when all are valid, 2 otherwise.
    #[command(
        after_help = "Examples:\n  smsrefresh validate policies/hr-reorg-2026-11.yaml policies/nightly-idle-sweep.yaml\n  smsrefresh validate --site samples/demo policies/department-refresh.yaml"
    )]
    Validate(ValidateArgs),
    /// Write a synthetic site, byte-identical for the same parameters and seed.
    #[command(
        after_help = "Examples:\n  smsrefresh gen --out /tmp/big --users 1000000 --seed 1\n  smsrefresh gen --out /tmp/dir --users 100000 --groups 1000 --ldif"
    )]
    Gen(GenArgs),
    /// Convert a site's sessions between sessions.jsonl and the binary sessions.bin.
    #[command(
        after_help = "Examples:\n  smsrefresh convert --site /tmp/big --to binary\n  smsrefresh convert --site /tmp/big --to jsonl"
    )]
    Convert(ConvertArgs),
    /// Measure load, execute (per --jobs), a sequential baseline, the I/O floor and an
    /// end-to-end run on a generated (or given) site.
    #[command(
        after_help = "Examples:\n  smsrefresh bench --users 1000000 --jobs 1,2 --runs 3\n  smsrefresh bench --site /srv/site --workload mix --json\n  smsrefresh bench --site /srv/site --store redis://127.0.0.1:6379/0"
    )]
    Bench(BenchArgs),
    /// Copy a site's sessions into a Redis store, write a store's sessions as
    /// sessions.jsonl, or count them.
    #[command(
        after_help = "Examples:\n  smsrefresh store import --site samples/demo --store redis://127.0.0.1:6379/0\n  smsrefresh store stats --site samples/demo --store redis://127.0.0.1:6379/0"
    )]
    Store(StoreArgs),
    /// Write a site's registry (a file, an LDIF export or a live directory) as
    /// registry.jsonl.
    #[command(
        after_help = "Examples:\n  smsrefresh registry export --site samples/demo -o before.jsonl"
    )]
    Registry(RegistryCmdArgs),
    /// Print the shell completion script for bash, zsh, fish, PowerShell or elvish.
    #[command(
        after_help = "Examples:\n  smsrefresh completions bash > /etc/bash_completion.d/smsrefresh\n  smsrefresh completions zsh > \"${fpath[1]}/_smsrefresh\"\n  smsrefresh completions fish > ~/.config/fish/completions/smsrefresh.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff, every subcommand on one page).
    #[command(
        after_help = "Examples:\n  smsrefresh man > /usr/local/share/man/man1/smsrefresh.1\n  smsrefresh man | man -l -"
    )]
    Man,
    /// Print a JSON Schema (draft 2020-12) of a file format, for editors and checks.
    #[command(
        after_help = "Examples:\n  smsrefresh schema policy > smsrefresh-policy.schema.json\n  check-jsonschema --schemafile smsrefresh-policy.schema.json policies/*.yaml"
    )]
    Schema {
        /// Which format.
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

/// `schema KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A YAML policy (contract §6.3).
    Policy,
}

#[derive(Debug, Args)]
pub struct RegistryCmdArgs {
    #[command(subcommand)]
    pub action: RegistryAction,
}

#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// Write the registry as registry.jsonl, sorted by user: keep it as the `before` of a
    /// later `group_changes` policy.
    #[command(
        after_help = "Examples:\n  smsrefresh registry export --site samples/demo -o before.jsonl\n  smsrefresh registry export --site /srv/site --registry export.ldif"
    )]
    Export(RegistryExportArgs),
}

#[derive(Debug, Args)]
pub struct RegistryExportArgs {
    /// The site directory (default: $SMSREFRESH_SITE, else the current folder).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Write to FILE (replaced atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Copy the site's sessions (its files) into the store; refused when the store already
    /// holds keys under its prefix, unless told to replace them or to add what it lacks.
    #[command(
        after_help = "Examples:\n  smsrefresh store import --site samples/demo --store redis://127.0.0.1:6379/0\n  smsrefresh store import --site samples/demo --store redis://127.0.0.1:6379/0 --replace\n  smsrefresh store import --site logins-since --store redis://127.0.0.1:6379/0 --add"
    )]
    Import(StoreImportArgs),
    /// Write the store's sessions as sessions.jsonl lines.
    #[command(
        after_help = "Examples:\n  smsrefresh store export --site samples/demo --store redis://127.0.0.1:6379/0 -o sessions.jsonl"
    )]
    Export(StoreExportArgs),
    /// Sessions, users, realms, bytes and sessions per server.
    #[command(
        after_help = "Examples:\n  smsrefresh store stats --site samples/demo --store redis://127.0.0.1:6379/0"
    )]
    Stats(StoreTargetArgs),
}

#[derive(Debug, Args)]
pub struct StoreTargetArgs {
    /// The site directory (default: $SMSREFRESH_SITE, else the current folder).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// The store (default: $SMSREFRESH_STORE, else `store:` in topology.yaml).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// How long redirections, failovers and lost connections are retried.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub store_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StoreImportArgs {
    #[command(flatten)]
    pub target: StoreTargetArgs,
    /// Remove every key of the store's prefix first.
    #[arg(long, conflicts_with = "add")]
    pub replace: bool,
    /// Add the site's sessions that the store lacks (by session id) beside what it holds:
    /// the sessions that logged in since the last import. Nothing is replaced.
    #[arg(long)]
    pub add: bool,
}

#[derive(Debug, Args)]
pub struct StoreExportArgs {
    #[command(flatten)]
    pub target: StoreTargetArgs,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl StoreTargetArgs {
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            url: self.store.clone(),
            timeout: self.store_timeout,
            read_only: false,
            sharded: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Benchmark this site instead of generating one (it is not changed).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// Users of the generated site (about 3 sessions each).
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// refresh-all, fraction:F (0 < F <= 1) or mix (refresh, terminate, refresh session).
    #[arg(long, default_value = "refresh-all")]
    pub workload: String,
    /// Worker-thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub jobs: Vec<usize>,
    /// Repetitions of every measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the generated site and the inputs and outputs go (reused between benches).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure the workload through this Redis store (its keys under the URL's prefix are
    /// replaced) beside the site files, instead of the in-memory phases.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Also write a jobs -> throughput chart as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

impl BenchArgs {
    pub fn validate(&self) -> Result<super::bench::BenchConfig> {
        use super::bench::Workload;
        let workload = match self.workload.as_str() {
            "refresh-all" => Workload::RefreshAll,
            "mix" => Workload::Mix,
            other => match other
                .strip_prefix("fraction:")
                .and_then(|f| f.parse::<f64>().ok())
            {
                Some(f) if f > 0.0 && f <= 1.0 => Workload::Fraction(f),
                _ => bail!(
                    "--workload: expected refresh-all, mix or fraction:F with 0 < F <= 1, got `{other}`"
                ),
            },
        };
        if self.jobs.is_empty() || self.runs == 0 {
            bail!("--jobs and --runs need at least one value");
        }
        let workdir = self.workdir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("smsrefresh-bench-{}-{}", self.users, self.seed))
        });
        Ok(super::bench::BenchConfig {
            site: self.site.clone().unwrap_or_else(|| workdir.join("site")),
            workload,
            jobs: self.jobs.clone(),
            runs: self.runs,
            workdir,
        })
    }
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The site directory (default: $SMSREFRESH_SITE, else a policy's `site:`, else the current folder).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// The form to convert to; topology.yaml's `snapshot:` is set to it.
    #[arg(long, value_enum)]
    pub to: SnapshotArg,
    /// How long to wait for another run's lock on the site: seconds, or a duration (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub lock_timeout: Duration,
}

/// `--to`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SnapshotArg {
    Jsonl,
    Binary,
}

/// `--action`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Refresh,
    Terminate,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Only when standard error is a terminal.
    Auto,
    Always,
    Never,
}

/// `--input-format`, for standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    Commands,
    Csv,
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
    /// The site directory (default: $SMSREFRESH_SITE, else a policy's `site:`, else the current folder).
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
    /// How long to wait for another run's lock on the site: seconds, or a duration (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub lock_timeout: Duration,
    /// Where the sessions live: `file:` (the site's files, the default), `redis://…`,
    /// `rediss://…?ca=PATH`, `redis+cluster://…` or `rediss+cluster://…`; over
    /// $SMSREFRESH_STORE and `store:` in topology.yaml.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// How long a Redis store's redirections, failovers and lost connections are retried
    /// before a command fails.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub store_timeout: Duration,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Send the commands to the ISVA appliance that FILE (a target.yaml) describes instead of
    /// the site's own store; over $SMSREFRESH_TARGET and the site's target.yaml.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// At most N commands per second (over a policy's `execution.rate`).
    #[arg(long, value_name = "N", value_parser = rate_arg)]
    pub rate: Option<f64>,
}

/// `--rate N`: a finite number of commands per second between one a day and 10⁶
/// (contract §13).
fn rate_arg(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of commands per second"))?;
    if n.is_finite() && (1.0 / 86_400.0..=1e6).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{s} commands per second: give a number between one a day (0.0000116) and 1000000"
        ))
    }
}

/// `--registry PATH` and `--registry-kind KIND`: a registry instead of the site's own.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Read users and groups from PATH instead of the site's registry: a registry.yaml,
    /// registry.jsonl, an LDIF file or a directory.yaml (a live LDAP directory).
    #[arg(long, value_name = "PATH")]
    pub registry: Option<PathBuf>,
    /// What --registry names, when its name does not say (`ldap`: a directory.yaml).
    #[arg(long, value_enum, value_name = "KIND", requires = "registry")]
    pub registry_kind: Option<RegistryKindArg>,
}

/// `--registry-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistryKindArg {
    Yaml,
    Jsonl,
    Ldif,
    Ldap,
}

impl RegistryArgs {
    /// The library's options; `progress` hears about a long directory read.
    pub fn options(&self, progress: Option<Arc<dyn ReadProgress>>) -> RegistryOptions {
        RegistryOptions {
            path: self.registry.clone(),
            kind: self.registry_kind.map(|k| match k {
                RegistryKindArg::Yaml => RegistryKind::Yaml,
                RegistryKindArg::Jsonl => RegistryKind::Jsonl,
                RegistryKindArg::Ldif => RegistryKind::Ldif,
                RegistryKindArg::Ldap => RegistryKind::Ldap,
            }),
            progress,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// CSV lists (`.csv`) and pdadmin command files (any other name); `-` reads standard
    /// input. Run in the order given, after the policy's plan.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// A YAML policy: its plan runs first, and its rules, limits and execution settings
    /// apply to the whole run.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub site: SiteArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "pdadmin")]
    pub format: FormatArg,
    /// Write results to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a JSON audit record of the run to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The server for CSV rows that name none.
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// The realm for CSV rows with only a user column.
    #[arg(long, value_name = "NAME")]
    pub realm: Option<String>,
    /// What CSV rows do.
    #[arg(long, value_enum)]
    pub action: Option<ActionArg>,
    /// Worker threads (0 = one per core; default: the policy's, else 0).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop at the first failed command (the rest are reported as not run).
    #[arg(long)]
    pub fail_fast: bool,
    /// A progress bar on standard error.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
    /// What standard input (`-`) holds.
    #[arg(long, value_enum, default_value = "commands")]
    pub input_format: InputFormatArg,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// Refuse (exit 2, nothing run) an input that holds no command, instead of a warning.
    #[arg(long)]
    pub require_input: bool,
    /// Run only the commands of shard K of N (by user; see docs/redis.md), so that N
    /// processes together make one run.
    #[arg(long, value_name = "K/N", value_parser = shard_arg)]
    pub shard: Option<Shard>,
    /// First run again, in line order, every command whose result in this JSON Lines
    /// results file is an error (each keeps its original line and source).
    #[arg(long, value_name = "RESULTS.jsonl")]
    pub retry_failed: Option<PathBuf>,
}

fn shard_arg(s: &str) -> Result<Shard, String> {
    Shard::parse(s)
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// The site directory (default: $SMSREFRESH_SITE, else the policy's `site:`, else the current folder).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// "Now" for session expiry and idle filters, RFC 3339 (default: the wall clock).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Where the sessions live (see `run --store`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Policy files.
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// The site directory (default: $SMSREFRESH_SITE, else each policy's `site:`, else the current folder).
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// "Now", RFC 3339 (default: the wall clock).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub site: SiteArgs,
    /// Where to listen, `ADDR:PORT` (port 0: any free port, printed on standard error).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// The server's certificate chain (PEM); without it, a self-signed certificate is made and
    /// its SHA-256 fingerprint printed.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Write the self-signed certificate (PEM) to FILE, for a target's `ca_file`.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_cert")]
    pub write_cert: Option<PathBuf>,
    /// The LMI user of Basic auth; its password comes from $SMSREFRESH_LMI_PASSWORD.
    #[arg(long, value_name = "NAME", default_value = "admin")]
    pub lmi_user: String,
    /// The pdadmin identity (`admin_id`); its password comes from $SMSREFRESH_ADMIN_PASSWORD.
    #[arg(long, value_name = "NAME", default_value = "sec_master")]
    pub admin_id: String,
    /// With the site's files: save changes at most this far apart (and when stopped).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub save_every: Duration,
    /// Answer every request only after this long: rehearse against an appliance's response
    /// time (and measure a target's concurrency).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration_arg)]
    pub latency: Duration,
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
    /// Also write the binary snapshot sessions.bin and make it the site's (`snapshot: binary`).
    #[arg(long)]
    pub binary: bool,
    /// Write the registry as an LDIF export (registry.ldif, read with the directory.yaml
    /// mapping written beside it) instead of registry.jsonl; `slapadd` loads it as it is.
    #[arg(long)]
    pub ldif: bool,
}

/// The validated site options.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub site: PathBuf,
    pub now: Option<i64>,
    pub save: bool,
    pub dry_run: bool,
    pub lock_timeout: Duration,
    /// `--store URL` and `--store-timeout`.
    pub store: StoreOptions,
    /// `--registry PATH` and `--registry-kind`.
    pub registry: RegistryOptions,
    /// `--target FILE`.
    pub target: Option<PathBuf>,
    /// `--rate N`.
    pub rate: Option<f64>,
}

/// Parses a duration flag with the one strict parser (clap names the flag on error).
fn duration_arg(s: &str) -> Result<Duration, String> {
    smsrefresh::time::parse_flag_duration(s)
}

/// Parses `--now`.
pub fn parse_now(now: Option<&str>) -> Result<Option<i64>> {
    now.map(smsrefresh::time::parse_timestamp)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--now")
}

/// The site: `--site`, else $SMSREFRESH_SITE, else the policy's `site:`, else the current
/// folder; a note on standard error when the policy's `site:` is overridden.
pub fn pick_site(explicit: Option<&std::path::Path>, policy: Option<&Policy>) -> Result<PathBuf> {
    let policy_site = policy.and_then(|p| p.site.as_deref());
    let (dir, note) = smsrefresh::site::pick(explicit, policy_site)?;
    if let Some(note) = note {
        eprintln!("smsrefresh: note: {note}");
    }
    Ok(dir)
}

impl SiteArgs {
    /// The validated options (the caller adds a progress display for a directory read).
    pub fn validate(&self) -> Result<SiteConfig> {
        self.validate_with(None)
    }

    pub fn validate_with(&self, policy: Option<&Policy>) -> Result<SiteConfig> {
        let site = pick_site(self.site.as_deref(), policy)?;
        let now = parse_now(self.now.as_deref())?;
        Ok(SiteConfig {
            site,
            now,
            save: !self.no_save && !self.dry_run,
            dry_run: self.dry_run,
            lock_timeout: self.lock_timeout,
            store: StoreOptions {
                url: self.store.clone(),
                timeout: self.store_timeout,
                // Engine::open makes a dry run's store read-only.
                read_only: false,
                sharded: false,
            },
            registry: self.registry.options(None),
            target: self.target.clone(),
            rate: self.rate,
        })
    }
}

impl RunArgs {
    pub fn validate(&self) -> Result<RunConfig> {
        let policy = self.policy.as_deref().map(Policy::load).transpose()?;
        if policy.is_none() && self.inputs.is_empty() && self.retry_failed.is_none() {
            bail!(
                "nothing to run: give INPUT files (or `-`), --policy FILE or --retry-failed FILE"
            );
        }
        let s = self.site.validate_with(policy.as_ref())?;
        let stdin_csv = self.input_format == InputFormatArg::Csv;
        let inputs: Vec<Input> = self
            .inputs
            .iter()
            .map(|p| Input::from_arg(p, stdin_csv))
            .collect();
        if inputs
            .iter()
            .filter(|i| matches!(i, Input::Stdin { .. }))
            .count()
            > 1
        {
            bail!("standard input (`-`) can be given only once");
        }
        let exec = policy.as_ref().map(|p| p.execution).unwrap_or_default();
        let dry_run = s.dry_run || exec.dry_run;
        let policy_terminate = policy
            .as_ref()
            .is_some_and(|p| p.action == PolicyAction::Terminate);
        let csv = CsvDefaults {
            terminate: match self.action {
                Some(ActionArg::Terminate) => true,
                Some(ActionArg::Refresh) => false,
                None => policy_terminate,
            },
            server: self
                .server
                .clone()
                .or_else(|| policy.as_ref().and_then(|p| p.server.clone())),
            realm: self
                .realm
                .clone()
                .or_else(|| policy.as_ref().and_then(|p| p.realm.clone())),
        };
        Ok(RunConfig {
            site: s.site,
            inputs,
            format: self.format.into(),
            dry_run,
            save: s.save && !dry_run,
            batch: BatchConfig {
                jobs: self.jobs.unwrap_or(exec.jobs),
                fail_fast: self.fail_fast || exec.fail_fast,
                rate: s.rate.unwrap_or(exec.rate),
            },
            csv,
            now: s.now,
            store: StoreOptions {
                sharded: self.shard.is_some(),
                ..s.store
            },
            registry: s.registry,
            target: s.target,
            interrupt: smsrefresh::run::Interrupt::default(),
            require_input: self.require_input,
            shard: self.shard,
            retry_failed: self.retry_failed.clone(),
            lock_timeout: s.lock_timeout,
            policy,
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
            ldif: self.ldif,
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

    /// Every subcommand's `--help` ends with examples, and every example parses.
    #[test]
    fn every_subcommand_has_examples_that_parse() {
        let cmd = Cli::command();
        let mut commands: Vec<&clap::Command> = Vec::new();
        for sub in cmd.get_subcommands() {
            if sub.get_subcommands().next().is_none() {
                commands.push(sub);
            }
            commands.extend(sub.get_subcommands());
        }
        for sub in commands {
            let help = sub
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:\n"),
                "{}: no examples",
                sub.get_name()
            );
            for line in help.lines().skip(1) {
                let line = line.trim();
                // Only the smsrefresh part of a pipeline or redirection is ours to parse.
                let line = line.rsplit("| ").next().unwrap_or(line);
                let line = line.split(" > ").next().unwrap_or(line);
                if !line.starts_with("smsrefresh") {
                    continue;
                }
                let words = shell_words(line);
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{line}: {e}");
                }
            }
        }
    }

    /// Splits a line as a shell would (double and single quotes, no escapes).
    fn shell_words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let (mut word, mut quote, mut any) = (String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    any = true;
                }
                (None, ' ') => {
                    if any {
                        out.push(std::mem::take(&mut word));
                        any = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    any = true;
                }
            }
        }
        if any {
            out.push(word);
        }
        out
    }
}
