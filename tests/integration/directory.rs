//! The registry from a real directory (contract §12), on a real `slapd` that
//! `slapd_server.rs` starts: one directory given as LDIF, as a live server and as the
//! equivalent `registry.jsonl` gives byte-identical results and sessions; a `group_changes`
//! policy with an LDIF `before` and the live directory after `ldapmodify` refreshes exactly
//! the changed users; a server size limit never truncates a read; every failure stops the
//! run before anything changes and never prints the password.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;

use super::slapd_server::{ROOT_DN, ROOT_PW, SUFFIX, Slapd, Tls};
use super::util::*;

const PASSWORD_ENV: &str = "SMSREFRESH_TEST_LDAP_PASSWORD";

/// A user of the test directory.
#[derive(Clone)]
struct Person {
    uid: String,
    mails: Vec<String>,
    dept: String,
    groups: Vec<String>,
}

/// The test directory: the demo's users (so their sessions refresh), plus a user in no
/// group, a user in 40 groups and a user whose mail has two values.
fn people() -> Vec<Person> {
    let text = std::fs::read_to_string(repo().join("samples/demo/registry.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for (name, u) in doc["users"].as_mapping().unwrap() {
        let attrs = u["attributes"].as_mapping().unwrap();
        assert_eq!(attrs.len(), 2, "the demo's users have two attributes");
        out.push(Person {
            uid: name.as_str().unwrap().to_string(),
            mails: vec![
                u["attributes"]["emailAddress"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ],
            dept: u["attributes"]["departmentNumber"]
                .as_str()
                .unwrap()
                .to_string(),
            groups: u["groups"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap().to_string())
                .collect(),
        });
    }
    out[0].mails.push("second@ibm.com".into());
    out.push(Person {
        uid: "lonely".into(),
        mails: vec!["lonely@ibm.com".into()],
        dept: "none".into(),
        groups: vec![],
    });
    out.push(Person {
        uid: "heavy".into(),
        mails: vec!["heavy@ibm.com".into()],
        dept: "many".into(),
        groups: (0..40).map(|i| format!("g{i:02}")).collect(),
    });
    out
}

/// `attr: value`, or `attr:: base64` when the value is not a plain LDIF string.
fn ldif_line(out: &mut String, attr: &str, value: &str) {
    let plain = value.is_ascii()
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && !value.contains(['\n', '\r', '\0']);
    if plain {
        writeln!(out, "{attr}: {value}").unwrap();
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        writeln!(out, "{attr}:: {b64}").unwrap();
    }
}

fn user_dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

/// Group classes alternate by name, and every third member DN is written in upper case:
/// both must read the same as the plain spelling.
fn group_ldif(name: &str, members: &[String], nested: &[&str]) -> String {
    let unique = name.as_bytes()[0] > b'm';
    let (class, attr) = if unique {
        ("groupOfUniqueNames", "uniqueMember")
    } else {
        ("groupOfNames", "member")
    };
    let mut g = String::new();
    writeln!(g, "dn: cn={name},ou=groups,{SUFFIX}").unwrap();
    writeln!(g, "objectClass: {class}").unwrap();
    writeln!(g, "cn: {name}").unwrap();
    for (i, uid) in members.iter().enumerate() {
        let dn = if i % 3 == 1 {
            user_dn(uid).to_uppercase()
        } else {
            user_dn(uid)
        };
        ldif_line(&mut g, attr, &dn);
    }
    for n in nested {
        writeln!(g, "{attr}: cn={n},ou=groups,{SUFFIX}").unwrap();
    }
    // A member that is no entry at all.
    writeln!(g, "{attr}: uid=ghost,ou=people,{SUFFIX}").unwrap();
    g.push('\n');
    g
}

/// The entries below the base entries, as LDIF: people, their groups, and a group whose
/// member is another group (`everyone` lists `staff`; not expanded).
fn directory_ldif(people: &[Person]) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in people {
        ldif_line(&mut out, "dn", &user_dn(&p.uid));
        out.push_str("objectClass: inetOrgPerson\n");
        ldif_line(&mut out, "uid", &p.uid);
        ldif_line(&mut out, "cn", &p.uid);
        out.push_str("sn: Test\n");
        for m in &p.mails {
            ldif_line(&mut out, "mail", m);
        }
        ldif_line(&mut out, "departmentNumber", &p.dept);
        out.push('\n');
        for g in &p.groups {
            groups.entry(g.clone()).or_default().push(p.uid.clone());
        }
    }
    for (name, members) in &groups {
        out.push_str(&group_ldif(name, members, &[]));
    }
    out.push_str(&group_ldif(
        "everyone",
        &["sec_master".to_string()],
        &["staff"],
    ));
    out
}

/// The same directory as `registry.jsonl`, written independently of the product: sorted by
/// user, groups in byte order.
fn registry_jsonl(people: &[Person]) -> String {
    let mut sorted: Vec<&Person> = people.iter().collect();
    sorted.sort_by_key(|p| (p.uid.to_lowercase(), p.uid.clone()));
    let mut out = String::new();
    for p in sorted {
        let mut groups = p.groups.clone();
        if p.uid == "sec_master" {
            groups.push("everyone".into());
        }
        groups.sort();
        groups.dedup();
        let mail = if p.mails.len() == 1 {
            serde_json::json!(p.mails[0])
        } else {
            serde_json::json!(p.mails)
        };
        let line = format!(
            "{{\"user\":{},\"groups\":{},\"attributes\":{{\"emailAddress\":{},\"departmentNumber\":{}}}}}",
            serde_json::json!(p.uid),
            serde_json::json!(groups),
            mail,
            serde_json::json!(p.dept)
        );
        out.push_str(&line);
        out.push('\n');
    }
    out
}

const MAPPING: &str = "users:\n  base: ou=people,dc=example,dc=com\n  filter: (objectClass=inetOrgPerson)\n  name: uid\ngroups:\n  base: ou=groups,dc=example,dc=com\n  filter: (|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))\n  name: cn\n  member: [member, uniqueMember]\nattributes:\n  emailAddress: mail\n  departmentNumber: departmentNumber\n";

/// The same, with an anonymous bind.
fn anonymous_yaml(url: &str, extra: &str) -> String {
    live_yaml(url, extra).replace(
        &format!("bind_dn: {ROOT_DN}\nbind_password_env: {PASSWORD_ENV}\n"),
        "",
    )
}

fn live_yaml(url: &str, extra: &str) -> String {
    format!(
        "url: {url}\nbind_dn: {ROOT_DN}\nbind_password_env: {PASSWORD_ENV}\ntimeout: 10s\npage_size: 7\n{extra}{MAPPING}"
    )
}

/// A copy of the demo site with no registry of its own, plus sessions for the extra users.
fn site_without_registry() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, site) = demo_copy();
    std::fs::remove_file(site.join("registry.yaml")).unwrap();
    let template = std::fs::read_to_string(site.join("sessions.jsonl")).unwrap();
    let first = template.lines().next().unwrap().to_string();
    let mut extra = String::new();
    for (i, user) in ["lonely", "heavy", "heavy"].iter().enumerate() {
        let mut s: serde_json::Value = serde_json::from_str(&first).unwrap();
        s["id"] = serde_json::json!(format!("ZGlyZWN0b3J5_{i:05}"));
        s["user"] = serde_json::json!(user);
        s["credential"]["AZN_CRED_PRINCIPAL_NAME"] = serde_json::json!(user);
        extra.push_str(&serde_json::to_string(&s).unwrap());
        extra.push('\n');
    }
    std::fs::write(site.join("sessions.jsonl"), template + &extra).unwrap();
    (tmp, site)
}

