//! Parsing a tokenised line into a [`Command`].
//!
//! Options are pulled out first (they may stand anywhere, and a lone `-` ends them), then the
//! remaining words are matched against the grammar with a cursor that knows what it expects
//! next, so that an error names the token that was wrong and what was expected there.

use std::fmt;

use super::token::{Token, UnterminatedQuote, option_name, tokenize};
use super::{Command, Task};

/// Why a line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
    })
}

/// A positional word with its 1-based token number, for error messages.
struct Word {
    n: usize,
    text: String,
}

struct Cursor {
    words: Vec<Word>,
    pos: usize,
    /// The last keyword read, for "after `x`" in messages.
    after: String,
}

impl Cursor {
    fn peek(&self) -> Option<&Word> {
        self.words.get(self.pos)
    }

    /// Reads one keyword out of `expected` (case-insensitive), returning its index.
    fn keyword(&mut self, expected: &[&str]) -> Result<usize, ParseError> {
        let list = expected
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = if expected.len() == 1 {
            list
        } else {
            format!("one of {list}")
        };
        match self.peek() {
            None => err(format!(
                "expected {what} after `{}`, found the end of the command",
                self.after
            )),
            Some(w) => match expected
                .iter()
                .position(|e| e.eq_ignore_ascii_case(&w.text))
            {
                Some(i) => {
                    self.after = expected[i].to_string();
                    self.pos += 1;
                    Ok(i)
                }
                None => err(format!(
                    "token {} `{}`: expected {what}{}",
                    w.n,
                    w.text,
                    if self.pos == 0 {
                        String::new()
                    } else {
                        format!(" after `{}`", self.after)
                    }
                )),
            },
        }
    }

    /// Reads one argument (a name, id or number).
    fn arg(&mut self, what: &str) -> Result<String, ParseError> {
        match self.words.get(self.pos) {
            None => err(format!(
                "expected {what} after `{}`, found the end of the command",
                self.after
            )),
            Some(w) if w.text.is_empty() => err(format!(
                "token {}: expected {what}, found an empty string",
                w.n
            )),
            Some(w) => {
                self.pos += 1;
                self.after = w.text.clone();
                Ok(w.text.clone())
            }
        }
    }

    fn finish(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(w) => err(format!(
                "token {} `{}`: unexpected after `{}`; the command ends there",
                w.n, w.text, self.after
            )),
        }
    }
}

/// Options found on the line: only `-realm` exists in this grammar.
#[derive(Default)]
struct Options {
    realm: Option<(usize, String)>,
}

impl Options {
    fn take_realm(&mut self) -> Result<String, ParseError> {
        match self.realm.take() {
            Some((_, r)) if r.is_empty() => {
                err("option -realm: expected a realm name, found an empty string")
            }
            Some((_, r)) => Ok(r),
            None => err("the option -realm REALM is required for this command"),
        }
    }

    fn reject_unused(&self, command: &str) -> Result<(), ParseError> {
        match &self.realm {
            Some((n, _)) => err(format!(
                "token {n} `-realm`: the option does not apply to `{command}`"
            )),
            None => Ok(()),
        }
    }
}

fn split_options(tokens: Vec<Token>) -> Result<(Vec<Word>, Options), ParseError> {
    let mut words = Vec::new();
    let mut opts = Options::default();
    let mut options_ended = false;
    let mut iter = tokens.into_iter().enumerate().map(|(i, t)| (i + 1, t));
    while let Some((n, t)) = iter.next() {
        if !options_ended && t.text == "-" {
            options_ended = true;
            continue;
        }
        match option_name(&t.text).filter(|_| !options_ended) {
            None => words.push(Word { n, text: t.text }),
            Some(name) if name.eq_ignore_ascii_case("realm") => {
                if opts.realm.is_some() {
                    return err(format!(
                        "token {n} `{}`: the option -realm is given twice",
                        t.text
                    ));
                }
                let Some((_, value)) = iter.next() else {
                    return err(format!(
                        "token {n} `{}`: expected a realm name after it",
                        t.text
                    ));
                };
                opts.realm = Some((n, value.text));
            }
            Some(_) => {
                return err(format!(
                    "token {n} `{}`: unknown option; expected -realm",
                    t.text
                ));
            }
        }
    }
    Ok((words, opts))
}

/// Parses one command line (already joined from continuations and stripped of a prompt).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let tokens = tokenize(line).map_err(|UnterminatedQuote| ParseError {
        message: "a double quote is not closed".to_string(),
    })?;
    parse_tokens(tokens)
}

/// Parses already split tokens (the `exec` subcommand gets them from the shell).
pub fn parse_tokens(tokens: Vec<Token>) -> Result<Command, ParseError> {
    if tokens.is_empty() {
        return err("the command is empty");
    }
    let (words, mut opts) = split_options(tokens)?;
    let mut c = Cursor {
        words,
        pos: 0,
        after: String::new(),
    };
    let cmd = match c.keyword(&["server", "errtext"])? {
        1 => {
            let code = c.arg("a status code or message ID")?;
            opts.reject_unused("errtext")?;
            Command::Errtext { code }
        }
        _ => match c.keyword(&["list", "task"])? {
            0 => {
                opts.reject_unused("server list")?;
                Command::ServerList
            }
            _ => {
                let server = c.arg("a server name")?;
                let task = parse_task(&mut c, &mut opts)?;
                Command::Task { server, task }
            }
        },
    };
    c.finish()?;
    Ok(cmd)
}

