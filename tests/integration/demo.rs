//! The demo command file through the real binary, in both formats, with every result
//! checked, and the credentials a refresh leaves behind.

use super::util::*;

/// (line, action, status, message_id, code, sessions) of one result.
type Expected = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u64,
);

/// Every result of commands.pdadmin.
const EXPECTED: &[Expected] = &[
    (6, "server_list", "ok", "SMRCM0003I", None, 4),
    (7, "realm_list", "ok", "SMRCM0003I", None, 2),
    (8, "realm_show", "ok", "SMRCM0003I", None, 2),
    (9, "replica_set_list", "ok", "SMRCM0003I", None, 3),
    (10, "replica_set_list", "ok", "SMRCM0003I", None, 1),
    (11, "replica_set_show", "ok", "SMRSS0004I", None, 2),
    (12, "session_list", "ok", "SMRSS0002I", None, 3),
    (15, "refresh_all_sessions", "ok", "DPWWA2043I", None, 3),
    (17, "refresh_all_sessions", "ok", "DPWWA2043I", None, 4),
    (18, "refresh_all_sessions", "ok", "DPWWA2043I", None, 2),
    (20, "refresh_session", "ok", "DPWWA2043I", None, 1),
    (22, "terminate_session", "ok", "SMRSS0001I", None, 1),
    (23, "terminate_all_sessions", "ok", "SMRSS0001I", None, 4),
    (
        26,
        "webseal_refresh_all_sessions",
        "ok",
        "DPWWA2043I",
        None,
        4,
    ),
    (
        27,
        "webseal_terminate_all_sessions",
        "ok",
        "SMRSS0001I",
        None,
        2,
    ),
    (28, "webseal_terminate_session", "ok", "SMRSS0001I", None, 1),
    (29, "errtext", "ok", "HPDMG0754W", None, 0),
    (30, "errtext", "ok", "DPWWA2043I", None, 0),
    (
        33,
        "refresh_all_sessions",
        "error",
        "HPDMG0754W",
        Some("0x14c012f2"),
        0,
    ),
    (
        34,
        "refresh_all_sessions",
        "warning",
        "SMRSS0101W",
        Some("0x534d5265"),
        0,
    ),
    (
        35,
        "webseal_refresh_all_sessions",
        "warning",
        "SMRSS0102W",
        Some("0x534d5266"),
        0,
    ),
    (
        36,
        "refresh_all_sessions",
        "error",
        "DPWAP0059E",
        Some("0x3898f03b"),
        0,
    ),
    (
        37,
        "refresh_all_sessions",
        "error",
        "SMRTP0201E",
        Some("0x534d52c9"),
        0,
    ),
    (38, "invalid", "error", "SMRCM0205E", Some("0x534d52cd"), 0),
    (
        39,
        "refresh_session",
        "error",
        "SMRSS0202E",
        Some("0x534d52ca"),
        0,
    ),
    (
        40,
        "terminate_session",
        "error",
        "SMRSS0202E",
        Some("0x534d52ca"),
        0,
    ),
    (41, "errtext", "error", "SMRCM0206E", Some("0x534d52ce"), 0),
];

