//! What each subcommand does with its validated configuration: open outputs, call the
//! library, print the summary, and choose the exit code.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use smsrefresh::command::parse;
use smsrefresh::command::parse::parse_tokens;
use smsrefresh::command::token::Token;
use smsrefresh::exec::Status;
use smsrefresh::message;
use smsrefresh::output::writer;
use smsrefresh::policy::{Plan, Policy};
use smsrefresh::run::{self, Engine, Progress, Silent, Summary};
use smsrefresh::site::lock::SiteLock;

use crate::cli::{Cli, Cmd, ExecArgs, PlanArgs, RunArgs, ValidateArgs, parse_now, pick_site};

/// Standard output that treats a closed pipe (`smsrefresh … | head`) as the reader having
/// seen enough: later writes are dropped and the run still finishes and saves.
pub struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeSafe<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::Plan(args) => plan(&args),
        Cmd::Validate(args) => validate(&args),
        Cmd::Exec(args) => exec(&args),
        Cmd::Shell(args) => crate::shell::shell(&args.site.validate()?),
        Cmd::Errtext { code: None } => {
            let mut out = PipeSafe::new(io::stdout().lock());
            for m in message::CATALOG {
                writeln!(out, "{}   {} ({})", m.id, m.text, m.code_hex())?;
            }
            Ok(0)
        }
        Cmd::Errtext { code: Some(code) } => {
            let mut out = PipeSafe::new(io::stdout().lock());
            match message::lookup(&code) {
                Some(m) => {
                    writeln!(out, "{}   {} ({})", m.id, m.text, m.code_hex())?;
                    Ok(0)
                }
                None => {
                    let m = &message::UNKNOWN_CODE;
                    writeln!(out, "{}   {} ({})", m.id, m.render(&[&code]), m.code_hex())?;
                    Ok(1)
                }
            }
        }
        Cmd::Bench(args) => {
            let cfg = args.validate()?;
            if args.site.is_none() && !cfg.site.join("sessions.bin").exists() {
                // Generate in a child process, so that this one's memory is the site's alone.
                eprintln!(
                    "bench: generating {} users in {}",
                    args.users,
                    cfg.site.display()
                );
                let status = std::process::Command::new(std::env::current_exe()?)
                    .args([
                        "gen",
                        "--binary",
                        "--users",
                        &args.users.to_string(),
                        "--seed",
                        &args.seed.to_string(),
                        "--out",
                    ])
                    .arg(&cfg.site)
                    .status()?;
                anyhow::ensure!(status.success(), "generating the benchmark site failed");
            }
            let report = smsrefresh::bench::bench(&cfg, &|line| eprintln!("bench: {line}"))?;
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
                std::fs::write(path, smsrefresh::bench::svg::chart(&title, &points))
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
            let mut out = PipeSafe::new(io::stdout().lock());
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(out, "{}", smsrefresh::bench::table(&report))?;
            }
            Ok(0)
        }
        Cmd::Convert(args) => {
            let dir = smsrefresh::site::resolve(args.site.as_deref())?;
            let _lock = SiteLock::acquire(
                &dir,
                std::time::Duration::from_secs_f64(args.lock_timeout.max(0.0)),
            )?;
            let mut site = smsrefresh::site::Site::load(&dir)?;
            let format = match args.to {
                crate::cli::SnapshotArg::Jsonl => smsrefresh::site::SnapshotFormat::Jsonl,
                crate::cli::SnapshotArg::Binary => smsrefresh::site::SnapshotFormat::Binary,
            };
            site.convert(format)?;
            eprintln!(
                "smsrefresh: wrote {} sessions to {}; topology.yaml now says `snapshot: {}`",
                smsrefresh::store::SessionStore::len(&site.store),
                site.snapshot_path().display(),
                if format == smsrefresh::site::SnapshotFormat::Binary {
                    "binary"
                } else {
                    "jsonl"
                }
            );
            std::mem::forget(site);
            Ok(0)
        }
        Cmd::Gen(args) => {
            let cfg = args.validate()?;
            let s = smsrefresh::synthetic::generate(&cfg)
                .with_context(|| format!("writing {}", cfg.out.display()))?;
            if args.binary {
                let mut site = smsrefresh::site::Site::load(&cfg.out)?;
                site.convert(smsrefresh::site::SnapshotFormat::Binary)?;
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
    }
}

