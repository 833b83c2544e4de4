//! `smsrefresh bench --store URL` (contract §11): the same workloads through a Redis store,
//! beside the site-files store measured in the same command and the Redis anchors of
//! reference/perf-anchors.md. Each measured run starts from the site's sessions freshly
//! imported (the import is not timed); Redis memory per session is the `used_memory` delta
//! of that import.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Duration;

use serde::Serialize;

use smsrefresh::engine::{BatchConfig, Engine};
use smsrefresh::input::CsvDefaults;
use smsrefresh::output::Format;
use smsrefresh::run::{self, Input, RunConfig, Silent};
use smsrefresh::session::Session;
use smsrefresh::site::{Site, StoreOptions, names_of};
use smsrefresh::store::{RedisStore, SessionStore};
use smsrefresh::synthetic::GEN_EPOCH;

use super::{BenchConfig, BenchError, Stat, workload};

/// Lua per user (the reference's Python client), and the server's raw HSET ceiling, on this
/// machine (perf-anchors.md). The same Lua model driven from Rust is measured on the store's
/// own server when it is a standalone one (`lua_anchor.rs`).
const LUA_ANCHOR: f64 = 188_000.0;
const HSET_CEILING: f64 = 287_000.0;
/// Bytes per session of a JSON string per session in a hash (perf-anchors.md).
const JSON_HASH_BYTES: f64 = 1_050.0;

/// What `bench --store` measured.
#[derive(Debug, Clone, Serialize)]
pub struct RedisReport {
    pub store: String,
    pub workload: String,
    pub runs: usize,
    pub sessions: usize,
    pub sessions_acted: u64,
    /// The execute phase of a `run` through Redis, and through the site files.
    pub redis_execute_s: Stat,
    pub files_execute_s: Stat,
    pub redis_sessions_per_s: f64,
    pub files_sessions_per_s: f64,
    pub redis_bytes_per_session: f64,
    pub over_lua_anchor: f64,
    pub over_hset_ceiling: f64,
    /// The Lua-per-user anchor's model driven from Rust, measured on the same server between
    /// the runs (median), when the store is a standalone server; and Redis over it.
    pub lua_model_sessions_per_s: Option<f64>,
    pub over_lua_model: Option<f64>,
}

/// A `run` of the benchmark's input on its site, in the given store (`None`: the site's).
pub(super) fn run_config(cfg: &BenchConfig, input: Input, store: Option<&str>) -> RunConfig {
    RunConfig {
        site: cfg.site.clone(),
        policy: None,
        inputs: vec![input],
        format: Format::Pdadmin,
        dry_run: false,
        // A Redis store keeps each change as it runs, so `--no-save` is refused there
        // (contract §11); the site files are never saved by the bench.
        save: store.is_some_and(|s| s != "file:"),
        batch: BatchConfig {
            jobs: cfg.jobs.iter().copied().max().unwrap_or(0),
            fail_fast: false,
            rate: 0.0,
        },
        csv: CsvDefaults::default(),
        now: Some(GEN_EPOCH),
        store: StoreOptions::url(store),
        registry: smsrefresh::site::RegistryOptions::default(),
        target: None,
        interrupt: run::Interrupt::default(),
        require_input: false,
        shard: None,
        retry_failed: None,
        lock_timeout: Duration::from_secs(10),
    }
}

/// One measured run: its execute phase and the sessions it acted on.
fn measure(cfg: &BenchConfig, rc: &RunConfig) -> Result<(Duration, u64), BenchError> {
    let mut out = BufWriter::new(File::create(cfg.workdir.join("bench-redis.out"))?);
    let finished = run::run(rc, rc.describe()?, &mut out, &Silent)?;
    out.flush()?;
    let s = &finished.summary;
    let acted = s.refreshed + s.terminated;
    let execute = s.execute;
    crate::cli::free_at_exit(finished);
    Ok((execute, acted))
}