/// Runs `args` with the bind password in the environment; checks it is never printed.
fn run_ldap(args: &[&str]) -> std::process::Output {
    let out = run_cmd(bin().args(args).env(PASSWORD_ENV, ROOT_PW), None);
    assert!(
        !stdout(&out).contains(ROOT_PW) && !stderr(&out).contains(ROOT_PW),
        "the password was printed"
    );
    out
}

#[test]
fn ldif_live_ldap_and_jsonl_give_identical_results_and_sessions() {
    let people = people();
    let ldif = directory_ldif(&people);
    let slapd = Slapd::start(&ldif, "", None);
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("everyone.csv");
    let mut rows = String::from("user,realm\n");
    for p in &people {
        for realm in ["ibm.com", "partners.example"] {
            writeln!(rows, "\"{}\",{realm}", p.uid).unwrap();
        }
    }
    std::fs::write(&csv, rows).unwrap();

    let mut outcomes = Vec::new();
    let mut exports = Vec::new();
    for kind in ["jsonl", "ldif", "ldap"] {
        let (_tmp, site) = site_without_registry();
        match kind {
            "jsonl" => {
                std::fs::write(site.join("registry.jsonl"), registry_jsonl(&people)).unwrap();
            }
            "ldif" => {
                let full = format!(
                    "version: 1\n\n{}{ldif}",
                    super::slapd_server::base_entries()
                );
                std::fs::write(site.join("registry.ldif"), full).unwrap();
                std::fs::write(site.join("directory.yaml"), MAPPING).unwrap();
            }
            _ => std::fs::write(site.join("directory.yaml"), live_yaml(&slapd.url(), "")).unwrap(),
        }
        let s = site.to_str().unwrap();
        let out = run_ldap(&[
            "run",
            "--site",
            s,
            "--format",
            "jsonl",
            "-q",
            "--now",
            "2026-11-28T02:00:00Z",
            csv.to_str().unwrap(),
        ]);
        assert!(code(&out) <= 1, "{kind}: {}", stderr(&out));
        let snapshot = std::fs::read_to_string(site.join("sessions.jsonl")).unwrap();
        outcomes.push((kind, stdout(&out), snapshot));
        let export = run_ldap(&["registry", "export", "--site", s]);
        assert_eq!(code(&export), 0, "{kind}: {}", stderr(&export));
        exports.push(stdout(&export));
    }
    let (_, results, sessions) = &outcomes[0];
    for (kind, r, s) in &outcomes[1..] {
        assert_eq!(r, results, "{kind}: results differ from registry.jsonl's");
        assert_eq!(s, sessions, "{kind}: sessions differ from registry.jsonl's");
    }
    for e in &exports {
        assert_eq!(e, &registry_jsonl(&people), "registry export");
    }
    // What the refresh wrote is what the directory says.
    let all = sessions
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let by_user = |u: &str| all.clone().find(|s| s["user"] == u).unwrap()["credential"].clone();
    let heavy = by_user("heavy");
    let expected: Vec<String> = (0..40).map(|i| format!("g{i:02}")).collect();
    assert_eq!(heavy["AZN_CRED_GROUPS"], serde_json::json!(expected));
    assert_eq!(by_user("lonely")["AZN_CRED_GROUPS"], serde_json::json!([]));
    let zoe = by_user("Zoë Ångström");
    assert_eq!(
        zoe["AZN_CRED_GROUPS"],
        serde_json::json!(["engineering", "staff"])
    );
    assert_eq!(zoe["emailAddress"], "zoë.ångström@ibm.com");
    let first = &people[0];
    assert_eq!(
        by_user(&first.uid)["emailAddress"],
        serde_json::json!(first.mails)
    );
    let sec = by_user("sec_master")["AZN_CRED_GROUPS"].clone();
    assert!(
        sec.as_array()
            .unwrap()
            .contains(&serde_json::json!("everyone"))
    );
    let staff_member = by_user("johnq")["AZN_CRED_GROUPS"].clone();
    assert!(
        !staff_member
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("everyone"))
    );
    let refreshed = results
        .lines()
        .filter(|l| l.contains("\"status\":\"ok\""))
        .count();
    assert!(refreshed > 40, "{refreshed} users refreshed");
}

