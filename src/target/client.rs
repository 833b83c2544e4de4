//! The appliance's pdadmin REST API as the target sees it (contract §14): one command per
//! `POST {url}/isam/pdadmin/`, Basic auth of the LMI, the pdadmin identity in the body,
//! kept-alive HTTPS connections shared by the workers (ureq, rustls). Connection failures,
//! timeouts and HTTP 429/502/503/504 are retried with exponential backoff and jitter,
//! honouring `Retry-After`; every retry is counted by cause.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;

use super::config::TargetConfig;

/// What sending one command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The appliance answered, with this HTTP status and body (after any retries).
    Answered { status: u16, body: Vec<u8> },
    /// No answer after the retries: why (a connection failure, a timeout, TLS).
    Failed(String),
    /// The run stopped before this command was sent (HTTP 401/403, or an interrupt).
    NotSent,
}

/// Where commands run when a target is configured: the boundary the executor talks to, so
/// that its concurrency, order and retries are tested apart from HTTP.
pub trait Appliance: Sync {
    /// Sends one command and waits for its answer.
    fn send(&self, command: &str) -> Sent;
    /// Where the commands go, for messages (never a password).
    fn location(&self) -> &str;
}

/// Retries by cause, for the report (contract §14: nothing is retried silently).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retries {
    pub by_cause: BTreeMap<String, u64>,
}

impl Retries {
    pub fn total(&self) -> u64 {
        self.by_cause.values().sum()
    }
}

/// Why the target cannot be used at all (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the target {url}: {reason}")]
pub struct TargetError {
    pub url: String,
    pub reason: String,
}

/// The ISVA appliance (or configuration container) over HTTPS.
pub struct IsvaRest {
    agent: ureq::Agent,
    endpoint: String,
    location: String,
    authorization: String,
    body: BodyParts,
    retries: u32,
    /// Set by a 401/403 after the preflight, or by the run (an interrupt): no request is
    /// sent from then on.
    stopped: AtomicBool,
    /// The HTTP status that stopped the run, if one did.
    refused: Mutex<Option<u16>>,
    counted: Mutex<Retries>,
    /// Every retry so far, for the progress line.
    retried: std::sync::atomic::AtomicU64,
}

/// The body's fixed parts, JSON-escaped once.
struct BodyParts {
    head: String,
}

/// What one attempt gave.
enum Attempt {
    Answer(u16, Vec<u8>, Option<Duration>),
    Transport(String, &'static str),
}

impl IsvaRest {
    /// A client for `cfg`; reads the passwords and the CA file (exit 2 when they fail).
    pub fn new(cfg: &TargetConfig) -> Result<Self, TargetError> {
        let fail = |reason: String| TargetError {
            url: cfg.url.clone(),
            reason,
        };
        let lmi_pw = cfg.lmi_password.read("lmi_password").map_err(fail)?;
        let admin_pw = cfg.admin_password.read("admin_password").map_err(fail)?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &cfg.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| fail(format!("ca_file {}: {e}", ca.display())))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(fail(format!(
                    "ca_file {} holds no PEM certificate",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let pool = cfg.concurrency * 2;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .max_idle_connections(pool)
            .max_idle_connections_per_host(pool)
            .tls_config(tls.build())
            .user_agent(concat!("smsrefresh/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut head = String::from("{\"admin_id\":");
        head.push_str(&serde_json::to_string(&cfg.admin_id).unwrap_or_default());
        head.push_str(",\"admin_pwd\":");
        head.push_str(&serde_json::to_string(&admin_pw).unwrap_or_default());
        if let Some(d) = &cfg.admin_domain {
            head.push_str(",\"admin_domain\":");
            head.push_str(&serde_json::to_string(d).unwrap_or_default());
        }
        head.push_str(",\"commands\":[");
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{lmi_pw}", cfg.lmi_user));
        Ok(Self {
            agent,
            endpoint: format!("{}/isam/pdadmin/", cfg.url),
            location: cfg.url.clone(),
            authorization: format!("Basic {basic}"),
            body: BodyParts { head },
            retries: cfg.retries,
            stopped: AtomicBool::new(false),
            refused: Mutex::new(None),
            counted: Mutex::new(Retries::default()),
            retried: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Sends nothing more from now on.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// The 401/403 that stopped the run, if one did.
    pub fn refused(&self) -> Option<u16> {
        *self.refused.lock()
    }

    pub fn retries(&self) -> Retries {
        self.counted.lock().clone()
    }

    /// How many requests were retried so far.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// One POST, classified.
    fn attempt(&self, command: &str) -> Attempt {
        let mut body = String::with_capacity(self.body.head.len() + command.len() + 8);
        body.push_str(&self.body.head);
        body.push_str(&serde_json::to_string(command).unwrap_or_default());
        body.push_str("]}");
        let sent = self
            .agent
            .post(&self.endpoint)
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.as_bytes());
        match sent {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match r.body_mut().with_config().limit(16 << 20).read_to_vec() {
                    Ok(bytes) => Attempt::Answer(status, bytes, wait),
                    Err(e) => Attempt::Transport(format!("reading the answer: {e}"), cause(&e)),
                }
            }
            Err(e) => Attempt::Transport(e.to_string(), cause(&e)),
        }
    }

    fn count(&self, why: &str) {
        self.retried.fetch_add(1, Ordering::Relaxed);
        *self
            .counted
            .lock()
            .by_cause
            .entry(why.to_string())
            .or_default() += 1;
    }
}

/// The retry cause of a transport error; TLS failures are not retried.
fn cause(e: &ureq::Error) -> &'static str {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => "timeout",
        _ if text.contains("certificate") || matches!(e, ureq::Error::Tls(_)) => "tls",
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout",
        _ => "connection",
    }
}

/// Exponential backoff with jitter: 100 ms, 200 ms, 400 ms … (at most 10 s), ±50 %.
fn backoff(try_no: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << try_no.min(7)).min(10_000);
    let nanos = Instant::now().elapsed().subsec_nanos() as u64
        ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9);
    let jitter = nanos % (base + 1);
    Duration::from_millis(base / 2 + jitter)
}

impl Appliance for IsvaRest {
    fn send(&self, command: &str) -> Sent {
        let mut tries = 0;
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return Sent::NotSent;
            }
            match self.attempt(command) {
                Attempt::Answer(status @ (401 | 403), body, _) => {
                    self.stop();
                    self.refused.lock().get_or_insert(status);
                    return Sent::Answered { status, body };
                }
                Attempt::Answer(status @ (429 | 502 | 503 | 504), body, wait) => {
                    if tries >= self.retries {
                        return Sent::Answered { status, body };
                    }
                    self.count(&format!("http {status}"));
                    std::thread::sleep(
                        wait.unwrap_or_else(|| backoff(tries))
                            .min(Duration::from_secs(120)),
                    );
                }
                Attempt::Answer(status, body, _) => return Sent::Answered { status, body },
                Attempt::Transport(why, "tls") => return Sent::Failed(why),
                Attempt::Transport(why, kind) => {
                    if tries >= self.retries {
                        return Sent::Failed(why);
                    }
                    self.count(kind);
                    std::thread::sleep(backoff(tries));
                }
            }
            tries += 1;
        }
    }

    fn location(&self) -> &str {
        &self.location
    }
}
