//! A Redis store URL taken apart (contract §11): the seed nodes to connect to, the
//! credentials, the database and the key prefix.
//!
//! `redis://[USER[:PASSWORD]@]HOST:PORT[/DB]`, `rediss://…` (TLS) and
//! `redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]`, each with an optional
//! `?prefix=P`. A password may come from `SMSREFRESH_STORE_PASSWORD` instead of the URL.

use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::store::StoreError;
use crate::store::url::redact;

/// The environment variable that may hold the store's password.
pub const PASSWORD_ENV: &str = "SMSREFRESH_STORE_PASSWORD";

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "smsrefresh:";

/// Where a Redis store is and how to reach it.
#[derive(Clone)]
pub struct Target {
    /// One node (standalone) or the cluster's seed nodes.
    pub seeds: Vec<ConnectionInfo>,
    pub cluster: bool,
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

/// Splits `?prefix=P` off a URL.
fn split_query(url: &str, location: &str) -> Result<(String, String), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_PREFIX.to_string()));
    };
    let mut prefix = DEFAULT_PREFIX.to_string();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("prefix", v)) => {
                prefix = percent_decode(v)
                    .ok_or_else(|| bad_url(location, "the prefix is not valid percent-encoding"))?;
            }
            _ => {
                return Err(bad_url(
                    location,
                    format!("unknown URL parameter `{pair}` (only `prefix=` is known)"),
                ));
            }
        }
    }
    if prefix.contains(['{', '}']) {
        return Err(bad_url(
            location,
            "the prefix may not contain `{` or `}` (they would change the hash tags)",
        ));
    }
    Ok((base.to_string(), prefix))
}

impl Target {
    pub fn parse(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let location = redact(url);
        let (base, prefix) = split_query(url.trim(), &location)?;
        let lower = base.to_ascii_lowercase();
        let cluster = lower.starts_with("redis+cluster://");
        let urls: Vec<String> = if cluster {
            let rest = &base["redis+cluster://".len()..];
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
                .map(|h| format!("redis://{auth}{}", h.trim()))
                .collect()
        } else {
            vec![base.clone()]
        };
        let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        let seeds = urls
            .iter()
            .map(|u| {
                let info = u.as_str().into_connection_info().map_err(|e| {
                    bad_url(&location, format!("not a valid Redis URL ({:?})", e.kind()))
                })?;
                Ok(match &password {
                    Some(pw) if info.redis_settings().password().is_none() => {
                        let settings = info.redis_settings().clone().set_password(pw);
                        info.set_redis_settings(settings)
                    }
                    _ => info,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            seeds,
            cluster,
            prefix,
            location,
            timeout,
        })
    }

    /// The connection details of another node of the same store (a cluster node found in
    /// `CLUSTER SLOTS`): the seed's credentials at another address.
    pub fn node(&self, host: &str, port: u16) -> ConnectionInfo {
        self.seeds[0]
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host.to_string(), port))
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
        ] {
            assert!(Target::parse(bad, Duration::from_secs(1)).is_err(), "{bad}");
        }
    }
}
