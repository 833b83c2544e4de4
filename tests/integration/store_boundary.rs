//! The session-store boundary: a second store, written here against the public trait alone,
//! runs the same engine and gives the same results and sessions as the in-memory store; a
//! store that fails mid-run fails exactly the commands it touched; store URLs choose the
//! store and never print a password.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use smsrefresh::engine::{BatchConfig, Engine};
use smsrefresh::ids::{RealmId, ReplicaSetId, UserKey};
use smsrefresh::input::CsvDefaults;
use smsrefresh::output::Format;
use smsrefresh::run::{self, Input, Inputs, RunConfig, Silent, Summary};
use smsrefresh::session::{Clock, Session};
use smsrefresh::site::Site;
use smsrefresh::store::{Applied, Done, MemoryStore, Op, Refresher, SessionStore, StoreError};
use smsrefresh::synthetic::{GEN_EPOCH, GenConfig, generate};

use super::parallel::workload;
use super::util::*;

/// A second store: it keeps its sessions in a [`MemoryStore`] but applies every batch one
/// operation at a time, in order (a different strategy from the in-memory store's parallel
/// grouping), records each batch's size, and fails every operation on the users it is told
/// to, changing nothing for them.
struct OneByOne {
    inner: MemoryStore,
    failing: HashSet<UserKey>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl OneByOne {
    fn user_of(&self, op: &Op<'_>) -> Option<UserKey> {
        let clock = Clock {
            now: GEN_EPOCH,
            timeout: 0,
            inactive_timeout: 0,
        };
        match op {
            Op::RefreshUser { user, .. } | Op::TerminateUser { user, .. } => Some(user.clone()),
            Op::RefreshSession { id, .. } | Op::TerminateSession { id, .. } => {
                self.inner.get(id, &clock).map(|s| UserKey::of(&s.user))
            }
        }
    }
}

impl SessionStore for OneByOne {
    fn location(&self) -> String {
        "test:one-by-one".into()
    }

