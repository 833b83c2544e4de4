//! Reliability: crashes while saving lose nothing, concurrent use keeps the store consistent,
//! realms stay isolated, and hostile names and sizes neither break outputs nor exhaust memory.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use smsrefresh::credential::{Credential, CredentialBuilder};
use smsrefresh::ids::{RealmId, ReplicaSetId, ServerId, UserKey};
use smsrefresh::session::{Clock, Session};
use smsrefresh::store::{MemoryStore, Op, Refresher, Scope, SessionStore, Within};

use super::util::*;

/// Waits for a child with a deadline, so that a hang fails the test instead of CI.
fn wait(mut child: Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sigkill_at_random_moments_while_saving_leaves_the_old_or_the_new_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    assert_eq!(
        code(&run(
            &[
                "gen",
                "--out",
                site.to_str().unwrap(),
                "--users",
                "20000",
                "--seed",
                "3"
            ],
            None
        )),
        0
    );
    let users = site.join("users.csv");
    let args = |dir: &std::path::Path| {
        vec![
            "run".to_string(),
            "--site".into(),
            dir.display().to_string(),
            "--now".into(),
            "2026-11-27T00:00:00Z".into(),
            "-q".into(),
            "-o".into(),
            "/dev/null".into(),
            users.display().to_string(),
        ]
    };
    // The state a complete run leaves (the run is idempotent: a second one changes nothing).
    let old = std::fs::read(site.join("sessions.jsonl")).unwrap();
    let reference = tmp.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    for f in ["topology.yaml", "registry.jsonl", "sessions.jsonl"] {
        std::fs::copy(site.join(f), reference.join(f)).unwrap();
    }
    let start = Instant::now();
    assert_eq!(code(&run_cmd(bin().args(args(&reference)), None)), 0);
    let full = start.elapsed();
    let new = std::fs::read(reference.join("sessions.jsonl")).unwrap();
    assert_ne!(old, new);
    let (mut saw_old, mut saw_new) = (0, 0);
    for round in 0..50u32 {
        // Spread the kills over the whole run: loading, executing, and saving.
        let delay = full.mul_f64(f64::from(round % 25) / 20.0);
        let mut cmd = bin();
        cmd.args(args(&site))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = std::fs::read(site.join("sessions.jsonl")).unwrap();
        assert!(
            now == old || now == new,
            "round {round}: the snapshot is neither the old nor the new state"
        );
        if now == old {
            saw_old += 1;
        } else {
            saw_new += 1;
        }
        assert!(
            smsrefresh::site::Site::load(&site).is_ok(),
            "round {round}: the site does not load"
        );
    }
    assert!(
        saw_old > 0 && saw_new > 0,
        "kills landed before and after the save ({saw_old} old, {saw_new} new)"
    );
}

fn cred(generation: u64) -> Credential {
    let mut b = CredentialBuilder::default();
    b.push_str("gen", &generation.to_string()).unwrap();
    b.push_list("AZN_CRED_GROUPS", ["staff"]).unwrap();
    b.build()
}

fn session(seq: u64, id: String, user: usize, realm: u16) -> Session {
    Session {
        seq,
        id: id.into(),
        user: format!("u{user}").into(),
        realm: RealmId(realm),
        replica_set: ReplicaSetId(realm),
        server: ServerId(0),
        created: 0,
        last_access: 0,
        last_refresh: None,
        credential: cred(0),
    }
}

/// Every refresh sets the credential to one generation's.
struct Generation(Credential);

impl Refresher for Generation {
    fn fresh(&self, _user: &str) -> Option<&Credential> {
        Some(&self.0)
    }
    fn merge(&self, _old: &Credential, fresh: &Credential) -> Credential {
        fresh.clone()
    }
}

fn sessions_done(
    applied: &[Result<smsrefresh::store::Done, smsrefresh::store::StoreError>],
) -> usize {
    match applied {
        [Ok(smsrefresh::store::Done::Sessions(n))] => *n,
        _ => 0,
    }
}

