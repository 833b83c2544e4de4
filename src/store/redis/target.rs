//! A Redis store URL taken apart (contract §11): the seed nodes to connect to, the
//! credentials, the database and the key prefix.
//!
//! `redis://[USER[:PASSWORD]@]HOST:PORT[/DB]`, `rediss://…` (TLS),
//! `redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]` and `rediss+cluster://…`,
//! each with an optional `?prefix=P` and, for TLS, `?ca=PATH`. A password may come from
//! `SMSREFRESH_STORE_PASSWORD` instead of the URL, and the CA from `SMSREFRESH_STORE_CA`.
//!
//! TLS always verifies the server: against the system's roots, or against the deployment's
//! own CA when one is given. There is no switch that turns verification off (redis's own
//! `#insecure` fragment is refused as a bad URL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::store::StoreError;
use crate::store::url::redact;

/// The environment variable that may hold the store's password.
pub const PASSWORD_ENV: &str = "SMSREFRESH_STORE_PASSWORD";

/// The environment variable that may name the PEM file of the CA that signed the store's
/// certificates (for `rediss://` and `rediss+cluster://` only).
pub const CA_ENV: &str = "SMSREFRESH_STORE_CA";

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "smsrefresh:";

/// Where a Redis store is and how to reach it.
#[derive(Clone)]
pub struct Target {
    /// One node (standalone) or the cluster's seed nodes.
    pub seeds: Vec<ConnectionInfo>,
    pub cluster: bool,
    /// The deployment's CA the servers are verified against, when not the system's roots.
    pub ca: Option<PathBuf>,
    pub prefix: String,
    /// The URL as written, password replaced by `***`.
    pub location: String,
    /// How long to retry redirections, failovers and lost connections.
    pub timeout: Duration,
}

