//! Helpers: a fresh copy of a sample site per test, and a runner for the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary copy of `samples/demo`, so tests may change it.
pub fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("demo");
    std::fs::create_dir(&site).unwrap();
    for f in [
        "topology.yaml",
        "registry.yaml",
        "sessions.jsonl",
        "commands.pdadmin",
    ] {
        std::fs::copy(repo().join("samples/demo").join(f), site.join(f)).unwrap();
    }
    (dir, site)
}

/// The binary, with a clean environment for the variables it reads.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smsrefresh"));
    c.env_remove("SMSREFRESH_SITE")
        .env_remove("SMSREFRESH_FAULT")
        .env_remove("SMSREFRESH_STORE")
        .env_remove("SMSREFRESH_STORE_PASSWORD")
        .current_dir(repo());
    c
}

/// Runs the binary with `args` and optional standard input.
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_cmd(bin().args(args), stdin)
}

/// Runs `smsrefresh run --site SITE ARGS…`.
pub fn run_site(site: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["run", "--site", site.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all, stdin)
}

/// Runs `smsrefresh run --site SITE --no-save --format jsonl -q ARGS…`.
pub fn run_jsonl(site: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["--no-save", "--format", "jsonl", "-q"];
    all.extend_from_slice(args);
    run_site(site, &all, stdin)
}

pub fn run_cmd(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A process that fails early may close its input first: not an error here.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Every JSON line of the output.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The sessions of a snapshot, by id.
pub fn sessions(site: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(site.join("sessions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn session<'a>(all: &'a [serde_json::Value], id: &str) -> Option<&'a serde_json::Value> {
    all.iter().find(|s| s["id"] == id)
}
