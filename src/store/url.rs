//! Store URLs (contract §11): which store holds a site's sessions, and how to print one
//! without its password.
//!
//! `file:` is the site's own files, held in memory for the run; the Redis forms are taken
//! apart by `redis/target.rs`.

use std::fmt;

/// A parsed `--store` / `SMSREFRESH_STORE` / `store:` value.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// The site's files (the default).
    Files,
    /// A Redis URL (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`), kept
    /// as written.
    Redis(String),
}

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store URL `{url}`: {reason}")]
pub struct UrlError {
    /// The URL as given, password replaced by `***`.
    pub url: String,
    pub reason: String,
}

const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis+cluster://",
    "rediss+cluster://",
];

impl StoreUrl {
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let t = text.trim();
        if t == "file:" || t == "file" {
            return Ok(StoreUrl::Files);
        }
        if REDIS_SCHEMES
            .iter()
            .any(|s| t.len() >= s.len() && t[..s.len()].eq_ignore_ascii_case(s))
        {
            return Ok(StoreUrl::Redis(t.to_string()));
        }
        Err(UrlError {
            url: redact(t),
            reason: "expected `file:`, `redis://…`, `rediss://…`, `redis+cluster://…` or `rediss+cluster://…`".into(),
        })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Files => f.write_str("file:"),
            StoreUrl::Redis(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// The URL with the password of its `user:password@` part replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        assert_eq!(StoreUrl::parse("file:").unwrap(), StoreUrl::Files);
        let r = StoreUrl::parse("redis://:s3cret@127.0.0.1:6379/2").unwrap();
        assert_eq!(r.to_string(), "redis://:***@127.0.0.1:6379/2");
        assert_eq!(
            redact("rediss://admin:p@ss@host:1/0?prefix=x"),
            "rediss://admin:***@host:1/0?prefix=x"
        );
        assert_eq!(redact("redis://host:1"), "redis://host:1");
        let e = StoreUrl::parse("mysql://u:pw@h").unwrap_err();
        assert_eq!(e.url, "mysql://u:***@h");
        assert!(!e.to_string().contains("pw"));
    }
}