#[test]
fn demo_commands_jsonl_every_result() {
    let (_tmp, site) = demo_copy();
    let file = site.join("commands.pdadmin");
    let out = run_jsonl(&site, &[file.to_str().unwrap()], None);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let results = json_lines(&out);
    assert_eq!(results.len(), EXPECTED.len());
    for (r, (line, action, status, id, code, sessions)) in results.iter().zip(EXPECTED) {
        let ctx = r.to_string();
        assert_eq!(r["line"], *line, "{ctx}");
        assert_eq!(r["source"], file.to_str().unwrap(), "{ctx}");
        assert_eq!(r["action"], *action, "{ctx}");
        assert_eq!(r["status"], *status, "{ctx}");
        assert_eq!(r["message_id"], *id, "{ctx}");
        assert_eq!(r["code"].as_str(), *code, "{ctx}");
        assert_eq!(r["sessions"], *sessions, "{ctx}");
        assert_eq!(r["dry_run"], false, "{ctx}");
        assert!(
            r["message"].is_string() && r["command"].is_string(),
            "{ctx}"
        );
    }
    // Fields that apply, as written in the command.
    let mary = &results[8];
    assert_eq!(mary["user"], "Mary Jones");
    assert_eq!(mary["realm"], "ibm.com");
    assert_eq!(mary["server"], "default-webseald-cruz");
    assert_eq!(
        mary["command"],
        r#"server task default-webseald-cruz sms session refresh all_sessions "Mary Jones" -realm ibm.com"#
    );
    let zoe = &results[9];
    assert_eq!(zoe["user"], "ZOË ÅNGSTRÖM");
    assert_eq!(zoe["realm"], "IBM.COM");
    let by_id = &results[10];
    assert_eq!(by_id["session_id"], "ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00020");
    assert!(by_id.get("user").is_none());
    // Lists carry items and a total.
    let list = &results[6];
    assert_eq!(list["total"], 19);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    // Ordered by `created`, then id (contract §10), whatever store holds them.
    assert_eq!(
        list["items"][0],
        serde_json::json!({"id": "d2ViMi13ZWJzZWFsZC1jcnV6_00096", "user": "contractor_05", "realm": "ibm.com",
            "replica_set": "sales.ibm.com", "server": "web2-webseald-cruz",
            "created": "2026-11-27T08:51:00Z", "last_access": "2026-11-27T11:58:00Z"})
    );
    let created: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["created"].as_str().unwrap(), i["id"].as_str().unwrap()))
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    assert_eq!(results[0]["items"][3]["name"], "default-webseald-portal1");
    assert_eq!(
        results[3]["items"][2],
        serde_json::json!({"name": "portal.partners.example", "realm": "partners.example"})
    );
    assert_eq!(
        results[5]["message"],
        "Replica set sales.ibm.com: 2 servers, 51 live sessions."
    );
    assert_eq!(results[16]["errtext_code"], "0x14c012f2");
    assert_eq!(results[16]["message"], "The entry was not found.");
    assert_eq!(
        results[23]["command"],
        "server task default-webseald-cruz sms session refrsh all_sessions johnq -realm ibm.com"
    );
}

#[test]
fn demo_commands_pdadmin_text() {
    let (_tmp, site) = demo_copy();
    let file = site.join("commands.pdadmin");
    let out = run_site(&site, &["--no-save", file.to_str().unwrap()], None);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    // One echo line per command, in order.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("pdadmin> ")).count(),
        EXPECTED.len()
    );
    for want in [
        "pdadmin> server list\ndefault-webseald-cruz\nweb2-webseald-cruz\ndefault-webseald-abc.ibm.com\ndefault-webseald-portal1\npdadmin> ",
        "pdadmin> server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\nDPWWA2043I   The user's credential was updated. Sessions refreshed: 3.\n",
        "pdadmin> server task default-webseald-cruz sms session refresh session ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00020 -realm ibm.com\nDPWWA2043I   The user's credential was updated. Sessions refreshed: 1.\n",
        "pdadmin> server task default-webseald-cruz sms session refresh all_sessions olduser -realm ibm.com\nHPDMG0754W   The entry was not found. (0x14c012f2)\n",
        "SMRSS0101W   The user newhire has no live sessions in realm ibm.com. (0x534d5265)\n",
        "DPWAP0059E   The supplied authorization server name, default-webseald-nowhere, is not a known server. (0x3898f03b)\n",
        "SMRCM0205E   The command is not valid: token 6 `refrsh`: expected one of `refresh`, `terminate`, `list` after `session` (0x534d52cd)\n",
        "pdadmin> errtext 0x14c012f2\nHPDMG0754W   The entry was not found. (0x14c012f2)\n",
        "SMRSS0002I   Matching sessions shown: 3 of 19.\n",
    ] {
        assert!(text.contains(want), "missing:\n{want}\n--- in:\n{text}");
    }
    // `exit` ends the file: the `server list` after it never runs.
    assert!(text.ends_with("(0x534d52ce)\n"), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("27 commands: 18 ok, 2 warning, 7 error; 14 sessions refreshed, 8 terminated"),
        "{err}"
    );
}

