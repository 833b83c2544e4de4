//! What each subcommand does with its validated configuration: open outputs, call the
//! library, print the summary, and choose the exit code.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use smsrefresh::command::parse;
use smsrefresh::command::parse::parse_tokens;
use smsrefresh::command::token::Token;
use smsrefresh::engine::Engine;
use smsrefresh::exec::Status;
use smsrefresh::message;
use smsrefresh::output::writer;
use smsrefresh::policy::{Plan, Policy};
use smsrefresh::run::{self, Progress, Silent};
use smsrefresh::site::lock::SiteLock;
use smsrefresh::site::{Site, SnapshotFormat};

use super::args::{
    BenchArgs, Cli, Cmd, ConvertArgs, ExecArgs, GenArgs, PlanArgs, RunArgs, SnapshotArg,
    ValidateArgs, parse_now, pick_site,
};
use super::terminal::{PipeSafe, print_summary, print_warnings};

pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::Plan(args) => plan(&args),
        Cmd::Validate(args) => validate(&args),
        Cmd::Exec(args) => exec(&args),
        Cmd::Shell(args) => super::shell::shell(&args.site.validate()?),
        Cmd::Errtext { code } => errtext(code.as_deref()),
        Cmd::Bench(args) => bench(&args),
        Cmd::Convert(args) => convert(&args),
        Cmd::Gen(args) => gen_site(&args),
    }
}

/// `errtext [CODE]`: one message, or the whole catalog.
fn errtext(code: Option<&str>) -> Result<u8> {
    let mut out = PipeSafe::new(io::stdout().lock());
    let Some(code) = code else {
        for m in message::CATALOG {
            writeln!(out, "{}   {} ({})", m.id, m.text, m.code_hex())?;
        }
        return Ok(0);
    };
    match message::lookup(code) {
        Some(m) => {
            writeln!(out, "{}   {} ({})", m.id, m.text, m.code_hex())?;
            Ok(0)
        }
        None => {
            let m = &message::UNKNOWN_CODE;
            writeln!(out, "{}   {} ({})", m.id, m.render(&[code]), m.code_hex())?;
            Ok(1)
        }
    }
}

fn bench(args: &BenchArgs) -> Result<u8> {
    let cfg = args.validate()?;
    if args.site.is_none() && !cfg.site.join("sessions.bin").exists() {
        // Generate in a child process, so that this one's memory is the site's alone.
        eprintln!(
            "bench: generating {} users in {}",
            args.users,
            cfg.site.display()
        );
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["gen", "--binary", "--users", &args.users.to_string()])
            .args(["--seed", &args.seed.to_string(), "--out"])
            .arg(&cfg.site)
            .status()?;
        anyhow::ensure!(status.success(), "generating the benchmark site failed");
    }
    let report = super::bench::bench(&cfg, &|line| eprintln!("bench: {line}"))?;
    if let Some(path) = &args.svg {
        let points: Vec<(usize, f64)> = report
            .jobs
            .iter()
            .map(|j| (j.jobs, j.sessions_per_s))
            .collect();
        let title = format!(
            "smsrefresh: {} sessions, {}",
            report.sessions, report.workload
        );
        std::fs::write(path, super::bench::svg::chart(&title, &points))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let mut out = PipeSafe::new(io::stdout().lock());
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", super::bench::table(&report))?;
    }
    Ok(0)
}

fn convert(args: &ConvertArgs) -> Result<u8> {
    let dir = smsrefresh::site::resolve(args.site.as_deref())?;
    let _lock = SiteLock::acquire(
        &dir,
        std::time::Duration::from_secs_f64(args.lock_timeout.max(0.0)),
    )?;
    let mut site = Site::load(&dir)?;
    let (format, name) = match args.to {
        SnapshotArg::Jsonl => (SnapshotFormat::Jsonl, "jsonl"),
        SnapshotArg::Binary => (SnapshotFormat::Binary, "binary"),
    };
    site.convert(format)?;
    eprintln!(
        "smsrefresh: wrote {} sessions to {}; topology.yaml now says `snapshot: {name}`",
        site.store.len()?,
        site.snapshot_path().display(),
    );
    std::mem::forget(site);
    Ok(0)
}

fn gen_site(args: &GenArgs) -> Result<u8> {
    let cfg = args.validate()?;
    let s = smsrefresh::synthetic::generate(&cfg)
        .with_context(|| format!("writing {}", cfg.out.display()))?;
    if args.binary {
        let mut site = Site::load(&cfg.out)?;
        site.convert(SnapshotFormat::Binary)?;
        std::mem::forget(site);
    }
    eprintln!(
        "smsrefresh: wrote {} users and {} sessions to {}",
        s.users,
        s.sessions,
        cfg.out.display()
    );
    Ok(0)
}

