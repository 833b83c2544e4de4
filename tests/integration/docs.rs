//! The documentation tells the truth: the examples of `docs/formats.md` form a site that
//! loads and gives exactly the results shown, and `docs/cli.md` names exactly the flags each
//! subcommand's `--help` shows, with its tested examples running as documented.

use std::collections::BTreeSet;
use std::path::Path;

use super::util::*;

/// The fenced blocks of a Markdown page: (info string, body).
fn blocks(page: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join(page)).unwrap();
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some((info.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(current.is_none(), "{page}: a code block is not closed");
    out
}

/// The `title="…"` of a block's info string.
fn title(info: &str) -> Option<&str> {
    let rest = info.split_once("title=\"")?.1;
    rest.split_once('"').map(|(t, _)| t)
}

#[test]
fn the_formats_page_examples_are_a_site_that_gives_the_results_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut expected = Vec::new();
    for (info, body) in blocks("docs/formats.md") {
        let Some(name) = title(&info) else { continue };
        if name.starts_with("results.") {
            expected.push((name.to_string(), body));
            continue;
        }
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A site holds one registry: the JSON Lines form is checked in a copy.
        let path = if name == "registry.jsonl" {
            dir.join("jsonl-registry.jsonl")
        } else {
            path
        };
        std::fs::write(path, body).unwrap();
    }
    assert_eq!(expected.len(), 3, "results in pdadmin, jsonl and csv");
    let results = |site: &Path, format: &str| {
        let mut cmd = bin();
        cmd.current_dir(dir).args([
            "run",
            "--site",
            site.to_str().unwrap(),
            "--no-save",
            "--now",
            "2026-11-28T02:00:00Z",
            "-q",
            "--format",
            format,
            "commands.pdadmin",
        ]);
        let out = run_cmd(&mut cmd, None);
        assert_eq!(
            code(&out),
            1,
            "the last command fails on purpose: {}",
            stderr(&out)
        );
        stdout(&out)
    };
    for (name, want) in &expected {
        let format = match name.as_str() {
            "results.txt" => "pdadmin",
            "results.jsonl" => "jsonl",
            _ => "csv",
        };
        assert_eq!(&results(dir, format), want, "{name}");
    }
    // The JSON Lines registry is the same registry.
    let copy = dir.join("jsonl-site");
    std::fs::create_dir(&copy).unwrap();
    for f in ["topology.yaml", "sessions.jsonl"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    std::fs::copy(
        dir.join("jsonl-registry.jsonl"),
        copy.join("registry.jsonl"),
    )
    .unwrap();
    assert_eq!(results(&copy, "jsonl"), results(dir, "jsonl"));
    // The policies are valid and plan what the page says they select.
    for policy in ["policy.yaml", "sweep.yaml"] {
        let mut cmd = bin();
        cmd.current_dir(dir)
            .args(["validate", "--now", "2026-11-28T02:00:00Z", policy]);
        let out = run_cmd(&mut cmd, None);
        assert_eq!(code(&out), 0, "{policy}: {}", stdout(&out));
    }
    let mut cmd = bin();
    cmd.current_dir(dir).args(["plan", "policy.yaml"]);
    let out = run_cmd(&mut cmd, None);
    assert_eq!(
        stdout(&out),
        "server task default-webseald-cruz sms session refresh all_sessions \"Mary Jones\" -realm ibm.com\n"
    );
}

/// The long flags in a piece of text.
fn flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        rest = &rest[i + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if name.len() > 1 && !name.starts_with('-') {
            out.insert(format!("--{name}"));
        }
    }
    out
}

#[test]
fn the_cli_page_names_every_flag_of_every_subcommand() {
    let page = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let mut sections = page.split("\n## `smsrefresh ").skip(1);
    let help = stdout(&run(&["--help"], None));
    let subcommands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    let mut documented = Vec::new();
    for section in sections.by_ref() {
        let (name, body) = section.split_once("`").unwrap();
        documented.push(name.to_string());
        let shown = stdout(&run(&[name, "--help"], None));
        // The help's own flags, not those its examples use.
        let shown = shown.split("\nExamples:\n").next().unwrap_or(&shown);
        let mut want = flags(shown);
        want.remove("--help");
        // The section's own text, without its examples (they may use any subcommand's flags).
        let prose: String = body.split("```").step_by(2).collect();
        let got = flags(&prose);
        assert_eq!(got, want, "docs/cli.md, `smsrefresh {name}`");
    }
    assert_eq!(
        documented, subcommands,
        "one section per subcommand, in --help order"
    );
}