#[test]
fn refresh_merges_credentials_and_persists() {
    let (_tmp, site) = demo_copy();
    let before = sessions(&site);
    let out = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--now",
            "2026-11-28T02:00:00Z",
            "server",
            "task",
            "default-webseald-cruz",
            "sms",
            "session",
            "refresh",
            "all_sessions",
            "johnq",
            "-realm",
            "ibm.com",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pdadmin> server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\nDPWWA2043I   The user's credential was updated. Sessions refreshed: 3.\n"
    );
    let after = sessions(&site);
    assert_eq!(after.len(), before.len());
    for id in [
        "ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00001",
        "ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00002",
        "ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00003",
    ] {
        let old = session(&before, id).unwrap();
        let new = session(&after, id).unwrap();
        let c = &new["credential"];
        // Registry rebuild: current groups and attributes.
        assert_eq!(
            c["AZN_CRED_GROUPS"],
            serde_json::json!(["staff", "hr"]),
            "{id}"
        );
        assert_eq!(c["emailAddress"], "johnq@ibm.com");
        assert_eq!(c["departmentNumber"], "hr");
        // The seven login-context attributes come from the old credential.
        for k in [
            "AZN_CRED_PRINCIPAL_NAME",
            "AZN_CRED_AUTH_METHOD",
            "AZN_CRED_AUTHNMECH_INFO",
            "AZN_CRED_IP_ADDRESS",
        ] {
            assert_eq!(c[k], old["credential"][k], "{id} {k}");
        }
        // Site rules: authentication_level and tagvalue_* preserved; old-only AZN_ dropped.
        assert_eq!(
            c["authentication_level"],
            old["credential"]["authentication_level"]
        );
        assert_eq!(
            c["tagvalue_session_index"],
            old["credential"]["tagvalue_session_index"]
        );
        assert!(c.get("AZN_CRED_REGISTRY_ID").is_none());
        // Times: created and last_access kept, last_refresh set to "now".
        assert_eq!(new["created"], old["created"]);
        assert_eq!(new["last_access"], old["last_access"]);
        assert_eq!(new["last_refresh"], "2026-11-28T02:00:00Z");
    }
    // The partners.example session of johnq and every other user's sessions are untouched.
    let portal = "ZGVmYXVsdC13ZWJzZWFsZC1wb3J0YWwx_00004";
    assert_eq!(session(&after, portal), session(&before, portal));
    let changed = after.iter().zip(&before).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 3);
}

#[test]
fn dry_run_reports_the_same_and_changes_nothing() {
    let (_tmp, site) = demo_copy();
    let file = site.join("commands.pdadmin");
    let before = std::fs::read(site.join("sessions.jsonl")).unwrap();
    let real = run_jsonl(&site, &[file.to_str().unwrap()], None);
    let dry = run_site(
        &site,
        &[
            "--dry-run",
            "--format",
            "jsonl",
            "-q",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&dry), code(&real));
    let (real, dry) = (json_lines(&real), json_lines(&dry));
    assert_eq!(real.len(), dry.len());
    for (mut r, d) in real.into_iter().zip(dry) {
        assert_eq!(d["dry_run"], true);
        r["dry_run"] = serde_json::Value::Bool(true);
        assert_eq!(r, d);
    }
    assert_eq!(std::fs::read(site.join("sessions.jsonl")).unwrap(), before);
}

#[test]
fn commands_from_stdin_and_several_inputs_in_order() {
    let (_tmp, site) = demo_copy();
    let extra = site.join("more.pdadmin");
    std::fs::write(&extra, "server task default-webseald-cruz sms session terminate all_sessions johnq -realm ibm.com\n").unwrap();
    let out = run_site(
        &site,
        &["--format", "jsonl", "-q", "-", extra.to_str().unwrap()],
        Some(
            "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\n",
        ),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json_lines(&out);
    assert_eq!(
        (r[0]["source"].as_str(), r[0]["sessions"].as_u64()),
        (Some("-"), Some(3))
    );
    assert_eq!(
        (
            r[1]["source"].as_str(),
            r[1]["action"].as_str(),
            r[1]["sessions"].as_u64()
        ),
        (
            Some(extra.to_str().unwrap()),
            Some("terminate_all_sessions"),
            Some(3)
        )
    );
    // Saved: johnq keeps only the partners.example session.
    let left: Vec<_> = sessions(&site)
        .into_iter()
        .filter(|s| s["user"] == "johnq")
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["realm"], "partners.example");
}

