//! The bench's headline: the engine measured the way an administrator runs it (issue 13) —
//! a JSON Lines site as `gen` leaves it, a CSV of every (user, realm) in a seeded random
//! order (an export from a directory is never in store order), `smsrefresh run` in a child
//! process — against the goals and the tuned sharded map of the performance anchors.
//!
//! Four figures, each from medians of `--runs` interleaved runs:
//! - **execute**: sessions refreshed / (full run − one-row run − I/O floor);
//! - **memory**: peak resident memory of the one-row run / sessions;
//! - **end to end**: (full run − one-row run) / I/O floor;
//! - **load**: the one-row run's wall time;
//! - **vs the map**: execute over the tuned sharded map of the anchors, measured in this
//!   process on as many entries and sessions (`map.rs`), not the figure measured once.
//!
//! The I/O floor reads the CSV with the project's reader and writes as many result lines,
//! of the full run's average length, to a file (fsynced), with no engine work.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use smsrefresh::engine::Engine;
use smsrefresh::ids::UserKey;
use smsrefresh::input::{CsvDefaults, CsvSource};
use smsrefresh::synthetic::GEN_EPOCH;

use super::{BenchError, Stat};

/// The tuned sharded map's bytes per session (reference/perf-anchors.md; its speed is
/// measured in the run, `map.rs`).
const MAP_BYTES_PER_SESSION: f64 = 391.0;

/// What the headline measured.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub site: String,
    pub sessions: u64,
    pub rows: u64,
    pub one_row_s: Stat,
    pub full_s: Stat,
    pub io_floor_s: Stat,
    pub one_row_peak_rss_bytes: u64,
    pub sessions_refreshed: u64,
    pub execute_sessions_per_s: f64,
    pub bytes_per_session: f64,
    pub end_to_end_over_io_floor: f64,
    /// The tuned sharded map (`map.rs`) measured in this process after the runs, on as
    /// many (user, realm) entries and sessions as the site.
    pub map_sessions_per_s: f64,
}

/// The CSV of every (user, realm) with a live session, in a random order fixed by `seed`,
/// and a one-row CSV of its first row.
fn inputs(site: &Path, dir: &Path, seed: u64) -> Result<(PathBuf, PathBuf, u64), BenchError> {
    let engine = Engine::load(site, Some(GEN_EPOCH), true)?;
    let mut seen = std::collections::HashSet::new();
    let mut rows: Vec<String> = Vec::new();
    let topology = &engine.site.topology;
    engine.site.store.scan(&engine.clock, None, &mut |s| {
        if seen.insert((s.realm, UserKey::of(&s.user))) {
            rows.push(format!(
                "{},{}",
                super::csv_field(&s.user),
                topology.realm_def(s.realm).name
            ));
        }
    })?;
    let sessions = engine.site.store.len()? as u64;
    crate::cli::free_at_exit(engine);
    rows.sort();
    // Fisher–Yates with SplitMix64: the same order for the same seed, on any machine.
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for i in (1..rows.len()).rev() {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        rows.swap(i, (z % (i as u64 + 1)) as usize);
    }
    let (all, one) = (dir.join("truth-all.csv"), dir.join("truth-one.csv"));
    let mut w = BufWriter::new(File::create(&all)?);
    writeln!(w, "user,realm")?;
    for r in &rows {
        writeln!(w, "{r}")?;
    }
    w.flush()?;
    std::fs::write(
        &one,
        format!("user,realm\n{}\n", rows.first().ok_or(BenchError::Empty)?),
    )?;
    Ok((all, one, sessions))
}

/// One `smsrefresh run` in a child process: its wall time and its report.
fn child(
    site: &Path,
    input: &Path,
    out: &Path,
    report: &Path,
) -> Result<(Duration, serde_json::Value), BenchError> {
    let t = Instant::now();
    let status = Command::new(std::env::current_exe()?)
        .arg("run")
        .arg(input)
        .arg("--site")
        .arg(site)
        .args([
            "--no-save",
            "-q",
            "--format",
            "jsonl",
            "--now",
            "2026-11-28T02:00:00Z",
        ])
        .arg("-o")
        .arg(out)
        .arg("--report")
        .arg(report)
        .env_remove("SMSREFRESH_STORE")
        .status()?;
    let wall = t.elapsed();
    if !status.success() {
        return Err(
            std::io::Error::other(format!("smsrefresh run {}: {status}", input.display())).into(),
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report)?).map_err(std::io::Error::other)?;
    Ok((wall, report))
}

/// Reads the CSV as a run does and writes one line of `line_len` bytes per row, fsynced.
fn io_floor(
    input: &Path,
    out: &Path,
    line_len: usize,
    topology: &smsrefresh::site::Topology,
) -> Result<Duration, BenchError> {
    let t = Instant::now();
    let reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut w = BufWriter::with_capacity(1 << 16, File::create(out)?);
    let mut line = vec![b'x'; line_len.max(1)];
    if let Some(last) = line.last_mut() {
        *last = b'\n';
    }
    for job in CsvSource::new(reader, CsvDefaults::default(), topology) {
        let job = job?;
        std::hint::black_box(&job);
        w.write_all(&line)?;
    }
    w.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(t.elapsed())
}

