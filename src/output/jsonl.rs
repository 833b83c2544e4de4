//! JSON Lines results: one object per command with the fields of contract §10.

use std::io::{self, Write};

use std::borrow::Cow;

use serde::Serialize;

use super::ResultWriter;
use super::escape::json_safe;
use crate::exec::{CommandResult, Item, Status};

/// The JSON shape of one result.
#[derive(Serialize)]
pub struct JsonResult<'a> {
    pub line: u64,
    pub source: &'a str,
    pub command: Cow<'a, str>,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    pub status: Status,
    /// `null` only for a target's answer without a message ID.
    pub message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: Cow<'static, str>,
    /// `null` for a target's answer: the appliance does not say.
    pub sessions: Option<u64>,
    pub dry_run: bool,
    /// The target's URL, for a run against one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<&'a [Item]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// For `errtext`: the status code of the message looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errtext_code: Option<String>,
}

impl<'a> JsonResult<'a> {
    pub fn of(r: &'a CommandResult) -> Self {
        let status = r.status();
        Self {
            line: r.line,
            source: &r.source,
            command: r.command_text(),
            action: r.action.as_str(),
            server: r.server(),
            realm: r.realm(),
            user: r.user(),
            session_id: r.session_id(),
            status,
            message_id: r.outcome.message_id(),
            code: r.outcome.code(),
            message: r.outcome.text(),
            sessions: r.outcome.sessions_known(),
            dry_run: r.dry_run,
            target: r.target.as_deref(),
            items: r.outcome.items.as_deref(),
            total: r.outcome.total,
            errtext_code: r
                .outcome
                .looked_up
                .map(super::super::message::Message::code_hex),
        }
    }
}

pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// Renders one result as a JSON line.
pub fn render(r: &CommandResult, out: &mut impl Write) -> io::Result<()> {
    let text = serde_json::to_string(&JsonResult::of(r))?;
    out.write_all(json_safe(text).as_bytes())?;
    out.write_all(b"\n")
}

impl<W: Write> ResultWriter for JsonlWriter<W> {
    fn write(&mut self, r: &CommandResult) -> io::Result<()> {
        render(r, &mut self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
