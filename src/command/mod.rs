//! The pdadmin command grammar (contract §4): typed commands, the parser, and a `Display`
//! that prints the normalised form, which parses back to the same command.
//!
//! [`token`] splits a line into tokens, [`parse`] turns tokens into a [`Command`], and
//! [`reader`] applies the command-file rules (comments, continuations, prompts, `exit`).

pub mod parse;
pub mod reader;
pub mod token;

use std::fmt;

pub use parse::{ParseError, parse};

/// One pdadmin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `server list`
    ServerList,
    /// `errtext CODE`
    Errtext { code: String },
    /// `server task SERVER ...`
    Task { server: String, task: Task },
}

/// What a `server task` command asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// `sms session refresh all_sessions USER -realm R`
    SmsRefreshAll { user: String, realm: String },
    /// `sms session refresh session ID -realm R`
    SmsRefreshSession { id: String, realm: String },
    /// `sms session terminate all_sessions USER -realm R`
    SmsTerminateAll { user: String, realm: String },
    /// `sms session terminate session ID -realm R`
    SmsTerminateSession { id: String, realm: String },
    /// `sms session list -realm R PATTERN MAX`
    SmsSessionList {
        realm: String,
        pattern: String,
        max: u64,
    },
    /// `sms realm list`
    SmsRealmList,
    /// `sms realm show R`
    SmsRealmShow { realm: String },
    /// `sms replica set list [-realm R]`
    SmsReplicaSetList { realm: Option<String> },
    /// `sms replica set show RS`
    SmsReplicaSetShow { replica_set: String },
    /// plain WebSEAL `refresh all_sessions USER`
    RefreshAll { user: String },
    /// plain WebSEAL `terminate all_sessions USER`
    TerminateAll { user: String },
    /// plain WebSEAL `terminate session ID`
    TerminateSession { id: String },
}

/// The `action` name of a result (contract §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RefreshAllSessions,
    RefreshSession,
    TerminateAllSessions,
    TerminateSession,
    SessionList,
    RealmList,
    RealmShow,
    ReplicaSetList,
    ReplicaSetShow,
    ServerList,
    Errtext,
    WebsealRefreshAllSessions,
    WebsealTerminateAllSessions,
    WebsealTerminateSession,
    Invalid,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RefreshAllSessions => "refresh_all_sessions",
            Action::RefreshSession => "refresh_session",
            Action::TerminateAllSessions => "terminate_all_sessions",
            Action::TerminateSession => "terminate_session",
            Action::SessionList => "session_list",
            Action::RealmList => "realm_list",
            Action::RealmShow => "realm_show",
            Action::ReplicaSetList => "replica_set_list",
            Action::ReplicaSetShow => "replica_set_show",
            Action::ServerList => "server_list",
            Action::Errtext => "errtext",
            Action::WebsealRefreshAllSessions => "webseal_refresh_all_sessions",
            Action::WebsealTerminateAllSessions => "webseal_terminate_all_sessions",
            Action::WebsealTerminateSession => "webseal_terminate_session",
            Action::Invalid => "invalid",
        }
    }
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Command::ServerList => Action::ServerList,
            Command::Errtext { .. } => Action::Errtext,
            Command::Task { task, .. } => match task {
                Task::SmsRefreshAll { .. } => Action::RefreshAllSessions,
                Task::SmsRefreshSession { .. } => Action::RefreshSession,
                Task::SmsTerminateAll { .. } => Action::TerminateAllSessions,
                Task::SmsTerminateSession { .. } => Action::TerminateSession,
                Task::SmsSessionList { .. } => Action::SessionList,
                Task::SmsRealmList => Action::RealmList,
                Task::SmsRealmShow { .. } => Action::RealmShow,
                Task::SmsReplicaSetList { .. } => Action::ReplicaSetList,
                Task::SmsReplicaSetShow { .. } => Action::ReplicaSetShow,
                Task::RefreshAll { .. } => Action::WebsealRefreshAllSessions,
                Task::TerminateAll { .. } => Action::WebsealTerminateAllSessions,
                Task::TerminateSession { .. } => Action::WebsealTerminateSession,
            },
        }
    }

    pub fn server(&self) -> Option<&str> {
        match self {
            Command::Task { server, .. } => Some(server),
            _ => None,
        }
    }

    /// The realm the command names, if any.
    pub fn realm(&self) -> Option<&str> {
        match self {
            Command::Task { task, .. } => match task {
                Task::SmsRefreshAll { realm, .. }
                | Task::SmsRefreshSession { realm, .. }
                | Task::SmsTerminateAll { realm, .. }
                | Task::SmsTerminateSession { realm, .. }
                | Task::SmsSessionList { realm, .. }
                | Task::SmsRealmShow { realm } => Some(realm),
                Task::SmsReplicaSetList { realm } => realm.as_deref(),
                _ => None,
            },
            _ => None,
        }
    }

    /// The user the command names, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Command::Task {
                task:
                    Task::SmsRefreshAll { user, .. }
                    | Task::SmsTerminateAll { user, .. }
                    | Task::RefreshAll { user }
                    | Task::TerminateAll { user },
                ..
            } => Some(user),
            _ => None,
        }
    }

    /// The session id the command names, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Command::Task {
                task:
                    Task::SmsRefreshSession { id, .. }
                    | Task::SmsTerminateSession { id, .. }
                    | Task::TerminateSession { id },
                ..
            } => Some(id),
            _ => None,
        }
    }

    /// The words of the command: fixed keywords and positional arguments in order, then
    /// the options as (name, value) pairs.
    fn words(&self) -> (Vec<Word<'_>>, Vec<(&'static str, &str)>) {
        use Word::{Arg, Kw};
        let mut opts: Vec<(&'static str, &str)> = Vec::new();
        let words = match self {
            Command::ServerList => vec![Kw("server"), Kw("list")],
            Command::Errtext { code } => vec![Kw("errtext"), Arg(code)],
            Command::Task { server, task } => {
                let mut w = vec![Kw("server"), Kw("task"), Arg(server)];
                task_words(task, &mut w, &mut opts);
                w
            }
        };
        (words, opts)
    }
}