fn parse_task(c: &mut Cursor, opts: &mut Options) -> Result<Task, ParseError> {
    Ok(match c.keyword(&["sms", "refresh", "terminate"])? {
        0 => parse_sms(c, opts)?,
        1 => {
            c.keyword(&["all_sessions"])?;
            let user = c.arg("a user name")?;
            opts.reject_unused("refresh all_sessions")?;
            Task::RefreshAll { user }
        }
        _ => match c.keyword(&["all_sessions", "session"])? {
            0 => {
                let user = c.arg("a user name")?;
                opts.reject_unused("terminate all_sessions")?;
                Task::TerminateAll { user }
            }
            _ => {
                let id = c.arg("a session id")?;
                opts.reject_unused("terminate session")?;
                Task::TerminateSession { id }
            }
        },
    })
}

fn parse_sms(c: &mut Cursor, opts: &mut Options) -> Result<Task, ParseError> {
    Ok(match c.keyword(&["session", "realm", "replica"])? {
        0 => match c.keyword(&["refresh", "terminate", "list"])? {
            2 => {
                let realm = opts.take_realm()?;
                let pattern = c.arg("a user name pattern")?;
                let max_word = c.arg("the maximum number of sessions to return")?;
                let max = max_word.parse::<u64>().or_else(|_| {
                    err(format!("`{max_word}`: expected the maximum number of sessions to return (a whole number)"))
                })?;
                Task::SmsSessionList {
                    realm,
                    pattern,
                    max,
                }
            }
            verb => {
                let all = c.keyword(&["all_sessions", "session"])? == 0;
                let name = c.arg(if all { "a user name" } else { "a session id" })?;
                let realm = opts.take_realm()?;
                match (verb, all) {
                    (0, true) => Task::SmsRefreshAll { user: name, realm },
                    (0, false) => Task::SmsRefreshSession { id: name, realm },
                    (_, true) => Task::SmsTerminateAll { user: name, realm },
                    (_, false) => Task::SmsTerminateSession { id: name, realm },
                }
            }
        },
        1 => match c.keyword(&["list", "show"])? {
            0 => {
                opts.reject_unused("sms realm list")?;
                Task::SmsRealmList
            }
            _ => {
                let realm = c.arg("a realm name")?;
                opts.reject_unused("sms realm show")?;
                Task::SmsRealmShow { realm }
            }
        },
        _ => {
            c.keyword(&["set"])?;
            match c.keyword(&["list", "show"])? {
                0 => {
                    let realm = match opts.realm.take() {
                        Some((_, r)) if r.is_empty() => {
                            return err(
                                "option -realm: expected a realm name, found an empty string",
                            );
                        }
                        other => other.map(|(_, r)| r),
                    };
                    Task::SmsReplicaSetList { realm }
                }
                _ => {
                    let replica_set = c.arg("a replica set name")?;
                    opts.reject_unused("sms replica set show")?;
                    Task::SmsReplicaSetShow { replica_set }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn fails(line: &str) -> String {
        parse(line).expect_err(line).message
    }

    fn refresh(user: &str, realm: &str) -> Command {
        Command::Task {
            server: "default-webseald-cruz".into(),
            task: Task::SmsRefreshAll {
                user: user.into(),
                realm: realm.into(),
            },
        }
    }

    #[test]
    fn refresh_all_sessions_forms() {
        let want = refresh("johnq", "ibm.com");
        assert_eq!(
            ok(
                "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com"
            ),
            want
        );
        // Options anywhere after the keywords, keyword and option case, the en dash.
        assert_eq!(
            ok(
                "SERVER TASK default-webseald-cruz SMS Session REFRESH all_sessions -REALM ibm.com johnq"
            ),
            want
        );
        assert_eq!(
            ok(
                "server task default-webseald-cruz sms session refresh all_sessions johnq \u{2013}realm ibm.com"
            ),
            want
        );
        assert_eq!(
            ok(
                "server -realm ibm.com task default-webseald-cruz sms session refresh all_sessions johnq"
            ),
            want
        );
    }

    #[test]
    fn quoted_names_and_lone_dash() {
        assert_eq!(
            ok(
                r#"server task default-webseald-cruz sms session refresh all_sessions "Mary Jones" -realm ibm.com"#
            ),
            refresh("Mary Jones", "ibm.com")
        );
        assert_eq!(
            ok(
                "server task default-webseald-cruz sms session refresh all_sessions -realm ibm.com - -bob"
            ),
            refresh("-bob", "ibm.com")
        );
        // A quoted token starting with a dash is still an option.
        assert!(fails(r#"server task default-webseald-cruz sms session refresh all_sessions "-bob" -realm ibm.com"#).contains("unknown option"));
    }

    #[test]
    #[allow(clippy::too_many_lines, reason = "one table of cases")]
    fn every_command_of_the_table() {
        let s = "server task web-webseald-h sms ";
        let cases: Vec<(&str, Task)> = vec![
            (
                "session refresh session 678 -realm r",
                Task::SmsRefreshSession {
                    id: "678".into(),
                    realm: "r".into(),
                },
            ),
            (
                "session terminate all_sessions dlucas -realm r",
                Task::SmsTerminateAll {
                    user: "dlucas".into(),
                    realm: "r".into(),
                },
            ),
            (
                "session terminate session 678 -realm r",
                Task::SmsTerminateSession {
                    id: "678".into(),
                    realm: "r".into(),
                },
            ),
            (
                "session list -realm r *luca* 10",
                Task::SmsSessionList {
                    realm: "r".into(),
                    pattern: "*luca*".into(),
                    max: 10,
                },
            ),
            ("realm list", Task::SmsRealmList),
            ("realm show r", Task::SmsRealmShow { realm: "r".into() }),
            ("replica set list", Task::SmsReplicaSetList { realm: None }),
            (
                "replica set list -realm r",
                Task::SmsReplicaSetList {
                    realm: Some("r".into()),
                },
            ),
            (
                "replica set show www",
                Task::SmsReplicaSetShow {
                    replica_set: "www".into(),
                },
            ),
        ];
        for (tail, task) in cases {
            let line = format!("{s}{tail}");
            assert_eq!(
                ok(&line),
                Command::Task {
                    server: "web-webseald-h".into(),
                    task
                },
                "{line}"
            );
        }
        let plain = [
            (
                "refresh all_sessions brian",
                Task::RefreshAll {
                    user: "brian".into(),
                },
            ),
            (
                "terminate all_sessions brian",
                Task::TerminateAll {
                    user: "brian".into(),
                },
            ),
            (
                "terminate session 678",
                Task::TerminateSession { id: "678".into() },
            ),
        ];
        for (tail, task) in plain {
            assert_eq!(
                ok(&format!("server task w-webseald-h {tail}")),
                Command::Task {
                    server: "w-webseald-h".into(),
                    task
                }
            );
        }
        assert_eq!(ok("server list"), Command::ServerList);
        assert_eq!(
            ok("errtext 0x14c012f2"),
            Command::Errtext {
                code: "0x14c012f2".into()
            }
        );
    }

    #[test]
    fn errors_name_the_token_and_the_expectation() {
        assert_eq!(
            fails("server task s sms session refrsh all_sessions u -realm r"),
            "token 6 `refrsh`: expected one of `refresh`, `terminate`, `list` after `session`"
        );
        assert_eq!(
            fails("server task s sms session refresh all_sessions u"),
            "the option -realm REALM is required for this command"
        );
        assert_eq!(
            fails("server task s sms session refresh all_sessions -realm r"),
            "expected a user name after `all_sessions`, found the end of the command"
        );
        assert_eq!(
            fails("server task s sms session refresh all_sessions u v -realm r"),
            "token 9 `v`: unexpected after `u`; the command ends there"
        );
        assert_eq!(
            fails("server task s sms session list -realm r * lots"),
            "`lots`: expected the maximum number of sessions to return (a whole number)"
        );
        assert!(fails("server list -realm r").contains("does not apply"));
        assert!(
            fails("server task s sms session refresh all_sessions u -realm r -realm q")
                .contains("twice")
        );
        assert!(
            fails("server task s sms session refresh all_sessions u -user x")
                .contains("unknown option")
        );
        assert!(
            fails("server task s sms session refresh all_sessions u -realm")
                .contains("expected a realm name")
        );
        assert_eq!(
            fails("bogus"),
            "token 1 `bogus`: expected one of `server`, `errtext`"
        );
        assert_eq!(
            fails("server task s sms session refresh all_sessions \"u -realm r"),
            "a double quote is not closed"
        );
        assert_eq!(fails(""), "the command is empty");
        assert!(
            fails("server task s sms session refresh all_sessions \"\" -realm r")
                .contains("empty string")
        );
    }

    #[test]
    fn display_round_trips() {
        let lines = [
            "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com",
            r#"server task d-webseald-c sms session refresh all_sessions "Mary Jones" -realm ibm.com"#,
            "server task d-webseald-c sms session terminate all_sessions -realm ibm.com - -bob",
            "server task d-webseald-c sms session list -realm ibm.com *luca* 10",
            "server task d-webseald-c sms replica set list",
            "server task d-webseald-c terminate session 678",
            "errtext 0x14c012f2",
            "server list",
        ];
        for line in lines {
            let cmd = ok(line);
            assert_eq!(cmd.to_string(), line);
            assert_eq!(ok(&cmd.to_string()), cmd);
        }
        // Normalisation: case, dash, option position.
        assert_eq!(
            ok("SERVER task s SMS session refresh all_sessions \u{2013}Realm R u").to_string(),
            "server task s sms session refresh all_sessions u -realm R"
        );
    }
}
