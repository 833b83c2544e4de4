//! The binary session snapshot, `sessions.bin`: versioned, checksummed, written atomically,
//! and loaded in parallel, many times faster than `sessions.jsonl` (which stays the
//! interchange form; `smsrefresh convert` moves a site between the two). It is read as a
//! stream — credentials in batches, sessions a few blocks at a time — so a load peaks at the
//! store plus a few megabytes, not the store plus the file.
//!
//! It is also the *cache* of a `sessions.jsonl` site: then its header names the JSON Lines
//! file it was made from (length, modification time, inode), and it is used only while that
//! file is unchanged (see [`Source`]).
//!
//! Layout (little-endian; `str` is a LEB128 length and UTF-8 bytes; `v` a LEB128 number):
//!
//! ```text
//! "SMRSNAP\0"  u32 version (3)  u32 0
//! u64 source length  i64 source mtime seconds  u32 nanoseconds  u64 source inode
//!                                          (all 0: the site's own snapshot, not a cache)
//! u32 names   (u8 kind: 0 realm, 1 replica set, 2 server; str name) × names
//! u32 syms    str × syms                    interned strings, numbered per file
//! u32 creds   (v len, bytes) × creds        credentials encoded with file syms
//! u64 sessions  u32 blocks  u64 × blocks    byte offset of each block of 65,536 sessions
//! sessions:   v seq, str id, str user, v realm, v replica set, v server, i64 created,
//!             i64 last_access, i64 last_refresh (i64::MIN: none), v credential
//! u32 CRC-32 of every byte before it
//! ```
//!
//! Version 3 writes the sessions as the memory store holds them (partition by partition,
//! [`SessionStore::export_as_held`]) with their numbers: a load then fills one partition at
//! a time from each block, in cache, and indexes the ids shard by shard at the end
//! ([`MemoryStore::bulk_load`]), instead of placing every session at random. Version 2 has
//! no `seq` (a session's number is its place: they were written in that order); version 1
//! has no source fields either. Both still load.
//!
//! Names are stored, not topology indices, so a snapshot survives topology edits and is
//! checked against the current topology on load, as `sessions.jsonl` is.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use super::atomic;
use super::binary_io::{R, Reader, Stream, put_str, put_varint};
use super::error::SiteError;
use super::topology::{RealmId, ReplicaSetId, ServerId, Topology};
use crate::credential::Credential;
use crate::intern::{self, Sym};
use crate::store::memory::BulkLoad;
use crate::store::memory::NewSession;
use crate::store::{MemoryStore, SessionStore};

