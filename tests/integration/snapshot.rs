//! Snapshots: a save loads back equal, and a crash while saving leaves the old file whole.

use smsrefresh::session::Session;
use smsrefresh::site::Site;

use super::util::*;

fn all(site: &Site) -> Vec<Session> {
    let mut v = Vec::new();
    site.store.export(&mut |s| v.push(s.clone())).unwrap();
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
            &(1..=5)
                .flat_map(|u| (1..=2).map(move |r| format!("server task default-webseald-node1.example.com sms session terminate all_sessions user{u:07} -realm realm{r}.example.com\n")))
                .collect::<String>(),
        ),
    );
    assert!(
        !crashed.status.success(),
        "the injected fault must kill the process"
    );
    assert_eq!(crashed.status.code(), None, "killed by a signal");
    assert_eq!(std::fs::read(dir.join("sessions.jsonl")).unwrap(), before);
    // The half-written file is beside it; the next run that takes the site lock removes it.
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

#[test]
fn binary_snapshot_round_trips_and_runs_the_same() {
    let (_tmp, dir) = demo_copy();
    let jsonl_before = std::fs::read(dir.join("sessions.jsonl")).unwrap();
    let out = run(
        &["convert", "--site", dir.to_str().unwrap(), "--to", "binary"],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(dir.join("topology.yaml"))
            .unwrap()
            .contains("\nsnapshot: binary")
    );
    let from_bin = Site::load(&dir).unwrap();
    assert_eq!(
        smsrefresh::site::Site::binary_path(&dir),
        from_bin.snapshot_path()
    );
    // The same commands give the same results on either form.
    let file = dir.join("commands.pdadmin");
    let on_bin = run(
        &[
            "run",
            "--site",
            dir.to_str().unwrap(),
            "--no-save",
            "--format",
            "jsonl",
            "-q",
            file.to_str().unwrap(),
        ],
        None,
    );
    let (_t2, plain) = demo_copy();
    let on_jsonl = run(
        &[
            "run",
            "--site",
            plain.to_str().unwrap(),
            "--no-save",
            "--format",
            "jsonl",
            "-q",
            plain.join("commands.pdadmin").to_str().unwrap(),
        ],
        None,
    );
    let strip = |o: &std::process::Output| {
        stdout(o)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["source"] = serde_json::Value::Null;
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&on_bin), strip(&on_jsonl));
    // A saving run writes the binary form; converting back gives the same JSON Lines bytes
    // as saving the JSON Lines form would have.
    let cmd =
        "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com";
    for d in [&dir, &plain] {
        let o = run(
            &[
                "exec",
                "--site",
                d.to_str().unwrap(),
                "--now",
                "2026-11-28T00:00:00Z",
                cmd,
            ],
            None,
        );
        assert_eq!(code(&o), 0);
    }
    assert_eq!(
        std::fs::read(dir.join("sessions.jsonl")).unwrap(),
        jsonl_before,
        "sessions.jsonl untouched in binary mode"
    );
    let back = run(
        &["convert", "--site", dir.to_str().unwrap(), "--to", "jsonl"],
        None,
    );
    assert_eq!(code(&back), 0);
    assert_eq!(
        std::fs::read(dir.join("sessions.jsonl")).unwrap(),
        std::fs::read(plain.join("sessions.jsonl")).unwrap()
    );
    assert!(
        std::fs::read_to_string(dir.join("topology.yaml"))
            .unwrap()
            .contains("\nsnapshot: jsonl")
    );
}

#[test]
fn a_corrupted_or_truncated_binary_snapshot_is_refused() {
    let (_tmp, dir) = demo_copy();
    assert_eq!(
        code(&run(
            &["convert", "--site", dir.to_str().unwrap(), "--to", "binary"],
            None
        )),
        0
    );
    let bin = dir.join("sessions.bin");
    let good = std::fs::read(&bin).unwrap();
    let check = |bytes: &[u8], want: &str| {
        std::fs::write(&bin, bytes).unwrap();
        let e = Site::load(&dir).err().expect("must fail").to_string();
        assert!(e.contains(want), "{e}");
        let out = run(
            &["exec", "--site", dir.to_str().unwrap(), "server list"],
            None,
        );
        assert_eq!(code(&out), 2);
    };
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    check(
        &flipped,
        "sessions.bin: the checksum does not match: the snapshot is truncated or corrupted",
    );
    check(&good[..good.len() - 100], "the checksum does not match");
    check(b"SMRSNAP", "bad magic number");
    check(b"", "bad magic number");
    // A valid checksum over a newer version is refused by version.
    let mut v4 = good.clone();
    v4[8] = 4;
    let n = v4.len();
    let crc = crc32fast::hash(&v4[..n - 4]);
    v4[n - 4..].copy_from_slice(&crc.to_le_bytes());
    check(&v4, "snapshot version 4 is not supported");
    // Missing binary while the site says binary: a clear error, not a silent empty site.
    std::fs::remove_file(&bin).unwrap();
    let e = Site::load(&dir).err().unwrap().to_string();
    assert!(
        e.contains("says `snapshot: binary` but there is no sessions.bin"),
        "{e}"
    );
}

