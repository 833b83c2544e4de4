//! The parallel engine gives exactly the results of executing the commands one by one in
//! input order, for duplicates, terminate-then-refresh, session ids and lists; and `--jobs 1`
//! and `--jobs 2` produce the same bytes on a large generated site.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use smsrefresh::engine::{BatchConfig, Engine, Executor};
use smsrefresh::input::{CommandSource, Job};
use smsrefresh::output::{Format, render};
use smsrefresh::synthetic::{GenConfig, generate};

use super::util::*;

/// A deterministic mixed workload over a generated site: refreshes and terminations of users
/// (some unknown, many repeated), session ids (some bogus), plain WebSEAL forms, lists, and
/// invalid lines.
pub(super) fn workload(site: &Path, users: u64, lines: usize, seed: u64) -> String {
    let all = sessions(site);
    let topo = smsrefresh::site::Topology::load(&site.join("topology.yaml")).unwrap();
    let mut x = seed;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let realms: Vec<&str> = topo.realms.iter().map(|r| r.name.as_str()).collect();
    let servers: Vec<&str> = topo.servers.iter().map(|s| s.name.as_str()).collect();
    let mut out = String::new();
    for _ in 0..lines {
        let user = format!("user{:07}", 1 + next(users + users / 20));
        let realm = realms[next(realms.len() as u64) as usize];
        let server = servers[next(servers.len() as u64) as usize];
        let id = if next(10) == 0 {
            "bogus_id".to_string()
        } else {
            all[next(all.len() as u64) as usize]["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let line = match next(100) {
            0..=44 => format!(
                "server task {server} sms session refresh all_sessions {user} -realm {realm}"
            ),
            45..=59 => format!(
                "server task {server} sms session terminate all_sessions {user} -realm {realm}"
            ),
            60..=69 => {
                format!("server task {server} sms session refresh session {id} -realm {realm}")
            }
            70..=76 => {
                format!("server task {server} sms session terminate session {id} -realm {realm}")
            }
            77..=82 => format!("server task {server} refresh all_sessions {user}"),
            83..=86 => format!("server task {server} terminate all_sessions {user}"),
            87..=89 => format!("server task {server} terminate session {id}"),
            90 => format!("server task {server} sms session list -realm {realm} user00001* 5"),
            91 => format!("server task {server} sms replica set show www.{realm}"),
            92 => "server list".to_string(),
            93 => format!(
                "server task nowhere-webseald-x sms session refresh all_sessions {user} -realm {realm}"
            ),
            94 => format!(
                "server task {server} sms session refresh all_sessions {user} -realm nowhere"
            ),
            95 => "server task x sms bogus".to_string(),
            // Repeat the last user's refresh: duplicates within a chunk.
            _ => format!(
                "server task {server} sms session refresh all_sessions {user} -realm {realm}\nserver task {server} sms session refresh all_sessions {user} -realm {realm}"
            ),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

fn jobs(text: &str) -> Vec<Job> {
    CommandSource::new(text.as_bytes())
        .map(|j| j.unwrap())
        .collect()
}

#[test]
fn parallel_results_equal_one_by_one_execution() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    generate(&GenConfig {
        out: dir.clone(),
        users: 5000,
        realms: 3,
        servers: 5,
        seed: 11,
        ..GenConfig::default()
    })
    .unwrap();
    let text = workload(&dir, 5000, 20_000, 3);
    let all_jobs = jobs(&text);
    let source: Arc<str> = Arc::from("w");
    let now = Some(smsrefresh::synthetic::GEN_EPOCH);

    // One by one: each command locks what it needs, in input order.
    let sequential = Engine::load(&dir, now, false).unwrap();
    let mut want = Vec::new();
    for job in &all_jobs {
        let r = match &job.kind {
            smsrefresh::input::JobKind::Command(cmd) => {
                sequential.execute(&source, job.line, &cmd.to_string(), Ok((**cmd).clone()))
            }
            smsrefresh::input::JobKind::Invalid { message, detail } => sequential.invalid(
                &source,
                job.line,
                &job.raw,
                smsrefresh::exec::Outcome::new(message, &[detail]),
            ),
        };
        render(Format::Jsonl, &[r], &mut want);
    }

    // In parallel, in uneven chunks so that groups and barriers fall everywhere.
    let parallel = Engine::load(&dir, now, false).unwrap();
    let mut ex = Executor::new(
        &parallel,
        BatchConfig {
            jobs: 2,
            fail_fast: false,
            rate: 0.0,
        },
    )
    .unwrap();
    let mut got = Vec::new();
    for chunk in all_jobs.chunks(1777) {
        render(Format::Jsonl, &ex.run_chunk(&source, chunk), &mut got);
    }
    let (want, got) = (
        String::from_utf8(want).unwrap(),
        String::from_utf8(got).unwrap(),
    );
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        assert_eq!(w, g, "result {} differs", i + 1);
    }
    assert_eq!(want.lines().count(), got.lines().count());
    // The workload did real work of every kind.
    for id in [
        "DPWWA2043I",
        "SMRSS0001I",
        "HPDMG0754W",
        "SMRSS0101W",
        "SMRSS0202E",
        "SMRSS0002I",
        "SMRCM0205E",
    ] {
        assert!(
            got.contains(&format!("\"message_id\":\"{id}\"")),
            "{id} never occurred"
        );
    }

    // And the two stores ended equal.
    let dump = |e: &Engine| {
        let mut v = Vec::new();
        e.site.store.export(&mut |s| v.push(s.clone())).unwrap();
        v
    };
    assert_eq!(dump(&sequential), dump(&parallel));
}

#[test]
fn jobs_1_and_jobs_2_give_the_same_bytes_on_100k_users() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        let out = run(
            &[
                "gen",
                "--out",
                d.to_str().unwrap(),
                "--users",
                "100000",
                "--seed",
                "5",
            ],
            None,
        );
        assert_eq!(code(&out), 0);
    }
    let input = tmp.path().join("mixed.pdadmin");
    std::fs::write(&input, workload(&a, 100_000, 60_000, 9)).unwrap();
    let go = |site: &Path, jobs: &str| {
        let out = run_site(
            site,
            &[
                "--jobs",
                jobs,
                "--now",
                "2026-11-27T00:00:00Z",
                "--format",
                "jsonl",
                "-q",
                input.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code(&out), 1, "some lines fail on purpose");
        out.stdout
    };
    let one = go(&a, "1");
    let two = go(&b, "2");
    assert!(one == two, "--jobs 1 and --jobs 2 results differ");
    assert!(one.len() > 60_000 * 100);
    assert_eq!(
        std::fs::read(a.join("sessions.jsonl")).unwrap(),
        std::fs::read(b.join("sessions.jsonl")).unwrap()
    );
}
