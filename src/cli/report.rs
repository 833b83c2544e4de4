//! The `--report` audit record: one JSON document per run saying who ran what, when,
//! against which site, and what came of it (contract §7).

use serde::Serialize;
use sha2::{Digest, Sha256};

use smsrefresh::run::{RunConfig, Summary};
use smsrefresh::time::format_timestamp;

#[derive(Serialize)]
struct PolicyRef<'a> {
    name: &'a str,
    file: String,
    sha256: String,
}

#[derive(Serialize)]
struct ShardRef {
    shard: String,
    lines_left_to_other_shards: u64,
}

#[derive(Serialize)]
struct Counts {
    ok: u64,
    warning: u64,
    error: u64,
    commands: u64,
    sessions_refreshed: u64,
    sessions_terminated: u64,
    users_skipped: usize,
    users_excluded: u64,
    expired_sessions_purged: u64,
}

/// The run's time by phase. Reading, executing and writing overlap: `streamed_s` is their
/// wall time together and `overlapped_s` what ran at once (their sum minus `streamed_s`), so
/// `load_s + plan_s + streamed_s + save_s + publish_s + other_s = total_s`.
#[derive(Serialize)]
struct Phases {
    load_s: f64,
    plan_s: f64,
    read_s: f64,
    execute_s: f64,
    write_s: f64,
    streamed_s: f64,
    overlapped_s: f64,
    save_s: f64,
    /// The results file's fsync and rename, after the run.
    publish_s: f64,
    /// What is in no phase: the sweep, the store's last steps, starting and stopping.
    other_s: f64,
    total_s: f64,
    /// The process's peak resident memory so far (Linux; 0 elsewhere).
    peak_rss_bytes: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    tool: &'static str,
    version: &'static str,
    user: String,
    host: String,
    started: String,
    ended: String,
    site: String,
    /// The registry's file or directory URL (contract §12).
    registry: &'a str,
    policy: Option<PolicyRef<'a>>,
    inputs: Vec<String>,
    format: String,
    dry_run: bool,
    /// The site's files were replaced at the end (never with a networked store).
    saved: bool,
    /// The session store, password replaced by `***` (contract §11).
    store: &'a str,
    /// How the changes were kept: at the end, as each command ran, or not at all.
    changes: &'static str,
    /// `--shard K/N`, with the lines left to the other shards.
    shard: Option<ShardRef>,
    /// With a target: its retries by cause (`connection`, `timeout`, `http 503`, …).
    retries: &'a std::collections::BTreeMap<String, u64>,
    threads: usize,
    exit_code: i32,
    counts: Counts,
    messages: &'a std::collections::BTreeMap<&'static str, u64>,
    skipped_users: &'a [String],
    phases: Phases,
}

fn env_or(keys: &[&str], default: &str) -> String {
    keys.iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_string())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| env_or(&["HOSTNAME", "COMPUTERNAME"], "unknown"))
}

/// The audit record as JSON. `started` and `ended` are Unix seconds.
pub fn render(cfg: &RunConfig, summary: &Summary, started: i64, ended: i64) -> String {
    let policy = cfg.policy.as_ref().map(|p| PolicyRef {
        name: &p.name,
        file: p.file.display().to_string(),
        sha256: Sha256::digest(&p.bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    });
    let report = Report {
        tool: "smsrefresh",
        version: env!("CARGO_PKG_VERSION"),
        user: env_or(&["USER", "LOGNAME", "USERNAME"], "unknown"),
        host: host(),
        started: format_timestamp(started),
        ended: format_timestamp(ended),
        site: cfg.site.display().to_string(),
        registry: &summary.registry,
        policy,
        inputs: cfg
            .inputs
            .iter()
            .map(smsrefresh::run::Input::name)
            .collect(),
        format: format!("{:?}", cfg.format).to_lowercase(),
        dry_run: cfg.dry_run,
        saved: summary.changes == smsrefresh::run::Changes::SavedAtTheEnd,
        store: &summary.store,
        changes: summary.changes.describe(),
        retries: &summary.retries,
        shard: summary.shard.map(|(s, others)| ShardRef {
            shard: s.to_string(),
            lines_left_to_other_shards: others,
        }),
        threads: summary.threads,
        exit_code: summary.exit_code(),
        counts: Counts {
            ok: summary.ok,
            warning: summary.warning,
            error: summary.error,
            commands: summary.commands(),
            sessions_refreshed: summary.refreshed,
            sessions_terminated: summary.terminated,
            users_skipped: summary.skipped.len(),
            users_excluded: summary.excluded,
            expired_sessions_purged: summary.purged,
        },
        messages: &summary.messages,
        skipped_users: &summary.skipped,
        phases: Phases {
            load_s: summary.load.as_secs_f64(),
            plan_s: summary.plan.as_secs_f64(),
            read_s: summary.read.as_secs_f64(),
            execute_s: summary.execute.as_secs_f64(),
            write_s: summary.write.as_secs_f64(),
            streamed_s: summary.streamed.as_secs_f64(),
            overlapped_s: (summary.read + summary.execute + summary.write)
                .saturating_sub(summary.streamed)
                .as_secs_f64(),
            save_s: summary.save.as_secs_f64(),
            publish_s: summary.publish.as_secs_f64(),
            other_s: summary
                .elapsed
                .saturating_sub(
                    summary.load + summary.plan + summary.streamed + summary.save + summary.publish,
                )
                .as_secs_f64(),
            total_s: summary.elapsed.as_secs_f64(),
            peak_rss_bytes: super::bench::peak_rss_bytes(),
        },
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
