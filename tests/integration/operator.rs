//! The operator's tool (contract §13, "Discoverability" and "Progress"; issue 14), through
//! the binary: completion scripts that shells accept, a manual page that renders without a
//! warning, the policy schema against every shipped and bad policy, examples at the end of
//! every `--help`, `help` in the shell, `--retry-failed` on the site files, and progress
//! over a whole 200k-user run read from standard error as it comes.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Instant;

use super::util::*;

#[test]
fn completion_scripts_for_every_shell() {
    let out = run(&["completions", "bash"], None);
    assert_eq!(code(&out), 0);
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("smsrefresh.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout(&out).contains("registry") && stdout(&out).contains("--retry-failed"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell], None);
        assert_eq!(code(&out), 0, "{shell}");
        assert!(stdout(&out).contains("smsrefresh"), "{shell}");
    }
    assert_eq!(code(&run(&["completions", "tcsh"], None)), 2);
}

#[test]
fn the_manual_page_renders_without_warnings_and_covers_every_subcommand() {
    let out = run(&["man"], None);
    assert_eq!(code(&out), 0);
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("smsrefresh.1");
    std::fs::write(&page, &out.stdout).unwrap();
    assert!(
        out.stdout.is_ascii(),
        "non-ASCII characters are written as groff glyphs"
    );
    let man = std::process::Command::new("man")
        .args(["--warnings=all", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .expect("man is installed (.ci/run installs man-db)");
    assert!(man.status.success());
    assert_eq!(String::from_utf8_lossy(&man.stderr), "", "man -l warns");
    let text = String::from_utf8_lossy(&man.stdout);
    for section in [
        "SMSREFRESH RUN",
        "SMSREFRESH EXEC",
        "SMSREFRESH SHELL",
        "SMSREFRESH STORE IMPORT",
        "SMSREFRESH REGISTRY EXPORT",
        "SMSREFRESH COMPLETIONS",
        "SMSREFRESH SCHEMA",
    ] {
        assert!(text.contains(section), "{section}");
    }
    assert!(text.contains("--retry-failed") && text.contains("Examples:"));
}

/// The YAML of a policy file as JSON, or `None` when it does not even parse.
fn policy_json(path: &std::path::Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    serde_json::to_value(yaml).ok()
}

#[test]
fn the_policy_schema_accepts_every_shipped_policy_and_rejects_the_bad_ones() {
    let out = run(&["schema", "policy"], None);
    assert_eq!(code(&out), 0);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let validator = jsonschema::validator_for(&schema).expect("a valid draft 2020-12 schema");
    let mut shipped = 0;
    for e in std::fs::read_dir(repo().join("policies")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let doc = policy_json(&path).unwrap();
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            shipped += 1;
        }
    }
    assert!(shipped >= 5);
    // Every bad policy whose fault is in the file itself (an unknown group needs the site).
    let mut bad = 0;
    for e in std::fs::read_dir(repo().join("tests/bad-inputs")).unwrap() {
        let dir = e.unwrap().path();
        let path = dir.join("policy.yaml");
        if !path.exists() || dir.ends_with("policy-unknown-group") {
            continue;
        }
        if let Some(doc) = policy_json(&path) {
            assert!(!validator.is_valid(&doc), "{} is accepted", path.display());
        }
        bad += 1;
    }
    assert!(bad >= 5);
    for (text, why) in [
        (
            "version: 1\nname: n\ntargets: {users: [a]}\naction: reboot\n",
            "unknown action",
        ),
        ("version: 2\nname: n\ntargets: {users: [a]}\n", "version 2"),
        (
            "version: 1\nname: 'has space'\ntargets: {users: [a]}\n",
            "a bad name",
        ),
        ("version: 1\nname: n\n", "no targets"),
        (
            "version: 1\nname: n\ntargets: {users: [a]}\ncredential_refresh: [{a: keep}]\n",
            "a bad rule",
        ),
        (
            "version: 1\nname: n\ntargets: {users: [a]}\nexecution: {rate: 2000000}\n",
            "a rate too high",
        ),
    ] {
        let doc: serde_json::Value =
            serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(text).unwrap()).unwrap();
        assert!(!validator.is_valid(&doc), "{why} is accepted");
    }
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    let help = stdout(&run(&["--help"], None));
    let subcommands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 14, "{subcommands:?}");
    let mut checked = 0;
    for sub in &subcommands {
        let mut paths = vec![vec![sub.clone()]];
        if sub == "store" {
            paths = ["import", "export", "stats"]
                .map(|n| vec![sub.clone(), n.into()])
                .to_vec();
        }
        if sub == "registry" {
            paths = vec![vec![sub.clone(), "export".into()]];
        }
        for path in paths {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push("--help");
            let text = stdout(&run(&args, None));
            let examples = text.rsplit("Examples:\n").next().unwrap();
            assert!(text.contains("Examples:\n"), "{path:?}: no examples");
            assert!(
                examples
                    .lines()
                    .all(|l| l.is_empty() || l.starts_with("  ")),
                "{path:?}: the examples are not the end of the help"
            );
            assert!(examples.contains("smsrefresh"), "{path:?}");
            checked += 1;
        }
    }
    assert!(checked >= 16);
}

