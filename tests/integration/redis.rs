//! The Redis store (contract §11) on real servers: a standalone `redis-server` and a
//! six-node Redis Cluster, started here on free loopback ports. A run against Redis gives
//! the same results and leaves the same sessions as the site files; import and export
//! round-trip; two engines at once lose nothing; `--shard` runs add up to one run; a primary
//! killed mid-run loses no change that a result calls ok, and `--retry-failed` converges.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use smsrefresh::synthetic::GEN_EPOCH;
use smsrefresh::time::format_timestamp;

use super::parallel::workload;
use super::redis_servers::{Cluster, Server, cli};
use super::util::*;

pub(super) fn now() -> String {
    format_timestamp(GEN_EPOCH)
}

/// A generated site in a temporary folder.
pub(super) fn generated(users: u64, seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let out = run(
        &[
            "gen",
            "--out",
            site.to_str().unwrap(),
            "--users",
            &users.to_string(),
            "--seed",
            &seed.to_string(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (dir, site)
}

/// A copy of a site's files in a new temporary folder.
pub(super) fn copy_site(site: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("site");
    std::fs::create_dir(&to).unwrap();
    for e in std::fs::read_dir(site).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    (dir, to)
}

pub(super) fn store(args: &[&str]) -> std::process::Output {
    let mut all = vec!["store"];
    all.extend_from_slice(args);
    run(&all, None)
}

pub(super) fn import(site: &Path, url: &str) {
    let out = store(&[
        "import",
        "--replace",
        "--site",
        site.to_str().unwrap(),
        "--store",
        url,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The store's sessions as sorted sessions.jsonl lines.
pub(super) fn exported(site: &Path, url: &str) -> Vec<String> {
    let out = store(&["export", "--site", site.to_str().unwrap(), "--store", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    sorted_lines(&stdout(&out))
}

/// Session lines in one canonical form (keys sorted), sorted: generated files and the
/// snapshot writer order a line's keys differently.
pub(super) fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Equal, or a short account of how they differ (the sets are large).
pub(super) fn assert_same(got: &[String], want: &[String], what: &str) {
    if got != want {
        let g: BTreeSet<&String> = got.iter().collect();
        let w: BTreeSet<&String> = want.iter().collect();
        let extra: Vec<_> = g.difference(&w).take(2).collect();
        let missing: Vec<_> = w.difference(&g).take(2).collect();
        panic!(
            "{what}: {} lines, expected {}; unexpected {extra:?}; missing {missing:?}",
            got.len(),
            want.len()
        );
    }
}

pub(super) fn file_sessions(site: &Path) -> Vec<String> {
    sorted_lines(&std::fs::read_to_string(site.join("sessions.jsonl")).unwrap())
}

/// `run INPUT --format jsonl --now … -q` on a site, with the extra arguments.
pub(super) fn run_input(site: &Path, input: &Path, extra: &[&str]) -> (i32, String) {
    let now = now();
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
        "--format",
        "jsonl",
        "--now",
        &now,
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = run(&args, None);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    (code(&out), stdout(&out))
}

/// One input run against the site files and against `url`: the same exit code, the same
/// results byte for byte, the same sessions afterwards; and the import before it
/// round-trips.
pub(super) fn same_as_files(site: &Path, input: &Path, url: &str) {
    let (_a, files) = copy_site(site);
    let (_b, redis) = copy_site(site);
    import(&redis, url);
    assert_same(
        &exported(&redis, url),
        &file_sessions(site),
        "import, then export",
    );
    let (code_files, out_files) = run_input(&files, input, &[]);
    let (code_redis, out_redis) = run_input(&redis, input, &["--store", url]);
    assert_eq!(code_redis, code_files);
    assert!(out_files.lines().count() > 10);
    assert_same(
        &out_redis.lines().map(str::to_string).collect::<Vec<_>>(),
        &out_files.lines().map(str::to_string).collect::<Vec<_>>(),
        "results",
    );
    assert_same(
        &exported(&redis, url),
        &file_sessions(&files),
        "sessions after the run",
    );
    // Nothing was saved in the Redis run's site folder: the store kept every change.
    assert_same(
        &file_sessions(&redis),
        &file_sessions(site),
        "the site's own files",
    );
}

#[test]
fn a_run_against_redis_gives_the_results_and_sessions_of_the_site_files() {
    let standalone = Server::start(&[]);
    let cluster = Cluster::start();
    let (_d, demo) = demo_copy();
    let (_g, big) = generated(20_000, 7);
    let work = tempfile::tempdir().unwrap();
    let mixed = work.path().join("mixed.pdadmin");
    std::fs::write(&mixed, workload(&big, 20_000, 20_000, 11)).unwrap();
    let demo_input = work.path().join("demo.pdadmin");
    std::fs::copy(demo.join("commands.pdadmin"), &demo_input).unwrap();
    for url in [standalone.url(), cluster.url()] {
        same_as_files(&demo, &demo_input, &format!("{url}?prefix=demo:"));
        same_as_files(&big, &mixed, &format!("{url}?prefix=big:"));
    }
    // The two sites shared one Redis under their own prefixes.
    let keys = cli(standalone.port, &["KEYS", "*"]);
    assert!(
        keys.lines()
            .all(|k| k.starts_with("demo:") || k.starts_with("big:"))
    );
}

#[test]
fn import_refuses_a_store_in_use_and_dry_runs_change_nothing() {
    let server = Server::start(&[]);
    let url = server.url();
    let (_d, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    let first = store(&["import", "--site", site, "--store", &url]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let again = store(&["import", "--site", site, "--store", &url]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("--replace"), "{}", stderr(&again));
    let before = exported(&demo, &url);
    assert_same(&before, &file_sessions(&demo), "imported");
    // --dry-run reads only.
    let out = run(
        &[
            "run",
            "samples/demo/commands.pdadmin",
            "--site",
            site,
            "--store",
            &url,
            "--dry-run",
            "-q",
        ],
        None,
    );
    assert!(stdout(&out).starts_with("# dry run"), "{}", stdout(&out));
    assert_eq!(exported(&demo, &url), before);
    // stats count what is there.
    let stats = stdout(&store(&["stats", "--site", site, "--store", &url]));
    assert!(
        stats.contains(&format!("sessions      {}", before.len())),
        "{stats}"
    );
    // --replace starts over from the site's files.
    let out = run(
        &[
            "exec",
            "--site",
            site,
            "--store",
            &url,
            "server",
            "task",
            "default-webseald-cruz",
            "sms",
            "session",
            "terminate",
            "all_sessions",
            "johnq",
            "-realm",
            "ibm.com",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(exported(&demo, &url), before);
    let out = store(&["import", "--replace", "--site", site, "--store", &url]);
    assert_eq!(code(&out), 0);
    assert_eq!(exported(&demo, &url), before);
}

#[test]
fn a_store_that_cannot_be_used_stops_the_run_before_it_starts() {
    let locked = Server::start(&["--requirepass", "s3cr3t-pw"]);
    let (_d, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    let cases = [
        (
            format!("redis://:wrong-pw@127.0.0.1:{}/0", locked.port),
            "authentication failed",
        ),
        (format!("redis://127.0.0.1:{}/0", locked.port), "NOAUTH"),
        (
            format!("redis://:s3cr3t-pw@127.0.0.1:{}/99", locked.port),
            "DB",
        ),
        ("redis://:s3cr3t-pw@127.0.0.1:1/0".to_string(), "refused"),
    ];
    for (url, reason) in &cases {
        let out = run(
            &[
                "run",
                "samples/demo/commands.pdadmin",
                "--site",
                site,
                "--store",
                url,
            ],
            None,
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{url}: {err}");
        assert!(
            err.to_lowercase().contains(&reason.to_lowercase()),
            "{url}: {err}"
        );
        assert!(
            !err.contains("wrong-pw") && !err.contains("s3cr3t-pw"),
            "{err}"
        );
        assert!(stdout(&out).is_empty());
    }
    // The password from the environment works, and is never printed either.
    let url = format!("redis://127.0.0.1:{}/0", locked.port);
    let out = run_cmd(
        bin()
            .args(["store", "import", "--site", site, "--store", &url])
            .env("SMSREFRESH_STORE_PASSWORD", "s3cr3t-pw"),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cr3t-pw"));
}

/// Waits until a run has written some results to `results` and is still running: the moment
/// to take its store away.
fn wait_until_under_way(results: &Path, child: &mut std::process::Child) {
    let t = std::time::Instant::now();
    while std::fs::metadata(results).map_or(0, |m| m.len()) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the run wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the kill"
    );
}

/// The users of a generated site, with their sessions' realms.
fn users_and_realms(site: &Path) -> Vec<(String, BTreeSet<String>)> {
    let mut by_user: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for s in sessions(site) {
        by_user
            .entry(s["user"].as_str().unwrap().to_string())
            .or_default()
            .insert(s["realm"].as_str().unwrap().to_string());
    }
    by_user.into_iter().collect()
}

fn spawn_run(
    site: &Path,
    input: &Path,
    url: &str,
    now: &str,
    extra: &[&str],
) -> std::process::Child {
    bin()
        .args([
            "run",
            input.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
        ])
        .args(["--store", url, "--format", "jsonl", "--now", now, "-q"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_engines_at_once_never_lose_an_update_nor_resurrect_a_session() {
    let server = Server::start(&[]);
    let url = server.url();
    let (_g, site) = generated(3_000, 5);
    let topo = smsrefresh::site::Topology::load(&site.join("topology.yaml")).unwrap();
    // The terminating engine uses a server that serves only some replica sets, so the
    // refreshing engine's work on the others must survive.
    let server_def = topo
        .servers
        .iter()
        .find(|s| s.replica_sets.len() < topo.replica_sets.len())
        .expect("a server that serves some replica sets");
    let served: BTreeSet<String> = server_def
        .replica_sets
        .iter()
        .map(|rs| topo.replica_set_def(*rs).name.clone())
        .collect();
    let work = tempfile::tempdir().unwrap();
    let (terminate, refresh) = (work.path().join("t.pdadmin"), work.path().join("r.pdadmin"));
    let mut t = String::new();
    let mut r = String::new();
    for (user, realms) in users_and_realms(&site) {
        t.push_str(&format!(
            "server task {} terminate all_sessions {user}\n",
            server_def.name
        ));
        for realm in realms {
            r.push_str(&format!(
                "server task {} sms session refresh all_sessions {user} -realm {realm}\n",
                topo.servers[0].name
            ));
        }
    }
    std::fs::write(&terminate, t).unwrap();
    std::fs::write(&refresh, r).unwrap();
    let later = format_timestamp(GEN_EPOCH + 60);
    for round in 0..10 {
        import(&site, &url);
        let a = spawn_run(&site, &terminate, &url, &now(), &[]);
        let b = spawn_run(&site, &refresh, &url, &later, &[]);
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert_eq!(
            a.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&a.stderr)
        );
        assert_eq!(
            b.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&b.stderr)
        );
        let after: Vec<serde_json::Value> = exported(&site, &url)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for s in &after {
            let rs = s["replica_set"].as_str().unwrap();
            assert!(
                !served.contains(rs),
                "round {round}: a terminated session came back: {s}"
            );
            assert_eq!(
                s["last_refresh"].as_str(),
                Some(later.as_str()),
                "round {round}: a refresh was lost: {s}"
            );
        }
        assert!(!after.is_empty());
    }
}

/// The mixed workload without the commands that show the store as it is (lists and
/// counts), which the contract sets aside for shards running at once.
fn no_lists(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains(" list") && !l.contains(" show "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn three_shards_at_once_make_one_run() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let (_g, site) = generated(20_000, 9);
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("mixed.pdadmin");
    std::fs::write(&input, no_lists(&workload(&site, 20_000, 20_000, 3))).unwrap();
    let (_f, files) = copy_site(&site);
    let (code_one, one) = run_input(&files, &input, &[]);
    import(&site, &url);
    let shards: Vec<_> = (1..=3)
        .map(|k| spawn_run(&site, &input, &url, &now(), &["--shard", &format!("{k}/3")]))
        .collect();
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut worst = 0;
    for s in shards {
        let out = s.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        worst = worst.max(out.status.code().unwrap());
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            lines.push((v["line"].as_u64().unwrap(), l.to_string()));
        }
    }
    lines.sort();
    let merged: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let single: Vec<&str> = one.lines().collect();
    assert_eq!(merged.len(), single.len(), "each line in exactly one shard");
    let merged: Vec<String> = merged.iter().map(|l| (*l).to_string()).collect();
    let single: Vec<String> = single.iter().map(|l| (*l).to_string()).collect();
    assert_same(&merged, &single, "the shards' results, by line");
    assert_eq!(worst, code_one);
    assert_same(&exported(&site, &url), &file_sessions(&files), "sessions");
}

#[test]
fn a_primary_killed_mid_run_loses_nothing_and_retry_failed_converges() {
    let mut cluster = Cluster::start();
    let url = cluster.url();
    let (_g, site) = generated(30_000, 13);
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("mixed.pdadmin");
    let text = no_lists(&workload(&site, 30_000, 60_000, 5));
    std::fs::write(&input, &text).unwrap();
    let lines = smsrefresh::command::reader::CommandReader::new(text.as_bytes()).count();
    let (_f, files) = copy_site(&site);
    let (_, clean) = run_input(&files, &input, &[]);
    import(&site, &url);
    let results = work.path().join("results.jsonl");
    let child = bin()
        .args([
            "run",
            input.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
        ])
        .args([
            "--store",
            &url,
            "--format",
            "jsonl",
            "--now",
            &now(),
            "-q",
            "--jobs",
            "2",
        ])
        .args(["--store-timeout", "5s", "-o", results.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill a primary once the run is under way (some results written), before it ends.
    let mut child = child;
    wait_until_under_way(&results, &mut child);
    let victim = cluster.primaries()[0];
    cluster.nodes[victim].kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    let got = std::fs::read_to_string(&results).unwrap();
    assert_eq!(
        got.lines().count(),
        clean.lines().count(),
        "every line has a result"
    );
    assert_eq!(got.lines().count(), lines);
    // After the failover, running the failed lines again leaves what a clean run leaves.
    cluster.wait_until_ok();
    let retried = bin()
        .args(["run", "--retry-failed", results.to_str().unwrap()])
        .args(["--site", site.to_str().unwrap(), "--store", &url])
        .args(["--format", "jsonl", "--now", &now(), "-q"])
        .output()
        .unwrap();
    assert!(matches!(retried.status.code(), Some(0 | 1)));
    assert_same(
        &exported(&site, &url),
        &file_sessions(&files),
        "sessions after the retry",
    );
}

/// What use found: all six nodes of the cluster killed while a run executes. Every line
/// still gets a result, the lines the lost store touched are `SMR…E` errors, and the run
/// ends within the store timeout plus a little (it used to wait the full timeout again for
/// every batch, and did not end in two minutes), exit 1, no panic.
#[test]
fn a_whole_cluster_lost_mid_run_ends_within_the_store_timeout() {
    let mut cluster = Cluster::start();
    let url = cluster.url();
    let (_g, site) = generated(20_000, 17);
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("mixed.pdadmin");
    let text = no_lists(&workload(&site, 20_000, 80_000, 7));
    std::fs::write(&input, &text).unwrap();
    let lines = smsrefresh::command::reader::CommandReader::new(text.as_bytes()).count();
    import(&site, &url);
    let results = work.path().join("results.jsonl");
    let mut child = bin()
        .args(["run", input.to_str().unwrap(), "--site"])
        .arg(&site)
        .args(["--store", &url, "--format", "jsonl", "--now", &now(), "-q"])
        .args(["--store-timeout", "2s", "-o", results.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_under_way(&results, &mut child);
    for node in &mut cluster.nodes {
        node.kill();
    }
    let lost = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            lost.elapsed() < Duration::from_secs(60),
            "the run did not end a minute after the cluster was lost"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ended = lost.elapsed();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The store timeout (2 s), a round of reconnections, and the rest of the lines failing
    // at once: far from a timeout per batch.
    assert!(
        ended < Duration::from_secs(8),
        "{ended:?} from the loss to the end of the run"
    );
    let got: Vec<serde_json::Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), lines, "every line has a result");
    let unavailable = |r: &serde_json::Value| r["message_id"] == "SMRST0209E";
    let lost_lines = got.iter().filter(|r| unavailable(r)).count();
    assert!(lost_lines > 0, "the lines after the loss are store errors");
    assert!(
        got.iter()
            .filter(|r| unavailable(r))
            .all(|r| r["message"].as_str().unwrap().contains("unavailable")),
        "{:?}",
        got.iter().find(|r| unavailable(r))
    );
    assert!(
        got.iter().rev().take(200).any(unavailable),
        "the last lines ran after the loss"
    );
}

/// `store stats`: the number on its `sessions` line.
pub(super) fn stats_sessions(site: &str, url: &str) -> u64 {
    let out = store(&["stats", "--site", site, "--store", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("sessions"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Contract §11, "Safe to try, hard to mistype", as a newcomer following docs/redis.md meets
/// it on a real redis-server: `--no-save` is refused instead of silently keeping changes, a
/// database or prefix with no import is not an empty store, a password in topology.yaml is
/// refused with its line, wrong URLs and servers say what to check, and the summary and the
/// report name the store and say how changes were kept.
#[test]
fn redis_is_safe_to_try_and_hard_to_mistype() {
    let server = Server::start(&[]);
    let url = server.url();
    let (_d, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    import(&demo, &url);
    let before = stats_sessions(site, &url);
    assert!(before > 100);

    // --no-save on a store that keeps each change: exit 2 before anything runs.
    let terminate =
        "server task default-webseald-cruz sms session terminate all_sessions dave -realm ibm.com";
    let no_save: [Vec<&str>; 3] = [
        vec![
            "run",
            "--site",
            site,
            "--store",
            &url,
            "--no-save",
            "samples/demo/commands.pdadmin",
        ],
        vec![
            "exec",
            "--site",
            site,
            "--store",
            &url,
            "--no-save",
            terminate,
        ],
        vec!["shell", "--site", site, "--store", &url, "--no-save"],
    ];
    for args in &no_save {
        let out = run(args, Some(&format!("{terminate}\n")));
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(
            err.contains("--no-save") && err.contains("--dry-run"),
            "{err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}: nothing ran");
        assert_eq!(
            stats_sessions(site, &url),
            before,
            "{args:?} changed the store"
        );
    }
    // --dry-run is the safe way: it reads only.
    let dry = run(
        &[
            "run",
            "--site",
            site,
            "--store",
            &url,
            "--dry-run",
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    assert_eq!(code(&dry), 1, "{}", stderr(&dry));
    assert_eq!(stats_sessions(site, &url), before);

    // A database or a prefix where nothing was imported: exit 2 naming the URL, for every
    // subcommand but import.
    let other_prefix = format!("{url}?prefix=other:");
    let other_db = format!("redis://127.0.0.1:{}/3", server.port);
    for empty in [&other_prefix, &other_db] {
        for args in [
            vec!["store", "stats", "--site", site, "--store", empty],
            vec!["store", "export", "--site", site, "--store", empty],
            vec![
                "run",
                "--site",
                site,
                "--store",
                empty,
                "samples/demo/commands.pdadmin",
            ],
            vec!["exec", "--site", site, "--store", empty, "server list"],
            vec![
                "plan",
                "--site",
                site,
                "--store",
                empty,
                "policies/refresh-payroll-managers.yaml",
            ],
        ] {
            let out = run(&args, None);
            let err = stderr(&out);
            assert_eq!(code(&out), 2, "{args:?}: {err}");
            assert!(
                err.contains("nothing is imported") && err.contains(empty.as_str()),
                "{args:?}: {err}"
            );
        }
    }
    let out = store(&["import", "--site", site, "--store", &other_prefix]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stats_sessions(site, &other_prefix), before);

    // A password in topology.yaml's store: names the file, line and key, never the password.
    let (_p, with_pw) = demo_copy();
    let topo = with_pw.join("topology.yaml");
    let text = std::fs::read_to_string(&topo).unwrap();
    let line = text.lines().count() + 1;
    std::fs::write(
        &topo,
        format!(
            "{text}store: redis://:hunter2@127.0.0.1:{}/0\n",
            server.port
        ),
    )
    .unwrap();
    let out = run(
        &["exec", "--site", with_pw.to_str().unwrap(), "server list"],
        None,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains(&format!("{}:{line}", topo.display()))
            && err.contains("store")
            && err.contains("SMSREFRESH_STORE_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    // Messages that say what to check.
    let locked = Server::start(&["--requirepass", "s3cr3t-pw"]);
    let cases = [
        (format!("{url}?prefx=a:"), vec!["is wrong", "prefx"]),
        (format!("{url}?prefix=a{{b}}:"), vec!["is wrong", "prefix"]),
        (
            format!("rediss://127.0.0.1:{}/0", server.port),
            vec!["TLS handshake", "speak TLS"],
        ),
        (
            format!("redis://127.0.0.1:{}/0", locked.port),
            vec![
                "wants a password",
                "redis://:PASSWORD@",
                "SMSREFRESH_STORE_PASSWORD",
            ],
        ),
    ];
    for (bad, says) in &cases {
        let out = run(
            &[
                "store",
                "stats",
                "--site",
                site,
                "--store",
                bad,
                "--store-timeout",
                "1s",
            ],
            None,
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{bad}: {err}");
        assert!(!err.contains("is unavailable: unknown URL"), "{err}");
        for s in says {
            assert!(err.contains(s), "{bad}: `{s}` in {err}");
        }
    }

    // The audit: the summary and the report name the store and how changes were kept.
    let report = demo.parent().unwrap().join("report.json");
    let with_pw = format!("redis://:s3cr3t-pw@127.0.0.1:{}/0", locked.port);
    import(&demo, &with_pw);
    let out = run(
        &[
            "run",
            "--site",
            site,
            "--store",
            &with_pw,
            "--report",
            report.to_str().unwrap(),
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    let redacted = format!("redis://:***@127.0.0.1:{}/0", locked.port);
    assert!(
        err.contains(&format!(
            "store {redacted}: changes kept in the store as each command ran"
        )),
        "{err}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["store"], redacted.as_str());
    assert_eq!(r["changes"], "kept in the store as each command ran");
    assert_eq!(r["saved"], false);
    assert!(
        !std::fs::read_to_string(&report)
            .unwrap()
            .contains("s3cr3t-pw")
    );
    assert!(!err.contains("s3cr3t-pw"));

    // A shard says it is one, and how many lines it left to the others.
    let out = run(
        &[
            "run",
            "--site",
            site,
            "--store",
            &url,
            "--dry-run",
            "--shard",
            "2/3",
            "--report",
            report.to_str().unwrap(),
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    let err = stderr(&out);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let ran = r["counts"]["commands"].as_u64().unwrap();
    let left = r["shard"]["lines_left_to_other_shards"].as_u64().unwrap();
    assert_eq!(r["shard"]["shard"], "2/3");
    assert_eq!(ran + left, 27, "every line of the demo is in one shard");
    assert!(
        err.contains(&format!(
            "shard 2/3: {ran} lines ran here, {left} lines left to the other shards"
        )),
        "{err}"
    );

    // A store of another layout (an older smsrefresh's): every command but `store import
    // --replace` stops with what to do, `--add` included; the replace starts afresh.
    server.cli(&["HSET", "smsrefresh:meta", "layout", "1"]);
    for args in [
        vec!["store", "stats", "--site", site, "--store", &url],
        vec!["store", "import", "--add", "--site", site, "--store", &url],
        vec![
            "run",
            "--site",
            site,
            "--store",
            &url,
            "samples/demo/commands.pdadmin",
        ],
    ] {
        let out = run(&args, None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("says layout 1"), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("store import --replace"),
            "{}",
            stderr(&out)
        );
    }
    import(&demo, &url);
    assert_eq!(stats_sessions(site, &url), before);
}
