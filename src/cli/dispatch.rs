//! What each subcommand does with its validated configuration: open outputs, call the
//! library, print the summary, and choose the exit code.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Seek, Write};
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
use smsrefresh::site::{
    RegistryOptions, Site, SiteDescription, SnapshotFormat, Staged, StoreOptions,
};

use super::args::{
    BenchArgs, Cli, Cmd, ConvertArgs, ExecArgs, GenArgs, PlanArgs, ProgressArg, RunArgs, SiteArgs,
    SnapshotArg, ValidateArgs, parse_now, pick_site,
};
use super::terminal::{PipeSafe, print_summary, print_warnings};

pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::Plan(args) => plan(&args),
        Cmd::Validate(args) => validate(&args),
        Cmd::Exec(args) => exec(&args),
        Cmd::Shell(args) => super::shell::shell(&site_config(&args.site)?),
        Cmd::Serve(args) => super::serve::serve(&args),
        Cmd::Errtext { code } => errtext(code.as_deref()),
        Cmd::Bench(args) => bench(&args),
        Cmd::Convert(args) => convert(&args),
        Cmd::Gen(args) => gen_site(&args),
        Cmd::Store(args) => super::store::store(&args),
        Cmd::Registry(args) => super::registry::registry(&args),
        Cmd::Completions { shell } => super::docs::completions(shell),
        Cmd::Man => super::docs::man(),
        Cmd::Schema { kind } => super::docs::schema(kind),
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

/// Generates a site in a child process, so that this process's memory stays its own.
fn generate_for_bench(out: &Path, users: u64, seed: u64, extra: &[&str]) -> Result<()> {
    eprintln!("bench: generating {users} users in {}", out.display());
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("gen")
        .args(extra)
        .args([
            "--users",
            &users.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(out)
        .status()?;
    anyhow::ensure!(status.success(), "generating the benchmark site failed");
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<u8> {
    let cfg = args.validate()?;
    if args.site.is_none() && !cfg.site.join("sessions.bin").exists() {
        generate_for_bench(&cfg.site, args.users, args.seed, &["--binary"])?;
    }
    if let Some(url) = &args.store {
        let report = super::bench::redis_bench(&cfg, url, &|line| eprintln!("bench: {line}"))?;
        let mut out = PipeSafe::new(io::stdout().lock());
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            write!(out, "{}", super::bench::redis_table(&report))?;
        }
        return Ok(0);
    }
    // The headline first: a JSON Lines site as `gen` leaves it, run as administrators run it.
    let jsonl_site = match &args.site {
        Some(site) => site.clone(),
        None => {
            let site = cfg.workdir.join("site-jsonl");
            if !site.join("sessions.jsonl").exists() {
                generate_for_bench(&site, args.users, args.seed, &[])?;
            }
            site
        }
    };
    let note = |line: &str| eprintln!("bench: {line}");
    let truth = super::bench::truth::truth(&jsonl_site, &cfg.workdir, cfg.runs, args.seed, &note)?;
    let report = super::bench::bench(&cfg, &note)?;
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
        let both = super::bench::WithHeadline { truth, report };
        writeln!(out, "{}", serde_json::to_string_pretty(&both)?)?;
    } else {
        write!(out, "{}", super::bench::truth::table(&truth))?;
        writeln!(out)?;
        writeln!(
            out,
            "the friendly case: a binary snapshot, work in store order, in this process"
        )?;
        write!(out, "{}", super::bench::table(&report))?;
    }
    Ok(0)
}

fn convert(args: &ConvertArgs) -> Result<u8> {
    let dir = smsrefresh::site::resolve(args.site.as_deref())?;
    let _lock = SiteLock::acquire(&dir, args.lock_timeout)?;
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
    crate::cli::free_at_exit(site);
    Ok(0)
}

fn gen_site(args: &GenArgs) -> Result<u8> {
    let cfg = args.validate()?;
    let s = smsrefresh::synthetic::generate(&cfg)
        .with_context(|| format!("writing {}", cfg.out.display()))?;
    let loaded = if args.binary {
        let mut site = Site::load(&cfg.out)?;
        site.convert(SnapshotFormat::Binary)?;
        Some(site)
    } else if std::fs::metadata(Site::sessions_path(&cfg.out))
        .is_ok_and(|m| m.len() >= smsrefresh::site::CACHE_MIN_BYTES)
    {
        // Loading a large sessions.jsonl writes its binary cache: the site's first run is
        // then as fast as its later ones.
        Some(Site::load(&cfg.out)?)
    } else {
        None
    };
    crate::cli::free_at_exit(loaded);
    eprintln!(
        "smsrefresh: wrote {} users and {} sessions to {}",
        s.users,
        s.sessions,
        cfg.out.display()
    );
    Ok(0)
}

/// A site's options, with a progress display for a long directory read.
fn site_config(args: &SiteArgs) -> Result<super::args::SiteConfig> {
    let mut cfg = args.validate()?;
    cfg.registry.progress = super::progress::directory_spinner(ProgressArg::Auto);
    Ok(cfg)
}

fn run(args: &RunArgs) -> Result<u8> {
    let mut cfg = args.validate()?;
    cfg.registry.progress = super::progress::directory_spinner(args.progress);
    let started = smsrefresh::time::now();
    cfg.interrupt = smsrefresh::run::Interrupt::default();
    super::signals::install(cfg.interrupt.clone())?;
    let bar = super::progress::Bar::new(args.progress);
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &Silent,
    };
    let described = cfg.describe()?;
    let finished = run_to_results(&cfg, described, args.output.as_deref(), progress)?;
    let mut summary = finished.summary;
    // A signal that came after the last command (while saving) still says the run was
    // stopped: everything ran.
    if let (None, Some(signal)) = (&summary.interrupted, cfg.interrupt.requested()) {
        summary.interrupted = Some(smsrefresh::run::Interrupted {
            signal,
            ran: summary.commands(),
            total: summary.commands(),
            resume_at: None,
        });
    }
    // The process exits next: let the OS reclaim the site instead of freeing millions of
    // sessions one by one (seconds on a large site).
    crate::cli::free_at_exit(finished.engine);
    for w in &summary.warnings {
        eprintln!("smsrefresh: warning: {w}");
    }
    if let Some(path) = &args.report {
        let mut staged = Staged::create(path)?;
        staged.write_all(
            super::report::render(&cfg, &summary, started, smsrefresh::time::now()).as_bytes(),
        )?;
        staged.write_all(b"\n")?;
        staged
            .commit()
            .with_context(|| format!("{}: cannot write the report", path.display()))?;
    }
    if !args.quiet {
        print_summary(&summary);
    }
    if let Some(stop) = &summary.interrupted {
        print_interrupted(stop);
        return Ok(u8::try_from(128 + stop.signal).unwrap_or(130));
    }
    Ok(summary.exit_code() as u8)
}