#[test]
fn fail_fast_stops_after_the_first_error() {
    let (_tmp, site) = demo_copy();
    let input = "server task default-webseald-cruz sms realm list\nserver task nowhere-webseald-x sms realm list\nserver task default-webseald-cruz sms session terminate all_sessions johnq -realm ibm.com\n";
    let out = run_site(
        &site,
        &["--fail-fast", "--format", "jsonl", "-q", "-"],
        Some(input),
    );
    assert_eq!(code(&out), 1);
    let r = json_lines(&out);
    let ids: Vec<_> = r
        .iter()
        .map(|x| x["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["SMRCM0003I", "DPWAP0059E", "SMRCM0208E"]);
    assert_eq!(
        sessions(&site)
            .iter()
            .filter(|s| s["user"] == "johnq")
            .count(),
        4
    );
}

#[test]
fn csv_output_has_a_header_and_neutralises_formulas() {
    let (_tmp, site) = demo_copy();
    let out = run_site(
        &site,
        &["--no-save", "--format", "csv", "-q", "-"],
        Some(
            "server task default-webseald-cruz sms session refresh all_sessions =cmd|calc -realm ibm.com\n",
        ),
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("line,source,command,action,server,realm,user,session_id,status,message_id,code,message,sessions,dry_run"));
    let row = lines.next().unwrap();
    assert!(row.contains(",'=cmd|calc,"), "{row}");
    assert!(row.contains(",error,HPDMG0754W,0x14c012f2,"), "{row}");
}

#[test]
fn expired_sessions_are_invisible_to_every_command() {
    let (_tmp, site) = demo_copy();
    let topo = std::fs::read_to_string(site.join("topology.yaml")).unwrap();
    // Lifetime 3 h, inactivity 10 min; at 18:30 johnq's session 00003 (idle since 15:44) has
    // expired, 00001 (idle 9 min) and 00002 (created 17:31) have not.
    std::fs::write(
        site.join("topology.yaml"),
        topo.replace(
            "session: {timeout: 0, inactive_timeout: 0}",
            "session: {timeout: 10800, inactive_timeout: 600}",
        ),
    )
    .unwrap();
    let s = site.to_str().unwrap();
    let input = "server task default-webseald-cruz sms session list -realm ibm.com johnq 10\n\
                 server task default-webseald-cruz sms session refresh session ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00003 -realm ibm.com\n\
                 server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com\n";
    let out = run(
        &[
            "run",
            "--site",
            s,
            "--now",
            "2026-11-27T18:30:00Z",
            "--format",
            "jsonl",
            "-q",
            "-",
        ],
        Some(input),
    );
    let r = json_lines(&out);
    let ids: Vec<&str> = r[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00001",
            "ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00002"
        ]
    );
    assert_eq!(r[1]["message_id"], "SMRSS0202E");
    assert_eq!(r[2]["sessions"], 2);
    // Expired sessions stay in the snapshot, unrefreshed.
    let after = sessions(&site);
    assert!(
        session(&after, "ZGVmYXVsdC13ZWJzZWFsZC1jcnV6_00003")
            .unwrap()
            .get("last_refresh")
            .is_none()
    );
    assert!(
        session(&after, "ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00001")
            .unwrap()
            .get("last_refresh")
            .is_some()
    );
    // Much later, everything has expired: a refresh finds nothing to do.
    let late = run(
        &[
            "exec",
            "--site",
            s,
            "--no-save",
            "--now",
            "2026-11-29T00:00:00Z",
            "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com",
        ],
        None,
    );
    assert!(stdout(&late).contains("SMRSS0101W"));
}