fn refused(location: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// The URL is wrong, whatever the store would say (contract §11: called a bad URL).
fn bad_url(location: &str, reason: impl Into<String>) -> StoreError {
    StoreError::BadUrl {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Decodes the `%XX` escapes of a URL's query value.
fn percent_decode(v: &str) -> Option<String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a URL's query says.
struct Query {
    prefix: String,
    ca: Option<PathBuf>,
}

/// Splits `?prefix=P&ca=PATH` off a URL.
fn split_query(url: &str, location: &str) -> Result<(String, Query), StoreError> {
    let mut query = Query {
        prefix: DEFAULT_PREFIX.to_string(),
        ca: None,
    };
    let Some((base, params)) = url.split_once('?') else {
        return Ok((url.to_string(), query));
    };
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        let decoded = |v: &str, what: &str| {
            percent_decode(v)
                .ok_or_else(|| bad_url(location, format!("{what} is not valid percent-encoding")))
        };
        match pair.split_once('=') {
            Some(("prefix", v)) => query.prefix = decoded(v, "the prefix")?,
            Some(("ca", v)) if !v.is_empty() => {
                query.ca = Some(PathBuf::from(decoded(v, "the CA's path")?));
            }
            _ => {
                return Err(bad_url(
                    location,
                    format!("unknown URL parameter `{pair}` (only `prefix=` and `ca=` are known)"),
                ));
            }
        }
    }
    if query.prefix.contains(['{', '}']) {
        return Err(bad_url(
            location,
            "the prefix may not contain `{` or `}` (they would change the hash tags)",
        ));
    }
    Ok((base.to_string(), query))
}

/// The PEM certificates of `path`, checked to hold at least one.
fn read_ca(path: &Path, from: &str, location: &str) -> Result<Vec<u8>, StoreError> {
    let unusable = |why: String| StoreError::Untrusted {
        location: location.to_string(),
        reason: format!("the CA file {} ({from}) {why}", path.display()),
    };
    let pem = std::fs::read(path).map_err(|e| unusable(format!("cannot be read: {e}")))?;
    let mut certificates = 0;
    for c in CertificateDer::pem_slice_iter(&pem) {
        c.map_err(|e| unusable(format!("is not PEM: {e}")))?;
        certificates += 1;
    }
    if certificates == 0 {
        return Err(unusable(
            "holds no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    Ok(pem)
}

/// The URL's scheme: whether it names a cluster and whether it speaks TLS.
fn scheme(base: &str) -> Option<(usize, bool, bool)> {
    let lower = base.to_ascii_lowercase();
    [
        ("rediss+cluster://", true, true),
        ("redis+cluster://", true, false),
        ("rediss://", false, true),
        ("redis://", false, false),
    ]
    .into_iter()
    .find(|(s, _, _)| lower.starts_with(s))
    .map(|(s, cluster, tls)| (s.len(), cluster, tls))
}

/// The connection details of a TLS node, verified against `pem`'s certificates only.
fn with_roots(
    info: ConnectionInfo,
    pem: &[u8],
    location: &str,
) -> Result<ConnectionInfo, StoreError> {
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    };
    redis::Client::build_with_tls(info, certificates)
        .map(|client| client.get_connection_info().clone())
        .map_err(|e| StoreError::Untrusted {
            location: location.to_string(),
            reason: format!("the CA's certificates cannot be used: {e}"),
        })
}

impl Target {
    pub fn parse(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let ca_env = std::env::var_os(CA_ENV).filter(|v| !v.is_empty());
        Self::parse_with(url, timeout, ca_env.map(PathBuf::from))
    }

    /// [`Target::parse`] with the CA that `SMSREFRESH_STORE_CA` would give.
    fn parse_with(
        url: &str,
        timeout: Duration,
        ca_env: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let location = redact(url);
        if url.contains('#') {
            return Err(bad_url(
                &location,
                "a URL fragment (`#…`) is not allowed: TLS always verifies the server; give the deployment's CA with `?ca=PATH` or SMSREFRESH_STORE_CA",
            ));
        }
        let (base, query) = split_query(url.trim(), &location)?;
        let Some((scheme_len, cluster, tls)) = scheme(&base) else {
            return Err(bad_url(
                &location,
                "expected `redis://`, `rediss://`, `redis+cluster://` or `rediss+cluster://`",
            ));
        };
        if query.ca.is_some() && !tls {
            return Err(bad_url(
                &location,
                "`ca=` is for TLS: use `rediss://` (or `rediss+cluster://`) with it",
            ));
        }
        let node_scheme = if tls { "rediss://" } else { "redis://" };
        let urls: Vec<String> = if cluster {
            let rest = &base[scheme_len..];
            let (auth, hosts) = match rest.rfind('@') {
                Some(at) => (&rest[..=at], &rest[at + 1..]),
                None => ("", rest),
            };
            let hosts = hosts.trim_end_matches('/');
            if hosts.is_empty() || hosts.contains('/') {
                return Err(bad_url(
                    &location,
                    "a cluster URL names seed nodes `HOST:PORT[,HOST:PORT…]` and no database",
                ));
            }
            hosts
                .split(',')
                .map(|h| format!("{node_scheme}{auth}{}", h.trim()))
                .collect()
        } else {
            vec![format!("{node_scheme}{}", &base[scheme_len..])]
        };
        // The URL's CA first, then the environment's; a plain URL ignores the environment
        // (it may be set for another store).
        let ca = match (query.ca, tls) {
            (Some(path), _) => Some((path, "`ca=` in the store URL")),
            (None, true) => ca_env.map(|p| (p, CA_ENV)),
            (None, false) => None,
        };
        let roots = ca
            .as_ref()
            .map(|(path, from)| read_ca(path, from, &location))
            .transpose()?;
        let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        let seeds = urls
            .iter()
            .map(|u| {
                let info = u.as_str().into_connection_info().map_err(|e| {
                    bad_url(&location, format!("not a valid Redis URL ({:?})", e.kind()))
                })?;
                let info = match &password {
                    Some(pw) if info.redis_settings().password().is_none() => {
                        let settings = info.redis_settings().clone().set_password(pw);
                        info.set_redis_settings(settings)
                    }
                    _ => info,
                };
                match &roots {
                    None => Ok(info),
                    Some(pem) => with_roots(info, pem, &location),
                }
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            seeds,
            cluster,
            ca: ca.map(|(p, _)| p),
            prefix: query.prefix,
            location,
            timeout,
        })
    }

    /// The connection details of another node of the same store (a cluster node found in
    /// `CLUSTER SLOTS`): the seed's credentials at another address.
    pub fn node(&self, host: &str, port: u16) -> ConnectionInfo {
        let host = host.to_string();
        let addr = match self.seeds[0].addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        self.seeds[0].clone().set_addr(addr)
    }

    pub fn unavailable(&self, reason: impl Into<String>) -> StoreError {
        refused(&self.location, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_and_seeds() {
        let t = Target::parse(
            "redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001?prefix=site%3Aa:",
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(t.cluster);
        assert_eq!(t.seeds.len(), 2);
        assert_eq!(t.prefix, "site:a:");
        assert_eq!(t.seeds[1].redis_settings().password(), Some("pw"));
        assert!(!t.location.contains("pw@"));
        let s = Target::parse("redis://127.0.0.1:6379/3", Duration::from_secs(1)).unwrap();
        assert!(!s.cluster);
        assert_eq!(s.prefix, DEFAULT_PREFIX);
        assert_eq!(s.seeds[0].redis_settings().db(), 3);
        for bad in [
            "redis://h:1?prefix={x}",
            "redis://h:1?db=2",
            "redis+cluster://h:1/0",
            "rediss://h:1/0#insecure",
            "redis://h:1/0?ca=/etc/ssl/ca.pem",
            "redis+cluster://h:1?ca=/etc/ssl/ca.pem",
        ] {
            assert!(
                matches!(
                    Target::parse_with(bad, Duration::from_secs(1), None),
                    Err(StoreError::BadUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_urls_keep_tls_for_every_node_and_verify_with_the_ca_given() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.pem()).unwrap();
        let t = Target::parse_with(
            "rediss+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=p:",
            Duration::from_secs(1),
            Some(pem.clone()),
        )
        .unwrap();
        assert!(t.cluster);
        assert_eq!(t.ca.as_deref(), Some(pem.as_path()));
        let tls = |info: &ConnectionInfo| match info.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => !insecure && tls_params.is_some(),
            _ => false,
        };
        assert!(t.seeds.iter().all(tls));
        // A node found in CLUSTER SLOTS is reached the same way.
        assert!(tls(&t.node("127.0.0.2", 7005)));
        // The URL's CA wins over the environment's; a plain URL ignores the environment.
        let missing = dir.path().join("missing.pem");
        let url = format!("rediss://h:1/0?ca={}", pem.display());
        let from_url = Target::parse_with(&url, Duration::from_secs(1), Some(missing.clone()));
        assert_eq!(from_url.unwrap().ca.as_deref(), Some(pem.as_path()));
        let plain = Target::parse_with("redis://h:1/0", Duration::from_secs(1), Some(missing));
        assert!(plain.unwrap().ca.is_none());
        // Without a CA, the system's roots: TLS, with no parameters of ours.
        let system = Target::parse_with("rediss://h:1/0", Duration::from_secs(1), None).unwrap();
        assert!(matches!(
            system.seeds[0].addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                tls_params: None,
                ..
            }
        ));
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let err = Target::parse_with("rediss://h:1/0", Duration::from_secs(1), Some(not_pem));
        assert!(matches!(err, Err(StoreError::Untrusted { .. })));
    }
}