#[test]
fn help_inside_the_shell() {
    let (_tmp, site) = demo_copy();
    let out = run(
        &["shell", "--site", site.to_str().unwrap(), "--no-save"],
        Some("help\nserver list\n?\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("Commands (keywords").count(), 2);
    assert!(text.contains("sms session refresh all_sessions USER -realm REALM"));
    assert!(
        text.contains("default-webseald-cruz"),
        "other commands still run"
    );
    assert!(!text.contains("not a valid command"));
}

#[test]
fn retry_failed_reruns_exactly_the_error_lines_of_a_results_file() {
    let (tmp, site) = demo_copy();
    let s = site.to_str().unwrap();
    let results = tmp.path().join("results.jsonl");
    let first = run_site(
        &site,
        &[
            "--no-save",
            "--format",
            "jsonl",
            "-q",
            "-o",
            results.to_str().unwrap(),
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    assert_eq!(code(&first), 1);
    let all: Vec<serde_json::Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&serde_json::Value> = all.iter().filter(|r| r["status"] == "error").collect();
    assert!(failed.len() >= 3);
    let again = run(
        &[
            "run",
            "--site",
            s,
            "--no-save",
            "--format",
            "jsonl",
            "-q",
            "--retry-failed",
            results.to_str().unwrap(),
        ],
        None,
    );
    let rerun = json_lines(&again);
    assert_eq!(rerun.len(), failed.len(), "only the error lines run again");
    for (new, old) in rerun.iter().zip(&failed) {
        assert_eq!(new["line"], old["line"]);
        assert_eq!(new["source"], old["source"]);
        assert_eq!(new["command"], old["command"]);
    }
    // Not a results file: refused before anything runs.
    let refused = run(
        &[
            "run",
            "--site",
            s,
            "--no-save",
            "--retry-failed",
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
}

/// Progress shows while the site loads (before any result) and while it saves (after the
/// last command), read from standard error as the run goes.
#[test]
fn progress_covers_load_execute_and_save_of_a_200k_user_run() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let s = site.to_str().unwrap();
    assert_eq!(
        code(&run(&["gen", "--out", s, "--users", "200000"], None)),
        0
    );
    let started = Instant::now();
    let mut child = bin()
        .args([
            "run",
            "--site",
            s,
            "--progress",
            "always",
            "--format",
            "jsonl",
        ])
        .arg(site.join("users.csv"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr_pipe)
            .lines()
            .map(|l| (started.elapsed(), l.unwrap()))
            .collect::<Vec<_>>()
    });
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout_pipe.read_exact(&mut first).unwrap();
    let first_result = started.elapsed();
    let mut rest = Vec::new();
    stdout_pipe.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let lines = lines.join().unwrap();
    let at = |what: &str| lines.iter().position(|(_, l)| l.contains(what));
    let loading = at("loading the site").expect("a line while loading");
    let saving = at("saving the site").expect("a line while saving");
    let last_executing = lines
        .iter()
        .rposition(|(_, l)| l.contains("executing"))
        .expect("lines while executing");
    assert!(
        loading < last_executing && last_executing < saving,
        "{lines:?}"
    );
    assert!(
        lines[loading].0 < first_result,
        "progress shows before the first result"
    );
    assert!(
        lines[saving].0 <= first_result,
        "and after the last command, while saving"
    );
    assert!(lines.iter().any(|(_, l)| l.contains("ETA")));
    assert!(
        lines.last().unwrap().1.contains("sessions refreshed"),
        "the summary ends it"
    );
    assert_eq!(rest.iter().filter(|b| **b == b'\n').count(), 200_000);
}

/// A `topology.yaml` that can be read only once: a named pipe, written once by a thread. A
/// run that read the site's description more than once (to decide the store, then to lock,
/// then to load) would wait for a second writer that never comes.
fn topology_through_a_pipe(site: &std::path::Path) -> std::thread::JoinHandle<()> {
    let path = site.join("topology.yaml");
    let text = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    std::thread::spawn(move || {
        use std::io::Write;
        // Opening for writing waits for the reader; the file is then written once.
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let _ = pipe.write_all(&text);
    })
}

/// Runs `args` and gives up (failing) after 30 s.
fn run_bounded(args: &[&str]) -> std::process::Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{args:?} waited for a second reading of topology.yaml");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// What use found: one run read topology.yaml three times and decided its store twice. The
/// site's description (topology, registry, store) is now resolved once and carried down.
#[test]
fn run_and_exec_read_the_site_description_once() {
    let (_t, site) = demo_copy();
    let s = site.to_str().unwrap();
    let writer = topology_through_a_pipe(&site);
    let out = run_bounded(&[
        "run",
        "--site",
        s,
        "--format",
        "jsonl",
        "-q",
        "samples/demo/commands.pdadmin",
    ]);
    writer.join().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 27);
    let writer = topology_through_a_pipe_again(&site);
    let out = run_bounded(&["exec", "--site", s, "server list"]);
    writer.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("default-webseald-cruz"));
}

/// The pipe made by [`topology_through_a_pipe`], written once more.
fn topology_through_a_pipe_again(site: &std::path::Path) -> std::thread::JoinHandle<()> {
    let path = site.join("topology.yaml");
    let text = std::fs::read(repo().join("samples/demo/topology.yaml")).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let _ = pipe.write_all(&text);
    })
}
