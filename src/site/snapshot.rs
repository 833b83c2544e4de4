//! The JSON Lines session snapshot, `sessions.jsonl` (contract §9): loading with every
//! check, and saving atomically (see `atomic`).
//!
//! Loading streams the file in blocks of whole lines and parses each block in parallel, so
//! memory stays bounded by the block size whatever the file's length.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::atomic;
use super::error::SiteError;
use super::topology::Topology;
use crate::credential::Credential;
use crate::session::Session;
use crate::store::{MemoryStore, SessionStore};
use crate::time::{format_timestamp, parse_timestamp};

/// Bytes read per block while loading.
const BLOCK: usize = 16 << 20;

/// The longest session line accepted (a credential of many 1 MB values still fits).
const MAX_LINE: usize = 64 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    realm: Cow<'a, str>,
    #[serde(borrow)]
    replica_set: Cow<'a, str>,
    #[serde(borrow)]
    server: Cow<'a, str>,
    #[serde(borrow)]
    created: Cow<'a, str>,
    #[serde(borrow)]
    last_access: Cow<'a, str>,
    #[serde(default, borrow)]
    last_refresh: Option<Cow<'a, str>>,
    credential: Credential,
}

#[derive(Serialize)]
struct OutSession<'a> {
    id: &'a str,
    user: &'a str,
    realm: &'a str,
    replica_set: &'a str,
    server: &'a str,
    created: String,
    last_access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_refresh: Option<String>,
    credential: &'a Credential,
}

/// Converts one line into a session, with every check of §9 but duplicates.
fn parse_line(
    topology: &Topology,
    seq: u64,
    line: &[u8],
) -> Result<Session, (Option<&'static str>, String)> {
    let raw: RawSession<'_> = serde_json::from_slice(line).map_err(|e| (None, e.to_string()))?;
    if raw.id.is_empty() {
        return Err((Some("id"), "the session id is empty".into()));
    }
    if raw.user.is_empty() {
        return Err((Some("user"), "the user name is empty".into()));
    }
    let realm = topology.realm(&raw.realm).ok_or_else(|| {
        (
            Some("realm"),
            format!("the realm `{}` is not in topology.yaml", raw.realm),
        )
    })?;
    let replica_set = topology.replica_set(&raw.replica_set).ok_or_else(|| {
        (
            Some("replica_set"),
            format!(
                "the replica set `{}` is not in topology.yaml",
                raw.replica_set
            ),
        )
    })?;
    if topology.replica_set_def(replica_set).realm != realm {
        return Err((
            Some("replica_set"),
            format!(
                "the replica set `{}` is not in realm `{}`",
                raw.replica_set,
                topology.realm_def(realm).name
            ),
        ));
    }
    let server = topology.server(&raw.server).ok_or_else(|| {
        (
            Some("server"),
            format!(
                "the server `{}` does not exist in topology.yaml",
                raw.server
            ),
        )
    })?;
    let time = |key: &'static str, s: &str| parse_timestamp(s).map_err(|m| (Some(key), m));
    Ok(Session {
        seq,
        id: raw.id.as_ref().into(),
        user: raw.user.as_ref().into(),
        realm,
        replica_set,
        server,
        created: time("created", &raw.created)?,
        last_access: time("last_access", &raw.last_access)?,
        last_refresh: raw
            .last_refresh
            .as_deref()
            .map(|t| time("last_refresh", t))
            .transpose()?,
        credential: raw.credential,
    })
}

/// Loads `path` into `store`; the first error (by line) is returned. Returns the count.
pub fn load(path: &Path, topology: &Topology, store: &MemoryStore) -> Result<usize, SiteError> {
    let file = File::open(path).map_err(|e| SiteError::io(path, e))?;
    let size = file.metadata().map_or(0, |m| m.len());
    load_sized(path, file, size, topology, store)
}