#[test]
fn concurrent_refresh_terminate_insert_and_read_keep_every_invariant() {
    const USERS: usize = 3000;
    let store = MemoryStore::with_partitions(64);
    let clock = Clock {
        now: 1,
        timeout: 0,
        inactive_timeout: 0,
    };
    let next_id = AtomicU64::new(0);
    for u in 0..USERS {
        for _ in 0..3 {
            let n = next_id.fetch_add(1, Ordering::Relaxed);
            store
                .insert(&session(n, format!("s{n}"), u, (u % 2) as u16))
                .unwrap();
        }
    }
    let inserted = AtomicUsize::new(USERS * 3);
    let removed = AtomicUsize::new(0);
    let generation = AtomicU64::new(1);
    let refreshes = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (store, generation, refreshes) = (&store, &generation, &refreshes);
            s.spawn(move || {
                let mut x = 17 + t;
                for _ in 0..20_000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = (x >> 33) as usize % USERS;
                    let g = generation.fetch_add(1, Ordering::Relaxed);
                    let generation = Generation(cred(g));
                    let op = Op::RefreshUser {
                        realm: RealmId((u % 2) as u16),
                        user: UserKey::of(&format!("u{u}")),
                        scope: Scope::Realm,
                        fresh: &generation.0,
                    };
                    store.apply(&clock, &[op], &generation);
                    refreshes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        {
            let (store, removed, inserted, next_id) = (&store, &removed, &inserted, &next_id);
            s.spawn(move || {
                let mut x = 99u64;
                for i in 0..6000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = (x >> 33) as usize % USERS;
                    match i % 3 {
                        0 => {
                            let op = Op::TerminateUser {
                                realm: RealmId((u % 2) as u16),
                                user: UserKey::of(&format!("u{u}")),
                                scope: Scope::Realm,
                            };
                            let n =
                                sessions_done(&store.apply(&clock, &[op], &Generation(cred(0))));
                            removed.fetch_add(n, Ordering::Relaxed);
                        }
                        1 => {
                            let id = format!("s{}", (x >> 20) % next_id.load(Ordering::Relaxed));
                            let op = Op::TerminateSession {
                                id: &id,
                                within: Within::Realm(RealmId((u % 2) as u16)),
                            };
                            // An id in the other realm is left alone: count what went.
                            let n =
                                sessions_done(&store.apply(&clock, &[op], &Generation(cred(0))));
                            removed.fetch_add(n, Ordering::Relaxed);
                        }
                        _ => {
                            let n = next_id.fetch_add(1, Ordering::Relaxed);
                            store
                                .insert(&session(n, format!("s{n}"), u, (u % 2) as u16))
                                .unwrap();
                            inserted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        {
            let (store, reads, stop) = (&store, &reads, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Among a user's sessions, every refreshed one carries the same
                    // generation: a reader never sees half a user refreshed.
                    let mut gens: HashMap<(RealmId, String), HashSet<String>> = HashMap::new();
                    store
                        .scan(&clock, None, &mut |s| {
                            let g = s.credential.get_str("gen").unwrap_or("?").to_string();
                            if g != "0" {
                                gens.entry((s.realm, s.user.to_string()))
                                    .or_default()
                                    .insert(g);
                            }
                        })
                        .unwrap();
                    for (user, set) in &gens {
                        assert!(set.len() <= 1, "{user:?} seen half refreshed: {set:?}");
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Let the writers finish, then stop the reader; a writer that panicked never gets
        // there, so give up after a deadline instead of spinning for ever.
        let deadline = Instant::now() + Duration::from_secs(300);
        while refreshes.load(Ordering::Relaxed) < 40_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        refreshes.load(Ordering::Relaxed),
        40_000,
        "the writers did not finish"
    );
    let count = store.check_invariants().unwrap();
    assert_eq!(
        count,
        inserted.load(Ordering::Relaxed) - removed.load(Ordering::Relaxed),
        "no session lost or duplicated"
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    // Every id is unique and found where the index says.
    let mut ids = HashSet::new();
    store
        .export(&mut |s| assert!(ids.insert(s.id.to_string()), "duplicate {}", s.id))
        .unwrap();
    assert_eq!(ids.len(), count);
}

fn realm_dump(dir: &std::path::Path, realm: &str) -> Vec<serde_json::Value> {
    sessions(dir)
        .into_iter()
        .filter(|s| s["realm"] == realm)
        .collect()
}

/// A command acting in ibm.com, or a session command naming the wrong realm.
fn ibm_command() -> impl Strategy<Value = String> {
    let users = prop::sample::select(vec![
        "johnq",
        "alice",
        "partner_acme",
        "partner_globex",
        "Mary Jones",
        "brian",
    ]);
    let ids = prop::sample::select(vec![
        "ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00003",
        "ZGVmYXVsdC13ZWJzZWFsZC1wb3J0YWwx_00004",
        "ZGVmYXVsdC13ZWJzZWFsZC1wb3J0YWwx_00098",
        "ZGVmYXVsdC13ZWJzZWFsZC1wb3J0YWwx_00025",
        "d2ViMi13ZWJzZWFsZC1jcnV6_00005",
    ]);
    prop_oneof![
        users.clone().prop_map(|u| format!("server task default-webseald-cruz sms session refresh all_sessions \"{u}\" -realm ibm.com")),
        users.clone().prop_map(|u| format!("server task default-webseald-cruz sms session terminate all_sessions \"{u}\" -realm ibm.com")),
        ids.clone().prop_map(|i| format!("server task default-webseald-cruz sms session refresh session {i} -realm ibm.com")),
        ids.prop_map(|i| format!("server task default-webseald-cruz sms session terminate session {i} -realm ibm.com")),
        users.prop_map(|u| format!("server task web2-webseald-cruz terminate all_sessions \"{u}\"")),
        Just("server task default-webseald-cruz sms session list -realm ibm.com * 5".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn commands_for_one_realm_never_touch_another(cmds in proptest::collection::vec(ibm_command(), 1..12)) {
        let (_tmp, site) = demo_copy();
        let before = realm_dump(&site, "partners.example");
        let input = cmds.join("\n") + "\n";
        let out = run_site(&site, &["--now", "2026-11-28T00:00:00Z", "--format", "jsonl", "-q", "-"], Some(&input));
        prop_assert!(code(&out) <= 1);
        prop_assert_eq!(realm_dump(&site, "partners.example"), before);
        for (r, c) in json_lines(&out).iter().zip(&cmds) {
            // A session of partners.example named with -realm ibm.com is not found.
            if c.contains("_00004 ") || c.contains("_00098 ") || c.contains("_00025 ") {
                prop_assert_eq!(r["message_id"].as_str(), Some("SMRSS0202E"), "{}", c);
            }
        }
    }
}

#[test]
fn hostile_names_and_megabyte_values_through_every_input_and_output() {
    let (tmp, site) = demo_copy();
    let big = "m".repeat(1 << 20);
    let names = [
        "nl\nrow",
        "cr\rx",
        "tab\tx",
        "quote\"x",
        "back\\slash",
        "nul\u{0}x",
        "esc\u{1b}[31mx",
        "rtl\u{202e}x",
        big.as_str(),
    ];
    // Names hold no line breaks (contract §13): a quoted field never spans lines, so a name
    // with one is two bad rows in a CSV list (tests/integration/nothing_lost.rs).
    let csv: String = names
        .iter()
        .filter(|n| !n.contains('\n'))
        .map(|n| format!("\"{}\",ibm.com\n", n.replace('"', "\"\"")))
        .collect();
    // A command file holds one command per line: a name with a line break cannot be
    // written in one (it is two bad lines there, as in pdadmin), so it is left out.
    let cmds: String = names
        .iter()
        .filter(|n| !n.contains('\n'))
        .map(|n| format!("server task default-webseald-cruz sms session terminate all_sessions {} -realm ibm.com\n", smsrefresh::command::token::quote(n)))
        .collect();
    let policy = format!(
        "version: 1\nname: hostile\nrealm: ibm.com\naction: terminate\ntargets:\n  users: [{}]\n",
        names
            .iter()
            .map(|n| serde_json::to_string(n).unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(tmp.path().join("h.csv"), csv).unwrap();
    std::fs::write(tmp.path().join("h.pdadmin"), cmds).unwrap();
    std::fs::write(tmp.path().join("h.yaml"), policy).unwrap();
    let inputs: [Vec<String>; 3] = [
        vec![tmp.path().join("h.csv").display().to_string()],
        vec![tmp.path().join("h.pdadmin").display().to_string()],
        vec![
            "--policy".into(),
            tmp.path().join("h.yaml").display().to_string(),
        ],
    ];
    for input in &inputs {
        // Names hold no line breaks: in a command file or a CSV list such a name is two bad
        // lines (contract §13), so only a policy carries it.
        let names: Vec<&str> = if input[0].ends_with(".pdadmin") || input[0].ends_with(".csv") {
            names
                .iter()
                .copied()
                .filter(|n| !n.contains('\n'))
                .collect()
        } else {
            names.to_vec()
        };
        for format in ["pdadmin", "jsonl", "csv"] {
            let mut args = vec![
                "run",
                "--site",
                site.to_str().unwrap(),
                "--no-save",
                "-q",
                "--format",
                format,
            ];
            args.extend(input.iter().map(String::as_str));
            let out = run(&args, None);
            assert!(code(&out) <= 1, "{input:?} {format}: {}", stderr(&out));
            let text = stdout(&out);
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{202e}') && !text.contains('\u{0}'),
                "{input:?} {format}"
            );
            match format {
                // Each command: its echo line and its message line, nothing else.
                "pdadmin" => assert_eq!(text.lines().count(), 2 * names.len(), "{input:?}"),
                "jsonl" => {
                    let r = json_lines(&out);
                    assert_eq!(r.len(), names.len());
                    let users: Vec<&str> = r.iter().map(|x| x["user"].as_str().unwrap()).collect();
                    assert_eq!(users, names, "{input:?}: names survive exactly");
                }
                _ => {
                    let rows = csv::ReaderBuilder::new()
                        .from_reader(text.as_bytes())
                        .records()
                        .count();
                    assert_eq!(rows, names.len(), "{input:?}");
                }
            }
        }
    }
}

#[test]
fn hostile_realms_session_ids_and_attribute_values_stay_inside_their_results() {
    let (tmp, site) = demo_copy();
    let evil = [
        "x\npdadmin> forged",
        "esc\u{1b}]0;title\u{7}",
        "rtl\u{202e}",
        "q\"b\\",
        &"r".repeat(1 << 20),
    ];
    let mut cmds = String::new();
    for e in &evil {
        let q = smsrefresh::command::token::quote(e);
        if e.contains('\n') {
            continue;
        }
        cmds.push_str(&format!(
            "server task default-webseald-cruz sms session refresh all_sessions johnq -realm {q}\n"
        ));
        cmds.push_str(&format!(
            "server task default-webseald-cruz sms session terminate session {q} -realm ibm.com\n"
        ));
        cmds.push_str(&format!("server task {q} sms realm list\n"));
    }
    // Registry attribute values with hostile characters end up in credentials and snapshots.
    let reg = std::fs::read_to_string(site.join("registry.yaml")).unwrap();
    std::fs::write(
        site.join("registry.yaml"),
        reg.replace(
            "johnq: {groups: [staff, hr], attributes: {",
            "johnq: {groups: [staff, hr], attributes: {note: \"a\\nb\\u001b[2J\\u202e\", ",
        ),
    )
    .unwrap();
    cmds.push_str(
        "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\n",
    );
    let n = cmds.lines().count();
    let file = tmp.path().join("evil.pdadmin");
    std::fs::write(&file, &cmds).unwrap();
    for format in ["pdadmin", "jsonl", "csv"] {
        let out = run_site(
            &site,
            &["-q", "--format", format, file.to_str().unwrap()],
            None,
        );
        let text = stdout(&out);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}') && !text.contains('\u{7}'),
            "{format}"
        );
        match format {
            "pdadmin" => assert_eq!(text.lines().count(), 2 * n),
            "jsonl" => assert_eq!(json_lines(&out).len(), n),
            _ => assert_eq!(
                csv::ReaderBuilder::new()
                    .from_reader(text.as_bytes())
                    .records()
                    .count(),
                n
            ),
        }
    }
    // The snapshot keeps the value exactly, as valid JSON Lines.
    let saved = sessions(&site);
    let johnq = saved.iter().find(|s| s["user"] == "johnq").unwrap();
    assert_eq!(johnq["credential"]["note"], "a\nb\u{1b}[2J\u{202e}");
}

#[test]
fn yaml_bombs_and_deep_nesting_are_rejected_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\nversion: 1\nname: bomb\nrealm: ibm.com\ntargets:\n  users: *i\n";
    let deep = format!(
        "version: 1\nname: deep\nrealm: ibm.com\ntargets:\n  users: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for (name, text) in [("bomb.yaml", bomb.to_string()), ("deep.yaml", deep)] {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let child = bin()
            .args(["validate", "--site", "samples/demo", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait(child, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("invalid: "),
            "{name}"
        );
    }
    // A topology bomb makes the site unloadable, with an error, not a hang.
    let (_t, site) = demo_copy();
    std::fs::write(
        site.join("topology.yaml"),
        bomb.replace(
            "version: 1\nname: bomb\nrealm: ibm.com\ntargets:\n  users: *i\n",
            "realms: *i\n",
        ),
    )
    .unwrap();
    let child = bin()
        .args(["exec", "--site", site.to_str().unwrap(), "server list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(wait(child, Duration::from_secs(60)).status.code(), Some(2));
}

#[test]
fn a_hundred_megabyte_line_without_newline_is_one_bad_line() {
    let (tmp, site) = demo_copy();
    let huge = vec![b'x'; 100 << 20];
    for (name, ok_line) in [
        ("huge.pdadmin", "server list\n"),
        ("huge.csv", "johnq,ibm.com\n"),
    ] {
        let path = tmp.path().join(name);
        let mut bytes = ok_line.as_bytes().to_vec();
        bytes.extend_from_slice(&huge);
        std::fs::write(&path, &bytes).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_smsrefresh"))
            .args([
                "run",
                "--site",
                site.to_str().unwrap(),
                "--no-save",
                "-q",
                "--format",
                "jsonl",
                path.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait(child, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(1), "{name}");
        let r: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(r.len(), 2, "{name}");
        assert_eq!(r[0]["status"], "ok");
        assert_eq!(r[1]["line"], 2);
        assert!(
            r[1]["message"]
                .as_str()
                .unwrap()
                .contains("longer than 16 MiB"),
            "{name}: {}",
            r[1]["message"]
        );
    }
    // In a session snapshot, an overlong line stops the load with an error naming the line.
    let mut snapshot = std::fs::read(site.join("sessions.jsonl")).unwrap();
    snapshot.extend_from_slice(&huge);
    std::fs::write(site.join("sessions.jsonl"), &snapshot).unwrap();
    let e = smsrefresh::site::Site::load(&site)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        e.contains("sessions.jsonl:122: the line is longer than 64 MiB"),
        "{e}"
    );
}
