//! Nothing lost (contract §13): real signals at random moments leave the site and the
//! results in agreement, a stray quote costs one row, read-only runs leave the snapshot
//! alone, dry runs say so, the site is chosen as documented, and the lock names its holder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::util::*;

const NOW: &str = "2026-11-28T00:00:00Z";

fn wait(mut child: Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < limit,
            "the run did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn kill(child: &Child, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// Users whose sessions a run refreshed: those with `last_refresh` at NOW.
fn refreshed_in_site(site: &Path) -> BTreeSet<String> {
    sessions(site)
        .iter()
        .filter(|s| s["last_refresh"] == NOW)
        .map(|s| s["user"].as_str().unwrap().to_string())
        .collect()
}

/// Users the results say were refreshed.
fn refreshed_in_results(results: &str) -> BTreeSet<String> {
    results
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["status"] == "ok" && r["sessions"].as_u64().unwrap_or(0) > 0)
        .map(|r| r["user"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn signals_at_random_moments_leave_the_site_and_the_results_in_agreement() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let out = run(
        &[
            "gen",
            "--out",
            original.to_str().unwrap(),
            "--users",
            "4000",
            "--seed",
            "4",
        ],
        None,
    );
    assert_eq!(code(&out), 0);
    // A paced policy over every user: long enough that signals land mid-run.
    let policy = tmp.path().join("paced.yaml");
    std::fs::write(
        &policy,
        "version: 1\nname: paced\nrealm: realm1.example.com\ntargets:\n  csv: [original/users.csv]\nexecution:\n  rate: 2500\n",
    )
    .unwrap();
    let before = std::fs::read(original.join("sessions.jsonl")).unwrap();
    let mut x: u64 = 7;
    let (mut partial, mut rounds) = (0, 0);
    for round in 0..20 {
        let site = tmp.path().join(format!("site{round}"));
        std::fs::create_dir(&site).unwrap();
        for f in ["topology.yaml", "registry.jsonl", "sessions.jsonl"] {
            std::fs::copy(original.join(f), site.join(f)).unwrap();
        }
        let results = tmp.path().join(format!("out{round}.jsonl"));
        let child = bin()
            .args(["run", "--site", site.to_str().unwrap(), "--now", NOW, "-q"])
            .args(["--format", "jsonl", "-o", results.to_str().unwrap()])
            .args(["--policy", policy.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis((x >> 33) % 2500));
        let signal = ["-INT", "-TERM", "-KILL", "-TERM"][round % 4];
        kill(&child, signal);
        if round % 4 == 3 {
            // A second signal: stop at once, nothing saved, no result written.
            std::thread::sleep(Duration::from_millis((x >> 40) % 50));
            kill(&child, signal);
        }
        let done = wait(child, Duration::from_secs(120));
        let status = done.status.code();
        let err = String::from_utf8_lossy(&done.stderr).into_owned();
        if signal != "-KILL" {
            assert!(
                temp_files(&site).is_empty(),
                "round {round}: {:?}",
                temp_files(&site)
            );
            let mine = format!(".out{round}.jsonl.tmp-");
            assert!(
                !temp_files(tmp.path()).iter().any(|f| f.starts_with(&mine)),
                "round {round}: {:?}",
                temp_files(tmp.path())
            );
            assert!(
                [Some(0), Some(130), Some(143)].contains(&status),
                "round {round}: {status:?} {err}"
            );
        }
        match std::fs::read_to_string(&results) {
            // Results exist only once the site is saved: they agree line by line.
            Ok(text) => {
                assert_eq!(
                    refreshed_in_site(&site),
                    refreshed_in_results(&text),
                    "round {round}"
                );
                let lines = text.lines().count();
                if lines < 4000 {
                    partial += 1;
                    assert!(
                        err.contains(&format!("{lines} of 4000 commands ran")),
                        "{err}"
                    );
                    assert!(err.contains("to resume"), "{err}");
                }
            }
            // No results: the site is as it was.
            Err(_) => {
                assert!(
                    std::fs::read(site.join("sessions.jsonl")).unwrap() == before,
                    "round {round} ({signal}): the site changed without results: {err}"
                );
            }
        }
        rounds += 1;
    }
    assert_eq!(rounds, 20);
    assert!(partial >= 2, "only {partial} rounds stopped mid-run");
}

#[test]
fn a_stray_quote_costs_its_row_alone() {
    let (tmp, site) = demo_copy();
    let list = tmp.path().join("big.csv");
    let mut text = String::from("user,realm\n");
    for i in 1..=100_000 {
        if i == 10 {
            text.push_str("jo\"hn,ibm.com\n");
        } else {
            text.push_str(&format!("user{i},ibm.com\n"));
        }
    }
    std::fs::write(&list, text).unwrap();
    let out = run_jsonl(&site, &[list.to_str().unwrap()], None);
    let results = json_lines(&out);
    assert_eq!(results.len(), 100_000);
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r["message_id"] == "SMRIN0207E")
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0]["line"], 11,
        "row 10 is physical line 11, after the header"
    );
    assert!(
        bad[0]["message"]
            .as_str()
            .unwrap()
            .contains("line 11: a quote is not closed")
    );
    assert_eq!(results[10]["user"], "user11");
}