/// Loads JSON Lines sessions from `input`; `path` is only used in messages.
pub fn load_from(
    path: &Path,
    input: impl Read,
    topology: &Topology,
    store: &MemoryStore,
) -> Result<usize, SiteError> {
    load_sized(path, input, 0, topology, store)
}

/// Loads JSON Lines sessions; `size` (bytes, 0 if unknown) sizes the store's tables once the
/// first block shows how long a line is.
fn load_sized(
    path: &Path,
    mut file: impl Read,
    size: u64,
    topology: &Topology,
    store: &MemoryStore,
) -> Result<usize, SiteError> {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + 4096);
    let mut line_no: u64 = 0;
    let mut count = 0usize;
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let n = read_full(&mut file, &mut buf[start..]).map_err(|e| SiteError::io(path, e))?;
        buf.truncate(start + n);
        eof = n == 0;
        let end = if eof {
            buf.len()
        } else {
            buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        if end == 0 && !eof {
            // A line longer than the block: read more, up to a limit no session reaches.
            if buf.len() > MAX_LINE {
                return Err(SiteError::at(
                    path,
                    Some(line_no + 1),
                    None,
                    format!(
                        "the line is longer than {} MiB; expected one session per line",
                        MAX_LINE >> 20
                    ),
                ));
            }
            continue;
        }
        let block = &buf[..end];
        if line_no == 0 && size > 0 && !block.is_empty() {
            let per_line = block.len() / block.iter().filter(|b| **b == b'\n').count().max(1);
            store.reserve(usize::try_from(size).unwrap_or(0) / per_line.max(1));
        }
        let lines: Vec<(u64, &[u8])> = block
            .split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, l)| (line_no + i as u64 + 1, l.strip_suffix(b"\r").unwrap_or(l)))
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        line_no += block.iter().filter(|b| **b == b'\n').count() as u64;
        let sessions = lines
            .par_iter()
            .map(|(n, l)| {
                parse_line(topology, *n, l)
                    .map_err(|(key, m)| SiteError::at(path, Some(*n), key.map(String::from), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        count += sessions.len();
        // Insert in file order so that a duplicate names the earlier line first.
        for s in sessions {
            let (line, id) = (s.seq, &s.id);
            store.insert(&s).map_err(|d| {
                SiteError::at(
                    path,
                    Some(line),
                    Some("id".into()),
                    format!(
                        "the session id `{id}` is also on line {}; ids must be unique",
                        d.existing_seq
                    ),
                )
            })?;
        }
        buf.drain(..end);
    }
    Ok(count)
}

fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes every session of `store` to `path` as JSON Lines, atomically (see [`atomic`]).
pub fn save(path: &Path, topology: &Topology, store: &dyn SessionStore) -> Result<(), SiteError> {
    atomic::write(path, |out| write_to(out, topology, store))
}

/// Writes every session of `store` to `out` as sessions.jsonl lines (in the store's export
/// order).
pub fn write_to(
    out: &mut dyn Write,
    topology: &Topology,
    store: &dyn SessionStore,
) -> std::io::Result<()> {
    let crash = atomic::CrashPoint::new(store.len().map_err(std::io::Error::other)?);
    let mut written = 0usize;
    let mut err: Option<std::io::Error> = None;
    let exported = store.export(&mut |s| {
        if err.is_some() {
            return;
        }
        crash.check(written, out);
        let rec = OutSession {
            id: &s.id,
            user: &s.user,
            realm: &topology.realm_def(s.realm).name,
            replica_set: &topology.replica_set_def(s.replica_set).name,
            server: &topology.server_def(s.server).name,
            created: format_timestamp(s.created),
            last_access: format_timestamp(s.last_access),
            last_refresh: s.last_refresh.map(format_timestamp),
            credential: &s.credential,
        };
        if let Err(e) = serde_json::to_writer(&mut *out, &rec)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
        {
            err = Some(e);
        }
        written += 1;
    });
    exported.map_err(std::io::Error::other)?;
    err.map_or(Ok(()), Err)
}
