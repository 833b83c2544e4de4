//! `target.yaml` (contract §14): where commands go instead of the engine's own store — the
//! ISVA appliance's (or configuration container's) pdadmin REST API — and how: the two
//! identities, the CA, how many requests in flight, the timeout and the retries.
//!
//! Every key is checked when the file is read, with the file, line and key; a password is
//! never written in the file (it comes from an environment variable or a file, read when the
//! run starts).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::located::{Located, locate};

/// The environment variable naming a target file when `--target` does not.
pub const TARGET_ENV: &str = "SMSREFRESH_TARGET";

/// The site file that describes a target.
pub const TARGET_FILE: &str = "target.yaml";

pub use crate::secret::Secret;

/// A checked `target.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub file: PathBuf,
    /// The LMI's base URL, without a trailing slash: commands go to `{url}/isam/pdadmin/`.
    pub url: String,
    pub lmi_user: String,
    pub lmi_password: Secret,
    pub admin_id: String,
    pub admin_password: Secret,
    pub admin_domain: Option<String>,
    /// A PEM file of the CA(s) to trust; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub timeout: Duration,
    /// How often a connection failure, a timeout or HTTP 429/502/503/504 is retried.
    pub retries: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    kind: Option<String>,
    url: Option<String>,
    lmi_user: Option<String>,
    lmi_password_env: Option<String>,
    lmi_password_file: Option<PathBuf>,
    /// Refused with its own message.
    lmi_password: Option<serde::de::IgnoredAny>,
    admin_id: Option<String>,
    admin_password_env: Option<String>,
    admin_password_file: Option<PathBuf>,
    /// Refused with its own message.
    admin_password: Option<serde::de::IgnoredAny>,
    admin_domain: Option<String>,
    ca_file: Option<PathBuf>,
    concurrency: Option<u64>,
    timeout: Option<String>,
    retries: Option<u64>,
}

/// The most requests in flight a target may ask for.
pub const MAX_CONCURRENCY: u64 = 256;

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn at(&self, key: &str, message: impl Into<String>) -> Located {
        Located::new(
            self.file,
            locate(self.text, &[key]),
            Some(key.into()),
            message,
        )
    }

    fn required(&self, key: &str, v: Option<&String>) -> Result<String, Located> {
        match v.map(|s| s.trim()) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(self.at(key, format!("`{key}:` is required"))),
        }
    }

    /// A password's source: `NAME_env` or `NAME_file`, exactly one.
    fn secret(
        &self,
        name: &str,
        (env, file, inline): (Option<&String>, Option<&PathBuf>, bool),
    ) -> Result<Secret, Located> {
        if inline {
            return Err(self.at(
                name,
                format!(
                    "a password is never written in target.yaml: name an environment variable ({name}_env) or a file ({name}_file)"
                ),
            ));
        }
        match (env, file) {
            (Some(e), None) if !e.trim().is_empty() => Ok(Secret::Env(e.trim().to_string())),
            (None, Some(f)) => Ok(Secret::File(self.relative(f))),
            (Some(_), Some(_)) => Err(self.at(
                &format!("{name}_file"),
                format!("give either {name}_env or {name}_file, not both"),
            )),
            _ => Err(self.at(
                name,
                format!("`{name}_env:` (an environment variable) or `{name}_file:` is required"),
            )),
        }
    }

    /// A path relative to the file's folder.
    fn relative(&self, p: &Path) -> PathBuf {
        match self.file.parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// Reads and checks a `target.yaml`.
pub fn load(path: &Path) -> Result<TargetConfig, Located> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Located::new(path, None, None, format!("cannot read: {e}")))?;
    parse(path, &text)
}

