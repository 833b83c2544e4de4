//! CSV lists, standard input, several inputs in one run, escaping, and the audit report.

use super::util::*;

#[test]
fn csv_lists_every_row_rule() {
    let (tmp, site) = demo_copy();
    let list = tmp.path().join("moves.csv");
    std::fs::write(
        &list,
        "\u{feff}User,Realm,Server\r\n# HR moves, November\r\n\r\njohnq,ibm.com\r\n\"Mary Jones\",IBM.COM,web2-webseald-cruz\r\n,ibm.com\r\nbrian\r\nolduser,ibm.com\r\npartner_acme,partners.example\r\na,b,c,d\r\n",
    )
    .unwrap();
    let out = run_jsonl(&site, &[list.to_str().unwrap()], None);
    assert_eq!(code(&out), 1);
    let r = json_lines(&out);
    let got: Vec<(u64, &str, &str, &str, u64)> = r
        .iter()
        .map(|x| {
            (
                x["line"].as_u64().unwrap(),
                x["status"].as_str().unwrap(),
                x["message_id"].as_str().unwrap(),
                x["server"].as_str().unwrap_or(""),
                x["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, "ok", "DPWWA2043I", "default-webseald-cruz", 3),
            (5, "ok", "DPWWA2043I", "web2-webseald-cruz", 4),
            (6, "error", "SMRIN0207E", "", 0),
            (7, "error", "SMRIN0207E", "", 0),
            (8, "error", "HPDMG0754W", "default-webseald-cruz", 0),
            (9, "ok", "DPWWA2043I", "default-webseald-portal1", 5),
            (10, "error", "SMRIN0207E", "", 0),
        ]
    );
    assert_eq!(
        r[2]["message"],
        "The input row is not valid: line 6: the user is empty; expected user,realm[,server]"
    );
    assert_eq!(
        r[3]["message"],
        "The input row is not valid: line 7: the realm is missing; expected user,realm[,server]"
    );
    assert_eq!(
        r[6]["message"],
        "The input row is not valid: line 10: 4 columns; expected user,realm[,server]"
    );
    assert_eq!(r[6]["action"], "invalid");
    assert_eq!(r[0]["source"], list.to_str().unwrap());
}

#[test]
fn csv_defaults_action_server_and_realm_from_flags() {
    let (tmp, site) = demo_copy();
    let list = tmp.path().join("users.csv");
    std::fs::write(&list, "brian\ncarol,ibm.com\n").unwrap();
    let out = run_site(
        &site,
        &[
            "--format",
            "jsonl",
            "-q",
            "--action",
            "terminate",
            "--server",
            "default-webseald-abc.ibm.com",
            "--realm",
            "ibm.com",
            list.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let r = json_lines(&out);
    assert_eq!(
        r[0]["command"],
        "server task default-webseald-abc.ibm.com sms session terminate all_sessions brian -realm ibm.com"
    );
    assert_eq!(r[1]["sessions"], 3);
    assert!(
        sessions(&site)
            .iter()
            .all(|s| s["user"] != "brian" && s["user"] != "carol")
    );
}

#[test]
fn csv_on_stdin_and_several_inputs_in_order() {
    let (tmp, site) = demo_copy();
    let cmds = tmp.path().join("after.pdadmin");
    std::fs::write(
        &cmds,
        "server task default-webseald-cruz sms session list -realm ibm.com johnq 10\n",
    )
    .unwrap();
    let out = run_jsonl(
        &site,
        &[
            "--input-format",
            "csv",
            "--policy",
            "policies/incident-terminate.yaml",
            "-",
            cmds.to_str().unwrap(),
        ],
        Some("user,realm\njohnq,ibm.com\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json_lines(&out);
    let sources: Vec<&str> = r.iter().map(|x| x["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources,
        ["policies/incident-terminate.yaml"; 4]
            .iter()
            .copied()
            .chain(["-", cmds.to_str().unwrap()])
            .collect::<Vec<_>>()
    );
    assert_eq!(
        r[4]["action"], "terminate_all_sessions",
        "the policy's action applies to CSV rows"
    );
    assert_eq!(r[4]["sessions"], 3);
    assert_eq!(
        r[5]["total"], 0,
        "johnq's ibm.com sessions are gone by then"
    );
}

#[test]
fn hostile_names_cannot_split_or_forge_lines() {
    let (tmp, site) = demo_copy();
    let list = tmp.path().join("evil.csv");
    let evil = "\"x\npdadmin> server list\r\u{1b}[2J\u{202e}\",ibm.com\n=HYPERLINK(\"http://x\"),ibm.com\n";
    std::fs::write(&list, evil).unwrap();
    for format in ["pdadmin", "jsonl", "csv"] {
        let out = run_site(
            &site,
            &[
                "--no-save",
                "--format",
                format,
                "-q",
                list.to_str().unwrap(),
            ],
            None,
        );
        let text = stdout(&out);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{format}: raw control reached the output"
        );
        match format {
            // A quoted field never spans lines: the name with a line break is two bad
            // rows, each one result on its own line, their controls escaped.
            "pdadmin" => {
                assert_eq!(text.lines().count(), 6, "{text}");
                assert_eq!(
                    text.lines().filter(|l| l.starts_with("pdadmin> ")).count(),
                    3
                );
                assert!(
                    text.contains("pdadmin> server list\\r\\u{1b}[2J\\u{202e}"),
                    "{text}"
                );
            }
            "jsonl" => {
                let r = json_lines(&out);
                assert_eq!(r.len(), 3);
                assert_eq!(
                    (r[0]["status"].as_str(), r[0]["line"].as_u64()),
                    (Some("error"), Some(1))
                );
                assert_eq!(
                    (r[1]["status"].as_str(), r[1]["line"].as_u64()),
                    (Some("error"), Some(2))
                );
                assert_eq!(
                    r[1]["command"],
                    "pdadmin> server list\r\u{1b}[2J\u{202e}\",ibm.com"
                );
            }
            _ => {
                let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
                let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
                assert_eq!(rows.len(), 3);
                assert_eq!(&rows[2][6], "'=HYPERLINK(\"http://x\")");
            }
        }
    }
}

#[test]
fn the_report_is_an_audit_record() {
    let (tmp, site) = demo_copy();
    let report = tmp.path().join("report.json");
    let out = run_site(
        &site,
        &[
            "--policy",
            "policies/hr-reorg-2026-11.yaml",
            "--dry-run",
            "--report",
            report.to_str().unwrap(),
            "--now",
            "2026-11-28T02:00:00Z",
            "-q",
        ],
        None,
    );
    assert_eq!(code(&out), 0);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["policy"]["name"], "hr-reorg-2026-11");
    let bytes = std::fs::read(repo().join("policies/hr-reorg-2026-11.yaml")).unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(r["policy"]["sha256"], hex);
    assert_eq!(r["site"], site.to_str().unwrap());
    assert_eq!(
        (r["dry_run"].as_bool(), r["saved"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(r["counts"]["ok"], 5);
    assert_eq!(r["counts"]["warning"], 1);
    assert_eq!(r["counts"]["sessions_refreshed"], 14);
    assert_eq!(r["messages"]["DPWWA2043I"], 4);
    assert_eq!(r["messages"]["SMRSS0101W"], 1);
    assert_eq!(r["exit_code"], 0);
    for phase in [
        "load_s",
        "plan_s",
        "execute_s",
        "write_s",
        "save_s",
        "total_s",
    ] {
        assert!(r["phases"][phase].is_number(), "{phase}");
    }
    assert!(r["started"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn progress_shows_only_when_asked_off_a_terminal() {
    let (_tmp, site) = demo_copy();
    let file = site.join("commands.pdadmin");
    let go = |mode: &str| {
        let out = run_site(
            &site,
            &[
                "--no-save",
                "-q",
                "--progress",
                mode,
                file.to_str().unwrap(),
            ],
            None,
        );
        stderr(&out)
    };
    let always = go("always");
    assert!(
        always.lines().last().unwrap().contains("27 commands"),
        "{always}"
    );
    assert!(!always.contains('\u{1b}'), "no escape sequences in a log");
    assert_eq!(
        go("auto"),
        "",
        "auto: no bar when standard error is not a terminal"
    );
    assert_eq!(go("never"), "");
}

#[test]
fn execution_rate_paces_commands() {
    let (tmp, site) = demo_copy();
    let policy = tmp.path().join("paced.yaml");
    std::fs::write(
        &policy,
        "version: 1\nname: paced\nrealm: ibm.com\ntargets:\n  users: [johnq, brian, carol, dave, erin, frank]\nexecution:\n  rate: 20\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let out = run_site(
        &site,
        &["--policy", policy.to_str().unwrap(), "--no-save", "-q"],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Six commands at 20 per second: the sixth starts 250 ms after the first.
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("DPWWA2043I"))
            .count(),
        6
    );
}
