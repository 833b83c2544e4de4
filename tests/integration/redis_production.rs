//! Redis as production runs it (contract §11): TLS verified against the deployment's own CA,
//! on a standalone server and a six-node cluster that speak TLS only; and a store that does
//! not grow, however many sessions end in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use smsrefresh::ids::UserKey;
use smsrefresh::run::Shard;

use super::redis::{
    assert_same, copy_site, exported, generated, now, run_input, same_as_files, store,
};
use super::redis_servers::{Cluster, Server};
use super::slapd_server::Tls;
use super::util::*;

/// A fresh CA and a server certificate for 127.0.0.1, in `dir/name`.
fn certificates(dir: &Path, name: &str) -> Tls {
    let at = dir.join(name);
    std::fs::create_dir(&at).unwrap();
    Tls::create(&at)
}

/// `smsrefresh ARGS…` with `SMSREFRESH_STORE_CA` set to `ca`.
fn with_ca_env(ca: &Path, args: &[&str]) -> std::process::Output {
    run_cmd(bin().args(args).env("SMSREFRESH_STORE_CA", ca), None)
}

/// A store that cannot be trusted stops the run before anything changes: exit 2, the URL
/// (redacted) and the reason named, no password printed, nothing written to standard output.
fn refused(out: &std::process::Output, location: &str, reason: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 2, "{err}");
    assert!(err.contains(location), "{location}: {err}");
    assert!(err.contains(reason), "{reason}: {err}");
    assert!(!err.contains("s3cr3t-pw"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(out).is_empty());
}

#[test]
fn tls_stores_verify_the_deployments_ca_and_give_the_site_files_answers() {
    let certs = tempfile::tempdir().unwrap();
    let ours = certificates(certs.path(), "ours");
    let theirs = certificates(certs.path(), "theirs");
    let server = Server::start_tls(&ours, &["--requirepass", "s3cr3t-pw"]);
    let cluster = Cluster::start_tls(&ours);
    let (_d, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("demo.pdadmin");
    std::fs::copy(demo.join("commands.pdadmin"), &input).unwrap();
    let ca = ours.ca.to_str().unwrap();
    let standalone = format!("rediss://:s3cr3t-pw@127.0.0.1:{}/0", server.port);
    let tls_cluster = cluster.url();
    assert!(tls_cluster.starts_with("rediss+cluster://"));

    // With the deployment's CA, in the URL: the same answers as the site files.
    same_as_files(&demo, &input, &format!("{standalone}?prefix=demo:&ca={ca}"));
    same_as_files(
        &demo,
        &input,
        &format!("{tls_cluster}?prefix=demo:&ca={ca}"),
    );
    // From the environment instead of the URL.
    let url = format!("{tls_cluster}?prefix=demo:");
    let out = with_ca_env(
        &ours.ca,
        &["store", "export", "--site", site, "--store", &url],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).lines().count() > 10);

    // A server whose certificate another CA signed: exit 2, nothing changed, no password.
    let before_standalone = exported(&demo, &format!("{standalone}?prefix=demo:&ca={ca}"));
    let before_cluster = exported(&demo, &format!("{tls_cluster}?prefix=demo:&ca={ca}"));
    let wrong = theirs.ca.to_str().unwrap();
    let redacted = format!("rediss://:***@127.0.0.1:{}/0", server.port);
    // The demo's commands on `url`, with SMSREFRESH_STORE_CA set to `ca` when given.
    let run_demo = |url: &str, ca: Option<&Path>| {
        let mut cmd = bin();
        cmd.args([
            "run",
            input.to_str().unwrap(),
            "--site",
            site,
            "--store",
            url,
        ]);
        if let Some(ca) = ca {
            cmd.env("SMSREFRESH_STORE_CA", ca);
        }
        run_cmd(&mut cmd, None)
    };
    for (url, location) in [
        (
            format!("{standalone}?prefix=demo:&ca={wrong}"),
            redacted.as_str(),
        ),
        (
            format!("{tls_cluster}?prefix=demo:&ca={wrong}"),
            tls_cluster.as_str(),
        ),
    ] {
        let out = run_demo(&url, None);
        refused(&out, location, "cannot be trusted");
        assert!(stderr(&out).contains("does not verify against the CA in"));
        assert!(stderr(&out).contains(wrong), "{}", stderr(&out));
    }
    let url = format!("{standalone}?prefix=demo:");
    let out = run_demo(&url, Some(&theirs.ca));
    refused(&out, &redacted, "does not verify against the CA in");
    // No CA at all: the system's roots do not know the test CA.
    let out = run(&["store", "stats", "--site", site, "--store", &url], None);
    refused(&out, &redacted, "the system's root certificates");
    assert_same(
        &exported(&demo, &format!("{standalone}?prefix=demo:&ca={ca}")),
        &before_standalone,
        "the standalone store after the refusals",
    );
    assert_same(
        &exported(&demo, &format!("{tls_cluster}?prefix=demo:&ca={ca}")),
        &before_cluster,
        "the cluster after the refusals",
    );

    // What cannot be a TLS store: said before connecting, as a bad URL.
    let port = server.port;
    for (url, reason) in [
        (
            format!("rediss://:s3cr3t-pw@127.0.0.1:{port}/0#insecure"),
            "TLS always verifies the server",
        ),
        (
            format!("redis://:s3cr3t-pw@127.0.0.1:{port}/0?ca={ca}"),
            "`ca=` is for TLS",
        ),
        (
            format!("rediss://:s3cr3t-pw@127.0.0.1:{port}/0?ca=/nonexistent/ca.pem"),
            "cannot be read",
        ),
        (
            format!(
                "rediss://:s3cr3t-pw@127.0.0.1:{port}/0?ca={}",
                ours.key.display()
            ),
            "holds no certificate",
        ),
    ] {
        let out = store(&["stats", "--site", site, "--store", &url]);
        let location = url.replace("s3cr3t-pw", "***");
        refused(&out, &location, reason);
    }
}

