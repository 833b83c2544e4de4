//! One command's result: what every output format renders (contract §7, §10).

use std::sync::Arc;

use serde::Serialize;

use crate::command::Action;
use crate::message::{Message, Severity};

/// A result's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
}

impl Status {
    pub fn of(m: &Message) -> Self {
        match m.severity() {
            Severity::Info => Status::Ok,
            Severity::Warning => Status::Warning,
            Severity::Error => Status::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One entry of a list result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Item {
    Session(SessionItem),
    Named(NamedItem),
}

/// A session, as `session list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionItem {
    pub id: String,
    pub user: String,
    pub realm: String,
    pub replica_set: String,
    pub server: String,
    pub created: String,
    pub last_access: String,
}

/// A named thing (server, realm, replica set), with what the pdadmin text shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedItem {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

impl NamedItem {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            realm: None,
        }
    }
}

/// What executing a command produced, before it is placed in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Usually the message's severity; IBM's `HPDMG0754W` is a warning ID but a failed
    /// refresh (contract §3), and `errtext` succeeds whatever it looks up.
    pub status: Status,
    pub message: &'static Message,
    pub text: String,
    pub sessions: u64,
    pub items: Option<Vec<Item>>,
    pub total: Option<u64>,
    /// For `errtext`: the message looked up, whose code the pdadmin line shows.
    pub looked_up: Option<&'static Message>,
}

impl Outcome {
    pub fn new(message: &'static Message, args: &[&str]) -> Self {
        Self {
            status: Status::of(message),
            message,
            text: message.render(args),
            sessions: 0,
            items: None,
            total: None,
            looked_up: None,
        }
    }

    pub fn sessions(mut self, n: usize) -> Self {
        self.sessions = n as u64;
        self
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }
}

/// A command's full result: where it came from, what it was, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// 1-based line in its input (for a continued command, its first line).
    pub line: u64,
    pub source: Arc<str>,
    /// The normalised command, or the raw text of a line that does not parse.
    pub command: String,
    pub action: Action,
    pub server: Option<String>,
    pub realm: Option<String>,
    pub user: Option<String>,
    pub session_id: Option<String>,
    pub dry_run: bool,
    pub outcome: Outcome,
}

impl CommandResult {
    pub fn status(&self) -> Status {
        self.outcome.status()
    }
}