#[test]
fn a_read_only_run_leaves_the_snapshot_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("s");
    assert_eq!(
        code(&run(
            &["gen", "--out", site.to_str().unwrap(), "--users", "500"],
            None
        )),
        0
    );
    // `exec` of one `sms session` task on user USER in realm1.
    let task = |verb: &str, user: &str| {
        let line = format!(
            "server task default-webseald-node1.example.com sms session {verb} all_sessions {user} -realm realm1.example.com"
        );
        run(&["exec", "--site", site.to_str().unwrap(), &line], None)
    };
    let path = site.join("sessions.jsonl");
    let before = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let list = run(
        &["exec", "--site", site.to_str().unwrap(), "server", "list"],
        None,
    );
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let nobody = task("refresh", "nobody");
    assert!(code(&nobody) <= 1, "{}", stderr(&nobody));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified,
        "rewritten"
    );
    // A change is saved.
    if code(&task("terminate", "user0000001")) == 0 {
        assert_ne!(std::fs::read(&path).unwrap(), before);
    }
}

#[test]
fn dry_runs_say_so_in_every_form() {
    let (_t, site) = demo_copy();
    let input = site.join("commands.pdadmin");
    let go = |format: &str| {
        run_site(
            &site,
            &["--dry-run", "--format", format, input.to_str().unwrap()],
            None,
        )
    };
    let pdadmin = go("pdadmin");
    assert!(stdout(&pdadmin).starts_with("# dry run: nothing was changed\npdadmin> "));
    assert!(
        stderr(&pdadmin).starts_with("dry run: nothing was changed; smsrefresh: "),
        "{}",
        stderr(&pdadmin)
    );
    let csv = stdout(&go("csv"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "dry_run").unwrap();
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(col) == Some("true"))
            || csv.contains(",true,")
    );
    assert!(
        json_lines(&go("jsonl"))
            .iter()
            .all(|r| r["dry_run"] == true)
    );
    let exec = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--dry-run",
            "server",
            "list",
        ],
        None,
    );
    assert!(stdout(&exec).starts_with("# dry run: nothing was changed\n"));
    // And nothing changed.
    assert_eq!(
        std::fs::read(site.join("sessions.jsonl")).unwrap(),
        std::fs::read(repo().join("samples/demo/sessions.jsonl")).unwrap()
    );
}