fn run(args: &RunArgs) -> Result<u8> {
    let cfg = args.validate()?;
    let started = smsrefresh::time::now();
    let bar = super::progress::Bar::new(args.progress);
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &Silent,
    };
    let finished = match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
            run::run(&cfg, &mut io::BufWriter::new(file), progress)?
        }
        None => run::run(&cfg, &mut PipeSafe::new(io::stdout().lock()), progress)?,
    };
    let summary = finished.summary;
    // The process exits next: let the OS reclaim the site instead of freeing millions of
    // sessions one by one (seconds on a large site).
    std::mem::forget(finished.engine);
    for w in &summary.warnings {
        eprintln!("smsrefresh: warning: {w}");
    }
    if let Some(path) = &args.report {
        super::report::write(path, &cfg, &summary, started, smsrefresh::time::now())
            .with_context(|| format!("{}: cannot write the report", path.display()))?;
    }
    if !args.quiet {
        print_summary(&summary);
    }
    Ok(summary.exit_code() as u8)
}

/// Sites loaded for `plan` and `validate` (no lock: nothing is saved), each once however
/// many policies name it.
struct LoadedSites {
    now: Option<i64>,
    store: Option<String>,
    engines: HashMap<PathBuf, Engine>,
}

impl LoadedSites {
    fn new(now: Option<&str>, store: Option<&str>) -> Result<Self> {
        Ok(Self {
            now: parse_now(now)?,
            store: store.map(str::to_string),
            engines: HashMap::new(),
        })
    }

    /// Loads a policy and its site, and resolves the plan.
    fn resolve(&mut self, path: &Path, site: Option<&Path>) -> Result<(Policy, Plan)> {
        let policy = Policy::load(path)?;
        let dir = pick_site(site, Some(&policy))?;
        let engine = match self.engines.entry(dir) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let site = Site::load_with_store(e.key(), self.store.as_deref())?;
                e.insert(Engine::new(site, self.now, true))
            }
        };
        let plan = smsrefresh::policy::resolve(&policy, &engine.site, &engine.clock)?;
        Ok((policy, plan))
    }

    /// The process exits next: let the OS reclaim the sites instead of freeing millions of
    /// sessions one by one.
    fn leave(self) {
        std::mem::forget(self);
    }
}

fn plan(args: &PlanArgs) -> Result<u8> {
    let mut sites = LoadedSites::new(args.now.as_deref(), args.store.as_deref())?;
    let (policy, plan) = sites.resolve(&args.policy, args.site.as_deref())?;
    sites.leave();
    let mut out = io::BufWriter::new(PipeSafe::new(io::stdout().lock()));
    for c in &plan.commands {
        writeln!(out, "{c}")?;
    }
    out.flush()?;
    for w in policy.rule_warnings() {
        eprintln!("smsrefresh: warning: the policy's rule {w} preserves AZN_ attributes");
    }
    eprintln!(
        "smsrefresh: policy {}: {} commands for {} users ({} live sessions); {} excluded; {} skipped (not in the registry){}{}",
        policy.name,
        plan.commands.len(),
        plan.users,
        plan.sessions,
        plan.excluded,
        plan.skipped.len(),
        if plan.skipped.is_empty() { "" } else { ": " },
        plan.skipped.join(", ")
    );
    Ok(0)
}

fn validate(args: &ValidateArgs) -> Result<u8> {
    let mut failed = false;
    let mut sites = LoadedSites::new(args.now.as_deref(), None)?;
    for path in &args.policies {
        match sites.resolve(path, args.site.as_deref()) {
            Ok((policy, plan)) => {
                println!(
                    "{}: ok: policy {}, {} commands for {} users",
                    path.display(),
                    policy.name,
                    plan.commands.len(),
                    plan.users
                );
            }
            Err(e) => {
                failed = true;
                println!("{}: invalid: {e:#}", path.display());
            }
        }
    }
    sites.leave();
    Ok(if failed { 2 } else { 0 })
}

fn exec(args: &ExecArgs) -> Result<u8> {
    let cfg = args.site.validate()?;
    let lock = cfg.save.then_some(cfg.lock_timeout);
    let (_lock, engine) =
        Engine::open(&cfg.site, cfg.store.as_deref(), cfg.now, cfg.dry_run, lock)?;
    print_warnings(&engine);
    // One argument is a whole command line; several are the shell's words, already unquoted.
    let (raw, parsed) = match args.command.as_slice() {
        [line] => (line.clone(), parse(line)),
        words => (
            words.join(" "),
            parse_tokens(
                words
                    .iter()
                    .map(|w| Token {
                        text: w.clone(),
                        quoted: false,
                    })
                    .collect(),
            ),
        ),
    };
    let source: Arc<str> = Arc::from("exec");
    let result = engine.execute(&source, 1, &raw, parsed);
    let mut out = PipeSafe::new(io::stdout().lock());
    let mut w = writer(args.format.into(), &mut out);
    w.write(&result)?;
    w.finish()?;
    drop(w);
    if cfg.save {
        engine.site.save()?;
    }
    // As for `run`: the process exits next, so skip freeing the site piece by piece.
    std::mem::forget(engine);
    Ok(u8::from(result.status() == Status::Error))
}
