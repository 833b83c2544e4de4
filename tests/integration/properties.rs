//! Property tests for the grammar: parse(print(c)) == c for every command, and no input
//! makes the parser or the command-file reader panic. `PROPTEST_CASES` raises the count.

use proptest::prelude::*;
use smsrefresh::command::reader::CommandReader;
use smsrefresh::command::{Command, Task, parse};

/// Any non-empty name: spaces, quotes, backslashes, dashes, non-ASCII, control characters.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.@-]{1,12}",
        "[ -~]{1,16}",
        "\\PC{1,10}",
        "[-\u{2013}\"\\\\ #a]{1,6}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn task() -> impl Strategy<Value = Task> {
    prop_oneof![
        (name(), name()).prop_map(|(user, realm)| Task::SmsRefreshAll { user, realm }),
        (name(), name()).prop_map(|(id, realm)| Task::SmsRefreshSession { id, realm }),
        (name(), name()).prop_map(|(user, realm)| Task::SmsTerminateAll { user, realm }),
        (name(), name()).prop_map(|(id, realm)| Task::SmsTerminateSession { id, realm }),
        (name(), name(), any::<u64>()).prop_map(|(realm, pattern, max)| Task::SmsSessionList {
            realm,
            pattern,
            max
        }),
        Just(Task::SmsRealmList),
        name().prop_map(|realm| Task::SmsRealmShow { realm }),
        proptest::option::of(name()).prop_map(|realm| Task::SmsReplicaSetList { realm }),
        name().prop_map(|replica_set| Task::SmsReplicaSetShow { replica_set }),
        name().prop_map(|user| Task::RefreshAll { user }),
        name().prop_map(|user| Task::TerminateAll { user }),
        name().prop_map(|id| Task::TerminateSession { id }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::ServerList),
        name().prop_map(|code| Command::Errtext { code }),
        (name(), task()).prop_map(|(server, task)| Command::Task { server, task }),
    ]
}

proptest! {
    #[test]
    fn printed_commands_parse_back_equal(cmd in command()) {
        let text = cmd.to_string();
        prop_assert_eq!(parse(&text), Ok(cmd), "{}", text);
    }

    #[test]
    fn printing_is_idempotent(cmd in command()) {
        let text = cmd.to_string();
        let again = parse(&text).unwrap().to_string();
        prop_assert_eq!(text, again);
    }

    #[test]
    fn the_parser_never_panics(line in any::<String>()) {
        let _ = parse(&line);
    }

    #[test]
    fn the_parser_never_panics_on_command_like_lines(
        words in proptest::collection::vec(prop_oneof![
            Just("server".to_string()), Just("task".to_string()), Just("sms".to_string()),
            Just("session".to_string()), Just("refresh".to_string()), Just("all_sessions".to_string()),
            Just("-realm".to_string()), Just("-".to_string()), Just("\"".to_string()), name()], 0..12)
    ) {
        let _ = parse(&words.join(" "));
    }

    #[test]
    fn the_reader_never_panics_and_numbers_lines_in_order(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut last = 0;
        for entry in CommandReader::new(&bytes[..]) {
            let line = match entry.unwrap() {
                smsrefresh::command::reader::Entry::Command { line, .. }
                | smsrefresh::command::reader::Entry::NotUtf8 { line }
                | smsrefresh::command::reader::Entry::TooLong { line } => line,
            };
            prop_assert!(line > last);
            last = line;
        }
    }
}

mod loaders {
    //! Every loader and reader: any input gives a value or an error, never a panic, and the
    //! store stays consistent. `PROPTEST_CASES` raises the count (default 256 each).

    use std::path::Path;

    use proptest::prelude::*;
    use smsrefresh::input::{CsvDefaults, CsvSource, JobKind};
    use smsrefresh::site::{Registry, Topology};
    use smsrefresh::store::{MemoryStore, SessionStore};

    const TOPO: &str = "realms:\n  ibm.com: {replica_sets: [www]}\n  b.org: {replica_sets: [b]}\nservers:\n  a-webseald-b: {replica_sets: [www, b]}\n";