#[test]
fn a_crash_while_saving_a_binary_snapshot_leaves_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    assert_eq!(
        code(&run(
            &[
                "gen",
                "--out",
                dir.to_str().unwrap(),
                "--users",
                "2000",
                "--binary"
            ],
            None
        )),
        0
    );
    let before = std::fs::read(dir.join("sessions.bin")).unwrap();
    let mut cmd = bin();
    cmd.args(["run", "--site", dir.to_str().unwrap(), "-q", "-"])
        .env("SMSREFRESH_FAULT", "abort-mid-save");
    let crashed = run_cmd(
        &mut cmd,
        Some(
            &(1..=5)
                .flat_map(|u| (1..=2).map(move |r| format!("server task default-webseald-node1.example.com sms session terminate all_sessions user{u:07} -realm realm{r}.example.com\n")))
                .collect::<String>(),
        ),
    );
    assert_eq!(crashed.status.code(), None, "killed by the injected fault");
    assert_eq!(std::fs::read(dir.join("sessions.bin")).unwrap(), before);
    assert!(Site::load(&dir).is_ok());
}

/// A large `sessions.jsonl` gets a binary cache (from `gen`, and kept current by every
/// save); the cache is used only while it names the file as it is, and a broken cache is
/// only a slower load. A small site never gets one.
#[test]
fn a_large_jsonl_site_loads_from_its_binary_cache_only_while_it_matches() {
    use smsrefresh::site::binary::{Source, source_of};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    let d = dir.to_str().unwrap();
    assert_eq!(
        code(&run(&["gen", "--out", d, "--users", "40000"], None)),
        0
    );
    let (jsonl, bin) = (dir.join("sessions.jsonl"), dir.join("sessions.bin"));
    assert!(std::fs::metadata(&jsonl).unwrap().len() >= smsrefresh::site::CACHE_MIN_BYTES);
    assert_eq!(source_of(&bin), Source::of(&jsonl), "gen leaves the cache");
    let from_cache = all(&Site::load(&dir).unwrap());
    let first = from_cache[0].clone();
    // A saving run rewrites both, and the cache names the new file.
    let refresh = format!(
        "server task {} sms session refresh all_sessions {} -realm {}",
        Site::load(&dir).unwrap().topology.servers[0].name,
        first.user,
        Site::load(&dir).unwrap().topology.realms[first.realm.0 as usize].name
    );
    let out = run(&["exec", "--site", d, &refresh], None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        source_of(&bin),
        Source::of(&jsonl),
        "a save keeps the cache current"
    );
    let saved = all(&Site::load(&dir).unwrap());
    assert!(saved.iter().any(|s| s.last_refresh.is_some()));
    // An edit by hand: the cache no longer names the file, which is read instead.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let edited: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&jsonl, edited).unwrap();
    let after_edit = all(&Site::load(&dir).unwrap());
    assert_eq!(after_edit.len(), saved.len() - 1, "the edit is seen");
    assert_eq!(
        source_of(&bin),
        Source::of(&jsonl),
        "and a new cache is made"
    );
    // A cache that names the file but is damaged: the file is read, the answer the same.
    let mut bytes = std::fs::read(&bin).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&bin, bytes).unwrap();
    assert_eq!(all(&Site::load(&dir).unwrap()), after_edit);
    // The demo is small: no cache, whatever runs on it.
    let (_t, demo) = demo_copy();
    let out = run(
        &[
            "run",
            "--site",
            demo.to_str().unwrap(),
            "-q",
            "samples/demo/commands.pdadmin",
        ],
        None,
    );
    assert_eq!(code(&out), 1);
    assert!(!demo.join("sessions.bin").exists());
}

