//! Snapshots: a save loads back equal, and a crash while saving leaves the old file whole.

use smsrefresh::session::Session;
use smsrefresh::site::Site;
use smsrefresh::store::SessionStore;

use super::util::*;

fn all(site: &Site) -> Vec<Session> {
    let mut v = Vec::new();
    site.store.for_each_ordered(&mut |s| v.push(s.clone()));
    v
}

#[test]
fn a_saved_snapshot_loads_back_equal_and_is_stable() {
    let (_tmp, dir) = demo_copy();
    // Change something first, so the save writes last_refresh too.
    let out = run(
        &[
            "exec",
            "--site",
            dir.to_str().unwrap(),
            "--now",
            "2026-11-28T00:00:00Z",
            "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com",
        ],
        None,
    );
    assert_eq!(code(&out), 0);
    let first = std::fs::read(dir.join("sessions.jsonl")).unwrap();
    let site = Site::load(&dir).unwrap();
    let before = all(&site);
    site.save().unwrap();
    let again = Site::load(&dir).unwrap();
    assert_eq!(all(&again), before);
    assert_eq!(
        std::fs::read(dir.join("sessions.jsonl")).unwrap(),
        first,
        "save(load(x)) == x"
    );
    assert!(before.iter().any(|s| s.last_refresh.is_some()));
}

#[test]
fn a_crash_while_saving_leaves_the_previous_snapshot_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    let out = run(
        &[
            "gen",
            "--out",
            dir.to_str().unwrap(),
            "--users",
            "3000",
            "--seed",
            "9",
        ],
        None,
    );
    assert_eq!(code(&out), 0);
    let before = std::fs::read(dir.join("sessions.jsonl")).unwrap();
    let mut cmd = bin();
    cmd.args(["run", "--site", dir.to_str().unwrap(), "-q", "-"])
        .env("SMSREFRESH_FAULT", "abort-mid-save");
    let crashed = run_cmd(
        &mut cmd,
        Some(
            "server task default-webseald-node1.example.com sms session terminate all_sessions user0000001 -realm realm1.example.com\n",
        ),
    );
    assert!(
        !crashed.status.success(),
        "the injected fault must kill the process"
    );
    assert_eq!(crashed.status.code(), None, "killed by a signal");
    assert_eq!(std::fs::read(dir.join("sessions.jsonl")).unwrap(), before);
    // The half-written file is beside it, and the next save removes it.
    let leftovers = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count()
    };
    assert_eq!(leftovers(), 1);
    let ok = run(
        &["run", "--site", dir.to_str().unwrap(), "-q", "-"],
        Some("server list\n"),
    );
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(leftovers(), 0);
    assert!(Site::load(&dir).is_ok());
}

#[test]
fn snapshot_errors_name_file_line_and_field() {
    let (_tmp, dir) = demo_copy();
    let path = dir.join("sessions.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let check = |content: String, want: &str| {
        std::fs::write(&path, content).unwrap();
        let e = Site::load(&dir).err().expect("must fail").to_string();
        assert!(e.contains(want), "{e}\nwanted: {want}");
    };
    let dup = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[0]);
    check(
        dup,
        "sessions.jsonl:3: id: the session id `ZGVmYXVsdC13ZWJzZWFsZC1hYmMuaWJtLmNvbQ_00001` is also on line 1",
    );
    check(
        format!(
            "{}\n{}\n",
            lines[0],
            lines[1].replace(
                "\"replica_set\":\"sales.ibm.com\"",
                "\"replica_set\":\"portal.partners.example\""
            )
        ),
        "sessions.jsonl:2: replica_set: the replica set `portal.partners.example` is not in realm `ibm.com`",
    );
    check(
        format!(
            "{}\n",
            lines[0].replace(
                "default-webseald-abc.ibm.com\",\"created",
                "ghost-webseald-x\",\"created"
            )
        ),
        "sessions.jsonl:1: server: the server `ghost-webseald-x` does not exist",
    );
    check(
        format!(
            "{}\n",
            lines[0].replace("\"user\":", "\"color\":\"red\",\"user\":")
        ),
        "sessions.jsonl:1: unknown field `color`",
    );
    check(
        format!(
            "{}\n",
            lines[0].replace("\"realm\":\"ibm.com\"", "\"realm\":\"mars\"")
        ),
        "sessions.jsonl:1: realm: the realm `mars` is not in topology.yaml",
    );
    check(
        format!(
            "{}\n",
            lines[0].replace("2026-11-27T16:36:00Z", "yesterday")
        ),
        "sessions.jsonl:1: created: `yesterday` is not an RFC 3339 time",
    );
    check(
        format!("{}\n{{\"id\":", lines[0]),
        "sessions.jsonl:2: EOF while parsing",
    );
}
