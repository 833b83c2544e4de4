//! `gen`: deterministic per seed, and its sites load and refresh.

use super::util::*;

fn generate(dir: &std::path::Path, seed: &str) {
    let out = run(
        &[
            "gen",
            "--out",
            dir.to_str().unwrap(),
            "--users",
            "500",
            "--realms",
            "3",
            "--servers",
            "5",
            "--seed",
            seed,
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&a, "42");
    generate(&b, "42");
    generate(&c, "43");
    for f in [
        "topology.yaml",
        "registry.jsonl",
        "sessions.jsonl",
        "users.csv",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_ne!(
        std::fs::read(a.join("sessions.jsonl")).unwrap(),
        std::fs::read(c.join("sessions.jsonl")).unwrap()
    );
}

#[test]
fn generated_site_has_realistic_shapes_and_refreshes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    generate(&dir, "7");
    let site = smsrefresh::site::Site::load(&dir).unwrap();
    assert_eq!(site.topology.realms.len(), 3);
    assert_eq!(site.topology.servers.len(), 5);
    assert!(
        site.topology
            .servers
            .iter()
            .all(|s| s.name.contains("-webseald-"))
    );
    assert_eq!(site.registry.len(), 500);
    assert!(
        site.registry
            .users()
            .iter()
            .all(|u| (5..=15).contains(&u.groups().len()))
    );
    let n = site.store.len().unwrap();
    assert!((500..=2500).contains(&n), "{n}");
    let all = sessions(&dir);
    let mut per_user = std::collections::HashMap::new();
    for s in &all {
        *per_user
            .entry(s["user"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let c = &s["credential"];
        for k in [
            "AZN_CRED_PRINCIPAL_NAME",
            "AZN_CRED_GROUPS",
            "AZN_CRED_AUTH_METHOD",
            "authentication_level",
        ] {
            assert!(c.get(k).is_some(), "{k}");
        }
    }
    assert!(per_user.values().all(|n| (1..=5).contains(n)));
    // Refresh the first user: exec works on a generated site.
    let realm = all[0]["realm"].as_str().unwrap();
    let cmd = format!(
        "server task {} sms session refresh all_sessions user0000001 -realm {realm}",
        all[0]["server"].as_str().unwrap()
    );
    let out = run(
        &["exec", "--site", dir.to_str().unwrap(), "--no-save", &cmd],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("DPWWA2043I"));
    // users.csv names every user once, in their home realm, where most of their sessions are.
    let csv = std::fs::read_to_string(dir.join("users.csv")).unwrap();
    assert_eq!(csv.lines().count(), 501);
    assert!(csv.starts_with("user,realm\nuser0000001,realm"));
    let out = run(
        &[
            "run",
            "--site",
            dir.to_str().unwrap(),
            "--no-save",
            "-q",
            "--format",
            "jsonl",
            dir.join("users.csv").to_str().unwrap(),
        ],
        None,
    );
    let r = json_lines(&out);
    assert_eq!(r.len(), 500);
    assert!(r.iter().filter(|x| x["status"] == "ok").count() > 400);
}

#[test]
fn bench_reports_every_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let svg = tmp.path().join("jobs.svg");
    let out = run(
        &[
            "bench",
            "--users",
            "1500",
            "--runs",
            "1",
            "--jobs",
            "1,2",
            "--workload",
            "mix",
            "--json",
            "--workdir",
            work.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["users"], 1500);
    assert_eq!(r["workload"], "mix");
    assert!(r["sessions"].as_u64().unwrap() > 1500);
    assert!(r["sessions_acted"].as_u64().unwrap() > 0);
    assert_eq!(r["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(r["jobs"][1]["jobs"], 2);
    for key in [
        "load_s",
        "sequential_execute_s",
        "io_floor_s",
        "end_to_end_s",
    ] {
        assert!(r[key]["median"].as_f64().unwrap() > 0.0, "{key}");
    }
    for key in ["p50_us", "p99_us", "max_us"] {
        assert!(r["latency"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(r["parallel_over_sequential"].as_f64().unwrap() > 0.0);
    // The headline: a JSON Lines site as gen leaves it, a shuffled CSV, child runs.
    let t = &r["truth"];
    assert!(t["site"].as_str().unwrap().ends_with("site-jsonl"));
    assert_eq!(
        t["sessions_refreshed"], t["sessions"],
        "every session refreshed"
    );
    for key in ["one_row_s", "full_s", "io_floor_s"] {
        assert!(t[key]["median"].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(t["one_row_peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(t["bytes_per_session"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(work.join("truth-all.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_ne!(rows, sorted, "the rows are shuffled");
    sorted.dedup();
    assert_eq!(sorted.len(), rows.len(), "one row per (user, realm)");
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .matches("<circle")
            .count()
            == 2
    );
    // The generated site is reused by the next bench in the same workdir; a table by default.
    let again = run(
        &[
            "bench",
            "--users",
            "1500",
            "--runs",
            "1",
            "--jobs",
            "1",
            "--workdir",
            work.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&again), 0);
    assert!(stdout(&again).contains("sequential baseline:"));
    assert!(stdout(&again).starts_with("as administrators run it:"));
    assert!(stdout(&again).contains("memory: peak RSS of the one-row run / sessions"));
    assert!(!stderr(&again).contains("generating"));
}
