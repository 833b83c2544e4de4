//! `smsrefresh bench`: where we stand, in one command.
//!
//! It generates (or loads) a site, builds a workload (a refresh of every user, a fraction of
//! them, or a refresh/terminate mix), and measures in the same process: the load, the execute
//! phase for each `--jobs` value, a sequential baseline (one command at a time, each locking
//! what it needs, timed per command for latency percentiles), the I/O floor (reading the
//! input and writing as many result lines with no engine work) and an end-to-end `run`. Every
//! figure is the median of `--runs` repetitions; the site is reloaded before each measured
//! execution so that each starts from the same sessions.

mod lua_anchor;
mod map;
mod redis;
pub mod svg;
pub mod truth;

pub use self::redis::{redis_bench, redis_table};

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use smsrefresh::command::{Action, Command, Task};
use smsrefresh::engine::{BatchConfig, Engine, Executor};
use smsrefresh::exec::Status;
use smsrefresh::ids::UserKey;
use smsrefresh::input::{CsvDefaults, CsvSource, Job};
use smsrefresh::run::{self, Input, Silent};
use smsrefresh::site::SiteError;
use smsrefresh::synthetic::GEN_EPOCH;

/// What the benchmark executes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// `refresh all_sessions` for every (user, realm) with a live session.
    RefreshAll,
    /// The same for a fraction (0 < f ≤ 1) of them, picked by a stable hash.
    Fraction(f64),
    /// 80 % refresh all_sessions, 10 % terminate all_sessions, 10 % refresh session ID.
    Mix,
}

impl Workload {
    pub fn name(&self) -> String {
        match self {
            Workload::RefreshAll => "refresh-all".into(),
            Workload::Fraction(f) => format!("fraction:{f}"),
            Workload::Mix => "mix".into(),
        }
    }
}

/// A validated benchmark configuration.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The site to measure (not changed). Generate it in another process first (as the
    /// `bench` command does), so that this process's memory is the loaded site's alone.
    pub site: PathBuf,
    pub workload: Workload,
    pub jobs: Vec<usize>,
    pub runs: usize,
    /// Where the generated site, the input and the outputs go.
    pub workdir: PathBuf,
}

/// Median, minimum and maximum of repeated measurements, in seconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub(super) fn of(samples: &[Duration]) -> Self {
        let mut v: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
        v.sort_by(f64::total_cmp);
        let median = if v.is_empty() {
            0.0
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Self {
            median,
            min: v.first().copied().unwrap_or(0.0),
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One `--jobs` value.
#[derive(Debug, Clone, Serialize)]
pub struct JobsRow {
    pub jobs: usize,
    pub execute_s: Stat,
    pub sessions_per_s: f64,
    pub commands_per_s: f64,
    /// Execute-phase speed-up over the first row (normally `--jobs 1`).
    pub speedup: f64,
}

/// Per-command latency of the sequential baseline, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Everything `bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub site: String,
    pub workload: String,
    pub cores: usize,
    pub runs: usize,
    pub users: usize,
    pub sessions: usize,
    pub commands: usize,
    /// Sessions acted on by one execution of the workload.
    pub sessions_acted: u64,
    pub load_s: Stat,
    pub load_sessions_s: Stat,
    pub load_registry_s: Stat,
    pub rss_after_load_bytes: u64,
    pub bytes_per_session: f64,
    pub peak_rss_bytes: u64,
    pub sequential_execute_s: Stat,
    pub sequential_sessions_per_s: f64,
    pub latency: Latency,
    pub jobs: Vec<JobsRow>,
    pub io_floor_s: Stat,
    pub end_to_end_s: Stat,
    /// Best parallel execute phase over the sequential baseline.
    pub parallel_over_sequential: f64,
    /// (end-to-end − load) / I/O floor: the contract target is at most 2.
    pub end_to_end_over_io_floor: f64,
}

/// The headline and the in-process figures, for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct WithHeadline {
    pub truth: truth::Truth,
    #[serde(flatten)]
    pub report: BenchReport,
}

/// Resident memory of this process, from /proc (0 where it is not available).
pub fn rss_bytes() -> u64 {
    proc_status("VmRSS:")
}

/// Peak resident memory of this process.
pub fn peak_rss_bytes() -> u64 {
    proc_status("VmHWM:")
}

fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] smsrefresh::store::StoreError),
    #[error("the site has no live session to benchmark")]
    Empty,
}