    fn topology() -> Topology {
        Topology::parse(Path::new("topology.yaml"), TOPO).unwrap()
    }

    /// Text built from the pieces the formats are made of, to get past the first byte.
    fn soup() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("{".to_string()),
                Just("}".to_string()),
                Just("[".to_string()),
                Just("]".to_string()),
                Just("\"".to_string()),
                Just(":".to_string()),
                Just(",".to_string()),
                Just("\n".to_string()),
                Just("  ".to_string()),
                Just("&a ".to_string()),
                Just("*a".to_string()),
                Just("users".to_string()),
                Just("targets".to_string()),
                Just("version: 1".to_string()),
                Just("\"id\"".to_string()),
                Just("\"user\"".to_string()),
                Just("\"realm\":\"ibm.com\"".to_string()),
                Just("credential".to_string()),
                Just("groups".to_string()),
                Just("realm: ibm.com".to_string()),
                "[a-z0-9 ._-]{0,8}",
            ],
            0..40,
        )
        .prop_map(|v| v.concat())
    }

    fn csv_field(s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    proptest! {
        /// Nesting of any depth and shape: up to 64 levels a policy parses as before, deeper
        /// ones are refused, naming the line, before the YAML parser sees them.
        #[test]
        fn policy_nesting_is_refused_past_its_limit(depth in 0usize..400, flow in any::<bool>(), seed in any::<u64>()) {
            let inner = if flow {
                format!("{}johnq{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                let mut t = String::from("johnq");
                for i in 0..depth {
                    t = if (seed >> (i % 64)) & 1 == 0 { format!("[{t}]") } else { format!("{{k: {t}}}") };
                }
                t
            };
            let text = format!("version: 1\nname: n\nrealm: ibm.com\ntargets:\n  users: [{inner}]\n");
            let r = smsrefresh::policy::Policy::parse(Path::new("p.yaml"), text.into_bytes());
            let refused = r.as_ref().err().is_some_and(|e| e.to_string().contains("nested more than 64 levels"));
            // `targets:` and `users:` are two block levels, `users: [` one more.
            prop_assert_eq!(refused, depth + 3 > 64, "{:?}", r.as_ref().err().map(ToString::to_string));
        }

        #[test]
        fn csv_reader_never_panics_and_lines_go_forward(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let t = topology();
            let mut last = 0;
            for job in CsvSource::new(&bytes[..], CsvDefaults::default(), &t) {
                let job = job.unwrap();
                prop_assert!(job.line > last);
                last = job.line;
            }
        }

        #[test]
        fn csv_pairs_round_trip(pairs in proptest::collection::vec(("[^\r\n\u{feff}]{1,12}", prop::sample::select(vec!["ibm.com", "b.org"])), 1..20)) {
            let t = topology();
            let text: String = pairs.iter().map(|(u, r)| format!("{},{r}\n", csv_field(u))).collect();
            let jobs: Vec<_> = CsvSource::new(text.as_bytes(), CsvDefaults::default(), &t).map(|j| j.unwrap()).collect();
            let got: Vec<(String, String)> = jobs.iter().filter_map(|j| match &j.kind {
                JobKind::Command(c) => Some((c.user()?.to_string(), c.realm()?.to_string())),
                JobKind::Invalid { .. } => None,
            }).collect();
            // Quoted fields keep their content exactly (blanks too); only empty users are bad rows.
            let want: Vec<(String, String)> = pairs.iter().filter(|(u, _)| !u.is_empty()).map(|(u, r)| (u.clone(), r.to_string())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(jobs.len(), pairs.len());
        }

        #[test]
        fn policy_loader_never_panics(text in prop_oneof![soup(), any::<String>()]) {
            let _ = smsrefresh::policy::Policy::parse(Path::new("/nonexistent/p.yaml"), text.into_bytes());
        }

        #[test]
        fn registry_and_topology_loaders_never_panic(text in prop_oneof![soup(), any::<String>()]) {
            let _ = Registry::parse_yaml(Path::new("registry.yaml"), &text);
            let _ = Registry::parse_jsonl(Path::new("registry.jsonl"), text.as_bytes());
            let _ = Topology::parse(Path::new("topology.yaml"), &text);
        }

        #[test]
        fn jsonl_snapshot_loader_never_panics(text in prop_oneof![soup(), any::<String>()]) {
            let store = MemoryStore::default();
            let _ = smsrefresh::site::snapshot::load_from(Path::new("sessions.jsonl"), text.as_bytes(), &topology(), &store);
            prop_assert!(store.check_invariants().is_ok());
        }

        #[test]
        fn binary_snapshot_loader_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), with_header in any::<bool>()) {
            let mut bytes = if with_header { b"SMRSNAP\0\x01\0\0\0\0\0\0\0".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&body);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            let store = MemoryStore::default();
            let _ = smsrefresh::site::binary::load_bytes(Path::new("sessions.bin"), &bytes, &topology(), &store);
            prop_assert!(store.check_invariants().is_ok());
        }

        #[test]
        fn binary_snapshot_round_trips(users in proptest::collection::vec(("[a-zA-Z0-9 é]{1,10}", 1usize..4, "[ -~]{0,20}"), 1..15)) {
            let dir = tempfile::tempdir().unwrap();
            let t = topology();
            let store = MemoryStore::default();
            let mut seq = 0;
            for (u, n, v) in &users {
                for _ in 0..*n {
                    seq += 1;
                    let mut b = smsrefresh::credential::CredentialBuilder::default();
                    b.push_str("AZN_CRED_PRINCIPAL_NAME", u).unwrap();
                    b.push_list("AZN_CRED_GROUPS", ["g1", v.as_str()]).unwrap();
                    b.push_str("tagvalue_x", v).unwrap();
                    let s = smsrefresh::session::Session {
                        seq, id: format!("id{seq}").into(), user: u.as_str().into(),
                        realm: smsrefresh::ids::RealmId((seq % 2) as u16),
                        replica_set: smsrefresh::ids::ReplicaSetId((seq % 2) as u16),
                        server: smsrefresh::ids::ServerId(0),
                        created: seq as i64, last_access: seq as i64 * 2,
                        last_refresh: (seq % 3 == 0).then_some(7),
                        credential: b.build(),
                    };
                    store.insert(&s).unwrap();
                }
            }
            let path = dir.path().join("sessions.bin");
            smsrefresh::site::binary::save(&path, &t, &store).unwrap();
            let back = MemoryStore::default();
            smsrefresh::site::binary::load(&path, &t, &back).unwrap();
            let dump = |s: &MemoryStore| { let mut v = Vec::new(); s.export(&mut |x| v.push(x.clone())).unwrap(); v };
            prop_assert_eq!(dump(&store), dump(&back));
        }
    }
}

/// Found by fuzzing (`snapshot_binary`): a block count taken from the file was allocated
/// before it was checked against the file's size, and aborted the process.
#[test]
fn regression_fuzz_binary_snapshot_huge_counts() {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode("AAAAAAAAAAAAAAAAAAAAAAC9AAAAAAC9AAAAAF0A/gDBAJoAAAACAAAAARIBQ0PIQ0MAAKHU1CYAAFRUVFRUVFRU1FRUVFRUVFRUVFQ=")
        .unwrap();
    let mut bytes = b"SMRSNAP\0\x01\0\0\0\0\0\0\0".to_vec();
    bytes.extend_from_slice(&data);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let topology = smsrefresh::site::Topology::parse(
        std::path::Path::new("topology.yaml"),
        "realms:\n  ibm.com: {replica_sets: [www]}\nservers:\n  a-webseald-b: {replica_sets: [www]}\n",
    )
    .unwrap();
    let store = smsrefresh::store::MemoryStore::default();
    let e = smsrefresh::site::binary::load_bytes(
        std::path::Path::new("sessions.bin"),
        &bytes,
        &topology,
        &store,
    );
    assert!(e.is_err());
}
