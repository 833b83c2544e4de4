//! Every policy in `policies/` against a copy of `samples/demo`, result by result; `plan`
//! and `validate`; and policy errors that name file, line and key.

use super::util::*;

const NOW: &str = "2026-11-28T02:00:00Z";

/// Runs a policy on a fresh demo copy (saving), returning results and the site.
fn run_policy(
    policy: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, std::process::Output) {
    let (tmp, site) = demo_copy();
    let mut args = vec![
        "run",
        "--policy",
        policy,
        "--site",
        site.to_str().unwrap(),
        "--now",
        NOW,
        "--format",
        "jsonl",
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = run(&args, None);
    (tmp, site, out)
}

/// (action, user or session id, realm, status, message_id, sessions) of every result.
fn rows(out: &std::process::Output) -> Vec<(String, String, String, String, String, u64)> {
    json_lines(out)
        .iter()
        .map(|r| {
            let who = r
                .get("user")
                .or_else(|| r.get("session_id"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (
                s("action"),
                who,
                s("realm"),
                s("status"),
                s("message_id"),
                r["sessions"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(
    a: &str,
    who: &str,
    realm: &str,
    status: &str,
    id: &str,
    n: u64,
) -> (String, String, String, String, String, u64) {
    (
        a.into(),
        who.into(),
        realm.into(),
        status.into(),
        id.into(),
        n,
    )
}

/// The commands `plan` prints for a policy.
fn plan(policy: &str) -> Vec<String> {
    let out = run(
        &["plan", policy, "--site", "samples/demo", "--now", NOW],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// `run` executes exactly the commands `plan` prints, in that order, numbered from 1.
fn assert_runs_its_plan(policy: &str, out: &std::process::Output) {
    let results = json_lines(out);
    let planned = plan(policy);
    assert_eq!(results.len(), planned.len());
    for (i, (r, p)) in results.iter().zip(&planned).enumerate() {
        assert_eq!(r["command"], p.as_str());
        assert_eq!(r["line"], i as u64 + 1);
        assert_eq!(r["source"], policy);
    }
}

#[test]
fn hr_reorg_after_a_group_change() {
    let policy = "policies/hr-reorg-2026-11.yaml";
    let (_t, site, out) = run_policy(policy, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        rows(&out),
        [
            row(
                "refresh_all_sessions",
                "johnq",
                "ibm.com",
                "ok",
                "DPWWA2043I",
                3
            ),
            row(
                "refresh_all_sessions",
                "Mary Jones",
                "ibm.com",
                "ok",
                "DPWWA2043I",
                4
            ),
            row(
                "refresh_all_sessions",
                "carol",
                "ibm.com",
                "ok",
                "DPWWA2043I",
                3
            ),
            row(
                "refresh_all_sessions",
                "hr_admin",
                "ibm.com",
                "ok",
                "DPWWA2043I",
                4
            ),
            row(
                "refresh_all_sessions",
                "newhire",
                "ibm.com",
                "warning",
                "SMRSS0101W",
                0
            ),
            // olduser left the registry: missing_user: terminate.
            row(
                "terminate_all_sessions",
                "olduser",
                "ibm.com",
                "ok",
                "SMRSS0001I",
                5
            ),
        ]
    );
    assert_runs_its_plan(policy, &out);
    let after = sessions(&site);
    assert!(after.iter().all(|s| s["user"] != "olduser"));
    let johnq = after
        .iter()
        .find(|s| s["user"] == "johnq" && s["realm"] == "ibm.com")
        .unwrap();
    assert_eq!(
        johnq["credential"]["AZN_CRED_GROUPS"],
        serde_json::json!(["staff", "hr"])
    );
}

#[test]
fn refresh_of_named_groups() {
    let policy = "policies/refresh-payroll-managers.yaml";
    let (_t, _site, out) = run_policy(policy, &["--no-save"]);
    assert_eq!(code(&out), 0);
    let r = rows(&out);
    let users: Vec<&str> = r.iter().map(|x| x.1.as_str()).collect();
    // Registry order, each member once although Mary Jones is in both groups.
    assert_eq!(
        users,
        [
            "dlucas",
            "Mary Jones",
            "brian",
            "bob",
            "frank",
            "heidi",
            "ivan",
            "niaj",
            "olivia",
            "peggy",
            "rupert",
            "walter",
            "xavier",
            "yolanda",
            "zack",
            "José Núñez",
            "hr_admin"
        ]
    );
    assert!(
        r.iter().all(|x| x.0 == "refresh_all_sessions"
            && x.3 == "ok"
            && x.4 == "DPWWA2043I"
            && x.5 > 0)
    );
    assert_eq!(r.iter().map(|x| x.5).sum::<u64>(), 49);
    assert!(
        json_lines(&out)
            .iter()
            .all(|x| x["server"] == "default-webseald-cruz")
    );
    assert_runs_its_plan(policy, &out);
}

#[test]
fn nightly_sweep_terminates_idle_sessions_only() {
    let policy = "policies/nightly-idle-sweep.yaml";
    let (_t, site, out) = run_policy(policy, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = sessions(&super::util::repo().join("samples/demo"));
    let now = smsrefresh::time::parse_timestamp(NOW).unwrap();
    let idle = |s: &serde_json::Value| {
        now - smsrefresh::time::parse_timestamp(s["last_access"].as_str().unwrap()).unwrap()
            > 8 * 3600
    };
    let doomed: Vec<&serde_json::Value> = before
        .iter()
        .filter(|s| s["realm"] == "ibm.com" && s["user"] != "sec_master" && idle(s))
        .collect();
    let r = rows(&out);
    assert_eq!(r.len(), doomed.len());
    assert!(
        r.iter()
            .all(|x| x.0 == "terminate_session" && x.3 == "ok" && x.4 == "SMRSS0001I" && x.5 == 1)
    );
    let mut terminated: Vec<&str> = r.iter().map(|x| x.1.as_str()).collect();
    let mut expected: Vec<&str> = doomed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    terminated.sort();
    expected.sort();
    assert_eq!(terminated, expected);
    assert_eq!(sessions(&site).len(), before.len() - doomed.len());
    assert_runs_its_plan(policy, &out);
}

#[test]
fn incident_response_termination() {
    let policy = "policies/incident-terminate.yaml";
    let (_t, site, out) = run_policy(policy, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        rows(&out),
        [
            row(
                "terminate_all_sessions",
                "mallory",
                "ibm.com",
                "ok",
                "SMRSS0001I",
                2
            ),
            row(
                "terminate_all_sessions",
                "olduser",
                "ibm.com",
                "ok",
                "SMRSS0001I",
                5
            ),
            row(
                "terminate_all_sessions",
                "trent",
                "ibm.com",
                "ok",
                "SMRSS0001I",
                2
            ),
            row(
                "terminate_all_sessions",
                "partner_globex",
                "partners.example",
                "ok",
                "SMRSS0001I",
                2
            ),
        ]
    );
    let left = sessions(&site);
    for u in ["mallory", "olduser", "trent", "partner_globex"] {
        assert!(left.iter().all(|s| s["user"] != u), "{u}");
    }
    assert_eq!(json_lines(&out)[3]["server"], "default-webseald-portal1");
}

#[test]
fn department_refresh_with_exclusions_and_limits() {
    let policy = "policies/department-refresh.yaml";
    let (_t, site, out) = run_policy(policy, &[]);
    assert_eq!(code(&out), 0);
    let r = rows(&out);
    let users: Vec<&str> = r.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(
        users,
        [
            "Zoë Ångström",
            "dave",
            "mallory",
            "olivia",
            "sybil",
            "trent",
            "contractor_01",
            "contractor_02",
            "contractor_03",
            "contractor_04",
            "contractor_05"
        ]
    );
    assert_eq!(r.iter().map(|x| x.5).sum::<u64>(), 33);
    // The policy's own rules: tagvalue_session_index is refreshed (dropped: the registry has
    // none), other tagvalue_ attributes would be kept.
    let zoe = sessions(&site)
        .into_iter()
        .find(|s| s["user"] == "Zoë Ångström")
        .unwrap();
    assert!(zoe["credential"].get("tagvalue_session_index").is_none());
    assert_eq!(
        zoe["credential"]["AZN_CRED_GROUPS"],
        serde_json::json!(["staff", "engineering"])
    );
}

#[test]
fn a_limit_exceeded_stops_the_run_before_any_change() {
    let (tmp, site) = demo_copy();
    let policy = tmp.path().join("tight.yaml");
    let text = std::fs::read_to_string(repo().join("policies/department-refresh.yaml")).unwrap();
    std::fs::write(
        &policy,
        text.replace("max_sessions: 60", "max_sessions: 30")
            .replace("site: ../samples/demo\n", ""),
    )
    .unwrap();
    let before = std::fs::read(site.join("sessions.jsonl")).unwrap();
    let out = run(
        &[
            "run",
            "--policy",
            policy.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
            "-q",
        ],
        None,
    );
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out)
            .contains("limits.max_sessions: the plan has 33 sessions, over the limit of 30 by 3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(site.join("sessions.jsonl")).unwrap(), before);
}

#[test]
fn every_example_policy_validates() {
    let mut args = vec!["validate", "--now", NOW];
    let files: Vec<String> = std::fs::read_dir(repo().join("policies"))
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .map(|e| e.path().display().to_string())
        .collect();
    assert_eq!(files.len(), 5);
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, None);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains(": ok: policy "))
            .count(),
        5
    );
}

/// Writes `text` as a policy in a temp dir (with a CSV list beside it) and validates it.
fn validate(text: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("list.csv"), "johnq,ibm.com\n").unwrap();
    let path = tmp.path().join("p.yaml");
    std::fs::write(&path, text).unwrap();
    let out = run(
        &["validate", "--site", "samples/demo", path.to_str().unwrap()],
        None,
    );
    (
        code(&out),
        stdout(&out).replace(&format!("{}", path.display()), "p.yaml"),
    )
}

const BASE: &str = "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\n";

#[test]
fn policy_errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\n  teams: [x]\n",
            "p.yaml:6: targets: unknown field `teams`",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: johnq\n",
            "p.yaml:5: targets.users: invalid type: string \"johnq\", expected a sequence",
        ),
        (
            "version: 2\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\n",
            "p.yaml:1: version: version 2 is not supported; expected 1",
        ),
        (
            "version: 1\nname: \"bad name\"\nrealm: ibm.com\ntargets:\n  users: [johnq]\n",
            "p.yaml:2: name: `bad name`: expected letters, digits, '.', '_' or '-'",
        ),
        (
            "version: 1\nname: t\nrealm: nowhere.example\ntargets:\n  users: [johnq]\n",
            "p.yaml:3: realm: the realm `nowhere.example` is not in the site's topology",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\nserver: ghost-webseald-x\ntargets:\n  users: [johnq]\n",
            "p.yaml:4: server: the server `ghost-webseald-x` is not in the site's topology",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  groups: [astronauts]\n",
            "p.yaml:5: targets.groups: the group `astronauts` has no member in the registry",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  csv: [missing.csv]\n",
            "p.yaml:5: targets.csv: ",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\nsessions:\n  idle_longer_than: 8 hours\n",
            "p.yaml:7: sessions.idle_longer_than: `8 hours` is not a duration",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\nexclude:\n  groups: [ghosts]\n",
            "p.yaml:7: exclude.groups: the group `ghosts` has no member in the registry",
        ),
        (
            "version: 1\nname: t\ntargets:\n  users: [johnq]\n",
            "p.yaml: realm: these targets need a realm: set `realm:`",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets: {}\n",
            "p.yaml:4: targets: no target",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\nmissing_user: ignore\n",
            "p.yaml:6: missing_user: unknown variant `ignore`",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\ncredential_refresh:\n  - a: refresh\n    b: preserve\n",
            "p.yaml:6: credential_refresh: rule 1: each rule is one `pattern: preserve|refresh` pair",
        ),
        (
            "version: 1\nname: t\nrealm: ibm.com\ntargets:\n  users: [johnq]\nlimits:\n  max_users: lots\n",
            "p.yaml:7: limits.max_users: invalid type",
        ),
    ];
    for (text, want) in cases {
        let (code, out) = validate(text);
        assert_eq!(code, 2, "{text}");
        assert!(out.contains(want), "wanted `{want}` in:\n{out}");
    }
    let (code, out) = validate(BASE);
    assert_eq!(
        (code, out.contains(": ok: policy t, 1 commands for 1 users")),
        (0, true),
        "{out}"
    );
}

#[test]
fn a_sweep_also_purges_expired_sessions_of_its_realm() {
    let (tmp, site) = demo_copy();
    let topo = std::fs::read_to_string(site.join("topology.yaml")).unwrap();
    std::fs::write(
        site.join("topology.yaml"),
        topo.replace(
            "session: {timeout: 0, inactive_timeout: 0}",
            "session: {timeout: 0, inactive_timeout: 3600}",
        ),
    )
    .unwrap();
    let now = "2026-11-27T20:00:00Z";
    let t = smsrefresh::time::parse_timestamp(now).unwrap();
    let expired = |s: &serde_json::Value| {
        t - smsrefresh::time::parse_timestamp(s["last_access"].as_str().unwrap()).unwrap() > 3600
    };
    let before = sessions(&site);
    let gone = before
        .iter()
        .filter(|s| s["realm"] == "ibm.com" && expired(s))
        .count();
    assert!(gone > 0);
    let report = tmp.path().join("r.json");
    let out = run(
        &[
            "run",
            "--policy",
            "policies/nightly-idle-sweep.yaml",
            "--site",
            site.to_str().unwrap(),
            "--now",
            now,
            "--report",
            report.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // No live session has been idle for 8 hours: no command, but the expired ones are gone.
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains(&format!("the sweep purged {gone} expired sessions")),
        "{}",
        stderr(&out)
    );
    let after = sessions(&site);
    assert_eq!(after.len(), before.len() - gone);
    assert!(after.iter().all(|s| s["realm"] != "ibm.com" || !expired(s)));
    assert_eq!(
        after
            .iter()
            .filter(|s| s["realm"] == "partners.example")
            .count(),
        before
            .iter()
            .filter(|s| s["realm"] == "partners.example")
            .count()
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(r["counts"]["expired_sessions_purged"], gone);
}