/// The workload as jobs, and as the CSV or command text an end-to-end run reads.
pub(super) fn workload(
    engine: &Engine,
    w: Workload,
) -> Result<(Vec<Job>, String, bool), BenchError> {
    let t = &engine.site.topology;
    let mut pairs: Vec<(u16, String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    engine.site.store.scan(&engine.clock, None, &mut |s| {
        if seen.insert((s.realm, UserKey::of(&s.user))) {
            pairs.push((s.realm.0, s.user.to_string(), s.id.to_string()));
        }
    })?;
    pairs.sort();
    let mut jobs = Vec::with_capacity(pairs.len());
    let mut text = String::with_capacity(pairs.len() * 40);
    let csv = w != Workload::Mix;
    if csv {
        text.push_str("user,realm\n");
    }
    for (realm, user, id) in pairs {
        let realm = t.realm_def(smsrefresh::ids::RealmId(realm)).name.clone();
        let server = t.default_server_name(&realm).to_string();
        let h = UserKey::of(&user).stable_hash() % 1000;
        let task = match w {
            Workload::RefreshAll => Task::SmsRefreshAll { user, realm },
            Workload::Fraction(f) if (h as f64) < f * 1000.0 => Task::SmsRefreshAll { user, realm },
            Workload::Fraction(_) => continue,
            Workload::Mix => match h % 10 {
                0 => Task::SmsTerminateAll { user, realm },
                1 => Task::SmsRefreshSession { id, realm },
                _ => Task::SmsRefreshAll { user, realm },
            },
        };
        let cmd = Command::Task { server, task };
        if csv {
            if let Some(u) = cmd.user() {
                text.push_str(&csv_field(u));
                text.push(',');
                text.push_str(cmd.realm().unwrap_or(""));
                text.push('\n');
            }
        } else {
            text.push_str(&cmd.to_string());
            text.push('\n');
        }
        jobs.push(Job::command(jobs.len() as u64 + 1, cmd));
    }
    Ok((jobs, text, csv))
}

/// A CSV field, quoted when it must be.
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with('#') || s.trim() != s {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Sessions acted on by successful refreshes and terminations.
fn acted(results: &[smsrefresh::exec::CommandResult]) -> u64 {
    results
        .iter()
        .filter(|r| r.status() == Status::Ok && r.action != Action::Invalid)
        .map(|r| r.outcome.sessions)
        .sum()
}

/// Loads of the site made during a benchmark, timed.
struct Loads<'n> {
    site: PathBuf,
    note: &'n dyn Fn(&str),
    total: Vec<Duration>,
    sessions: Vec<Duration>,
    registry: Vec<Duration>,
}

impl Loads<'_> {
    fn load(&mut self) -> Result<Engine, BenchError> {
        let t = Instant::now();
        let e = Engine::load(&self.site, Some(GEN_EPOCH), true)?;
        self.total.push(t.elapsed());
        self.sessions.push(e.site.load_times.sessions);
        self.registry.push(e.site.load_times.registry);
        (self.note)(&format!("loaded in {:.2} s", t.elapsed().as_secs_f64()));
        Ok(e)
    }
}

/// The sequential baseline: one command at a time, each on its own. Returns the times, the
/// first run's per-command latencies, and the sessions acted on.
fn sequential(
    cfg: &BenchConfig,
    loads: &mut Loads<'_>,
    jobs: &[Job],
) -> Result<(Vec<Duration>, Vec<Duration>, u64), BenchError> {
    let source: Arc<str> = Arc::from("bench");
    let (mut times, mut latencies, mut acted_n) = (Vec::new(), Vec::new(), 0);
    for run in 0..cfg.runs {
        let engine = loads.load()?;
        let mut lat = Vec::with_capacity(jobs.len());
        let mut results = Vec::with_capacity(jobs.len());
        let t = Instant::now();
        for j in jobs {
            let t0 = Instant::now();
            results.push(engine.run_job(&source, j));
            lat.push(t0.elapsed());
        }
        times.push(t.elapsed());
        acted_n = acted(&results);
        if run == 0 {
            latencies = lat;
        }
        (loads.note)(&format!("sequential: {:.3} s", t.elapsed().as_secs_f64()));
    }
    Ok((times, latencies, acted_n))
}