fn run(args: &RunArgs) -> Result<u8> {
    let cfg = args.validate()?;
    let started = smsrefresh::time::now();
    let bar = crate::progress::Bar::new(args.progress);
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
        smsrefresh::report::write(path, &cfg, &summary, started, smsrefresh::time::now())
            .with_context(|| format!("{}: cannot write the report", path.display()))?;
    }
    if !args.quiet {
        print_summary(&summary);
    }
    Ok(summary.exit_code() as u8)
}

/// Loads a policy and its site (no lock: nothing is saved) and resolves the plan.
fn resolve_policy(
    path: &std::path::Path,
    site: Option<&std::path::Path>,
    now: Option<&str>,
) -> Result<(Policy, Plan)> {
    let policy = Policy::load(path)?;
    let dir = pick_site(site, Some(&policy))?;
    let engine = Engine::load(&dir, parse_now(now)?, true)?;
    let plan = smsrefresh::policy::resolve(
        &policy,
        &engine.site.topology,
        &engine.site.registry,
        &engine.site.store,
        &engine.clock,
    )?;
    std::mem::forget(engine);
    Ok((policy, plan))
}

fn plan(args: &PlanArgs) -> Result<u8> {
    let (policy, plan) = resolve_policy(&args.policy, args.site.as_deref(), args.now.as_deref())?;
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
    for path in &args.policies {
        match resolve_policy(path, args.site.as_deref(), args.now.as_deref()) {
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
    Ok(if failed { 2 } else { 0 })
}

fn exec(args: &ExecArgs) -> Result<u8> {
    let cfg = args.site.validate()?;
    let _lock = if cfg.save {
        Some(SiteLock::acquire(&cfg.site, cfg.lock_timeout)?)
    } else {
        None
    };
    let engine = Engine::load(&cfg.site, cfg.now, cfg.dry_run)?;
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

/// Configuration warnings on standard error.
pub fn print_warnings(engine: &Engine) {
    for w in engine.warnings() {
        eprintln!("smsrefresh: warning: {w}");
    }
}

/// The end-of-run summary on standard error.
pub fn print_summary(s: &Summary) {
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.commands() as f64 / secs
    } else {
        0.0
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "smsrefresh: {} commands: {} ok, {} warning, {} error; {} sessions refreshed, {} terminated; \
         {:.3} s (load {:.3} s [registry {:.3} s, sessions {:.3} s], plan {:.3} s, execute {:.3} s, write {:.3} s, save {:.3} s), \
         {:.0} commands/s, {} threads",
        s.commands(),
        s.ok,
        s.warning,
        s.error,
        s.refreshed,
        s.terminated,
        secs,
        s.load.as_secs_f64(),
        s.load_parts.registry.as_secs_f64(),
        s.load_parts.sessions.as_secs_f64(),
        s.plan.as_secs_f64(),
        s.execute.as_secs_f64(),
        s.write.as_secs_f64(),
        s.save.as_secs_f64(),
        rate,
        s.threads
    );
    if s.purged > 0 {
        let _ = writeln!(
            err,
            "smsrefresh: the sweep purged {} expired sessions",
            s.purged
        );
    }
    if !s.skipped.is_empty() || s.excluded > 0 {
        let _ = writeln!(
            err,
            "smsrefresh: policy left out {} excluded users and {} users not in the registry",
            s.excluded,
            s.skipped.len()
        );
    }
}
