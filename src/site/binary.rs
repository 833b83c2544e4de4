//! The binary session snapshot, `sessions.bin`: versioned, checksummed, written atomically,
//! and loaded in parallel, many times faster than `sessions.jsonl` (which stays the
//! interchange form; `smsrefresh convert` moves a site between the two).
//!
//! It is also the *cache* of a `sessions.jsonl` site: then its header names the JSON Lines
//! file it was made from (length, modification time, inode), and it is used only while that
//! file is unchanged (see [`Source`]).
//!
//! Layout (little-endian; `str` is a LEB128 length and UTF-8 bytes; `v` a LEB128 number):
//!
//! ```text
//! "SMRSNAP\0"  u32 version (2)  u32 0
//! u64 source length  i64 source mtime seconds  u32 nanoseconds  u64 source inode
//!                                          (all 0: the site's own snapshot, not a cache)
//! u32 names   (u8 kind: 0 realm, 1 replica set, 2 server; str name) × names
//! u32 syms    str × syms                    interned strings, numbered per file
//! u32 creds   (v len, bytes) × creds        credentials encoded with file syms
//! u64 sessions  u32 blocks  u64 × blocks    byte offset of each block of 65,536 sessions
//! sessions:   str id, str user, v realm, v replica set, v server, i64 created,
//!             i64 last_access, i64 last_refresh (i64::MIN: none), v credential
//! u32 CRC-32 of every byte before it
//! ```
//!
//! Names are stored, not topology indices, so a snapshot survives topology edits and is
//! checked against the current topology on load, as `sessions.jsonl` is.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use super::atomic;
use super::error::SiteError;
use super::topology::{RealmId, ReplicaSetId, ServerId, Topology};
use crate::credential::Credential;
use crate::intern::{self, Sym};
use crate::session::Session;
use crate::store::{MemoryStore, SessionStore};

const MAGIC: &[u8; 8] = b"SMRSNAP\0";
const VERSION: u32 = 2;
/// Version 1 has no source fields; it still loads.
const VERSION_1: u32 = 1;

/// The identity of the file a cache was made from: it is used only while the file has
/// this length, modification time and inode (a save replaces the file by a rename, so a new
/// inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Source {
    pub len: u64,
    pub mtime_s: i64,
    pub mtime_ns: u32,
    pub inode: u64,
}

impl Source {
    /// The identity of `path` as it is now; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            len: m.len(),
            mtime_s: m.mtime(),
            mtime_ns: u32::try_from(m.mtime_nsec()).unwrap_or(0),
            inode: m.ino(),
        })
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.mtime_s.to_le_bytes());
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.inode.to_le_bytes());
    }
}

/// The source a snapshot file names (its first 44 bytes only): `Some` for a cache, `None`
/// for the site's own snapshot, an older version or a file that is not a snapshot.
pub fn source_of(path: &Path) -> Option<Source> {
    use std::io::Read;
    let mut head = [0u8; 44];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    let mut r = Reader { b: &head, pos: 0 };
    if r.take(8).ok()? != MAGIC || r.u32().ok()? != VERSION {
        return None;
    }
    r.u32().ok()?;
    let source = Source {
        len: r.u64().ok()?,
        mtime_s: r.i64().ok()?,
        mtime_ns: r.u32().ok()?,
        inode: r.u64().ok()?,
    };
    (source != Source::default()).then_some(source)
}
const BLOCK: usize = 65_536;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The snapshot's head: magic, version, the source, the names, the attribute-name symbols
/// and the credential count.
fn header(source: Source, names: &[(u8, &str)], sym_list: &[Sym], cred_count: u32) -> Vec<u8> {
    let mut head: Vec<u8> = Vec::with_capacity(1 << 16);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    source.put(&mut head);
    head.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (kind, name) in names {
        head.push(*kind);
        put_str(&mut head, name);
    }
    head.extend_from_slice(&(sym_list.len() as u32).to_le_bytes());
    for sym in sym_list {
        put_str(&mut head, intern::resolve(*sym));
    }
    head.extend_from_slice(&cred_count.to_le_bytes());
    head
}

/// Writes the store as a binary snapshot, atomically.
pub fn save(path: &Path, topology: &Topology, store: &dyn SessionStore) -> Result<(), SiteError> {
    save_with_source(path, topology, store, Source::default())
}