/// Checks a `target.yaml` text; `path` names it and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<TargetConfig, Located> {
    crate::yaml_depth::check(text).map_err(|(line, m)| Located::new(path, Some(line), None, m))?;
    let raw: Raw = if text.trim().is_empty() {
        serde_yaml::from_str("{}")
    } else {
        serde_yaml::from_str(text)
    }
    .map_err(|e| Located::from_yaml(path, &e))?;
    let c = Checker { file: path, text };
    match raw.kind.as_deref().map(str::trim) {
        Some("isva-rest") => {}
        Some(other) => {
            return Err(c.at(
                "kind",
                format!("unknown kind `{other}` (the one known is `isva-rest`)"),
            ));
        }
        None => return Err(c.at("kind", "`kind: isva-rest` is required")),
    }
    let url = c.required("url", raw.url.as_ref())?;
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("https://") && !lower.starts_with("http://") {
        return Err(c.at(
            "url",
            format!("`{url}` is not an https:// URL of the appliance's LMI"),
        ));
    }
    if url.contains(['?', '#']) || url["https://".len().min(url.len())..].contains('@') {
        return Err(c.at(
            "url",
            "the URL is the LMI's address alone (no user, query or fragment)",
        ));
    }
    let concurrency = raw.concurrency.unwrap_or(8);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(c.at(
            "concurrency",
            format!("{concurrency} requests in flight: give 1 to {MAX_CONCURRENCY}"),
        ));
    }
    let timeout = match &raw.timeout {
        None => Duration::from_secs(60),
        Some(t) => crate::time::parse_flag_duration(t).map_err(|m| c.at("timeout", m))?,
    };
    if timeout.is_zero() {
        return Err(c.at("timeout", "the timeout must be longer than zero"));
    }
    let retries = raw.retries.unwrap_or(3);
    if retries > 100 {
        return Err(c.at("retries", format!("{retries} retries: give 0 to 100")));
    }
    Ok(TargetConfig {
        file: path.to_path_buf(),
        url: url.trim_end_matches('/').to_string(),
        lmi_user: c.required("lmi_user", raw.lmi_user.as_ref())?,
        lmi_password: c.secret(
            "lmi_password",
            (
                raw.lmi_password_env.as_ref(),
                raw.lmi_password_file.as_ref(),
                raw.lmi_password.is_some(),
            ),
        )?,
        admin_id: c.required("admin_id", raw.admin_id.as_ref())?,
        admin_password: c.secret(
            "admin_password",
            (
                raw.admin_password_env.as_ref(),
                raw.admin_password_file.as_ref(),
                raw.admin_password.is_some(),
            ),
        )?,
        admin_domain: raw
            .admin_domain
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty()),
        ca_file: raw.ca_file.as_deref().map(|p| c.relative(p)),
        concurrency: usize::try_from(concurrency).unwrap_or(8),
        timeout,
        retries: u32::try_from(retries).unwrap_or(3),
    })
}

/// The target a run sends its commands to (contract §14): `--target FILE`, else
/// `SMSREFRESH_TARGET`, else the site's `target.yaml`, else none (the engine's own store).
pub fn choose(explicit: Option<&Path>, site: &Path) -> Result<Option<TargetConfig>, Located> {
    let env = std::env::var_os(TARGET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = match (explicit, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => p,
        (None, None) => {
            let beside = site.join(TARGET_FILE);
            if !beside.is_file() {
                return Ok(None);
            }
            beside
        }
    };
    load(&path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<TargetConfig, String> {
        parse(Path::new("/s/target.yaml"), text).map_err(|e| e.to_string())
    }

    const FULL: &str = "kind: isva-rest\nurl: https://isva.example.com:9443/\nlmi_user: admin\nlmi_password_env: ISVA_LMI_PASSWORD\nadmin_id: sec_master\nadmin_password_file: admin.pw\nadmin_domain: Default\nca_file: lmi-ca.pem\nconcurrency: 16\ntimeout: 30s\nretries: 2\n";

    #[test]
    fn reads_a_full_file() {
        let t = cfg(FULL).unwrap();
        assert_eq!(t.url, "https://isva.example.com:9443");
        assert_eq!(t.lmi_password, Secret::Env("ISVA_LMI_PASSWORD".into()));
        assert_eq!(t.admin_password, Secret::File("/s/admin.pw".into()));
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/s/lmi-ca.pem")));
        assert_eq!((t.concurrency, t.retries), (16, 2));
        assert_eq!(t.timeout, Duration::from_secs(30));
        assert_eq!(t.admin_domain.as_deref(), Some("Default"));
    }

    #[test]
    fn errors_name_line_and_key() {
        let inline = FULL.replace("lmi_password_env: ISVA_LMI_PASSWORD", "lmi_password: x");
        let e = cfg(&inline).unwrap_err();
        assert!(
            e.contains(":4: lmi_password: a password is never written"),
            "{e}"
        );
        let e = cfg(&FULL
            .replace("admin_password: x", "")
            .replace("admin_password_file: admin.pw\n", ""))
        .unwrap_err();
        assert!(e.contains("admin_password"), "{e}");
        let e = cfg(&FULL.replace("concurrency: 16", "concurrency: 0")).unwrap_err();
        assert!(e.contains(":9: concurrency:"), "{e}");
        let e = cfg(&FULL.replace("timeout: 30s", "timeout: -1s")).unwrap_err();
        assert!(e.contains(":10: timeout:"), "{e}");
        let e = cfg(&FULL.replace("kind: isva-rest", "kind: ssh")).unwrap_err();
        assert!(e.contains(":1: kind: unknown kind"), "{e}");
        let e =
            cfg(&FULL.replace("url: https://isva.example.com:9443/", "url: ftp://x")).unwrap_err();
        assert!(e.contains(":2: url:"), "{e}");
        let e = cfg(&format!("{FULL}colour: blue\n")).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = cfg(&FULL.replace("https://isva", "https://admin:pw@isva")).unwrap_err();
        assert!(e.contains("url:") && !e.contains("pw@"), "{e}");
    }
}