const MAGIC: &[u8; 8] = b"SMRSNAP\0";
const VERSION: u32 = 3;
/// Version 2 numbers sessions by their place in the file (they are written in `seq` order);
/// version 1 has no source fields either. Both still load.
const VERSION_2: u32 = 2;
const VERSION_1: u32 = 1;
/// The largest session number a snapshot may record (the store keeps 48 bits).
const MAX_SEQ: u64 = (1 << 48) - 1;

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

    pub(super) fn put(&self, out: &mut Vec<u8>) {
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
    if r.take(8).ok()? != MAGIC || !matches!(r.u32().ok()?, VERSION | VERSION_2) {
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
        .export_as_held(&mut |s| {
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
            put_varint(&mut sessions, s.seq);
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
    let body = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
        out.write_all(&head)?;
        out.write_all(&cred_bytes)?;
        out.write_all(&tail)?;
        // The injected crash, if any, falls between the two halves of the sessions.
        let half = sessions.len() / 2;
        out.write_all(&sessions[..half])?;
        crash.check(1, out);
        out.write_all(&sessions[half..])?;
        out.write_all(&crc.to_le_bytes())
    };
    if source == Source::default() {
        atomic::write(path, body)
    } else {
        atomic::write_cache(path, body)
    }
}

/// What a name of the snapshot is in the current topology.
#[derive(Clone, Copy)]
enum Name {
    Realm(RealmId),
    ReplicaSet(ReplicaSetId),
    Server(ServerId),
}

/// Loads `path` into `store`, streaming: the file is never held whole, so a load peaks at
/// the store plus a few blocks. Returns the number of sessions.
pub fn load(path: &Path, topology: &Topology, store: &MemoryStore) -> Result<usize, SiteError> {
    let file = std::fs::File::open(path).map_err(|e| SiteError::io(path, e))?;
    let size = file.metadata().map_err(|e| SiteError::io(path, e))?.len();
    load_stream(path, file, size, topology, store)
}

/// Loads snapshot bytes into `store`; `path` is only used in messages. Every length and
/// index is checked: corrupted bytes are an error, never a panic.
pub fn load_bytes(
    path: &Path,
    bytes: &[u8],
    topology: &Topology,
    store: &MemoryStore,
) -> Result<usize, SiteError> {
    load_stream(path, bytes, bytes.len() as u64, topology, store)
}

const CORRUPT: &str = "the checksum does not match: the snapshot is truncated or corrupted; load sessions.jsonl instead (smsrefresh convert)";

/// Loads a snapshot of `size` bytes read from `input`. The checksum covers every byte but
/// its own four and is checked at the end: a damaged snapshot is an error (and the caller
/// drops the store it partly filled).
fn load_stream(
    path: &Path,
    input: impl std::io::Read,
    size: u64,
    topology: &Topology,
    store: &MemoryStore,
) -> Result<usize, SiteError> {
    let fail = |m: String| SiteError::at(path, None, None, m);
    let bad_magic = || fail("not an smsrefresh binary snapshot (bad magic number)".into());
    if size < 12 {
        return Err(bad_magic());
    }
    let mut s = Stream::new(input, size - 4, CORRUPT);
    let magic = s.exact(8).map_err(|_| bad_magic())?;
    if magic != MAGIC {
        return Err(bad_magic());
    }
    let version = s.u32().map_err(&fail)?;
    if !matches!(version, VERSION | VERSION_2 | VERSION_1) {
        // Checked after the checksum, so a damaged file says it is damaged.
        s.drain().map_err(&fail)?;
        s.check_crc().map_err(&fail)?;
        return Err(fail(format!(
            "snapshot version {version} is not supported; expected {VERSION}"
        )));
    }
    s.u32().map_err(&fail)?;
    if version != VERSION_1 {
        s.exact(28).map_err(&fail)?;
    }
    match parse(&mut s, topology, store, version == VERSION) {
        Ok(n) => s.check_crc().map(|()| n).map_err(fail),
        // A parse error in a damaged file is reported as the damage.
        Err(e) => Err(fail(
            s.drain().and_then(|()| s.check_crc()).err().unwrap_or(e),
        )),
    }
}

/// The realm, replica set and server names, as the topology's ids.
fn read_names<I: std::io::Read>(r: &mut Stream<I>, topology: &Topology) -> R<Vec<Name>> {
    let n_names = r.u32()? as usize;
    // Counts come from the file: size buffers by what the remaining bytes can hold.
    let mut names = Vec::with_capacity(n_names.min(usize::try_from(r.left).unwrap_or(0)));
    for _ in 0..n_names {
        let kind = r.u8()?;
        let name = r.string()?;
        let name = name.as_str();
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

/// Credentials are read this many at a time, then decoded in parallel.
const CRED_BATCH: usize = 1 << 15;
/// Session blocks read at a time, then parsed (and inserted) in parallel.
/// Session blocks read at a time: one per worker thread (at least two), so every thread
/// parses a block while the buffers stay a few megabytes a thread (each block is ~6 MB at
/// 65,536 sessions, and the buffers count in the load's peak).
fn block_batch() -> usize {
    rayon::current_num_threads().max(2)
}

/// The credentials: read in batches into one buffer each, decoded in parallel.
fn read_creds<I: std::io::Read>(r: &mut Stream<I>, syms: &[Sym]) -> R<Vec<Credential>> {
    let n_creds = r.u32()? as usize;
    let mut creds = Vec::with_capacity(n_creds.min(usize::try_from(r.left).unwrap_or(0)));
    let mut buf: Vec<u8> = Vec::new();
    let mut ranges = Vec::with_capacity(CRED_BATCH);
    while creds.len() < n_creds {
        buf.clear();
        ranges.clear();
        for _ in 0..(n_creds - creds.len()).min(CRED_BATCH) {
            ranges.push(r.bytes_into(&mut buf)?);
        }
        let first = creds.len();
        let decoded: Vec<Credential> = ranges
            .par_iter()
            .enumerate()
            .map(|(i, range)| {
                Credential::from_remapped(&buf[range.clone()], syms)
                    .map_err(|e| format!("credential {}: {e}", first + i + 1))
            })
            .collect::<R<_>>()?;
        creds.extend(decoded);
    }
    Ok(creds)
}

/// Parses the snapshot after its source fields; `seqs`: each session records its `seq`
/// (version 3), else a session's `seq` is its place in the file.
fn parse<I: std::io::Read>(
    r: &mut Stream<I>,
    topology: &Topology,
    store: &MemoryStore,
    seqs: bool,
) -> R<usize> {
    let names = read_names(r, topology)?;
    let n_syms = r.u32()? as usize;
    let mut syms = Vec::with_capacity(n_syms.min(usize::try_from(r.left).unwrap_or(0)));
    for _ in 0..n_syms {
        syms.push(intern::intern(&r.string()?));
    }
    let creds = read_creds(r, &syms)?;
    let n_sessions = usize::try_from(r.u64()?).map_err(|_| "too many sessions")?;
    let n_blocks = r.u32()? as usize;
    if n_blocks != n_sessions.div_ceil(BLOCK) {
        return Err("the block table does not match the session count".into());
    }
    if (n_blocks as u64).saturating_mul(8) > r.left {
        return Err("the block table is longer than the file".into());
    }
    let mut offsets = Vec::with_capacity(n_blocks);
    for _ in 0..n_blocks {
        offsets.push(r.u64()?);
    }
    let region = r.left;
    // A session takes at least 29 bytes (two 1-byte strings, three indices, three times,
    // a credential index): a count the file cannot hold is corruption, not a reservation.
    if n_sessions as u64 > region / 29 {
        return Err("the session count does not fit the file".into());
    }
    if offsets.first().is_some_and(|o| *o != 0) {
        return Err("bad block offset".into());
    }
    store.reserve(n_sessions);
    // A few blocks at a time: read in order, parsed and inserted in parallel (per-partition
    // locks); the ids are indexed at the end, where a duplicate is reported by both session
    // numbers.
    let loading = store.bulk_load();
    let batch = block_batch();
    for first in (0..n_blocks).step_by(batch) {
        let bufs = read_blocks(r, &offsets, region, first..(first + batch).min(n_blocks))?;
        bufs.par_iter().enumerate().try_for_each(|(i, buf)| {
            let block = first + i;
            let count = (n_sessions - block * BLOCK).min(BLOCK);
            parse_block(buf, block, count, &names, &creds, topology, seqs, &loading)
        })?;
    }
    loading.finish().map_err(|d| {
        format!(
            "session {}: the session id `{}` is also session {}",
            d.seq, d.id, d.existing_seq
        )
    })?;
    Ok(n_sessions)
}

/// The bytes of blocks `range` (the next ones in the stream).
fn read_blocks<I: std::io::Read>(
    r: &mut Stream<I>,
    offsets: &[u64],
    region: u64,
    range: std::ops::Range<usize>,
) -> R<Vec<Vec<u8>>> {
    let mut bufs = Vec::with_capacity(range.len());
    for block in range {
        let end = offsets.get(block + 1).copied().unwrap_or(region);
        let len = end
            .checked_sub(offsets[block])
            .filter(|l| *l <= r.left)
            .ok_or("bad block offset")?;
        bufs.push(r.exact(usize::try_from(len).map_err(|_| "bad block offset")?)?);
    }
    Ok(bufs)
}

/// Parses block number `block` (`count` sessions) into the load.
#[allow(clippy::too_many_arguments)]
fn parse_block(
    buf: &[u8],
    block: usize,
    count: usize,
    names: &[Name],
    creds: &[Credential],
    topology: &Topology,
    seqs: bool,
    loading: &BulkLoad<'_>,
) -> R<()> {
    let mut br = Reader { b: buf, pos: 0 };
    for j in 0..count {
        let place = (block * BLOCK + j + 1) as u64;
        let s = session(&mut br, names, creds, topology, (place, seqs))
            .map_err(|e| format!("session {place}: {e}"))?;
        loading.insert(&s);
    }
    if br.pos != buf.len() {
        return Err(format!("block {}: trailing bytes", block + 1));
    }
    Ok(())
}

fn session<'a>(
    r: &mut Reader<'a>,
    names: &[Name],
    creds: &'a [Credential],
    topology: &Topology,
    (place, seqs): (u64, bool),
) -> R<NewSession<'a>> {
    let seq = if seqs {
        Some(r.varint()?)
            .filter(|s| (1..=MAX_SEQ).contains(s))
            .ok_or("a session number out of range")?
    } else {
        place
    };
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
    Ok(NewSession {
        seq,
        id,
        user,
        realm,
        replica_set: rs,
        server,
        created,
        last_access,
        last_refresh: (last_refresh != i64::MIN).then_some(last_refresh),
        credential: cred,
    })
}