/// Writes the store as a binary snapshot naming `source` (a cache of that file, or the site's
/// own snapshot when it is `Source::default()`), atomically.
pub fn save_with_source(
    path: &Path,
    topology: &Topology,
    store: &dyn SessionStore,
    source: Source,
) -> Result<(), SiteError> {
    // Names: every realm, replica set and server of the topology, by index.
    let mut names = Vec::new();
    let (nr, nrs) = (topology.realms.len(), topology.replica_sets.len());
    for r in &topology.realms {
        names.push((0u8, r.name.as_str()));
    }
    for rs in &topology.replica_sets {
        names.push((1u8, rs.name.as_str()));
    }
    for s in &topology.servers {
        names.push((2u8, s.name.as_str()));
    }
    let mut syms: HashMap<Sym, u32> = HashMap::new();
    let mut sym_list: Vec<Sym> = Vec::new();
    let mut creds: HashMap<usize, u32> = HashMap::new();
    let mut cred_bytes: Vec<u8> = Vec::new();
    let mut cred_count: u32 = 0;
    let mut sessions: Vec<u8> = Vec::new();
    let mut offsets: Vec<u64> = Vec::new();
    let mut n: u64 = 0;
    store
        .export(&mut |s| {
            if (n as usize).is_multiple_of(BLOCK) {
                offsets.push(sessions.len() as u64);
            }
            let cred = *creds.entry(s.credential.addr()).or_insert_with(|| {
                let blob = s.credential.remapped(|sym| {
                    *syms.entry(sym).or_insert_with(|| {
                        sym_list.push(sym);
                        (sym_list.len() - 1) as u32
                    })
                });
                put_varint(&mut cred_bytes, blob.len() as u64);
                cred_bytes.extend_from_slice(&blob);
                cred_count += 1;
                cred_count - 1
            });
            put_str(&mut sessions, &s.id);
            put_str(&mut sessions, &s.user);
            put_varint(&mut sessions, u64::from(s.realm.0));
            put_varint(&mut sessions, (nr + usize::from(s.replica_set.0)) as u64);
            put_varint(&mut sessions, (nr + nrs + usize::from(s.server.0)) as u64);
            sessions.extend_from_slice(&s.created.to_le_bytes());
            sessions.extend_from_slice(&s.last_access.to_le_bytes());
            sessions.extend_from_slice(&s.last_refresh.unwrap_or(i64::MIN).to_le_bytes());
            put_varint(&mut sessions, u64::from(cred));
            n += 1;
        })
        .map_err(SiteError::Store)?;
    let head = header(source, &names, &sym_list, cred_count);
    let mut tail: Vec<u8> = Vec::with_capacity(16 + offsets.len() * 8);
    tail.extend_from_slice(&n.to_le_bytes());
    tail.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for o in &offsets {
        tail.extend_from_slice(&o.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    for part in [&head, &cred_bytes, &tail, &sessions] {
        crc.update(part);
    }
    let crc = crc.finalize();
    let crash = atomic::CrashPoint::new(2);
    atomic::write(path, |out| {
        out.write_all(&head)?;
        out.write_all(&cred_bytes)?;
        out.write_all(&tail)?;
        // The injected crash, if any, falls between the two halves of the sessions.
        let half = sessions.len() / 2;
        out.write_all(&sessions[..half])?;
        crash.check(1, out);
        out.write_all(&sessions[half..])?;
        out.write_all(&crc.to_le_bytes())
    })
}

/// A cursor over the snapshot's bytes; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos.min(self.b.len())
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn varint(&mut self) -> R<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number is too long".into())
    }
    fn bytes(&mut self) -> R<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a length is too large")?;
        self.take(n)
    }
    fn str(&mut self) -> R<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a string is not UTF-8".into())
    }
}

/// What a name of the snapshot is in the current topology.
#[derive(Clone, Copy)]
enum Name {
    Realm(RealmId),
    ReplicaSet(ReplicaSetId),
    Server(ServerId),
}

/// Loads `path` into `store`. Returns the number of sessions.
pub fn load(path: &Path, topology: &Topology, store: &MemoryStore) -> Result<usize, SiteError> {
    let bytes = std::fs::read(path).map_err(|e| SiteError::io(path, e))?;
    load_bytes(path, &bytes, topology, store)
}

/// Loads snapshot bytes into `store`; `path` is only used in messages. Every length and
/// index is checked: corrupted bytes are an error, never a panic.
pub fn load_bytes(
    path: &Path,
    bytes: &[u8],
    topology: &Topology,
    store: &MemoryStore,
) -> Result<usize, SiteError> {
    let fail = |m: String| SiteError::at(path, None, None, m);
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(fail(
            "not an smsrefresh binary snapshot (bad magic number)".into(),
        ));
    }
    let body = &bytes[..bytes.len() - 4];
    let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap_or([0; 4]));
    if crc32fast::hash(body) != stored {
        return Err(fail("the checksum does not match: the snapshot is truncated or corrupted; load sessions.jsonl instead (smsrefresh convert)".into()));
    }
    let mut r = Reader { b: body, pos: 8 };
    let version = r.u32().map_err(&fail)?;
    if version != VERSION && version != VERSION_1 {
        return Err(fail(format!(
            "snapshot version {version} is not supported; expected {VERSION}"
        )));
    }
    r.u32().map_err(&fail)?;
    if version == VERSION {
        r.take(28).map_err(&fail)?;
    }
    parse(&mut r, topology, store).map_err(fail)
}