/// A large `registry.jsonl` gets a binary cache (`registry.bin`), used only while it names
/// the file as it is: an edit is seen, a damaged cache is only a slower load.
#[test]
fn a_large_registry_loads_from_its_cache_only_while_it_matches() {
    use smsrefresh::site::binary::Source;
    let (_tmp, site) = demo_copy();
    std::fs::remove_file(site.join("registry.yaml")).unwrap();
    let jsonl = site.join("registry.jsonl");
    let line = |i: usize, group: &str| {
        format!(
            "{{\"user\":\"user{i:06}\",\"groups\":[\"staff\",\"{group}\"],\"attributes\":{{\"emailAddress\":\"user{i:06}@example.com\",\"note\":\"{}\"}}}}\n",
            "x".repeat(300)
        )
    };
    let mut text = String::new();
    let mut i = 0;
    while text.len() < smsrefresh::site::CACHE_MIN_BYTES as usize + 1000 {
        text.push_str(&line(i, "hr"));
        i += 1;
    }
    std::fs::write(&jsonl, &text).unwrap();
    let export = || {
        let out = run(
            &["registry", "export", "--site", site.to_str().unwrap()],
            None,
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let first = export();
    let cache = site.join("registry.bin");
    assert!(cache.exists(), "the first load leaves a cache");
    assert_eq!(export(), first, "the cache reads as the file");
    // An edit: the cache no longer names the file; the edit is seen and a new cache made.
    text.replace_range(..line(0, "hr").len(), &line(0, "payroll"));
    std::fs::write(&jsonl, &text).unwrap();
    let edited = export();
    assert!(
        edited.lines().next().unwrap().contains("\"payroll\""),
        "the edit is seen"
    );
    assert_eq!(export(), edited);
    // A damaged cache that still names the file: the file is read.
    let mut bytes = std::fs::read(&cache).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0x21;
    std::fs::write(&cache, bytes).unwrap();
    assert_eq!(export(), edited);
    assert!(Source::of(&jsonl).is_some());
}

/// The snapshot's version byte (`SMRSNAP\0` then a little-endian u32).
fn snapshot_version(path: &std::path::Path) -> u8 {
    std::fs::read(path).unwrap()[8]
}

#[test]
fn a_version_2_snapshot_still_loads_and_a_saved_one_keeps_every_sessions_number() {
    // `tests/fixtures/snapshot-v2`: a 40-user site whose sessions.bin the build before
    // version 3 wrote (`gen --binary --seed 7`), and that build's `convert --to jsonl`.
    let fixture = repo().join("tests/fixtures/snapshot-v2");
    let copy = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join(name);
        std::fs::create_dir(&site).unwrap();
        for f in ["topology.yaml", "registry.jsonl", "sessions.bin"] {
            std::fs::copy(fixture.join(f), site.join(f)).unwrap();
        }
        (dir, site)
    };
    let expected = std::fs::read(fixture.join("expected-sessions.jsonl")).unwrap();
    let convert = |site: &std::path::Path, to: &str| {
        let o = run(
            &["convert", "--site", site.to_str().unwrap(), "--to", to],
            None,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    };
    let (_t1, old) = copy("old");
    assert_eq!(snapshot_version(&old.join("sessions.bin")), 2);
    convert(&old, "jsonl");
    assert_eq!(std::fs::read(old.join("sessions.jsonl")).unwrap(), expected);

    // A binary site and a JSON Lines one, changed alike: sessions are ended in the middle of
    // the numbering and refreshed, and both are saved; the binary one (version 3, written in
    // the store's own order) gives back the same file, in the same order.
    let (_t2, bin) = copy("bin");
    convert(&bin, "binary");
    assert_eq!(snapshot_version(&bin.join("sessions.bin")), 3);
    let commands = [
        "server task default-webseald-node1.example.com sms session terminate all_sessions user0000007 -realm realm1.example.com",
        "server task default-webseald-node2.example.com sms session terminate all_sessions user0000004 -realm realm2.example.com",
        "server task default-webseald-node1.example.com sms session refresh all_sessions user0000003 -realm realm1.example.com",
    ];
    for site in [&bin, &old] {
        for cmd in commands {
            let o = run(
                &[
                    "exec",
                    "--site",
                    site.to_str().unwrap(),
                    "--now",
                    "2026-11-26T04:00:00Z",
                    cmd,
                ],
                None,
            );
            assert!(code(&o) <= 1, "{cmd}: {}", stderr(&o));
        }
    }
    let before = sessions(&old);
    assert!(before.len() < 120, "something ended: {}", before.len());
    convert(&bin, "jsonl");
    assert_eq!(
        std::fs::read(bin.join("sessions.jsonl")).unwrap(),
        std::fs::read(old.join("sessions.jsonl")).unwrap()
    );
}