/// Runs the Redis benchmark against `url`; the store's keys under its prefix are replaced.
pub fn redis_bench(
    cfg: &BenchConfig,
    url: &str,
    note: &dyn Fn(&str),
) -> Result<RedisReport, BenchError> {
    std::fs::create_dir_all(&cfg.workdir)?;
    let site = Site::load_with_store(&cfg.site, &StoreOptions::url(Some("file:")))?;
    let mut sessions: Vec<Session> = Vec::with_capacity(site.store.len()?);
    site.store.export(&mut |s| sessions.push(s.clone()))?;
    let engine = Engine::new(site, Some(GEN_EPOCH), true);
    let (_, text, csv) = workload(&engine, cfg.workload)?;
    let names = names_of(&engine.site.topology);
    let mut redis = RedisStore::open(url, names.clone(), Duration::from_secs(10))?;
    crate::cli::free_at_exit(engine);
    let input = cfg.workdir.join(if csv {
        "bench-redis.csv"
    } else {
        "bench-redis.pdadmin"
    });
    std::fs::write(&input, &text)?;
    let input = if csv {
        Input::Csv(input)
    } else {
        Input::Commands(input)
    };
    let (mut on_redis, mut on_files, mut bytes) = (Vec::new(), Vec::new(), 0.0);
    let mut acted = 0;
    let mut anchor = LuaModel {
        users: lua_anchor_users(&sessions, &names),
        con: super::lua_anchor::connect(url),
        rates: Vec::new(),
    };
    for i in 0..cfg.runs {
        anchor.measure(redis.prefix(), &|rate| {
            note(&format!(
                "run {}: the Lua model from Rust {rate:.0} sessions/s",
                i + 1
            ));
        });
        redis.clear()?;
        let before = redis.stats()?.used_memory;
        redis.import(&sessions)?;
        let after = redis.stats()?.used_memory;
        bytes = after.saturating_sub(before) as f64 / sessions.len().max(1) as f64;
        let (t, n) = measure(cfg, &run_config(cfg, input.clone(), Some(url)))?;
        on_redis.push(t);
        acted = n;
        let (f, _) = measure(cfg, &run_config(cfg, input.clone(), Some("file:")))?;
        on_files.push(f);
        note(&format!(
            "run {}: execute {:.3} s through Redis, {:.3} s on the site files",
            i + 1,
            t.as_secs_f64(),
            f.as_secs_f64()
        ));
    }
    let (r, f) = (Stat::of(&on_redis), Stat::of(&on_files));
    let rate = |s: &Stat| acted as f64 / s.median.max(1e-9);
    let measured_anchor = anchor.median();
    Ok(RedisReport {
        store: redis.location(),
        workload: cfg.workload.name(),
        runs: cfg.runs,
        sessions: sessions.len(),
        sessions_acted: acted,
        redis_execute_s: r,
        files_execute_s: f,
        redis_sessions_per_s: rate(&r),
        files_sessions_per_s: rate(&f),
        redis_bytes_per_session: bytes,
        over_lua_anchor: rate(&r) / LUA_ANCHOR,
        over_hset_ceiling: rate(&r) / HSET_CEILING,
        lua_model_sessions_per_s: measured_anchor,
        over_lua_model: measured_anchor.map(|a| rate(&r) / a.max(1.0)),
    })
}

/// The anchor's Lua model on the store's server, measured between the runs.
struct LuaModel {
    users: Vec<(String, String, usize)>,
    /// `None` where it cannot run (a cluster, a URL with parameters), or once it failed.
    con: Option<redis::Connection>,
    rates: Vec<f64>,
}

impl LuaModel {
    fn measure(&mut self, prefix: &str, note: &dyn Fn(f64)) {
        let Some(con) = self.con.as_mut() else {
            return;
        };
        match super::lua_anchor::measure(con, prefix, &self.users) {
            Ok((n, t)) => {
                let rate = n as f64 / t.as_secs_f64().max(1e-9);
                note(rate);
                self.rates.push(rate);
            }
            Err(_) => self.con = None,
        }
    }

    fn median(&mut self) -> Option<f64> {
        self.rates.sort_by(f64::total_cmp);
        self.rates.get(self.rates.len() / 2).copied()
    }
}

/// The anchor's users: the site's (user, realm) entries with their session counts, in the
/// site's order.
fn lua_anchor_users(
    sessions: &[Session],
    names: &smsrefresh::store::redis::Names,
) -> Vec<(String, String, usize)> {
    let mut at: std::collections::HashMap<(u16, String), usize> = std::collections::HashMap::new();
    let mut users: Vec<(String, String, usize)> = Vec::new();
    for s in sessions {
        let key = (s.realm.0, s.user.to_string());
        let i = *at.entry(key).or_insert_with(|| {
            users.push((s.user.to_string(), names.realm_name(s.realm).to_string(), 0));
            users.len() - 1
        });
        users[i].2 += 1;
    }
    users
}

pub fn redis_table(r: &RedisReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "smsrefresh bench --store {} | workload {} | medians of {} runs",
        r.store, r.workload, r.runs
    );
    let _ = writeln!(
        s,
        "site: {} sessions; the workload acts on {} sessions\n",
        r.sessions, r.sessions_acted
    );
    let _ = writeln!(s, "{:<34} {:>12} {:>16}", "store", "execute", "sessions/s");
    for (name, st, rate) in [
        ("Redis", &r.redis_execute_s, r.redis_sessions_per_s),
        (
            "site files (in memory)",
            &r.files_execute_s,
            r.files_sessions_per_s,
        ),
    ] {
        let _ = writeln!(s, "{name:<34} {:>10.3} s {rate:>16.0}", st.median);
    }
    let _ = writeln!(
        s,
        "\nRedis over the Lua-per-user anchor ({LUA_ANCHOR:.0}/s with the reference's Python client on 2026-11-28; \
         run reference/anchors/redis_workload.py lua beside this for today's): {:.2}x; over the raw HSET ceiling ({HSET_CEILING:.0}/s): {:.2}x",
        r.over_lua_anchor, r.over_hset_ceiling
    );
    match (r.lua_model_sessions_per_s, r.over_lua_model) {
        (Some(a), Some(x)) => {
            let _ = writeln!(
                s,
                "Redis over the same Lua model driven from Rust on this server, between the runs ({a:.0}/s): {x:.2}x"
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "the Lua model from Rust was not measured: it needs a standalone server and a URL without `?…`"
            );
        }
    }
    let _ = writeln!(
        s,
        "Redis memory: {:.0} B/session (used_memory delta of the import; a JSON string per session in a hash: ~{JSON_HASH_BYTES:.0})",
        r.redis_bytes_per_session
    );
    s
}