    fn apply(&self, clock: &Clock, ops: &[Op<'_>], refresher: &dyn Refresher) -> Applied {
        self.batches.lock().unwrap().push(ops.len());
        ops.iter()
            .map(|op| {
                if self.user_of(op).is_some_and(|u| self.failing.contains(&u)) {
                    return Err(StoreError::Unavailable {
                        location: self.location(),
                        reason: "connection reset by peer".into(),
                    });
                }
                self.inner
                    .apply(clock, std::slice::from_ref(op), refresher)
                    .pop()
                    .unwrap_or(Ok(Done::NoSession))
            })
            .collect()
    }

    fn owners(&self, ids: &[&str]) -> Result<Vec<Option<UserKey>>, StoreError> {
        self.inner.owners(ids)
    }

    fn count_live(
        &self,
        clock: &Clock,
        users: &[(RealmId, UserKey)],
    ) -> Result<Vec<usize>, StoreError> {
        self.inner.count_live(clock, users)
    }

    fn scan(
        &self,
        clock: &Clock,
        realm: Option<RealmId>,
        f: &mut dyn FnMut(&Session),
    ) -> Result<(), StoreError> {
        self.inner.scan(clock, realm, f)
    }

    fn live_in_replica_set(&self, clock: &Clock, set: ReplicaSetId) -> Result<usize, StoreError> {
        self.inner.live_in_replica_set(clock, set)
    }

    fn purge_expired(&self, clock: &Clock, realm: RealmId) -> Result<usize, StoreError> {
        self.inner.purge_expired(clock, realm)
    }

    fn len(&self) -> Result<usize, StoreError> {
        self.inner.len()
    }

    fn export(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError> {
        self.inner.export(f)
    }

    fn saved_by_site(&self) -> bool {
        true
    }
}

fn config(site: &Path, input: &Path) -> RunConfig {
    RunConfig {
        site: site.to_path_buf(),
        policy: None,
        inputs: vec![Input::from_arg(input, false)],
        format: Format::Jsonl,
        dry_run: false,
        save: false,
        batch: BatchConfig {
            jobs: 2,
            fail_fast: false,
            rate: 0.0,
        },
        csv: CsvDefaults::default(),
        now: Some(GEN_EPOCH),
        store: smsrefresh::site::StoreOptions::default(),
        registry: smsrefresh::site::RegistryOptions::default(),
        target: None,
        interrupt: smsrefresh::run::Interrupt::default(),
        require_input: false,
        shard: None,
        retry_failed: None,
        lock_timeout: std::time::Duration::from_secs(10),
    }
}

/// What a run left: its results (JSON Lines, which carry no timings), the sessions in the store, the summary, and
/// (with the second store) the size of every batch the store was asked to apply.
struct Ran {
    results: Vec<String>,
    sessions: Vec<Session>,
    summary: Summary,
    batches: Vec<usize>,
}

/// Runs `input` on `site` through the engine: with the in-memory store (`second: None`), or
/// with [`OneByOne`] failing the users named.
fn run_with(site: &Path, input: &Path, second: Option<&[&str]>) -> Ran {
    let cfg = config(site, input);
    let mut loaded = Site::load(site).unwrap();
    let batches = Arc::new(Mutex::new(Vec::new()));
    if let Some(failing) = second {
        let inner = MemoryStore::default();
        smsrefresh::site::snapshot::load(&site.join("sessions.jsonl"), &loaded.topology, &inner)
            .unwrap();
        loaded.store = Box::new(OneByOne {
            inner,
            failing: failing.iter().map(|u| UserKey::of(u)).collect(),
            batches: batches.clone(),
        });
    }
    let engine = Engine::new(loaded, cfg.now, false);
    let mut out = Vec::new();
    let inputs = Inputs::open(&cfg.inputs, false).unwrap();
    let finished =
        run::run_loaded(&cfg, engine, inputs, &mut out, &Silent, Instant::now()).unwrap();
    let mut sessions = Vec::new();
    finished
        .engine
        .site
        .store
        .export(&mut |s| sessions.push(s.clone()))
        .unwrap();
    let results = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let batches = batches.lock().unwrap().clone();
    Ran {
        results,
        sessions,
        summary: finished.summary,
        batches,
    }
}

fn generated(users: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    generate(&GenConfig {
        out: dir.clone(),
        users,
        realms: 3,
        servers: 5,
        seed: 21,
        ..GenConfig::default()
    })
    .unwrap();
    (tmp, dir)
}

#[test]
fn a_second_store_gives_the_same_results_and_sessions() {
    // The demo's command file, every command kind and its failing lines.
    let (_t, demo) = demo_copy();
    let input = demo.join("commands.pdadmin");
    let memory = run_with(&demo, &input, None);
    let second = run_with(&demo, &input, Some(&[]));
    assert_eq!(memory.results, second.results);
    assert_eq!(memory.sessions, second.sessions);
    assert!(memory.results.len() > 20);

    // A generated site and a mixed workload of 20,000 commands.
    let (_g, site) = generated(20_000);
    let input = site.join("mixed.pdadmin");
    std::fs::write(&input, workload(&site, 20_000, 20_000, 5)).unwrap();
    let memory = run_with(&site, &input, None);
    let second = run_with(&site, &input, Some(&[]));
    assert_eq!(memory.results.len(), second.results.len());
    for (i, (m, s)) in memory.results.iter().zip(&second.results).enumerate() {
        assert_eq!(m, s, "result {} differs", i + 1);
    }
    assert_eq!(memory.sessions, second.sessions);
    assert_eq!(memory.summary.refreshed, second.summary.refreshed);
    assert!(memory.summary.refreshed > 10_000 && memory.summary.terminated > 1_000);

    // Every user refreshed from a CSV list: the engine hands the store many users at once
    // (a whole chunk), not one call per command.
    let users = site.join("users.csv");
    let memory = run_with(&site, &users, None);
    let second = run_with(&site, &users, Some(&[]));
    assert_eq!(memory.results, second.results);
    assert_eq!(memory.sessions, second.sessions);
    assert_eq!(memory.results.len(), 20_000);
    let applied: usize = second.batches.iter().sum();
    let largest = second.batches.iter().copied().max().unwrap_or(0);
    assert!(largest > 1_000, "largest batch {largest}");
    assert!(
        second.batches.len() < applied / 10,
        "{} calls for {applied} operations",
        second.batches.len()
    );
}

#[test]
fn a_store_failure_fails_only_the_commands_it_touches() {
    let (_g, site) = generated(5_000);
    let input = site.join("mixed.pdadmin");
    std::fs::write(&input, workload(&site, 5_000, 8_000, 9)).unwrap();
    // Fifty users, named in any case: every command on them meets a dead store.
    let names: Vec<String> = (1..=50)
        .map(|i| {
            if i % 2 == 0 {
                format!("USER{i:07}")
            } else {
                format!("user{i:07}")
            }
        })
        .collect();
    let failing: Vec<&str> = names.iter().map(String::as_str).collect();
    let clean = run_with(&site, &input, Some(&[]));
    let hit = run_with(&site, &input, Some(&failing));
    let keys: HashSet<UserKey> = failing.iter().map(|u| UserKey::of(u)).collect();
    assert_eq!(clean.results.len(), hit.results.len());
    let mut failed = 0;
    for (c, h) in clean.results.iter().zip(&hit.results) {
        let (cv, hv): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(c).unwrap(),
            serde_json::from_str(h).unwrap(),
        );
        if cv == hv {
            continue;
        }
        // Lists show the store as it is: the failed commands left their sessions in place.
        if ["session_list", "replica_set_show"].contains(&hv["action"].as_str().unwrap()) {
            assert_eq!(hv["status"], "ok", "{h}");
            continue;
        }
        // A command that differs is one the store failed: its own error result, saying the
        // store was unavailable, for one of the failing users.
        failed += 1;
        assert_eq!(hv["status"], "error", "{h}");
        assert_eq!(hv["message_id"], "SMRST0209E", "{h}");
        assert_eq!(hv["code"], "0x534d52d1", "{h}");
        assert_eq!(hv["sessions"], 0, "{h}");
        assert!(
            hv["message"].as_str().unwrap().contains("unavailable"),
            "{h}"
        );
        assert_eq!(cv["line"], hv["line"]);
        assert_eq!(cv["command"], hv["command"]);
    }
    assert!(failed >= 20, "only {failed} commands were hit");
    assert!(hit.summary.error > clean.summary.error);
    // The failing users' sessions are exactly as loaded; everyone else's as the clean run.
    let before = {
        let loaded = Site::load(&site).unwrap();
        let mut v = Vec::new();
        loaded.store.export(&mut |s| v.push(s.clone())).unwrap();
        v
    };
    let mine = |all: &[Session], hit: bool| -> Vec<Session> {
        all.iter()
            .filter(|s| keys.contains(&UserKey::of(&s.user)) == hit)
            .cloned()
            .collect()
    };
    assert_eq!(mine(&hit.sessions, true), mine(&before, true));
    assert_eq!(mine(&hit.sessions, false), mine(&clean.sessions, false));
}

#[test]
fn store_urls_choose_the_store_and_never_print_a_password() {
    let (_t, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    let list = |store: Option<&str>| {
        let mut args = vec!["exec", "--site", site, "--no-save"];
        if let Some(url) = store {
            args.extend(["--store", url]);
        }
        args.extend(["server", "list"]);
        run(&args, None)
    };
    // `file:` is the site's files, as with no URL at all.
    assert_eq!(code(&list(Some("file:"))), 0);
    assert_eq!(stdout(&list(Some("file:"))), stdout(&list(None)));
    // A Redis store that cannot be reached (nothing listens on port 1): exit 2 before
    // anything runs, the password redacted, from the flag or from SMSREFRESH_STORE.
    for (how, url) in [
        ("flag", "redis://:s3cr3t@127.0.0.1:1/0"),
        ("env", "rediss://ops:s3cr3t@127.0.0.1:1"),
    ] {
        let mut cmd = bin();
        cmd.args([
            "run",
            "--site",
            site,
            "--no-save",
            "samples/demo/commands.pdadmin",
        ]);
        if how == "flag" {
            cmd.args(["--store", url]);
        } else {
            cmd.env("SMSREFRESH_STORE", url);
        }
        let out = run_cmd(&mut cmd, None);
        assert_eq!(code(&out), 2, "{how}");
        let err = stderr(&out);
        assert!(err.contains(":***@127.0.0.1"), "{err}");
        assert!(
            !err.contains("s3cr3t") && !stdout(&out).contains("s3cr3t"),
            "{err}"
        );
        assert!(stdout(&out).is_empty());
    }
    // An unknown scheme is refused, its password hidden too.
    let out = list(Some("mysql://u:pw@h"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected `file:`"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(":pw@"));
    // `store:` in topology.yaml counts when neither the flag nor the variable is given.
    let topo = demo.join("topology.yaml");
    let text = std::fs::read_to_string(&topo).unwrap();
    std::fs::write(&topo, format!("{text}store: redis://127.0.0.1:1/0\n")).unwrap();
    assert_eq!(code(&list(None)), 2);
    assert_eq!(code(&list(Some("file:"))), 0);
}