/// A small generator for the rounds' random choices (the same every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `INFO memory`'s `used_memory` and `DBSIZE` of a server.
fn memory_and_keys(server: &Server) -> (u64, u64) {
    let info = server.cli(&["INFO", "memory"]);
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let keys = server.cli(&["DBSIZE"]).trim().parse().unwrap();
    (used, keys)
}

/// The entries of the session-id index (every `smsrefresh:i{B}` hash), counted on the server.
fn index_entries(server: &Server) -> u64 {
    let count = "local n, c = 0, '0' \
        repeat local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000); c = r[1] \
        for _, k in ipairs(r[2]) do n = n + redis.call('HLEN', k) end until c == '0' return n";
    server
        .cli(&["EVAL", count, "0", "smsrefresh:i{*"])
        .trim()
        .parse()
        .unwrap()
}

/// `store import ARGS… --site SITE --store URL`, which must succeed.
fn import_ok(site: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", "--site", site.to_str().unwrap(), "--store", url];
    args.extend_from_slice(extra);
    let out = store(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    out
}

/// A session line of the site, as a new login of its user would make it: a new id, created
/// and last used at `stamp` (the generator's lines have fixed-width timestamps).
fn relogged(session: &serde_json::Value, line: &str, round: u32, stamp: &str) -> String {
    let id = session["id"].as_str().unwrap();
    let mut out = line.replacen(
        &format!("\"id\":\"{id}\""),
        &format!("\"id\":\"{id}.r{round}\""),
        1,
    );
    for key in ["\"created\":\"", "\"last_access\":\""] {
        let at = out.find(key).unwrap() + key.len();
        out.replace_range(at..at + stamp.len(), stamp);
    }
    out
}

/// Writes `lines` as the sessions of a copy of `site`, with no cache beside them.
fn site_with_sessions(site: &Path, lines: &[String]) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, copy) = copy_site(site);
    let _ = std::fs::remove_file(copy.join("sessions.bin"));
    std::fs::write(copy.join("sessions.jsonl"), lines.join("\n") + "\n").unwrap();
    (dir, copy)
}