#[test]
fn the_site_is_chosen_as_documented_and_an_overridden_policy_site_is_noted() {
    let (tmp, copy) = demo_copy();
    let policy = repo().join("policies/refresh-payroll-managers.yaml");
    let p = policy.to_str().unwrap();
    let tracked = std::fs::read(repo().join("samples/demo/sessions.jsonl")).unwrap();
    // SMSREFRESH_SITE beats the policy's `site:`, and standard error says so.
    let mut cmd = bin();
    cmd.env("SMSREFRESH_SITE", &copy)
        .args(["run", "--policy", p, "-q"]);
    let out = run_cmd(&mut cmd, None);
    assert!(code(&out) <= 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not the policy's `site:`"),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        std::fs::read(copy.join("sessions.jsonl")).unwrap(),
        tracked,
        "the copy changed"
    );
    assert_eq!(
        std::fs::read(repo().join("samples/demo/sessions.jsonl")).unwrap(),
        tracked
    );
    // --site beats the variable.
    let other = tmp.path().join("nowhere");
    let mut cmd = bin();
    cmd.env("SMSREFRESH_SITE", &other).args([
        "exec",
        "--site",
        copy.to_str().unwrap(),
        "--no-save",
        "server",
        "list",
    ]);
    assert_eq!(code(&run_cmd(&mut cmd, None)), 0);
    // With nothing given, the current folder when it is a site.
    let mut cmd = bin();
    cmd.current_dir(&copy)
        .args(["exec", "--no-save", "server", "list"]);
    assert_eq!(code(&run_cmd(&mut cmd, None)), 0);
    let mut cmd = bin();
    cmd.current_dir(tmp.path())
        .args(["exec", "--no-save", "server", "list"]);
    let out = run_cmd(&mut cmd, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no site given"));
}

#[test]
fn a_locked_site_names_who_holds_it() {
    let (_t, site) = demo_copy();
    // A shell holds the lock while its standard input stays open.
    let mut holder = bin()
        .args(["shell", "--site", site.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = site.join(".smsrefresh.lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .starts_with("pid ")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the shell never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(
        &[
            "run",
            "--site",
            site.to_str().unwrap(),
            "--lock-timeout",
            "0.2",
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    drop(holder.stdin.take());
    let _ = holder.wait();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pid {} since 20", holder.id())),
        "{err}"
    );
    assert!(err.contains("the site is locked"), "{err}");
}

/// The README's tour, as a newcomer runs it (the 1M-user `gen` made smaller).
#[test]
fn the_readme_tour_changes_no_tracked_file() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let tour = readme.split("## A short tour").nth(1).unwrap();
    let block = tour
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo build"))
        .map(|l| l.replace("--users 1000000", "--users 2000") + "\n")
        .collect();
    let snapshot = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut all = Vec::new();
        for dir in ["samples/demo", "policies", "policies/lists"] {
            for e in std::fs::read_dir(repo().join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    all.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        all.sort();
        all
    };
    let root_files = || -> BTreeSet<String> {
        std::fs::read_dir(repo())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (before, root_before) = (snapshot(), root_files());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_smsrefresh"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(repo())
        .env("PATH", path)
        .env_remove("SMSREFRESH_SITE")
        .env_remove("SMSREFRESH_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrote 2000 users"),
        "the tour ran to its end: {err}"
    );
    assert!(!err.contains("smsrefresh: error"), "{err}");
    assert_eq!(snapshot(), before, "the tour changed a tracked file");
    assert_eq!(
        root_files(),
        root_before,
        "the tour left files in the checkout"
    );
}

/// Results to something that is not a regular file (`/dev/null`, a pipe) are written to it,
/// never renamed over it; through a symbolic link they replace the file it names.
#[test]
fn results_to_a_pipe_or_a_link_keep_what_they_are() {
    use std::os::unix::fs::FileTypeExt;
    let (tmp, site) = demo_copy();
    let fifo = tmp.path().join("results.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let input = site.join("commands.pdadmin");
    let args = [
        "-q",
        "--format",
        "jsonl",
        "-o",
        fifo.to_str().unwrap(),
        input.to_str().unwrap(),
    ];
    let out = run_site(&site, &args, None);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let got = reader.join().unwrap();
    assert!(got.lines().count() > 20, "{got}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // A link to a results file: the link stays, the file it names gets the results.
    let real = tmp.path().join("real.jsonl");
    std::fs::write(&real, "old\n").unwrap();
    let link = tmp.path().join("link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let args = [
        "--no-save",
        "-q",
        "--format",
        "jsonl",
        "-o",
        link.to_str().unwrap(),
        input.to_str().unwrap(),
    ];
    assert_eq!(code(&run_site(&site, &args, None)), 1);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let written = std::fs::read_to_string(&real).unwrap();
    assert_eq!(written.lines().count(), got.lines().count());
    assert!(written.lines().all(|l| l.starts_with("{\"line\":")));
}

/// A fresh copy of a site's files (a new inode for each, so its binary caches are rebuilt by
/// the next load, as after `cp -r`).
fn fresh_copy(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for f in ["topology.yaml", "registry.jsonl", "sessions.jsonl"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// Starts `run` with progress lines on standard error, which a thread forwards as they come.
fn spawn_with_progress(
    site: &Path,
    extra: &[&str],
) -> (Child, std::sync::mpsc::Receiver<(Instant, String)>) {
    use std::io::BufRead;
    let mut child = bin()
        .args(["run", "--site", site.to_str().unwrap(), "--now", NOW])
        .args(["--progress", "always", "--format", "jsonl"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for chunk in std::io::BufReader::new(err).split(b'\n') {
            let Ok(chunk) = chunk else { break };
            // A redraw may begin with a carriage return: each redraw is a line here.
            for line in String::from_utf8_lossy(&chunk).split('\r') {
                if tx.send((Instant::now(), line.to_string())).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

/// Waits for a line of standard error that contains `what`; the lines seen, in order.
fn wait_for_line(
    rx: &std::sync::mpsc::Receiver<(Instant, String)>,
    what: &str,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, line)) => {
                let hit = line.contains(what);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no line with `{what}` on standard error: {seen:?}"),
        }
    }
}

/// Contract §13 and what use found: a signal while the site loads stops the process at once
/// (nothing ran, nothing changed, a half-written cache removed); and a binary cache written
/// by the load is no save, so a second signal during the commands still stops at once
/// without saving.
#[test]
fn signals_while_the_site_loads_stop_at_once_and_a_cache_is_no_save() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let o = original.to_str().unwrap();
    let made = run(
        &["gen", "--out", o, "--users", "100000", "--seed", "3"],
        None,
    );
    assert_eq!(code(&made), 0, "{}", stderr(&made));
    let before = std::fs::read(original.join("sessions.jsonl")).unwrap();
    let list = original.join("users.csv");

    // Ctrl-C twice, 30 ms apart, while the copy loads and rebuilds its caches: exit 130 at
    // once, before any command, with the site and the folder as they were.
    for (round, pause) in [100u64, 400, 800].into_iter().enumerate() {
        let site = tmp.path().join(format!("load{round}"));
        fresh_copy(&original, &site);
        let results = tmp.path().join(format!("load{round}.jsonl"));
        let (child, rx) = spawn_with_progress(
            &site,
            &["-o", results.to_str().unwrap(), list.to_str().unwrap()],
        );
        let mut seen = Vec::new();
        wait_for_line(&rx, "loading the site", &mut seen);
        std::thread::sleep(Duration::from_millis(pause));
        let signalled = Instant::now();
        kill(&child, "-INT");
        std::thread::sleep(Duration::from_millis(30));
        kill(&child, "-INT");
        let done = wait(child, Duration::from_secs(60));
        let took = signalled.elapsed();
        let err: Vec<String> = rx.try_iter().map(|(_, l)| l).collect();
        let err = err.join("\n");
        assert_eq!(done.status.code(), Some(130), "round {round}: {err}");
        assert!(
            err.contains("stopped before any command ran; nothing was changed"),
            "round {round}: {err}"
        );
        assert!(!err.contains("the site is saved"), "round {round}: {err}");
        assert!(
            took < Duration::from_millis(1000),
            "round {round}: {took:?} from the signal to the exit"
        );
        assert!(!results.exists(), "round {round}: no result is written");
        assert!(
            temp_files(&site).is_empty(),
            "round {round}: {:?}",
            temp_files(&site)
        );
        assert!(
            temp_files(tmp.path()).is_empty(),
            "{:?}",
            temp_files(tmp.path())
        );
        assert!(std::fs::read(site.join("sessions.jsonl")).unwrap() == before);
        // Whatever cache the load left is whole or absent: the site loads and answers.
        let check = run_jsonl(&site, &["--now", NOW, "-"], Some("server list\n"));
        assert_eq!(code(&check), 0, "round {round}: {}", stderr(&check));
    }

    // The load of a fresh copy writes sessions.bin; then two signals while the commands run
    // (slowed by a rate) stop at once: nothing saved, no results, the site as it was.
    let site = tmp.path().join("running");
    fresh_copy(&original, &site);
    let policy = tmp.path().join("paced.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nname: paced\nrealm: realm1.example.com\ntargets:\n  csv: [{}]\nexecution:\n  rate: 500\n",
            list.display()
        ),
    )
    .unwrap();
    let results = tmp.path().join("running.jsonl");
    let (child, rx) = spawn_with_progress(
        &site,
        &[
            "-o",
            results.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let mut seen = Vec::new();
    wait_for_line(&rx, "executing", &mut seen);
    assert!(
        site.join("sessions.bin").exists(),
        "the load wrote its cache"
    );
    // "executing" is drawn as the phase begins; the paced commands (500/s, 200 s of them)
    // are surely running a moment later.
    std::thread::sleep(Duration::from_millis(300));
    kill(&child, "-INT");
    std::thread::sleep(Duration::from_millis(30));
    kill(&child, "-INT");
    let done = wait(child, Duration::from_secs(60));
    let err: Vec<String> = rx.try_iter().map(|(_, l)| l).collect();
    let err = err.join("\n");
    assert_eq!(done.status.code(), Some(130), "{err}");
    assert!(
        err.contains("stopped at once; nothing was saved"),
        "a cache written by the load is no save: {err}"
    );
    assert!(!err.contains("the site is saved"), "{err}");
    assert!(!results.exists());
    assert!(temp_files(&site).is_empty(), "{:?}", temp_files(&site));
    assert!(std::fs::read(site.join("sessions.jsonl")).unwrap() == before);
}
