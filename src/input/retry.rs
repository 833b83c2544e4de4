//! `run --retry-failed RESULTS.jsonl` (contract §13): the failed commands of an earlier
//! run's JSON Lines results, to run again in line order under their original line and
//! source.

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use super::Job;
use crate::command::parse::parse;
use crate::message as msg;

/// The fields of a result line that a retry needs (the rest are ignored).
#[derive(Deserialize)]
struct ResultLine {
    line: u64,
    source: String,
    command: String,
    status: String,
}

/// A failed command: where it came from and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub source: String,
    pub line: u64,
    pub command: String,
}

impl Failed {
    /// The job that runs the command again.
    pub fn job(&self) -> Job {
        match parse(&self.command) {
            Ok(cmd) => Job::command(self.line, cmd),
            Err(e) => Job::invalid(self.line, &self.command, &msg::SYNTAX_ERROR, e.message),
        }
    }
}

/// Why a file is not a results file.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: not a JSON Lines results file ({why}); nothing was run")]
pub struct NotResults {
    pub path: String,
    pub line: u64,
    pub why: String,
}

/// Reads the failed commands of a results file, in its order (a run's results are in line
/// order); a file with any line that is not a result is refused as a whole.
pub fn read_failed(path: &Path) -> Result<Vec<Failed>, NotResults> {
    let name = path.display().to_string();
    let bad = |line: u64, why: String| NotResults {
        path: name.clone(),
        line,
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(0, e.to_string()))?;
    let mut failed = Vec::new();
    let mut results = 0u64;
    for (i, text) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let text = text.map_err(|e| bad(n, e.to_string()))?;
        let text = text.trim();
        // A dry run's pdadmin header is not JSON; JSON Lines output has none, but blank
        // lines are harmless.
        if text.is_empty() {
            continue;
        }
        let r: ResultLine = serde_json::from_str(text).map_err(|e| {
            bad(
                n,
                format!("expected a result with `line`, `source`, `command` and `status`: {e}"),
            )
        })?;
        results += 1;
        match r.status.as_str() {
            "error" => failed.push(Failed {
                source: r.source,
                line: r.line,
                command: r.command,
            }),
            "ok" | "warning" => {}
            other => return Err(bad(n, format!("unknown status `{other}`"))),
        }
    }
    if results == 0 {
        return Err(bad(0, "it holds no results".into()));
    }
    Ok(failed)
}