/// Runs `cfg` and publishes its results only once the site is saved (contract §13): `-o
/// FILE` is written beside FILE and renamed into place; standard output, when the run
/// saves, is held in an unnamed temporary file and copied out at the end. A run that saves
/// nothing streams its results.
fn run_to_results(
    cfg: &smsrefresh::run::RunConfig,
    described: SiteDescription,
    output: Option<&Path>,
    progress: &dyn Progress,
) -> Result<run::Finished> {
    // A networked store keeps each change as it is applied: results stream (contract §13),
    // so what a killed run leaves behind says what it did.
    if !described.saved_by_site() {
        return Ok(match output {
            Some(path) => {
                let mut out = OpenedOnWrite { path, file: None };
                let finished = run::run(cfg, described, &mut out, progress)?;
                out.flush()?;
                finished
            }
            None => run::run(
                cfg,
                described,
                &mut PipeSafe::new(io::stdout().lock()),
                progress,
            )?,
        });
    }
    if let Some(path) = output {
        let mut staged =
            Staged::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
        let mut finished = run::run(cfg, described, &mut staged, progress)?;
        let t = std::time::Instant::now();
        staged.commit()?;
        finished.summary.publish = t.elapsed();
        finished.summary.elapsed += finished.summary.publish;
        return Ok(finished);
    }
    if !cfg.save {
        return Ok(run::run(
            cfg,
            described,
            &mut PipeSafe::new(io::stdout().lock()),
            progress,
        )?);
    }
    let mut spool =
        io::BufWriter::new(tempfile::tempfile().context("a temporary file for the results")?);
    let finished = run::run(cfg, described, &mut spool, progress)?;
    let mut file = spool.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.seek(io::SeekFrom::Start(0))?;
    let mut out = PipeSafe::new(io::stdout().lock());
    io::copy(&mut file, &mut out)?;
    out.flush()?;
    Ok(finished)
}

/// A results file created by the first write: a run that cannot start leaves an existing
/// file as it was.
struct OpenedOnWrite<'p> {
    path: &'p Path,
    file: Option<io::BufWriter<std::fs::File>>,
}