#[test]
fn group_changes_with_an_ldif_before_and_the_live_directory_after() {
    let people = people();
    let ldif = directory_ldif(&people);
    let slapd = Slapd::start(&ldif, "", None);
    let (_tmp, site) = site_without_registry();
    std::fs::write(site.join("directory.yaml"), live_yaml(&slapd.url(), "")).unwrap();
    let s = site.to_str().unwrap();
    // `before`: the directory exported by `ldapsearch`, as an administrator would keep it.
    let export = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url(),
            "-D",
            ROOT_DN,
            "-w",
            ROOT_PW,
            "-b",
            SUFFIX,
        ])
        .output()
        .unwrap();
    assert!(export.status.success());
    std::fs::write(site.join("before.ldif"), &export.stdout).unwrap();
    slapd.modify(&format!(
        "dn: cn=hr,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: {}\n\n\
         dn: cn=legal,ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: {}\n\n\
         dn: {}\nchangetype: modify\nreplace: mail\nmail: dave@new.example\n\n\
         dn: {}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: newbie\ncn: newbie\nsn: Test\n\n\
         dn: cn=support,ou=groups,{SUFFIX}\nchangetype: modify\nadd: uniqueMember\nuniqueMember: {}\n",
        user_dn("brian"),
        user_dn("alice"),
        user_dn("dave"),
        user_dn("newbie"),
        user_dn("newbie"),
    ));
    let policy = site.join("changes.yaml");
    std::fs::write(
        &policy,
        "version: 1\nname: directory-changes\nrealm: ibm.com\ntargets:\n  group_changes:\n    before: before.ldif\n",
    )
    .unwrap();
    let plan = run_ldap(&["plan", "--site", s, policy.to_str().unwrap()]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let users: Vec<String> = stdout(&plan)
        .lines()
        .map(|l| {
            l.split(" all_sessions ")
                .nth(1)
                .unwrap()
                .split(" -realm")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(users, ["alice", "brian", "newbie"]);
    let out = run_ldap(&[
        "run",
        "--site",
        s,
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "jsonl",
        "-q",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = json_lines(&out);
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["status"], "warning", "newbie has no session");
    let after = sessions(&site);
    for s in after
        .iter()
        .filter(|s| s["user"] == "brian" && s["realm"] == "ibm.com")
    {
        let groups = s["credential"]["AZN_CRED_GROUPS"].as_array().unwrap();
        assert!(groups.contains(&serde_json::json!("hr")));
    }
    for s in after.iter().filter(|s| s["user"] == "dave") {
        assert_ne!(
            s["credential"]["emailAddress"], "dave@new.example",
            "dave's groups did not change"
        );
    }
}

/// 2,000 users and `size.hard=500`: a plain search stops at 500, a paged read gets all.
#[test]
fn a_server_size_limit_never_truncates_the_registry() {
    let mut ldif = String::new();
    for i in 0..2000 {
        writeln!(ldif, "dn: uid=u{i:04},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: u{i:04}\ncn: u{i:04}\nsn: S\n").unwrap();
    }
    ldif.push_str(&format!("dn: cn=all,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: all\nmember: uid=u1999,ou=people,{SUFFIX}\n\n"));
    for (limits, whole) in [
        (
            "sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited",
            true,
        ),
        ("sizelimit 500", false),
    ] {
        let slapd = Slapd::start(&ldif, limits, None);
        let plain = std::process::Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &slapd.url(),
                "-b",
                &format!("ou=people,{SUFFIX}"),
                "(uid=*)",
                "dn",
            ])
            .output()
            .unwrap();
        assert_eq!(
            plain.status.code(),
            Some(4),
            "the limit holds without paging"
        );
        let (_tmp, site) = site_without_registry();
        // Anonymous: the directory's administrator is above every limit.
        let yaml = anonymous_yaml(&slapd.url(), "").replace("page_size: 7", "page_size: 300");
        std::fs::write(site.join("directory.yaml"), yaml).unwrap();
        let s = site.to_str().unwrap();
        let out_file = site.join("export.jsonl");
        let out = run_ldap(&[
            "registry",
            "export",
            "--site",
            s,
            "-o",
            out_file.to_str().unwrap(),
        ]);
        if whole {
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let text = std::fs::read_to_string(&out_file).unwrap();
            assert_eq!(text.lines().count(), 2000);
            assert!(
                text.lines()
                    .last()
                    .unwrap()
                    .contains("\"groups\":[\"all\"]")
            );
            let run = run_ldap(&[
                "run",
                "--site",
                s,
                "--no-save",
                "--progress",
                "always",
                "-q",
                "--format",
                "jsonl",
                "-",
            ]);
            assert_eq!(code(&run), 0, "{}", stderr(&run));
            assert!(
                stderr(&run).contains("reading the directory: 2000 entries"),
                "{}",
                stderr(&run)
            );
        } else {
            assert_eq!(code(&out), 2);
            assert!(
                stderr(&out).contains("sizeLimitExceeded (4)"),
                "{}",
                stderr(&out)
            );
            assert!(!out_file.exists(), "nothing written");
        }
    }
}

/// Every failure: exit 2, the site's sessions untouched, the reason and URL named, no
/// password printed.
#[test]
fn directory_failures_stop_the_run_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = Tls::create(tmp.path());
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = Tls::create(&other_dir);
    let people = people();
    let slapd = Slapd::start(&directory_ldif(&people), "", Some(&tls));
    let (_t, site) = site_without_registry();
    let s = site.to_str().unwrap();
    let before = std::fs::read(site.join("sessions.jsonl")).unwrap();
    let command =
        "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com";
    let refresh = ["exec", "--site", s, command];
    let dry = ["exec", "--site", s, "--no-save", command];
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("ldap://127.0.0.1:{}", unused.local_addr().unwrap().port());
    drop(unused);
    let tls_url = format!("ldaps://127.0.0.1:{}", slapd.tls_port.unwrap());
    // A server that accepts connections and never answers: the timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("ldap://127.0.0.1:{}", silent.local_addr().unwrap().port());
    // (directory.yaml, the password given, what the message says)
    let cases: Vec<(String, &str, &str)> = vec![
        (live_yaml(&dead, ""), ROOT_PW, "connect: cannot connect"),
        (
            live_yaml(&silent_url, "").replace("timeout: 10s", "timeout: 1s"),
            ROOT_PW,
            "timeout",
        ),
        (
            live_yaml(&slapd.url(), ""),
            "wrong",
            "invalidCredentials (49)",
        ),
        (
            live_yaml(&slapd.url(), "").replace("base: ou=people,", "base: ou=nobody,"),
            ROOT_PW,
            "noSuchObject (32)",
        ),
        (
            live_yaml(&slapd.url(), "")
                .replace("bind_password_env", "bind_password_file")
                .replace(PASSWORD_ENV, "missing.txt"),
            ROOT_PW,
            "missing.txt",
        ),
        (
            live_yaml(&slapd.url(), "")
                .replace("(objectClass=inetOrgPerson)", "(objectClass=inetOrgPerson"),
            ROOT_PW,
            "directory.yaml:8: users.filter: the filter does not parse",
        ),
        (
            live_yaml(&tls_url, &format!("ca_file: {}\n", other.ca.display())),
            ROOT_PW,
            "invalid peer certificate",
        ),
        (
            live_yaml(&slapd.url(), "bind_password: x\n"),
            ROOT_PW,
            "directory.yaml:6: bind_password: a password is never written",
        ),
    ];
    for (yaml, password, want) in cases {
        std::fs::write(site.join("directory.yaml"), &yaml).unwrap();
        let out = run_cmd(bin().args(refresh).env(PASSWORD_ENV, password), None);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{want}: {err}");
        assert!(err.contains(want), "expected `{want}` in: {err}");
        assert!(!err.contains(ROOT_PW) && !stdout(&out).contains(ROOT_PW));
        assert_eq!(
            std::fs::read(site.join("sessions.jsonl")).unwrap(),
            before,
            "{want}"
        );
    }
    // Two registries in one site.
    std::fs::write(site.join("directory.yaml"), live_yaml(&slapd.url(), "")).unwrap();
    std::fs::write(site.join("registry.jsonl"), registry_jsonl(&people)).unwrap();
    let out = run_ldap(&refresh);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("two registries"), "{}", stderr(&out));
    std::fs::remove_file(site.join("registry.jsonl")).unwrap();
    // The same server over TLS, trusted through the right CA: ldaps:// and StartTLS.
    for yaml in [
        live_yaml(&tls_url, &format!("ca_file: {}\n", tls.ca.display())),
        live_yaml(
            &slapd.url(),
            &format!("start_tls: true\nca_file: {}\n", tls.ca.display()),
        ),
    ] {
        std::fs::write(site.join("directory.yaml"), &yaml).unwrap();
        let out = run_ldap(&dry);
        assert_eq!(code(&out), 0, "{yaml}: {}", stderr(&out));
        assert!(stdout(&out).contains("DPWWA2043I"), "{}", stdout(&out));
    }
    // Anonymous bind, a password from a file.
    std::fs::write(
        site.join("directory.yaml"),
        anonymous_yaml(&slapd.url(), ""),
    )
    .unwrap();
    let out = run_ldap(&dry);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(site.join("pw.txt"), format!("{ROOT_PW}\n")).unwrap();
    let from_file = live_yaml(&slapd.url(), "").replace(
        &format!("bind_password_env: {PASSWORD_ENV}"),
        "bind_password_file: pw.txt",
    );
    std::fs::write(site.join("directory.yaml"), from_file).unwrap();
    let out = run_cmd(bin().args(dry), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The ISVA layout of docs/directory.md (`principalName=…,cn=Users,secAuthority=Default`),
/// read from an LDIF file with the page's own mapping (without its connection keys).
#[test]
fn the_isva_layout_of_the_docs_reads_as_documented() {
    let page = std::fs::read_to_string(repo().join("docs/directory.md")).unwrap();
    let block = page
        .split("```yaml title=\"isva-directory.yaml\"\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the ISVA example is on the page");
    let mapping: String = block
        .lines()
        .filter(|l| {
            !["url:", "bind_dn:", "bind_password_env:", "ca_file:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let (_tmp, site) = site_without_registry();
    std::fs::write(site.join("directory.yaml"), &mapping).unwrap();
    std::fs::write(
        site.join("registry.ldif"),
        "version: 1\n\n\
         dn: secAuthority=Default\nobjectClass: secBase\nsecAuthority: Default\n\n\
         dn: principalName=johnq,cn=Users,secAuthority=Default\nobjectClass: top\nobjectClass: inetOrgPerson\n\
         principalName: johnq\ncn: John Q\nsn: Q\nmail: johnq@ibm.com\ndepartmentNumber: hr\n\n\
         dn: principalName=mary,cn=Users,secAuthority=Default\nobjectClass: inetOrgPerson\n\
         principalName: Mary Jones\ncn: Mary Jones\nsn: Jones\n\n\
         dn: cn=hr,cn=Groups,secAuthority=Default\nobjectClass: groupOfNames\ncn: hr\n\
         member: PRINCIPALNAME=JOHNQ,CN=USERS,SECAUTHORITY=DEFAULT\n\n\
         dn: cn=staff,cn=Groups,secAuthority=Default\nobjectClass: groupOfUniqueNames\ncn: staff\n\
         uniqueMember: principalName=johnq,cn=Users,secAuthority=Default\n\
         uniqueMember: principalName=mary,cn=Users,secAuthority=Default\n",
    )
    .unwrap();
    let out = run(
        &["registry", "export", "--site", site.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"user\":\"johnq\",\"groups\":[\"hr\",\"staff\"],\"attributes\":{\"emailAddress\":\"johnq@ibm.com\",\"departmentNumber\":\"hr\"}}\n\
         {\"user\":\"Mary Jones\",\"groups\":[\"staff\"],\"attributes\":{}}\n"
    );
}

/// `gen --ldif` writes the same users as `gen` (groups then in byte order), in a file that
/// `slapadd` loads as it is and that reads back the same from the live server.
#[test]
fn gen_ldif_is_the_same_registry_and_loads_into_slapd() {
    let tmp = tempfile::tempdir().unwrap();
    let (jsonl, ldif) = (tmp.path().join("jsonl"), tmp.path().join("ldif"));
    for (dir, extra) in [(&jsonl, None), (&ldif, Some("--ldif"))] {
        let mut args = vec![
            "gen",
            "--out",
            dir.to_str().unwrap(),
            "--users",
            "300",
            "--groups",
            "20",
        ];
        args.extend(extra);
        assert_eq!(code(&run(&args, None)), 0);
    }
    assert!(!ldif.join("registry.jsonl").exists());
    let export = |site: &std::path::Path| {
        let out = run(
            &["registry", "export", "--site", site.to_str().unwrap()],
            None,
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let (from_jsonl, from_ldif) = (export(&jsonl), export(&ldif));
    assert_eq!(from_jsonl.lines().count(), 300);
    for (a, b) in from_jsonl.lines().zip(from_ldif.lines()) {
        let (mut a, b): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(a).unwrap(),
            serde_json::from_str(b).unwrap(),
        );
        let mut groups: Vec<String> = serde_json::from_value(a["groups"].clone()).unwrap();
        groups.sort();
        a["groups"] = serde_json::json!(groups);
        assert_eq!(a, b);
    }
    let text = std::fs::read_to_string(ldif.join("registry.ldif")).unwrap();
    let slapd = Slapd::start_with(&text, "", None);
    let mapping = std::fs::read_to_string(ldif.join("directory.yaml")).unwrap();
    std::fs::write(
        ldif.join("directory.yaml"),
        format!("url: {}\n{mapping}", slapd.url()),
    )
    .unwrap();
    std::fs::remove_file(ldif.join("registry.ldif")).unwrap();
    assert_eq!(
        export(&ldif),
        from_ldif,
        "the live server reads as the file"
    );
}

/// What use found in the LDIF reader and `--registry` (contract §12), each through the
/// binary: an LDIF named by `--registry` is read with the mapping beside *it*; a plain value
/// that is not UTF-8 and a line whose attribute description is not one are errors naming the
/// file and line; a base with no entry names the line of directory.yaml that sets it.
#[test]
fn ldif_files_are_read_with_their_own_mapping_and_refused_with_their_line() {
    let people = people();
    let (_t, site) = site_without_registry();
    // The site's own registry: plain defaults (no directory.yaml), one user.
    std::fs::write(
        site.join("registry.ldif"),
        "dn: uid=johnq,o=x\nobjectClass: inetOrgPerson\nuid: johnq\n",
    )
    .unwrap();
    // Another folder B: the directory's LDIF with B's mapping, which maps departmentNumber
    // and reads only groupOfNames (so the groupOfUniqueNames groups are not B's groups).
    let b = site.parent().unwrap().join("b");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("registry.ldif"), directory_ldif(&people)).unwrap();
    std::fs::write(
        b.join("directory.yaml"),
        MAPPING.replace(
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
            "(objectClass=groupOfNames)",
        ),
    )
    .unwrap();
    let s = site.to_str().unwrap();
    let b_ldif = b.join("registry.ldif");
    let export = run(
        &[
            "registry",
            "export",
            "--site",
            s,
            "--registry",
            b_ldif.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&export), 0, "{}", stderr(&export));
    let users: Vec<serde_json::Value> = stdout(&export)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), people.len(), "B's users, not the site's");
    assert!(
        users
            .iter()
            .any(|u| u["attributes"].get("departmentNumber").is_some()),
        "B's mapped attributes: {users:?}"
    );
    // group_ldif makes the groups whose name begins after `m` groupOfUniqueNames.
    let unique_only: Vec<&str> = people
        .iter()
        .flat_map(|p| p.groups.iter().map(String::as_str))
        .filter(|g| g.as_bytes()[0] > b'm')
        .collect();
    assert!(
        !unique_only.is_empty(),
        "the fixture has groupOfUniqueNames groups"
    );
    for u in &users {
        for g in u["groups"].as_array().unwrap() {
            assert!(
                !unique_only.contains(&g.as_str().unwrap()),
                "B's filter excludes {g}: {u}"
            );
        }
    }

    // A plain value that is not UTF-8, and a damaged comment: exit 2 with file and line.
    let bad_utf8 =
        b"dn: uid=johnq,o=x\nobjectClass: inetOrgPerson\nuid: johnq\ndescription: caf\xe9\n";
    std::fs::write(site.join("registry.ldif"), bad_utf8).unwrap();
    let out = run(&["registry", "export", "--site", s], None);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let ldif_path = site.join("registry.ldif").display().to_string();
    assert!(
        stderr(&out).contains(&format!("{ldif_path}:4")) && stderr(&out).contains("UTF-8"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        site.join("registry.ldif"),
        "# Acc\neptance directory (bars/ldap): x\ndn: uid=johnq,o=x\nobjectClass: inetOrgPerson\nuid: johnq\n",
    )
    .unwrap();
    let out = run(&["registry", "export", "--site", s], None);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("{ldif_path}:2"))
            && stderr(&out).contains("not an attribute description"),
        "{}",
        stderr(&out)
    );

    // StartTLS against a server that does not offer it: said so.
    let plain = Slapd::start(&directory_ldif(&people), "", None);
    std::fs::remove_file(site.join("registry.ldif")).unwrap();
    std::fs::write(
        site.join("directory.yaml"),
        live_yaml(&plain.url(), "start_tls: true\n"),
    )
    .unwrap();
    let out = run_ldap(&["registry", "export", "--site", s]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the server does not offer StartTLS"),
        "{}",
        stderr(&out)
    );
    drop(plain);

    // A base with no entry: the message names directory.yaml's line of users.base.
    std::fs::write(
        site.join("registry.ldif"),
        "dn: uid=johnq,o=x\nobjectClass: inetOrgPerson\nuid: johnq\n",
    )
    .unwrap();
    std::fs::write(
        site.join("directory.yaml"),
        "# mapping\nusers:\n  base: ou=nowhere,o=x\n",
    )
    .unwrap();
    let out = run(&["registry", "export", "--site", s], None);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let mapping = site.join("directory.yaml").display().to_string();
    assert!(
        stderr(&out).contains("no entry of the file is at or under `ou=nowhere,o=x`")
            && stderr(&out).contains(&format!("{mapping}:3")),
        "{}",
        stderr(&out)
    );
}