#[test]
fn the_cli_page_examples_run_as_documented() {
    let mut ran = 0;
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md"))
        .collect();
    pages.sort();
    let tested = pages
        .iter()
        .flat_map(|p| blocks(p))
        .filter(|(info, _)| info == "sh tested");
    for (_, body) in tested {
        for line in body.lines() {
            let words = shell_words(line);
            assert_eq!(words[0], "smsrefresh", "{line}");
            let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            let out = run(&args, None);
            // The demo command file fails on purpose in its last lines.
            let ok = if line.contains("commands.pdadmin") {
                1
            } else {
                0
            };
            assert_eq!(code(&out), ok, "{line}\n{}", stderr(&out));
            ran += 1;
        }
    }
    assert!(ran >= 15, "{ran} examples ran");
    // Nothing an example ran changed a tracked file.
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain", "samples", "policies"])
        .current_dir(repo())
        .output();
    if let Ok(s) = status
        && s.status.success()
    {
        assert_eq!(
            String::from_utf8_lossy(&s.stdout),
            "",
            "examples changed tracked files"
        );
    }
}

/// Runs a page's walkthrough with bash in a scratch folder, as a newcomer would type it: the
/// built binary first on the PATH, `$REPO` the repository, no site, store or target from the
/// environment.
fn run_walkthrough(script: &str) -> (tempfile::TempDir, std::process::Output) {
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_smsrefresh"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("REPO", repo())
        .env_remove("SMSREFRESH_SITE")
        .env_remove("SMSREFRESH_STORE")
        .env_remove("SMSREFRESH_TARGET")
        .output()
        .unwrap();
    (tmp, out)
}

/// The guide's walkthrough (docs/guide.md), run by bash in a scratch folder as a newcomer
/// would type it: every command must succeed (or fail as the page says it does).
#[test]
fn the_guide_walkthrough_runs_as_written() {
    let walkthrough: String = blocks("docs/guide.md")
        .into_iter()
        .filter(|(info, _)| info == "sh walkthrough")
        .map(|(_, body)| body)
        .collect();
    assert!(walkthrough.contains("--retry-failed") && walkthrough.contains("--policy"));
    let (tmp, out) = run_walkthrough(&walkthrough);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results = std::fs::read_to_string(tmp.path().join("results.jsonl")).unwrap();
    assert!(
        results.lines().count() >= 3,
        "the policy refreshed the payroll group"
    );
    let retry = std::fs::read_to_string(tmp.path().join("retry.jsonl")).unwrap();
    assert_eq!(retry.lines().count(), 1, "only the failed row ran again");
    assert!(
        retry.contains("\"line\":3"),
        "under its own line number: {retry}"
    );
}

/// docs/isva.md's five commands, run by bash in a scratch folder (on a free port instead of
/// 9443): the emulator starts, the target refreshes the CSV's users through it, and the
/// emulator saves what changed when it stops.
#[test]
fn the_isva_walkthrough_runs_as_written() {
    let walkthrough: String = blocks("docs/isva.md")
        .into_iter()
        .filter(|(info, _)| info == "sh isva-walkthrough")
        .map(|(_, body)| body)
        .collect();
    assert!(walkthrough.contains("smsrefresh serve") && walkthrough.contains("--target"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let walkthrough = walkthrough.replace("9443", &port.to_string());
    let (tmp, out) = run_walkthrough(&walkthrough);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "error"], "{stdout}");
    assert_eq!(results[2]["message_id"], "HPDMG0754W");
    // The emulator saved the refreshes in its copy; the demo itself is untouched.
    let saved = std::fs::read_to_string(tmp.path().join("appliance/sessions.jsonl")).unwrap();
    assert!(saved.contains("last_refresh"), "{stderr}");
    let demo = std::fs::read_to_string(repo().join("samples/demo/sessions.jsonl")).unwrap();
    assert!(!demo.contains("last_refresh"));
}

/// Splits a command line as a shell would for these examples: spaces, and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

#[test]
fn the_readme_and_docs_point_only_inside_the_repository() {
    let mut pages = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        pages.push(e.unwrap().path());
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for (i, line) in text.lines().enumerate() {
            assert!(
                !line.contains("../"),
                "{}:{}: points outside the repository: {line}",
                page.display(),
                i + 1
            );
        }
    }
}