impl Write for OpenedOnWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() {
            let f = std::fs::File::create(self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            self.file = Some(io::BufWriter::with_capacity(1 << 16, f));
        }
        self.file.as_mut().map_or(Ok(buf.len()), |f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// How far an interrupted run got, and how to finish it.
fn print_interrupted(stop: &smsrefresh::run::Interrupted) {
    eprintln!(
        "smsrefresh: stopped by {}: {} of {} commands ran; their results are written and what they changed is saved",
        super::signals::name(stop.signal),
        stop.ran,
        stop.total
    );
    let Some((source, line)) = &stop.resume_at else {
        return;
    };
    let path = Path::new(source);
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
    {
        eprintln!(
            "smsrefresh: to resume, run the policy again: its plan is resolved afresh, and refreshes are idempotent"
        );
        return;
    }
    let rest = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        "rest.csv"
    } else {
        "rest.pdadmin"
    };
    eprintln!(
        "smsrefresh: to resume, run the rest from line {line} of {source} and the inputs after it \
         (for example `tail -n +{line} {source} > {rest}`, then `smsrefresh run … {rest} …`); \
         refreshes are idempotent, so running the whole input again is safe too"
    );
}

/// Sites loaded for `plan` and `validate` (no lock: nothing is saved), each once however
/// many policies name it.
struct LoadedSites {
    now: Option<i64>,
    store: Option<String>,
    registry: RegistryOptions,
    engines: HashMap<PathBuf, Engine>,
}

impl LoadedSites {
    fn new(now: Option<&str>, store: Option<&str>, registry: RegistryOptions) -> Result<Self> {
        Ok(Self {
            now: parse_now(now)?,
            store: store.map(str::to_string),
            registry,
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
                let site = Site::load_with(
                    e.key(),
                    &StoreOptions {
                        read_only: true,
                        ..StoreOptions::url(self.store.as_deref())
                    },
                    &self.registry,
                )?;
                e.insert(Engine::new(site, self.now, true))
            }
        };
        let plan = smsrefresh::policy::resolve(&policy, &engine.site, &engine.clock)?;
        Ok((policy, plan))
    }

    /// The process exits next: let the OS reclaim the sites instead of freeing millions of
    /// sessions one by one.
    fn leave(self) {
        crate::cli::free_at_exit(self);
    }
}

fn plan(args: &PlanArgs) -> Result<u8> {
    let mut sites = LoadedSites::new(
        args.now.as_deref(),
        args.store.as_deref(),
        args.registry
            .options(super::progress::directory_spinner(ProgressArg::Auto)),
    )?;
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
    let mut sites = LoadedSites::new(
        args.now.as_deref(),
        None,
        args.registry
            .options(super::progress::directory_spinner(ProgressArg::Auto)),
    )?;
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
                println!("{}", invalid_line(path, &format!("{e:#}")));
            }
        }
    }
    sites.leave();
    Ok(if failed { 2 } else { 0 })
}

/// `invalid: ERROR` when the error names the policy file itself, else `FILE: invalid: ERROR`:
/// the file is named once.
fn invalid_line(path: &Path, error: &str) -> String {
    let file = path.display().to_string();
    if error.starts_with(&format!("{file}:")) {
        format!("invalid: {error}")
    } else {
        format!("{file}: invalid: {error}")
    }
}

fn exec(args: &ExecArgs) -> Result<u8> {
    let cfg = site_config(&args.site)?;
    let (_lock, engine) = super::open::open_engine(&cfg)?;
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
    let job = match parsed {
        Ok(cmd) => smsrefresh::input::Job::command(1, cmd),
        Err(e) => smsrefresh::input::Job::invalid(1, &raw, &message::SYNTAX_ERROR, &e.message),
    };
    let result = smsrefresh::run::OneAtATime::open(&engine, cfg.rate)?.run_job(&source, &job);
    // Saved before the result is shown: a result never claims a change the site lacks.
    if cfg.save {
        engine.site.save()?;
    }
    let mut out = PipeSafe::new(io::stdout().lock());
    if cfg.dry_run && matches!(args.format, super::args::FormatArg::Pdadmin) {
        out.write_all(smsrefresh::output::DRY_RUN_LINE)?;
    }
    let mut w = writer(args.format.into(), &mut out);
    w.write(&result)?;
    w.finish()?;
    drop(w);
    // As for `run`: the process exits next, so skip freeing the site piece by piece.
    crate::cli::free_at_exit(engine);
    Ok(u8::from(result.status() == Status::Error))
}
