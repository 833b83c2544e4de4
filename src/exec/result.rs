//! One command's result: what every output format renders (contract §7, §10).

use std::sync::Arc;

use serde::Serialize;

use std::borrow::Cow;

use compact_str::CompactString;

use crate::command::{Action, Command};
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

/// The values of a message's placeholders, kept unrendered: the text is only built when a
/// result is written (in parallel, off the execute phase). Short values need no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    values: [CompactString; 3],
    len: u8,
    /// A fixed text instead of the rendered template (`errtext` shows the template itself).
    fixed: Option<&'static str>,
}

/// What an ISVA appliance answered to one command (contract §14): its pdadmin text, and the
/// first message ID and status code in it. Its status is decided by the target's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub message_id: Option<String>,
    pub code: Option<String>,
    pub text: String,
}

/// A message ID of an appliance's answer as a `&'static str`, for the per-ID counts: the IDs
/// an appliance prints are few, so each distinct one is kept once for the process's life.
pub fn remember_id(id: &str) -> &'static str {
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = seen.iter().find(|s| **s == id) {
        return s;
    }
    let s: &'static str = Box::leak(id.to_string().into_boxed_str());
    seen.push(s);
    s
}

/// What executing a command produced, before it is placed in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Usually the message's severity; IBM's `HPDMG0754W` is a warning ID but a failed
    /// refresh (contract §3), and `errtext` succeeds whatever it looks up.
    pub status: Status,
    pub message: &'static Message,
    pub args: Args,
    pub sessions: u64,
    pub items: Option<Vec<Item>>,
    pub total: Option<u64>,
    /// For `errtext`: the message looked up, whose code the pdadmin line shows.
    pub looked_up: Option<&'static Message>,
    /// A target's answer, shown instead of `message` (and `sessions` is unknown).
    pub answer: Option<Box<Answer>>,
}

impl Outcome {
    pub fn new(message: &'static Message, args: &[&str]) -> Self {
        let mut a = Args::default();
        for (slot, v) in a.values.iter_mut().zip(args) {
            *slot = CompactString::from(*v);
            a.len += 1;
        }
        Self {
            status: Status::of(message),
            message,
            args: a,
            sessions: 0,
            items: None,
            total: None,
            looked_up: None,
            answer: None,
        }
    }

    /// An appliance's answer with the status the target's rules gave it.
    pub fn answered(status: Status, answer: Answer) -> Self {
        Self {
            status,
            answer: Some(Box::new(answer)),
            ..Self::new(&crate::message::WOULD_SEND, &[])
        }
    }

    /// The message ID shown: the catalog's, or the first one in an appliance's answer.
    pub fn message_id(&self) -> Option<&str> {
        match &self.answer {
            Some(a) => a.message_id.as_deref(),
            None => Some(self.message.id),
        }
    }

    /// The message ID for the per-ID counts (`-` when an answer has none).
    pub fn counted_id(&self) -> &'static str {
        match &self.answer {
            Some(a) => a.message_id.as_deref().map_or("-", remember_id),
            None => self.message.id,
        }
    }

    /// The status code shown: for warnings and errors, the catalog's; an answer's own.
    pub fn code(&self) -> Option<String> {
        match &self.answer {
            Some(a) => a.code.clone(),
            None => (self.status != Status::Ok).then(|| self.message.code_hex()),
        }
    }

    /// Sessions acted on; unknown for a target's answer (the appliance does not say).
    pub fn sessions_known(&self) -> Option<u64> {
        self.answer.is_none().then_some(self.sessions)
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

    /// Shows `text` instead of the rendered message.
    pub fn with_text(mut self, text: &'static str) -> Self {
        self.args.fixed = Some(text);
        self
    }

    /// The message text with its placeholders filled (an answer's text as it came).
    pub fn text(&self) -> Cow<'static, str> {
        if let Some(a) = &self.answer {
            return Cow::Owned(a.text.clone());
        }
        if let Some(t) = self.args.fixed {
            return Cow::Borrowed(t);
        }
        let args: Vec<&str> = self.args.values[..usize::from(self.args.len)]
            .iter()
            .map(CompactString::as_str)
            .collect();
        Cow::Owned(self.message.render(&args))
    }
}

/// The command of a result: parsed (shared with its job, formatted only when written), or
/// the raw text of a line that is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandText {
    Parsed(Arc<Command>),
    Raw(String),
}

/// A command's full result: where it came from, what it was, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// 1-based line in its input (for a continued command, its first line).
    pub line: u64,
    pub source: Arc<str>,
    pub command: CommandText,
    pub action: Action,
    pub dry_run: bool,
    /// The target's URL when the command went to one (contract §14).
    pub target: Option<Arc<str>>,
    pub outcome: Outcome,
}

impl CommandResult {
    pub fn status(&self) -> Status {
        self.outcome.status()
    }

    fn parsed(&self) -> Option<&Command> {
        match &self.command {
            CommandText::Parsed(c) => Some(c),
            CommandText::Raw(_) => None,
        }
    }

    /// The normalised command, or the raw text of a line that does not parse.
    pub fn command_text(&self) -> Cow<'_, str> {
        match &self.command {
            CommandText::Parsed(c) => Cow::Owned(c.to_string()),
            CommandText::Raw(s) => Cow::Borrowed(s),
        }
    }

    /// The server, realm, user and session id, as written in the command.
    pub fn server(&self) -> Option<&str> {
        self.parsed().and_then(Command::server)
    }

    pub fn realm(&self) -> Option<&str> {
        self.parsed().and_then(Command::realm)
    }

    pub fn user(&self) -> Option<&str> {
        self.parsed().and_then(Command::user)
    }

    pub fn session_id(&self) -> Option<&str> {
        self.parsed().and_then(Command::session_id)
    }
}