/// The realm, replica set and server names, as the topology's ids.
fn read_names(r: &mut Reader<'_>, topology: &Topology) -> R<Vec<Name>> {
    let n_names = r.u32()? as usize;
    // Counts come from the file: size buffers by what the remaining bytes can hold.
    let mut names = Vec::with_capacity(n_names.min(r.remaining()));
    for _ in 0..n_names {
        let kind = r.u8()?;
        let name = r.str()?;
        names.push(match kind {
            0 => topology
                .realm(name)
                .map(Name::Realm)
                .ok_or_else(|| format!("the realm `{name}` is not in topology.yaml"))?,
            1 => topology
                .replica_set(name)
                .map(Name::ReplicaSet)
                .ok_or_else(|| format!("the replica set `{name}` is not in topology.yaml"))?,
            2 => topology
                .server(name)
                .map(Name::Server)
                .ok_or_else(|| format!("the server `{name}` does not exist in topology.yaml"))?,
            _ => return Err("an unknown kind of name".into()),
        });
    }
    Ok(names)
}

fn parse(r: &mut Reader<'_>, topology: &Topology, store: &MemoryStore) -> R<usize> {
    let names = read_names(r, topology)?;
    let n_syms = r.u32()? as usize;
    let mut syms = Vec::with_capacity(n_syms.min(r.remaining()));
    for _ in 0..n_syms {
        syms.push(intern::intern(r.str()?));
    }
    let n_creds = r.u32()? as usize;
    let mut blobs: Vec<&[u8]> = Vec::with_capacity(n_creds.min(r.remaining()));
    for _ in 0..n_creds {
        blobs.push(r.bytes()?);
    }
    let creds: Vec<Credential> = blobs
        .par_iter()
        .enumerate()
        .map(|(i, b)| {
            Credential::from_remapped(b, &syms).map_err(|e| format!("credential {}: {e}", i + 1))
        })
        .collect::<R<_>>()?;
    let n_sessions = usize::try_from(r.u64()?).map_err(|_| "too many sessions")?;
    let n_blocks = r.u32()? as usize;
    if n_blocks != n_sessions.div_ceil(BLOCK) {
        return Err("the block table does not match the session count".into());
    }
    if n_blocks.saturating_mul(8) > r.remaining() {
        return Err("the block table is longer than the file".into());
    }
    let mut offsets = Vec::with_capacity(n_blocks);
    for _ in 0..n_blocks {
        offsets.push(usize::try_from(r.u64()?).map_err(|_| "bad offset")?);
    }
    let base = r.pos;
    let region = &r.b[base..];
    // A session takes at least 29 bytes (two 1-byte strings, three indices, three times,
    // a credential index): a count the file cannot hold is corruption, not a reservation.
    if n_sessions > region.len() / 29 {
        return Err("the session count does not fit the file".into());
    }
    store.reserve(n_sessions);
    // Blocks parse in parallel; inserts into the store run in parallel too (per-partition
    // locks), and a duplicate id is reported by both session numbers.
    offsets
        .par_iter()
        .enumerate()
        .try_for_each(|(block, start)| -> R<()> {
            let end = offsets.get(block + 1).copied().unwrap_or(region.len());
            if *start > end || end > region.len() {
                return Err("bad block offset".into());
            }
            let mut br = Reader {
                b: &region[..end],
                pos: *start,
            };
            let count = (n_sessions - block * BLOCK).min(BLOCK);
            for i in 0..count {
                let seq = (block * BLOCK + i + 1) as u64;
                let s = session(&mut br, &names, &creds, topology, seq)
                    .map_err(|e| format!("session {seq}: {e}"))?;
                let id = s.id.clone();
                store.insert(s).map_err(|d| {
                    format!(
                        "session {seq}: the session id `{id}` is also session {}",
                        d.existing_seq
                    )
                })?;
            }
            if br.pos != end {
                return Err(format!("block {}: trailing bytes", block + 1));
            }
            Ok(())
        })?;
    Ok(n_sessions)
}

fn session(
    r: &mut Reader<'_>,
    names: &[Name],
    creds: &[Credential],
    topology: &Topology,
    seq: u64,
) -> R<Session> {
    let id = r.str()?;
    let user = r.str()?;
    if id.is_empty() || user.is_empty() {
        return Err("an empty id or user".into());
    }
    let name = |i: u64| {
        names
            .get(i as usize)
            .copied()
            .ok_or("a name index is out of range")
    };
    let (Name::Realm(realm), Name::ReplicaSet(rs), Name::Server(server)) =
        (name(r.varint()?)?, name(r.varint()?)?, name(r.varint()?)?)
    else {
        return Err("a realm, replica set or server index names the wrong kind".into());
    };
    if topology.replica_set_def(rs).realm != realm {
        return Err(format!(
            "the replica set `{}` is not in realm `{}`",
            topology.replica_set_def(rs).name,
            topology.realm_def(realm).name
        ));
    }
    let created = r.i64()?;
    let last_access = r.i64()?;
    let last_refresh = r.i64()?;
    let cred = creds
        .get(r.varint()? as usize)
        .ok_or("a credential index is out of range")?;
    Ok(Session {
        seq,
        id: id.into(),
        user: user.into(),
        realm,
        replica_set: rs,
        server,
        created,
        last_access,
        last_refresh: (last_refresh != i64::MIN).then_some(last_refresh),
        credential: cred.clone(),
    })
}