/// The execute phase through the parallel engine, for every `--jobs` value.
fn parallel(
    cfg: &BenchConfig,
    loads: &mut Loads<'_>,
    jobs: &[Job],
    sessions_acted: u64,
) -> Result<Vec<JobsRow>, BenchError> {
    let source: Arc<str> = Arc::from("bench");
    let mut rows: Vec<JobsRow> = Vec::new();
    for &j in &cfg.jobs {
        let mut times = Vec::new();
        for _ in 0..cfg.runs {
            let engine = loads.load()?;
            let batch = BatchConfig {
                jobs: j,
                fail_fast: false,
                rate: 0.0,
            };
            let mut ex =
                Executor::new(&engine, batch).map_err(|e| std::io::Error::other(e.to_string()))?;
            let t = Instant::now();
            for chunk in jobs.chunks(run::CHUNK) {
                let _ = ex.run_chunk(&source, chunk);
            }
            times.push(t.elapsed());
            (loads.note)(&format!("jobs {j}: {:.3} s", t.elapsed().as_secs_f64()));
        }
        let execute_s = Stat::of(&times);
        rows.push(JobsRow {
            jobs: j,
            execute_s,
            sessions_per_s: sessions_acted as f64 / execute_s.median.max(1e-9),
            commands_per_s: jobs.len() as f64 / execute_s.median.max(1e-9),
            speedup: 0.0,
        });
    }
    let base = rows.first().map_or(1.0, |r| r.execute_s.median);
    for r in &mut rows {
        r.speedup = base / r.execute_s.median.max(1e-9);
    }
    Ok(rows)
}

/// The I/O floor and an end-to-end run on the same input: (floor, end to end, its load).
fn end_to_end(
    cfg: &BenchConfig,
    note: &dyn Fn(&str),
    text: &str,
    csv: bool,
) -> Result<(Stat, Stat, Stat), BenchError> {
    let input = cfg.workdir.join(if csv {
        "bench-input.csv"
    } else {
        "bench-input.pdadmin"
    });
    std::fs::write(&input, text)?;
    let (mut floor, mut e2e, mut e2e_load) = (Vec::new(), Vec::new(), Vec::new());
    let rc = redis::run_config(
        cfg,
        if csv {
            Input::Csv(input.clone())
        } else {
            Input::Commands(input.clone())
        },
        None,
    );
    for _ in 0..cfg.runs {
        let topology = first_topology(&cfg.site)?;
        floor.push(io_floor(
            &input,
            &cfg.workdir.join("bench-floor.out"),
            &topology,
        )?);
        let t = Instant::now();
        let mut out = BufWriter::new(File::create(cfg.workdir.join("bench-e2e.out"))?);
        let finished = run::run(&rc, rc.describe()?, &mut out, &Silent)?;
        out.flush()?;
        e2e.push(t.elapsed());
        e2e_load.push(finished.summary.load);
        note(&format!("end to end: {:.3} s", t.elapsed().as_secs_f64()));
    }
    Ok((Stat::of(&floor), Stat::of(&e2e), Stat::of(&e2e_load)))
}

/// The per-command latency at quantile `p`, in microseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Runs the benchmark. `note` receives progress lines (for standard error).
pub fn bench(cfg: &BenchConfig, note: &dyn Fn(&str)) -> Result<BenchReport, BenchError> {
    std::fs::create_dir_all(&cfg.workdir)?;
    let rss_before = rss_bytes();
    let mut loads = Loads {
        site: cfg.site.clone(),
        note,
        total: Vec::new(),
        sessions: Vec::new(),
        registry: Vec::new(),
    };
    let first = loads.load()?;
    let rss_after = rss_bytes();
    let sessions = first.site.store.len()?;
    let users = first.site.registry.len();
    let (jobs, text, csv) = workload(&first, cfg.workload)?;
    if jobs.is_empty() {
        return Err(BenchError::Empty);
    }
    drop(first);
    let (seq_times, mut latencies, sessions_acted) = sequential(cfg, &mut loads, &jobs)?;
    let rows = parallel(cfg, &mut loads, &jobs, sessions_acted)?;
    let (io, end, el) = end_to_end(cfg, note, &text, csv)?;
    let seq = Stat::of(&seq_times);
    latencies.sort_unstable();
    let best = rows
        .iter()
        .map(|r| r.execute_s.median)
        .fold(f64::INFINITY, f64::min);
    Ok(BenchReport {
        site: cfg.site.display().to_string(),
        workload: cfg.workload.name(),
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        runs: cfg.runs,
        users,
        sessions,
        commands: jobs.len(),
        sessions_acted,
        load_s: Stat::of(&loads.total),
        load_sessions_s: Stat::of(&loads.sessions),
        load_registry_s: Stat::of(&loads.registry),
        rss_after_load_bytes: rss_after,
        bytes_per_session: rss_after.saturating_sub(rss_before) as f64 / sessions.max(1) as f64,
        peak_rss_bytes: peak_rss_bytes(),
        sequential_execute_s: seq,
        sequential_sessions_per_s: sessions_acted as f64 / seq.median.max(1e-9),
        latency: Latency {
            p50_us: percentile(&latencies, 0.5),
            p99_us: percentile(&latencies, 0.99),
            max_us: percentile(&latencies, 1.0),
        },
        jobs: rows,
        io_floor_s: io,
        end_to_end_s: end,
        parallel_over_sequential: seq.median / best.max(1e-9),
        end_to_end_over_io_floor: (end.median - el.median).max(0.0) / io.median.max(1e-9),
    })
}

