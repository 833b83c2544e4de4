//! One request of the appliance's pdadmin REST API, answered from the engine (contract §14):
//! `POST /isam/pdadmin` (or `/isam/pdadmin/`) with Basic auth of the LMI and a JSON body
//! `{"admin_id", "admin_pwd", "admin_domain"?, "commands": [...]}`. The commands run as
//! `exec` runs them, and their pdadmin text, joined by newlines, is the answer
//! `{"result": TEXT}`: HTTP 200 when the last command succeeded or warned, 500 when it
//! failed, as the appliance answers a batch. Malformed JSON or a missing field: 400
//! `{"message": …}`; a wrong LMI login: 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde::Deserialize;

use crate::command::parse;
use crate::engine::Engine;
use crate::exec::Status;
use crate::message as msg;
use crate::output::pdadmin;

/// Who may call the API: the LMI's Basic auth and the pdadmin identity.
#[derive(Clone)]
pub struct Credentials {
    pub lmi_user: String,
    pub lmi_password: String,
    pub admin_id: String,
    pub admin_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("lmi_user", &self.lmi_user)
            .field("admin_id", &self.admin_id)
            .finish_non_exhaustive()
    }
}

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    fn json(status: u16, key: &str, text: &str) -> Self {
        let mut map = serde_json::Map::new();
        map.insert(key.into(), serde_json::Value::String(text.into()));
        Self {
            status,
            body: serde_json::Value::Object(map).to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Request {
    admin_id: String,
    admin_pwd: String,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as the appliance accepts it; one domain here"
    )]
    admin_domain: Option<String>,
    commands: Vec<String>,
}

/// The API over one engine.
pub struct Api {
    pub engine: Arc<Engine>,
    pub credentials: Credentials,
    /// Commands that changed sessions since the start: the saver saves when it moved.
    pub changes: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    expected_basic: String,
}

impl Api {
    pub fn new(engine: Arc<Engine>, credentials: Credentials) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            credentials.lmi_user, credentials.lmi_password
        ));
        Self {
            engine,
            credentials,
            changes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            expected_basic: basic,
        }
    }

    /// Whether the `Authorization` header is the LMI's Basic auth.
    pub fn authorized(&self, header: Option<&str>) -> bool {
        header
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
            .is_some_and(|b| constant_eq(b.trim().as_bytes(), self.expected_basic.as_bytes()))
    }

    /// Answers one request body (the method, path and Basic auth already checked).
    pub fn answer(&self, body: &[u8]) -> Reply {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let req: Request = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return Reply::json(
                    400,
                    "message",
                    &format!("the request body is not the pdadmin API's JSON: {e}"),
                );
            }
        };
        if req.commands.is_empty() {
            return Reply::json(400, "message", "`commands` is empty");
        }
        let c = &self.credentials;
        if req.admin_id != c.admin_id
            || !constant_eq(req.admin_pwd.as_bytes(), c.admin_password.as_bytes())
        {
            let m = &msg::PDADMIN_LOGIN_FAILED;
            let text = format!(
                "Error: {}   {} ({})",
                m.id,
                m.render(&[&req.admin_id]),
                m.code_hex()
            );
            return Reply::json(500, "result", &text);
        }
        self.run(&req.commands)
    }

    /// Runs the commands in order; their text joined, the status by the last.
    fn run(&self, commands: &[String]) -> Reply {
        let source: Arc<str> = Arc::from("serve");
        let mut text = String::new();
        let mut last = Status::Ok;
        for (i, raw) in commands.iter().enumerate() {
            let result = self.engine.execute(&source, i as u64 + 1, raw, parse(raw));
            if result.outcome.sessions > 0 && result.status() == Status::Ok {
                self.changes.fetch_add(1, Ordering::Relaxed);
            }
            last = result.status();
            let mut rendered = Vec::new();
            let _ = pdadmin::render_answer(&result, &mut rendered);
            text.push_str(&String::from_utf8_lossy(&rendered));
        }
        let status = if last == Status::Error { 500 } else { 200 };
        Reply::json(status, "result", text.trim_end())
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