/// Measures the headline on `site` (a JSON Lines site as `gen` leaves it).
pub fn truth(
    site: &Path,
    workdir: &Path,
    runs: usize,
    seed: u64,
    note: &dyn Fn(&str),
) -> Result<Truth, BenchError> {
    let (all, one, sessions) = inputs(site, workdir, seed)?;
    let rows = std::fs::read_to_string(&all)?.lines().count() as u64 - 1;
    let topology = smsrefresh::site::Topology::load(&site.join("topology.yaml"))?;
    let (mut one_t, mut full_t, mut floor_t) = (Vec::new(), Vec::new(), Vec::new());
    let (mut peak, mut refreshed) = (Vec::new(), 0);
    for _ in 0..runs.max(1) {
        let (t, r) = child(
            site,
            &one,
            &workdir.join("truth-one.out"),
            &workdir.join("truth-one.json"),
        )?;
        one_t.push(t);
        peak.push(r["phases"]["peak_rss_bytes"].as_u64().unwrap_or(0));
        note(&format!("one-row run: {:.2} s", t.as_secs_f64()));
        let out = workdir.join("truth-all.out");
        let (t, r) = child(site, &all, &out, &workdir.join("truth-all.json"))?;
        full_t.push(t);
        refreshed = r["counts"]["sessions_refreshed"].as_u64().unwrap_or(0);
        note(&format!("full run: {:.2} s", t.as_secs_f64()));
        let bytes = std::fs::metadata(&out)?.len();
        let line = usize::try_from(bytes / rows.max(1)).unwrap_or(1);
        let t = io_floor(&all, &workdir.join("truth-floor.out"), line, &topology)?;
        floor_t.push(t);
        note(&format!("I/O floor: {:.2} s", t.as_secs_f64()));
    }
    note("the tuned sharded map, in this process");
    let map = super::map::sessions_per_s(rows, sessions, runs);
    peak.sort_unstable();
    let (one_s, full_s, floor_s) = (Stat::of(&one_t), Stat::of(&full_t), Stat::of(&floor_t));
    // Below zero only when noise outweighs the work (a tiny site): reported as 0.
    let execute = full_s.median - one_s.median - floor_s.median;
    let peak_rss = peak.get(peak.len() / 2).copied().unwrap_or(0);
    Ok(Truth {
        site: site.display().to_string(),
        sessions,
        rows,
        one_row_s: one_s,
        full_s,
        io_floor_s: floor_s,
        one_row_peak_rss_bytes: peak_rss,
        sessions_refreshed: refreshed,
        execute_sessions_per_s: if execute > 0.0 {
            refreshed as f64 / execute
        } else {
            0.0
        },
        bytes_per_session: peak_rss as f64 / sessions.max(1) as f64,
        end_to_end_over_io_floor: (full_s.median - one_s.median).max(0.0)
            / floor_s.median.max(1e-9),
        map_sessions_per_s: map,
    })
}

/// The headline as a table: measured, goal, and the ratio to the tuned map.
pub fn table(t: &Truth) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "as administrators run it: {} ({} sessions), a CSV of {} (user, realm) rows in random order, `run` in a child process",
        t.site, t.sessions, t.rows
    );
    let _ = writeln!(
        s,
        "{:<58} {:>16} {:>12} {:>12}",
        "measure", "measured", "goal", "vs the map"
    );
    let mut row = |measure: &str, measured: String, goal: &str, vs_map: Option<f64>| {
        let vs_map = vs_map.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
        let _ = writeln!(s, "{measure:<58} {measured:>16} {goal:>12} {vs_map:>12}");
    };
    let execute = if t.execute_sessions_per_s > 0.0 {
        format!("{}/s", super::svg::human(t.execute_sessions_per_s))
    } else {
        "below the noise".into()
    };
    row(
        "execute: sessions / (full - one-row run - I/O floor)",
        execute,
        ">= 10M/s",
        Some(t.execute_sessions_per_s / t.map_sessions_per_s.max(1.0)),
    );
    row(
        "memory: peak RSS of the one-row run / sessions",
        format!("{:.0} B", t.bytes_per_session),
        "<= 250 B",
        Some(t.bytes_per_session / MAP_BYTES_PER_SESSION),
    );
    row(
        "end to end: (full - one-row run) / I/O floor",
        format!("{:.2}x", t.end_to_end_over_io_floor),
        "<= 2x",
        None,
    );
    row(
        "load: the one-row run",
        format!("{:.2} s", t.one_row_s.median),
        "< 1 s",
        None,
    );
    let _ = writeln!(
        s,
        "(medians: one-row run {:.2} s, full run {:.2} s, I/O floor {:.2} s; {} sessions refreshed; \
         the tuned sharded map in this process {}/s, the execute row's yardstick)",
        t.one_row_s.median,
        t.full_s.median,
        t.io_floor_s.median,
        t.sessions_refreshed,
        super::svg::human(t.map_sessions_per_s)
    );
    s
}