fn first_topology(dir: &Path) -> Result<smsrefresh::site::Topology, SiteError> {
    smsrefresh::site::Topology::load(&dir.join("topology.yaml"))
}

/// Reads the input as a run would (CSV rows or command lines) and writes one pdadmin-sized
/// result per job, with no engine work; fsynced like a real output file.
fn io_floor(
    input: &Path,
    out: &Path,
    topology: &smsrefresh::site::Topology,
) -> Result<Duration, BenchError> {
    let t = Instant::now();
    let reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut w = BufWriter::with_capacity(1 << 16, File::create(out)?);
    let is_csv = input.extension().is_some_and(|e| e == "csv");
    let jobs: Box<dyn Iterator<Item = std::io::Result<Job>>> = if is_csv {
        Box::new(CsvSource::new(reader, CsvDefaults::default(), topology))
    } else {
        Box::new(smsrefresh::input::CommandSource::new(reader))
    };
    for job in jobs {
        let job = job?;
        writeln!(
            w,
            "pdadmin> line {}\nDPWWA2043I   The user's credential was updated. Sessions refreshed: 3.",
            job.line
        )?;
    }
    let f = w
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    f.sync_all()?;
    Ok(t.elapsed())
}

/// The report as a text table.
pub fn table(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "smsrefresh bench: {} | workload {} | {} cores | medians of {} runs",
        r.site, r.workload, r.cores, r.runs
    );
    let _ = writeln!(
        s,
        "site: {} users, {} sessions; {} commands acting on {} sessions",
        r.users, r.sessions, r.commands, r.sessions_acted
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<34} {:>12} {:>12} {:>12}",
        "phase", "median", "min", "max"
    );
    let row = |s: &mut String, name: &str, st: &Stat| {
        let _ = writeln!(
            s,
            "{:<34} {:>10.3} s {:>10.3} s {:>10.3} s",
            name, st.median, st.min, st.max
        );
    };
    row(&mut s, "load (topology, registry, sessions)", &r.load_s);
    row(&mut s, "  load sessions", &r.load_sessions_s);
    row(&mut s, "  load registry", &r.load_registry_s);
    row(
        &mut s,
        "execute, sequential baseline",
        &r.sequential_execute_s,
    );
    for j in &r.jobs {
        row(&mut s, &format!("execute, --jobs {}", j.jobs), &j.execute_s);
    }
    row(
        &mut s,
        "I/O floor (read input, write results)",
        &r.io_floor_s,
    );
    row(
        &mut s,
        "end to end (run, output to a file)",
        &r.end_to_end_s,
    );
    throughput(r, &mut s);
    s
}

/// The table's second half: throughput per `--jobs`, latency, ratios and memory.
fn throughput(r: &BenchReport, s: &mut String) {
    use std::fmt::Write as _;
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<8} {:>16} {:>16} {:>10}",
        "jobs", "sessions/s", "commands/s", "speed-up"
    );
    for j in &r.jobs {
        let _ = writeln!(
            s,
            "{:<8} {:>16} {:>16} {:>9.2}x",
            j.jobs,
            svg::human(j.sessions_per_s),
            svg::human(j.commands_per_s),
            j.speedup
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "sequential baseline: {} sessions/s; per command p50 {:.2} us, p99 {:.2} us, max {:.0} us",
        svg::human(r.sequential_sessions_per_s),
        r.latency.p50_us,
        r.latency.p99_us,
        r.latency.max_us
    );
    let _ = writeln!(
        s,
        "parallel engine over sequential baseline: {:.2}x",
        r.parallel_over_sequential
    );
    let _ = writeln!(
        s,
        "end to end minus load, over the I/O floor: {:.2}x (target: at most 2x)",
        r.end_to_end_over_io_floor
    );
    let _ = writeln!(
        s,
        "memory: {:.0} MiB resident after load, {:.0} bytes per session (store and registry), peak {:.0} MiB",
        mb(r.rss_after_load_bytes),
        r.bytes_per_session,
        mb(r.peak_rss_bytes)
    );
}