/// The words after `server task S`.
fn task_words<'a>(task: &'a Task, w: &mut Vec<Word<'a>>, opts: &mut Vec<(&'static str, &'a str)>) {
    use Word::Arg;
    let kw = |w: &mut Vec<Word<'a>>, words: &[&'static str], arg: Option<&'a str>| {
        w.extend(words.iter().map(|k| Word::Kw(k)));
        w.extend(arg.map(Arg));
    };
    match task {
        Task::SmsRefreshAll { user, realm } => {
            kw(
                w,
                &["sms", "session", "refresh", "all_sessions"],
                Some(user),
            );
            opts.push(("realm", realm));
        }
        Task::SmsRefreshSession { id, realm } => {
            kw(w, &["sms", "session", "refresh", "session"], Some(id));
            opts.push(("realm", realm));
        }
        Task::SmsTerminateAll { user, realm } => {
            kw(
                w,
                &["sms", "session", "terminate", "all_sessions"],
                Some(user),
            );
            opts.push(("realm", realm));
        }
        Task::SmsTerminateSession { id, realm } => {
            kw(w, &["sms", "session", "terminate", "session"], Some(id));
            opts.push(("realm", realm));
        }
        Task::SmsSessionList {
            realm,
            pattern,
            max,
        } => {
            // IBM writes `-realm` before the pattern here; keep that order.
            kw(w, &["sms", "session", "list"], None);
            w.extend([
                Word::OptionsHere,
                Arg(pattern),
                Word::Owned(max.to_string()),
            ]);
            opts.push(("realm", realm));
        }
        Task::SmsRealmList => kw(w, &["sms", "realm", "list"], None),
        Task::SmsRealmShow { realm } => kw(w, &["sms", "realm", "show"], Some(realm)),
        Task::SmsReplicaSetList { realm } => {
            kw(w, &["sms", "replica", "set", "list"], None);
            if let Some(realm) = realm {
                opts.push(("realm", realm));
            }
        }
        Task::SmsReplicaSetShow { replica_set } => {
            kw(w, &["sms", "replica", "set", "show"], Some(replica_set));
        }
        Task::RefreshAll { user } => kw(w, &["refresh", "all_sessions"], Some(user)),
        Task::TerminateAll { user } => kw(w, &["terminate", "all_sessions"], Some(user)),
        Task::TerminateSession { id } => kw(w, &["terminate", "session"], Some(id)),
    }
}

enum Word<'a> {
    Kw(&'static str),
    Arg(&'a str),
    Owned(String),
    /// Where the options go when not at the end.
    OptionsHere,
}

impl Word<'_> {
    fn text(&self) -> &str {
        match self {
            Word::Kw(s) | Word::Arg(s) => s,
            Word::Owned(s) => s,
            Word::OptionsHere => "",
        }
    }

    fn is_arg(&self) -> bool {
        matches!(self, Word::Arg(_) | Word::Owned(_))
    }
}

/// Whether a positional argument would be read as an option or as the end-of-options mark.
fn needs_dash_guard(arg: &str) -> bool {
    arg == "-" || token::option_name(arg).is_some()
}

impl fmt::Display for Command {
    /// The normalised command: lower-case keywords, `-realm` (ASCII), names quoted where
    /// needed, and a lone `-` before the first argument that starts with a dash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written straight into the formatter: results format millions of commands.
        let (words, opts) = self.words();
        let guard_at = words
            .iter()
            .position(|w| w.is_arg() && needs_dash_guard(w.text()));
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if std::mem::take(&mut first) {
                Ok(())
            } else {
                f.write_str(" ")
            }
        };
        let mut opts_done = false;
        let mut write_opts =
            |f: &mut fmt::Formatter<'_>,
             sep: &mut dyn FnMut(&mut fmt::Formatter<'_>) -> fmt::Result| {
                if !opts_done {
                    opts_done = true;
                    for (name, value) in &opts {
                        sep(f)?;
                        write!(f, "-{name}")?;
                        sep(f)?;
                        token::write_quoted(f, value)?;
                    }
                }
                Ok(())
            };
        for (i, w) in words.iter().enumerate() {
            if Some(i) == guard_at {
                write_opts(f, &mut sep)?;
                sep(f)?;
                f.write_str("-")?;
            }
            match w {
                Word::OptionsHere if guard_at.is_none_or(|g| i < g) => write_opts(f, &mut sep)?,
                Word::OptionsHere => {}
                w => {
                    sep(f)?;
                    token::write_quoted(f, w.text())?;
                }
            }
        }
        write_opts(f, &mut sep)
    }
}
