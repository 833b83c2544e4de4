//! `smsrefresh serve` (contract §14): the appliance's pdadmin REST API over HTTPS, answered
//! from the engine's own store, so that a target is tested over real HTTPS and administrators
//! can try their automation (ours, Ansible's `ibm.isam` pdadmin module, their scripts)
//! against a model of their deployment.
//!
//! hyper (HTTP/1.1, kept-alive connections) on a tokio runtime, TLS by rustls; the request
//! itself is answered by [`api::Api`]. With the site's files, changes are saved at most
//! `save_every` apart and once more when the server stops; a networked store keeps each change
//! as it runs.

pub mod api;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, Interrupt};
use crate::site::SiteError;
pub use api::{Api, Credentials, Reply};

/// The largest request body accepted.
const MAX_BODY: usize = 4 << 20;

/// How `serve` listens and keeps its changes.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// A PEM certificate chain and its key; a self-signed certificate when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where to write the self-signed certificate (PEM), for a client's CA file.
    pub write_cert: Option<PathBuf>,
    pub credentials: Credentials,
    /// With the site's files: the longest time a change waits to be saved.
    pub save_every: Duration,
    /// Every answer waits this long first: a rehearsal against an appliance's response time.
    pub latency: Duration,
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("{0}")]
    Tls(String),
    #[error("listening on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("starting the server: {0}")]
    Runtime(std::io::Error),
}

/// Where the server listens, and the certificate's SHA-256 fingerprint (colon-separated hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub self_signed: bool,
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The server's certificate chain and key: from the files, or made now.
fn identity(
    cfg: &ServeConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, bool), ServeError> {
    let tls = |m: String| ServeError::Tls(m);
    if let Some((cert, key)) = &cfg.tls {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| tls(format!("--tls-cert {}: {e}", cert.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| tls(format!("--tls-cert {}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(tls(format!(
                "--tls-cert {}: no PEM certificate",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| tls(format!("--tls-key {}: {e}", key.display())))?;
        return Ok((chain, key, false));
    }
    let made = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        cfg.listen.ip().to_string(),
    ])
    .map_err(|e| tls(format!("making a self-signed certificate: {e}")))?;
    if let Some(path) = &cfg.write_cert {
        std::fs::write(path, made.cert.pem())
            .map_err(|e| tls(format!("--write-cert {}: {e}", path.display())))?;
    }
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| tls(format!("the self-signed key: {e}")))?;
    Ok((vec![made.cert.der().clone()], key, true))
}

/// Answers one HTTP request.
async fn handle(
    api: Arc<Api>,
    latency: Duration,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let respond = |r: Reply| {
        let mut resp = Response::new(Full::new(Bytes::from(r.body)));
        *resp.status_mut() = hyper::StatusCode::from_u16(r.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        resp
    };
    let path = req.uri().path();
    if path != "/isam/pdadmin" && path != "/isam/pdadmin/" {
        return Ok(respond(Reply {
            status: 404,
            body: r#"{"message":"not found"}"#.into(),
        }));
    }
    if req.method() != hyper::Method::POST {
        return Ok(respond(Reply {
            status: 405,
            body: r#"{"message":"use POST"}"#.into(),
        }));
    }
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !api.authorized(auth) {
        let mut resp = respond(Reply {
            status: 401,
            body: r#"{"message":"the LMI user name or password is not valid"}"#.into(),
        });
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"ISVA LMI\""),
        );
        return Ok(resp);
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(Reply {
                status: 400,
                body: r#"{"message":"the request body could not be read (at most 4 MiB)"}"#.into(),
            }));
        }
    };
    Ok(respond(api.answer(&body)))
}

/// Serves until `stop` is requested, then saves and returns. `ready` hears where it listens
/// once it does.
pub fn serve(
    engine: Engine,
    cfg: &ServeConfig,
    stop: &Interrupt,
    ready: &dyn Fn(&Listening),
) -> Result<u64, ServeError> {
    let (chain, key, self_signed) = identity(cfg)?;
    let listening_fingerprint = fingerprint(&chain[0]);
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServeError::Tls(format!("the certificate and key do not go together: {e}")))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let engine = Arc::new(engine);
    let api = Arc::new(Api::new(engine.clone(), cfg.credentials.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let saver = Saver::start(engine.clone(), api.clone(), cfg.save_every);
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|cause| ServeError::Listen {
                addr: cfg.listen,
                cause,
            })?;
        let addr = listener.local_addr().map_err(ServeError::Runtime)?;
        ready(&Listening {
            addr,
            fingerprint: listening_fingerprint,
            self_signed,
        });
        accept_until_stopped(&listener, &acceptor, (&api, cfg.latency), stop).await;
        Ok::<(), ServeError>(())
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let saved = saver.finish();
    served?;
    saved?;
    Ok(api.requests.load(Ordering::Relaxed))
}

async fn accept_until_stopped(
    listener: &tokio::net::TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
    (api, latency): (&Arc<Api>, Duration),
    stop: &Interrupt,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (acceptor, api) = (acceptor.clone(), api.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service =
                        hyper::service::service_fn(move |req| handle(api.clone(), latency, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
            _ = tick.tick() => {
                if stop.requested().is_some() {
                    return;
                }
            }
        }
    }
}

/// Saves the site's files while the server runs: at most `every` apart, only after a change,
/// and once more at the end.
struct Saver {
    done: Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>,
    thread: std::thread::JoinHandle<Result<(), SiteError>>,
}

impl Saver {
    fn start(engine: Arc<Engine>, api: Arc<Api>, every: Duration) -> Self {
        let done = Arc::new((parking_lot::Mutex::new(false), parking_lot::Condvar::new()));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut saved_at = 0u64;
            loop {
                let finished = {
                    let mut d = flag.0.lock();
                    if !*d {
                        flag.1.wait_for(&mut d, every);
                    }
                    *d
                };
                let now = api.changes.load(Ordering::Relaxed);
                if now != saved_at && engine.site.store.saved_by_site() {
                    engine.site.save()?;
                    crate::site::sync_deferred_dirs();
                    saved_at = now;
                }
                if finished {
                    return Ok(());
                }
            }
        });
        Self { done, thread }
    }

    /// Saves what is left and stops.
    fn finish(self) -> Result<(), SiteError> {
        *self.done.0.lock() = true;
        self.done.1.notify_all();
        self.thread.join().unwrap_or_else(|_| {
            Err(SiteError::Io {
                path: "sessions".into(),
                cause: std::io::Error::other("the thread that saves the site stopped"),
            })
        })
    }
}
