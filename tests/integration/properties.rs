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
