//! Where in a file a problem is: [`Located`] (file, line, key path, message) for every
//! error that names a place, and [`locate`], the line of a YAML key path.
//!
//! serde_yaml reports positions for syntax and type errors but not for values that parse
//! and are then found wrong (an unknown replica set, say). [`locate`] finds the line of a key
//! path such as `servers.web2-webseald-cruz.replica_sets` by following block-mapping
//! indentation, and falls back to a flow mapping on the parent's line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub key: Option<String>,
    pub message: String,
}

impl Located {
    pub fn new(
        file: &Path,
        line: Option<u64>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            key,
            message: message.into(),
        }
    }

    /// From a serde_yaml error: its position and path, without the trailing "at line N".
    pub fn from_yaml(file: &Path, e: &serde_yaml::Error) -> Self {
        let line = e.location().map(|l| l.line() as u64);
        let text = e.to_string();
        let text = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        // serde_yaml prefixes the key path: "realms.ibm.com: unknown field ...".
        let (key, message) = match text.split_once(": ") {
            Some((k, m)) if !k.contains(' ') => (Some(k.to_string()), m.to_string()),
            _ => (None, text),
        };
        Self {
            file: file.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The 1-based line of the last component of `path` found in `text`.
pub fn locate(text: &str, path: &[&str]) -> Option<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let indent = line.len() - line.trim_start().len();
            let body = line.trim_start().trim_start_matches("- ");
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if let Some(min) = min_indent
                && indent < min
                && i > from
            {
                break;
            }
            if key_at_start(body, key) {
                hit = Some((i, indent + 1));
                break;
            }
            if found == Some(i) || (i == from && found.is_some()) {
                // Flow mapping on the parent's own line: `name: {replica_sets: [...]}`.
                if line.contains(&format!("{key}:")) {
                    hit = Some((i, indent + 1));
                    break;
                }
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i);
                from = i;
                min_indent = Some(indent);
            }
            None => break,
        }
    }
    found.map(|i| i as u64 + 1)
}

fn key_at_start(body: &str, key: &str) -> bool {
    for q in ["", "\"", "'"] {
        if let Some(rest) = body
            .strip_prefix(q)
            .and_then(|b| b.strip_prefix(key))
            .and_then(|b| b.strip_prefix(q))
            && rest.starts_with(':')
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "realms:\n  ibm.com: {replica_sets: [www]}\nservers:\n  a-webseald-b:\n    replica_sets: [www]\n  c-webseald-d: {replica_sets: [x]}\n";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(TEXT, &["servers"]), Some(3));
        assert_eq!(
            locate(TEXT, &["servers", "a-webseald-b", "replica_sets"]),
            Some(5)
        );
        assert_eq!(
            locate(TEXT, &["servers", "c-webseald-d", "replica_sets"]),
            Some(6)
        );
        assert_eq!(
            locate(TEXT, &["realms", "ibm.com", "replica_sets"]),
            Some(2)
        );
        assert_eq!(locate(TEXT, &["nothing"]), None);
    }
}
