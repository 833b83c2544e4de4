//! Driving a real ISVA (contract §14), over real HTTPS on 127.0.0.1: `run --target` against
//! `smsrefresh serve` gives a plain run's answers and sessions; against a test server that
//! answers as the appliance is documented to, every kind of answer becomes its result, one
//! command per request; the preflight stops what cannot run; a 401 mid-run stops sending; a
//! signal mid-run leaves exactly the results of what was sent.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::appliance::{Appliance, Behaviour};
use super::redis::file_sessions;
use super::slapd_server::Tls;
use super::util::*;

const NOW: &str = "2026-11-28T00:00:00Z";
const LMI_PW: &str = "lmi-s3cret";
const ADMIN_PW: &str = "pdadmin-s3cret";

/// A target.yaml for `url`, trusting `ca`, with extra keys.
fn target_yaml(dir: &Path, url: &str, ca: &Path, extra: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = dir.join(format!("target{}.yaml", N.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(
        &path,
        format!(
            "kind: isva-rest\nurl: {url}\nlmi_user: admin\nlmi_password_env: TEST_LMI_PW\nadmin_id: sec_master\nadmin_password_env: TEST_ADMIN_PW\nca_file: {}\n{extra}",
            ca.display()
        ),
    )
    .unwrap();
    path
}

/// `smsrefresh ARGS` with the target's passwords in the environment; no password printed.
fn with_target(args: &[&str]) -> std::process::Output {
    let out = run_cmd(
        bin()
            .args(args)
            .env("TEST_LMI_PW", LMI_PW)
            .env("TEST_ADMIN_PW", ADMIN_PW),
        None,
    );
    for text in [stdout(&out), stderr(&out)] {
        assert!(
            !text.contains(LMI_PW) && !text.contains(ADMIN_PW),
            "a password was printed"
        );
    }
    out
}

/// `smsrefresh run --site SITE --target TARGET --format jsonl ARGS…`, as [`with_target`].
fn run_against(site: &Path, target: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "run",
        "--site",
        site.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--format",
        "jsonl",
    ];
    all.extend_from_slice(args);
    with_target(&all)
}

/// A running `smsrefresh serve`, stopped by pid.
struct Serve {
    child: Option<Child>,
    url: String,
}

impl Serve {
    fn start(site: &Path, tls: &Tls, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = bin()
            .args([
                "serve",
                "--site",
                site.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--tls-cert", tls.cert.to_str().unwrap()])
            .args(["--tls-key", tls.key.to_str().unwrap(), "--now", NOW])
            .args(extra)
            .env("SMSREFRESH_LMI_PASSWORD", LMI_PW)
            .env("SMSREFRESH_ADMIN_PASSWORD", ADMIN_PW)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        let at = first.find("https://").expect(&first);
        let url = first[at..].split("/isam").next().unwrap().to_string();
        Self {
            child: Some(child),
            url,
        }
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().ok()?.code()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What contract §14 compares: status, message_id and code, line by line.
fn verdicts(results: &[serde_json::Value]) -> Vec<(u64, String, String, String)> {
    results
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].to_string(),
                r["message_id"].to_string(),
                r["code"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_run_against_serve_gives_the_answers_and_sessions_of_a_plain_run() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let (_a, served) = demo_copy();
    let (_b, plain) = demo_copy();
    let list = tmp.path().join("moves.csv");
    std::fs::write(
        &list,
        "user,realm\njohnq,ibm.com\n\"Mary Jones\",ibm.com\nnobody,ibm.com\ndave,ibm.com\n",
    )
    .unwrap();
    let mut serve = Serve::start(&served, &tls, &["--save-every", "1h"]);
    let target = target_yaml(tmp.path(), &serve.url, &tls.ca, "concurrency: 4\n");
    let inputs = ["samples/demo/commands.pdadmin", list.to_str().unwrap()];
    let remote = with_target(
        &[
            &[
                "run",
                "--site",
                plain.to_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
            ][..],
            &["--format", "jsonl", "-q", "--now", NOW],
            &inputs,
        ]
        .concat(),
    );
    let local = run(
        &[
            &[
                "run",
                "--site",
                plain.to_str().unwrap(),
                "--format",
                "jsonl",
                "-q",
                "--now",
                NOW,
            ][..],
            &inputs,
        ]
        .concat(),
        None,
    );
    assert_eq!(code(&remote), code(&local), "{}", stderr(&remote));
    let (r, l) = (json_lines(&remote), json_lines(&local));
    assert_eq!(r.len(), 27 + 4);
    assert_eq!(verdicts(&r), verdicts(&l));
    // What was sent: the appliance does not say how many sessions; what was not: none.
    for x in &r {
        let sent = !matches!(
            x["message_id"].as_str(),
            Some("SMRCM0205E" | "SMRIN0207E" | "DPWAP0059E")
        );
        assert_eq!(x["sessions"].is_null(), sent, "{x}");
    }
    // The served site is saved when serve stops, and holds what the plain run left.
    assert_eq!(serve.stop(), Some(0));
    assert_eq!(file_sessions(&served), file_sessions(&plain));
}

/// The test server's answers to the demo's servers and the scripted users.
fn appliance_script() -> Arc<super::appliance::Script> {
    Arc::new(|command: &str, times: u32| {
        let user = command.split_whitespace().nth(7).unwrap_or("");
        match (command, user) {
            ("server list", _) => Behaviour::ok("default-webseald-cruz\nweb2-webseald-cruz"),
            (_, "r500result") => Behaviour::json(
                500,
                "result",
                "HPDMG0754W   The entry was not found. (0x14c012f2)",
            ),
            (_, "r500message") => Behaviour::json(500, "message", "An internal error occurred"),
            (_, "r200error") => Behaviour::ok("Error: DPWIV1071E   The task failed. (0x38cf043f)"),
            (_, "rwarn") => Behaviour::ok(
                "SMRSS0101W   The user rwarn has no live sessions in realm ibm.com. (0x534d5265)",
            ),
            (_, "rhtml502") => Behaviour::Reply {
                status: 502,
                body: "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
                retry_after: None,
            },
            (_, "r503") if times == 0 => Behaviour::Reply {
                status: 503,
                body: "busy".into(),
                retry_after: Some(1),
            },
            (_, "rdrop") if times == 0 => Behaviour::Drop,
            (_, "rstall") => Behaviour::Stall(Duration::from_secs(3)),
            (_, "r401") => Behaviour::json(401, "message", "unauthorized"),
            _ => Behaviour::ok(
                "DPWWA2043I   The user's credential was updated. Sessions refreshed: 1.",
            ),
        }
    })
}

fn refresh(user: &str) -> String {
    format!(
        "server task default-webseald-cruz sms session refresh all_sessions {user} -realm ibm.com\n"
    )
}

#[test]
fn every_answer_of_the_appliance_becomes_its_result_one_command_per_request() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let appliance = Appliance::start(&tls, Duration::ZERO, appliance_script());
    let target = target_yaml(
        tmp.path(),
        &appliance.url(),
        &tls.ca,
        "concurrency: 3\ntimeout: 1s\nretries: 2\n",
    );
    let users = [
        "ok1",
        "r500result",
        "r500message",
        "r200error",
        "rwarn",
        "rhtml502",
        "r503",
        "rdrop",
        "rstall",
    ];
    let mut text: String = users.iter().map(|u| refresh(u)).collect();
    text.push_str(
        "server task nosuch-webseald-x sms session refresh all_sessions ok2 -realm ibm.com\n",
    );
    text.push_str("this is not a command\n");
    let input = tmp.path().join("cmds.pdadmin");
    std::fs::write(&input, text).unwrap();
    let report = tmp.path().join("report.json");
    let (_d, site) = demo_copy();
    let out = run_against(
        &site,
        &target,
        &[
            "--report",
            report.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let results = json_lines(&out);
    let by_line = |n: usize| &results[n - 1];
    let expect = [
        (1, "ok", "DPWWA2043I"),
        (2, "error", "HPDMG0754W"),
        (3, "error", "null"),
        (4, "error", "DPWIV1071E"),
        (5, "warning", "SMRSS0101W"),
        (6, "error", "SMRTG0211E"),
        (7, "ok", "DPWWA2043I"),
        (8, "ok", "DPWWA2043I"),
        (9, "error", "SMRTG0210E"),
        (10, "error", "DPWAP0059E"),
        (11, "error", "SMRCM0205E"),
    ];
    for (line, status, id) in expect {
        let r = by_line(line);
        assert_eq!(r["line"], line as u64);
        assert_eq!(r["status"], status, "line {line}: {r}");
        assert_eq!(
            r["message_id"].to_string().trim_matches('"'),
            id,
            "line {line}: {r}"
        );
    }
    assert_eq!(by_line(2)["code"], "0x14c012f2");
    assert_eq!(by_line(3)["message"], "An internal error occurred");
    assert!(
        by_line(6)["message"].as_str().unwrap().contains("502")
            && by_line(6)["message"].as_str().unwrap().contains("<html>")
    );
    assert!(
        by_line(9)["message"].as_str().unwrap().contains("timeout")
            || by_line(9)["message"]
                .as_str()
                .unwrap()
                .contains("timed out"),
        "{}",
        by_line(9)
    );
    // One command in every request; the unknown server and the bad line were never sent.
    let sent = appliance.commands();
    assert!(sent.iter().all(|c| c.len() == 1), "{sent:?}");
    assert!(
        !sent
            .iter()
            .any(|c| c[0].contains("nosuch") || c[0].contains("not a command"))
    );
    assert_eq!(sent[0][0], "server list", "the preflight comes first");
    let count = |u: &str| {
        sent.iter()
            .filter(|c| c[0].contains(&format!(" {u} ")))
            .count()
    };
    assert_eq!(count("r503"), 2, "retried after the 503's Retry-After");
    assert_eq!(count("rdrop"), 2, "retried after the dropped connection");
    assert_eq!(count("rhtml502"), 3, "two retries, then the error");
    assert_eq!(count("r500result"), 1, "a 500 is an answer, not retried");
    assert!(
        results
            .iter()
            .all(|r| r["target"] == appliance.url().as_str()),
        "every result names the target"
    );
    assert!(appliance.requests.lock().iter().all(|r| {
        r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    }));
    let first = &appliance.requests.lock()[0].body;
    assert_eq!(first["admin_id"], "sec_master");
    assert_eq!(first["admin_pwd"], ADMIN_PW);
    // The report names the target, never a password, and counts the retries by cause.
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(!report_text.contains(LMI_PW) && !report_text.contains(ADMIN_PW));
    let report: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    assert_eq!(report["store"], appliance.url().as_str());
    assert_eq!(report["retries"]["http 503"], 1);
    assert_eq!(report["retries"]["http 502"], 2);
    assert!(report["retries"]["connection"].as_u64().unwrap() >= 1);
    assert!(report["retries"]["timeout"].as_u64().unwrap() >= 2);
}

#[test]
fn a_401_mid_run_stops_sending_and_the_rest_are_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let appliance = Appliance::start(&tls, Duration::ZERO, appliance_script());
    let target = target_yaml(tmp.path(), &appliance.url(), &tls.ca, "concurrency: 1\n");
    let text: String = ["ok1", "ok2", "r401", "ok3", "ok4"]
        .iter()
        .map(|u| refresh(u))
        .collect();
    let input = tmp.path().join("cmds.pdadmin");
    std::fs::write(&input, text).unwrap();
    let (_d, site) = demo_copy();
    let out = run_against(&site, &target, &["-q", input.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let results = json_lines(&out);
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "error", "error", "error"]);
    for r in &results[3..] {
        assert_eq!(r["message_id"], "SMRTG0212E");
        assert!(r["message"].as_str().unwrap().contains("HTTP 401"), "{r}");
    }
    let sent = appliance.commands();
    assert!(
        !sent
            .iter()
            .any(|c| c[0].contains(" ok3 ") || c[0].contains(" ok4 ")),
        "{sent:?}"
    );
}

#[test]
fn the_preflight_stops_what_cannot_run_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = Tls::create(&other_dir);
    let (_s, served) = demo_copy();
    let serve = Serve::start(&served, &tls, &[]);
    let (_d, site) = demo_copy();
    let s = site.to_str().unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("https://{}", unused.local_addr().unwrap());
    drop(unused);
    let cases: Vec<(PathBuf, &str, &str)> = vec![
        (
            target_yaml(tmp.path(), &serve.url, &other.ca, ""),
            LMI_PW,
            "certificate",
        ),
        (
            target_yaml(tmp.path(), &dead, &tls.ca, "retries: 0\n"),
            LMI_PW,
            "onnect",
        ),
        (
            target_yaml(tmp.path(), &serve.url, &tls.ca, ""),
            "wrong-lmi",
            "HTTP 401",
        ),
    ];
    let before = std::fs::read(served.join("sessions.jsonl")).unwrap();
    for (target, lmi, says) in cases {
        let out = run_cmd(
            bin()
                .args(["run", "--site", s, "--target", target.to_str().unwrap()])
                .args(["--format", "jsonl", "samples/demo/commands.pdadmin"])
                .env("TEST_LMI_PW", lmi)
                .env("TEST_ADMIN_PW", ADMIN_PW),
            None,
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{says}: {err}");
        assert!(
            err.contains(says) && err.contains("preflight"),
            "{says}: {err}"
        );
        assert!(stdout(&out).is_empty(), "nothing ran");
        assert!(!err.contains(LMI_PW) && !err.contains(ADMIN_PW));
    }
    // A wrong pdadmin password: the preflight's text says why.
    let target = target_yaml(tmp.path(), &serve.url, &tls.ca, "");
    let out = run_cmd(
        bin()
            .args(["run", "--site", s, "--target", target.to_str().unwrap()])
            .arg("samples/demo/commands.pdadmin")
            .env("TEST_LMI_PW", LMI_PW)
            .env("TEST_ADMIN_PW", "not-it"),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("SMRTG0213E"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(served.join("sessions.jsonl")).unwrap(),
        before
    );
    // A policy that filters sessions, --no-save, an inline password: refused before anything.
    let policy = tmp.path().join("idle.yaml");
    std::fs::write(&policy, "version: 1\nname: idle\nrealm: ibm.com\ntargets: {all_users: true}\nsessions: {idle_longer_than: 8h}\n").unwrap();
    let out = with_target(&[
        "run",
        "--site",
        s,
        "--target",
        target.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no session data"), "{}", stderr(&out));
    let out = with_target(&[
        "run",
        "--site",
        s,
        "--target",
        target.to_str().unwrap(),
        "--no-save",
        "samples/demo/commands.pdadmin",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--dry-run"), "{}", stderr(&out));
    let inline = tmp.path().join("inline.yaml");
    std::fs::write(
        &inline,
        std::fs::read_to_string(&target)
            .unwrap()
            .replace("lmi_password_env: TEST_LMI_PW", "lmi_password: hunter2"),
    )
    .unwrap();
    let out = with_target(&[
        "run",
        "--site",
        s,
        "--target",
        inline.to_str().unwrap(),
        "samples/demo/commands.pdadmin",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(":4: lmi_password: a password is never written"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));
    // A dry run sends the preflight alone and reports every command as it would be sent.
    let appliance = Appliance::start(&tls, Duration::ZERO, appliance_script());
    let target = target_yaml(tmp.path(), &appliance.url(), &tls.ca, "");
    let input = tmp.path().join("two.pdadmin");
    std::fs::write(&input, refresh("ok1") + &refresh("ok2")).unwrap();
    let out = with_target(&[
        "run",
        "--site",
        s,
        "--target",
        target.to_str().unwrap(),
        "--dry-run",
        "--format",
        "jsonl",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = json_lines(&out);
    assert!(
        results
            .iter()
            .all(|r| r["message_id"] == "SMRTG0005I" && r["dry_run"] == true)
    );
    assert_eq!(appliance.commands(), vec![vec!["server list".to_string()]]);
}

/// The policy's groups select users from the registry; a target gets their commands.
#[test]
fn a_policy_that_selects_by_registry_runs_against_a_target() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let appliance = Appliance::start(&tls, Duration::ZERO, appliance_script());
    let target = target_yaml(tmp.path(), &appliance.url(), &tls.ca, "");
    let (_d, site) = demo_copy();
    let out = with_target(&[
        "run",
        "--site",
        site.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--policy",
        "policies/refresh-payroll-managers.yaml",
        "--format",
        "jsonl",
        "-q",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = json_lines(&out);
    assert!(!results.is_empty());
    let sent = appliance.commands();
    assert_eq!(
        sent.len(),
        results.len() + 1,
        "one request per planned command, and the preflight"
    );
}

#[test]
fn a_signal_mid_run_leaves_exactly_the_results_of_what_was_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let appliance = Appliance::start(&tls, Duration::from_millis(40), appliance_script());
    let target = target_yaml(tmp.path(), &appliance.url(), &tls.ca, "concurrency: 4\n");
    let text: String = (0..400).map(|i| refresh(&format!("user{i:03}"))).collect();
    let input = tmp.path().join("many.pdadmin");
    std::fs::write(&input, text).unwrap();
    let (_d, site) = demo_copy();
    let results = tmp.path().join("results.jsonl");
    for (signal, status) in [("-INT", 130), ("-TERM", 143)] {
        let _ = std::fs::remove_file(&results);
        appliance.requests.lock().clear();
        let child = bin()
            .args([
                "run",
                "--site",
                site.to_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
            ])
            .args([
                "--format",
                "jsonl",
                "-o",
                results.to_str().unwrap(),
                input.to_str().unwrap(),
            ])
            .env("TEST_LMI_PW", LMI_PW)
            .env("TEST_ADMIN_PW", ADMIN_PW)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while appliance.requests.lock().len() < 40 {
            assert!(t.elapsed() < Duration::from_secs(30), "nothing was sent");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(status), "{err}");
        let written: Vec<serde_json::Value> = std::fs::read_to_string(&results)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut got: Vec<String> = written
            .iter()
            .map(|r| r["command"].as_str().unwrap().to_string())
            .collect();
        let mut sent: Vec<String> = appliance
            .commands()
            .into_iter()
            .map(|c| c[0].clone())
            .filter(|c| c != "server list")
            .collect();
        got.sort();
        sent.sort();
        assert_eq!(
            got, sent,
            "results = exactly the commands the server received"
        );
        assert!(written.len() < 400, "stopped before the end");
        assert!(
            err.contains(&format!("{} of 400 commands ran", written.len())),
            "{err}"
        );
    }
}

/// `serve` answers as the appliance answers a batch: the commands' text joined, HTTP 200 or
/// 500 by the last command; 400 for a body that is not the API's; 401 without the LMI login.
#[test]
fn serve_answers_batches_and_refuses_what_is_not_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let (_s, served) = demo_copy();
    let serve = Serve::start(&served, &tls, &[]);
    let ca = std::fs::read(&tls.ca).unwrap();
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .into();
    use base64::Engine as _;
    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"))
        )
    };
    let post = |path: &str, auth: &str, body: &str| {
        let mut r = agent
            .post(&format!("{}{path}", serve.url))
            .header("Authorization", auth)
            .header("Accept", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
    };
    let batch = |cmds: &[&str]| {
        serde_json::json!({"admin_id": "sec_master", "admin_pwd": ADMIN_PW, "admin_domain": "Default", "commands": cmds})
            .to_string()
    };
    let (status, body) = post(
        "/isam/pdadmin/",
        &basic(LMI_PW),
        &batch(&[
            "server list",
            "server task nosuch-webseald-x sms realm list",
        ]),
    );
    assert_eq!(status, 500, "the last command failed: {body}");
    let text = body["result"].as_str().unwrap();
    assert!(
        text.contains("default-webseald-cruz") && text.contains("Error: DPWAP0059E"),
        "{text}"
    );
    let (status, body) = post(
        "/isam/pdadmin",
        &basic(LMI_PW),
        &batch(&[
            "server task nosuch-webseald-x sms realm list",
            "server list",
        ]),
    );
    assert_eq!(status, 200, "the last command succeeded: {body}");
    let (status, body) = post("/isam/pdadmin", &basic(LMI_PW), "{not json");
    assert_eq!(status, 400);
    assert!(body["message"].is_string());
    let (status, _) = post(
        "/isam/pdadmin",
        &basic(LMI_PW),
        r#"{"admin_id": "sec_master"}"#,
    );
    assert_eq!(status, 400, "a missing field");
    let (status, _) = post("/isam/pdadmin", &basic("wrong"), &batch(&["server list"]));
    assert_eq!(status, 401);
}
