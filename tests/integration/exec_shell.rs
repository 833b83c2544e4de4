//! `exec`, `shell` and `errtext` through the binary: exit codes, argument forms, the lock.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::util::*;

#[test]
fn exec_exit_codes_follow_pdadmin() {
    let (_tmp, site) = demo_copy();
    let s = site.to_str().unwrap();
    let ok = run(
        &[
            "exec",
            "--site",
            s,
            "--no-save",
            "server task default-webseald-cruz sms session refresh all_sessions \"Mary Jones\" -realm ibm.com",
        ],
        None,
    );
    assert_eq!(code(&ok), 0);
    let warn = run(
        &[
            "exec",
            "--site",
            s,
            "--no-save",
            "server",
            "task",
            "default-webseald-cruz",
            "sms",
            "session",
            "refresh",
            "all_sessions",
            "newhire",
            "-realm",
            "ibm.com",
        ],
        None,
    );
    assert_eq!(code(&warn), 0);
    assert!(stdout(&warn).contains("SMRSS0101W"));
    let err = run(
        &[
            "exec",
            "--site",
            s,
            "--no-save",
            "server",
            "task",
            "x-webseald-y",
            "sms",
            "realm",
            "list",
        ],
        None,
    );
    assert_eq!(code(&err), 1);
    // Shell words arrive unquoted: a name with a space is one word.
    let words = run(
        &[
            "exec",
            "--site",
            s,
            "--no-save",
            "--format",
            "jsonl",
            "server",
            "task",
            "default-webseald-cruz",
            "sms",
            "session",
            "refresh",
            "all_sessions",
            "Mary Jones",
            "-realm",
            "ibm.com",
        ],
        None,
    );
    let r = &json_lines(&words)[0];
    assert_eq!(
        (r["user"].as_str(), r["sessions"].as_u64()),
        (Some("Mary Jones"), Some(4))
    );
}

#[test]
fn run_could_not_start_exits_2() {
    let none = run(&["exec", "server", "list"], None);
    assert_eq!(code(&none), 2);
    assert!(stderr(&none).contains("no site given"), "{}", stderr(&none));
    let tmp = tempfile::tempdir().unwrap();
    let not_site = run(
        &[
            "exec",
            "--site",
            tmp.path().to_str().unwrap(),
            "server",
            "list",
        ],
        None,
    );
    assert_eq!(code(&not_site), 2);
    assert!(stderr(&not_site).contains("not a site directory"));
    let (_t, site) = demo_copy();
    std::fs::write(
        site.join("topology.yaml"),
        "realms: {}\nservers: {}\nbogus: 1\n",
    )
    .unwrap();
    let bad = run_site(&site, &["-"], Some("server list\n"));
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("topology.yaml:3: unknown field `bogus`"),
        "{}",
        stderr(&bad)
    );
    let (_t, site) = demo_copy();
    let missing = run_site(&site, &["no-such-file.pdadmin"], None);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("no-such-file.pdadmin"));
}

#[test]
fn site_from_the_environment() {
    let (_tmp, site) = demo_copy();
    let out = run_cmd(
        bin()
            .args(["exec", "server", "list"])
            .env("SMSREFRESH_SITE", &site),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("default-webseald-portal1"));
}

#[test]
fn shell_reads_stdin_and_saves_at_the_end() {
    let (_tmp, site) = demo_copy();
    let input = "server task default-webseald-cruz sms session terminate all_sessions \\\n  johnq -realm ibm.com\n# a comment\npdadmin> errtext 0x3898f03b\nquit\nserver list\n";
    let out = run(&["shell", "--site", site.to_str().unwrap()], Some(input));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pdadmin> server task default-webseald-cruz sms session terminate all_sessions johnq -realm ibm.com\n\
         SMRSS0001I   The sessions were terminated. Sessions terminated: 3.\n\
         pdadmin> errtext 0x3898f03b\n\
         DPWAP0059E   The supplied authorization server name, %s, is not a known server. (0x3898f03b)\n"
    );
    assert_eq!(
        sessions(&site)
            .iter()
            .filter(|s| s["user"] == "johnq")
            .count(),
        1
    );
}

#[test]
fn errtext_subcommand() {
    let out = run(&["errtext", "348132082"], None);
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        "HPDMG0754W   The entry was not found. (0x14c012f2)\n"
    );
    let out = run(&["errtext", "0xdeadbeef"], None);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).starts_with("SMRCM0206E"));
    // Without a code: the whole catalog, one message per line.
    let all = run(&["errtext"], None);
    assert_eq!(code(&all), 0);
    let text = stdout(&all);
    assert_eq!(text.lines().count(), smsrefresh::message::CATALOG.len());
    assert!(text.contains("DPWAP0059E   The supplied authorization server name, %s, is not a known server. (0x3898f03b)"));
}

#[test]
fn a_second_writer_waits_then_fails_clearly() {
    let (_tmp, site) = demo_copy();
    // A shell holds the site lock until its input ends.
    let mut holder = bin()
        .args(["shell", "--site", site.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"server list\n").unwrap();
    stdin.flush().unwrap();
    // Wait until the shell has loaded (it answers the first command).
    let deadline = Instant::now() + Duration::from_secs(20);
    let lock = site.join(".smsrefresh.lock");
    while !lock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--lock-timeout",
            "0.3",
            "server",
            "list",
        ],
        None,
    );
    assert_eq!(code(&second), 2);
    assert!(
        stderr(&second).contains("the site is locked by another smsrefresh run"),
        "{}",
        stderr(&second)
    );
    // Readers that do not save need no lock.
    let reader = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--no-save",
            "server",
            "list",
        ],
        None,
    );
    assert_eq!(code(&reader), 0);
    drop(stdin);
    assert!(holder.wait().unwrap().success());
    // Once the holder is gone, the lock is free again.
    let third = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--lock-timeout",
            "0",
            "server",
            "list",
        ],
        None,
    );
    assert_eq!(code(&third), 0, "{}", stderr(&third));
}

#[test]
fn a_rule_preserving_azn_attributes_is_warned_about() {
    let (_tmp, site) = demo_copy();
    let topo = std::fs::read_to_string(site.join("topology.yaml")).unwrap();
    std::fs::write(
        site.join("topology.yaml"),
        topo.replace(
            "  - authentication_level: preserve",
            "  - \"AZN_*\": preserve\n  - authentication_level: preserve",
        ),
    )
    .unwrap();
    let out = run(
        &[
            "exec",
            "--site",
            site.to_str().unwrap(),
            "--no-save",
            "server",
            "list",
        ],
        None,
    );
    assert_eq!(code(&out), 0);
    assert_eq!(
        stderr(&out),
        "smsrefresh: warning: SMRRL0103W   The credential refresh rule AZN_* preserves AZN_ attributes, which are internal to authorization decisions. (0x534d5267)\n"
    );
}
