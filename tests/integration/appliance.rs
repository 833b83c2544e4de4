//! A test server that answers as the ISVA appliance's pdadmin REST API is documented to
//! (contract §14, reference §5): HTTPS with a certificate of the test's CA, Basic auth, one
//! JSON body per request. What it answers to a command is the test's choice (a script keyed
//! by the command and how often it came), so that every kind of answer — a 500 with `result`
//! or `message`, a 200 whose text is an error, an HTML 502, a 503 with `Retry-After`, a
//! dropped connection, a stall, a 401 — can be sent. Every request is recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::slapd_server::Tls;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answer with this HTTP status, body and optional `Retry-After` seconds.
    Reply {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Close the connection without answering.
    Drop,
    /// Wait this long, then answer as the appliance would for a success.
    Stall(Duration),
}

impl Behaviour {
    pub fn ok(text: &str) -> Self {
        Self::json(200, "result", text)
    }

    pub fn json(status: u16, key: &str, text: &str) -> Self {
        Behaviour::Reply {
            status,
            body: serde_json::json!({ key: text }).to_string(),
            retry_after: None,
        }
    }
}

/// Decides the answer to a command, given how many times it came before (0 the first time).
pub type Script = dyn Fn(&str, u32) -> Behaviour + Send + Sync;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub body: serde_json::Value,
}

/// The running server; stopped when dropped.
pub struct Appliance {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Appliance {
    /// Starts on a free loopback port with `tls`'s certificate, answering by `script`; every
    /// request also waits `delay` first.
    pub fn start(tls: &Tls, delay: Duration, script: Arc<Script>) -> Self {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&tls.key).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let recorded = requests.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, recorded, seen, script) = (
                    acceptor.clone(),
                    recorded.clone(),
                    seen.clone(),
                    script.clone(),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        answer(req, delay, recorded.clone(), seen.clone(), script.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The commands of every request, in the order they came.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.requests
            .lock()
            .iter()
            .map(|r| {
                r.body["commands"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| c.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    delay: Duration,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    seen: Arc<Mutex<HashMap<String, u32>>>,
    script: Arc<Script>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    recorded.lock().push(Recorded {
        authorization,
        body: body.clone(),
    });
    let command = body["commands"][0].as_str().unwrap_or("").to_string();
    let times = {
        let mut seen = seen.lock();
        let n = seen.entry(command.clone()).or_default();
        *n += 1;
        *n - 1
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, body, retry_after) = match script(&command, times) {
        Behaviour::Reply {
            status,
            body,
            retry_after,
        } => (status, body, retry_after),
        // An error from the service makes hyper close the connection without an answer.
        Behaviour::Drop => return Err(std::io::Error::other("dropped on purpose")),
        Behaviour::Stall(d) => {
            tokio::time::sleep(d).await;
            (200, serde_json::json!({"result": "late"}).to_string(), None)
        }
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    Ok(resp)
}