/// Contract §11, "nothing grows forever": ten rounds of terminating a random half of a
/// 100k-user site's users and adding fresh sessions for them (`store import --add`, as
/// logins would) leave the store the size of a fresh import of what it holds — memory and
/// keys within 5 %, and exactly one index entry per held session; a sweep's purge removes
/// entries too; `--shard` still places `session ID` commands by their user for live ids and
/// in shard 1 for ended ones.
#[test]
fn a_store_that_runs_for_months_holds_only_what_its_sessions_need() {
    let server = Server::start(&[]);
    let url = server.url();
    let (_g, site) = generated(100_000, 5);
    let originals = sessions(&site);
    let text = std::fs::read_to_string(site.join("sessions.jsonl")).unwrap();
    let raw: Vec<&str> = text.lines().collect();
    let stamp = now();
    // The (realm, user) pairs, with each one's original sessions.
    let mut pairs: BTreeMap<(String, String), Vec<(&serde_json::Value, &str)>> = BTreeMap::new();
    for (s, line) in originals.iter().zip(&raw) {
        let key = (
            s["realm"].as_str().unwrap().to_string(),
            s["user"].as_str().unwrap().to_string(),
        );
        pairs.entry(key).or_default().push((s, line));
    }
    let pairs: Vec<_> = pairs.into_iter().collect();
    let (base_memory, _) = memory_and_keys(&server);
    import_ok(&site, &url, &[]);
    let work = tempfile::tempdir().unwrap();
    let mut rng = Lcg(42);
    let mut ended_live_id = String::new();
    for round in 1..=10 {
        let chosen: Vec<usize> = (0..pairs.len()).filter(|_| rng.below(2) == 0).collect();
        let input = work.path().join(format!("round{round}.pdadmin"));
        let mut commands = String::new();
        for &i in &chosen {
            let ((realm, user), held) = &pairs[i];
            let server_name = held[0].0["server"].as_str().unwrap();
            commands.push_str(&format!(
                "server task {server_name} sms session terminate all_sessions {user} -realm {realm}\n"
            ));
        }
        std::fs::write(&input, commands).unwrap();
        let (status, results) = run_input(&site, &input, &["--store", &url]);
        assert!(status <= 1, "round {round}: {results}");
        assert_eq!(results.lines().count(), chosen.len());
        // Fresh sessions for them, as logins would make: new ids, live now.
        let fresh: Vec<String> = chosen
            .iter()
            .flat_map(|&i| &pairs[i].1)
            .map(|&(s, line)| relogged(s, line, round, &stamp))
            .collect();
        if round == 10 {
            ended_live_id = format!("{}.r9", pairs[chosen[0]].1[0].0["id"].as_str().unwrap());
        }
        let (_f, logins) = site_with_sessions(&site, &fresh);
        let out = import_ok(&logins, &url, &["--add"]);
        assert!(
            stderr(&out).contains(&format!("added {} sessions", fresh.len())),
            "{}",
            stderr(&out)
        );
    }
    let (rounds_memory, rounds_keys) = memory_and_keys(&server);
    let held = exported(&site, &url);
    assert_eq!(
        index_entries(&server),
        held.len() as u64,
        "one index entry per held session"
    );

    // A fresh import of exactly what the store holds, on the emptied server.
    let (_h, now_held) = site_with_sessions(&site, &held);
    server.cli(&["FLUSHALL", "SYNC"]);
    let (fresh_base, _) = memory_and_keys(&server);
    import_ok(&now_held, &url, &[]);
    let (fresh_memory, fresh_keys) = memory_and_keys(&server);
    let (grown, fresh) = (rounds_memory - base_memory, fresh_memory - fresh_base);
    eprintln!(
        "after 10 rounds: {grown} bytes, {rounds_keys} keys; a fresh import of the same {} sessions: {fresh} bytes, {fresh_keys} keys",
        held.len()
    );
    let within = |a: u64, b: u64| a.abs_diff(b) * 20 <= b;
    assert!(within(grown, fresh), "used_memory {grown} against {fresh}");
    assert!(
        within(rounds_keys, fresh_keys),
        "DBSIZE {rounds_keys} against {fresh_keys}"
    );
    // `--shard`: live ids go to their user's shard, an ended id to shard 1.
    let mut lines = Vec::new();
    let mut want = Vec::new();
    for i in 0..30 {
        let s: serde_json::Value = serde_json::from_str(&held[i * held.len() / 30]).unwrap();
        let user = s["user"].as_str().unwrap();
        lines.push(format!(
            "server task {} sms session refresh session {} -realm {}",
            s["server"].as_str().unwrap(),
            s["id"].as_str().unwrap(),
            s["realm"].as_str().unwrap()
        ));
        want.push(Shard::of_user(3, &UserKey::of(user)));
    }
    let ended = originals
        .iter()
        .find(|s| ended_live_id.starts_with(s["id"].as_str().unwrap()))
        .unwrap();
    lines.push(format!(
        "server task {} sms session refresh session {ended_live_id} -realm {}",
        ended["server"].as_str().unwrap(),
        ended["realm"].as_str().unwrap()
    ));
    want.push(1);
    let input = work.path().join("by-id.pdadmin");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mut placed = vec![Vec::new(); lines.len()];
    for k in 1..=3u64 {
        let shard = format!("{k}/3");
        let (_, results) = run_input(&now_held, &input, &["--store", &url, "--shard", &shard]);
        for r in results.lines() {
            let r: serde_json::Value = serde_json::from_str(r).unwrap();
            let line = r["line"].as_u64().unwrap() as usize - 1;
            placed[line].push(k);
            let live = line < 30;
            assert_eq!(r["status"] == "ok", live, "{r}");
        }
    }
    let placed: Vec<u64> = placed
        .iter()
        .map(|p| {
            assert_eq!(p.len(), 1, "each line in exactly one shard: {placed:?}");
            p[0]
        })
        .collect();
    assert_eq!(placed, want);

    // A sweep's purge removes the index entries of the expired sessions it removes.
    let realm = originals[0]["realm"].as_str().unwrap();
    let policy = work.path().join("sweep.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nname: sweep\naction: terminate\nrealm: {realm}\ntargets:\n  all_users: true\nsessions:\n  idle_longer_than: 1s\n"
        ),
    )
    .unwrap();
    let out = run(
        &[
            "run",
            "--policy",
            policy.to_str().unwrap(),
            "--site",
            now_held.to_str().unwrap(),
            "--store",
            &url,
            "--now",
            "2030-01-01T00:00:00Z",
            "-q",
        ],
        None,
    );
    assert!(code(&out) <= 1, "{}", stderr(&out));
    let after: BTreeSet<String> = exported(&now_held, &url).into_iter().collect();
    assert!(after.len() < held.len() && !after.is_empty());
    assert!(
        after
            .iter()
            .all(|l| !l.contains(&format!("\"realm\":\"{realm}\"")))
    );
    assert_eq!(
        index_entries(&server),
        after.len() as u64,
        "after the sweep"
    );
}

/// `bench --store` on a standalone server: the Redis run beside the site files, Redis memory
/// per session, and the anchor's Lua model driven from Rust on the same server, whose keys
/// it removes again.
#[test]
fn bench_through_redis_measures_the_lua_model_on_the_same_server() {
    let server = Server::start(&[]);
    let (_d, demo) = demo_copy();
    let work = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "bench",
            "--site",
            demo.to_str().unwrap(),
            "--store",
            &server.url(),
            "--runs",
            "1",
            "--workdir",
            work.path().to_str().unwrap(),
        ],
        None,
    );
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{}{text}", stderr(&out));
    assert!(text.contains("B/session"), "{text}");
    assert!(
        text.contains("Redis over the same Lua model driven from Rust on this server"),
        "{text}"
    );
    let anchor_keys = server.cli(&["--scan", "--pattern", "smsrefresh:anchor:*"]);
    assert!(anchor_keys.trim().is_empty(), "{anchor_keys}");
}
