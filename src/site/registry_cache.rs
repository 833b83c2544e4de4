//! The binary cache of a large `registry.jsonl`: `registry.bin` beside it, naming the file
//! it was made from (length, modification time, inode; [`Source`]) and used only while that
//! file is unchanged, as `sessions.bin` is for `sessions.jsonl`. A million users' registry
//! then loads in a fraction of the time its JSON takes to parse: each credential is already
//! encoded, and only its interned names are mapped.
//!
//! Layout (little-endian; `str` is a LEB128 length and UTF-8 bytes; `v` a LEB128 number):
//!
//! ```text
//! "SMRREGC\0"  u32 version (1)  u64 source length  i64 mtime s  u32 mtime ns  u64 inode
//! u32 syms    str × syms                     interned strings, numbered per file
//! u32 users   (str name, v len, credential bytes) × users, in registry order
//! u32 CRC-32 of every byte before it
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::atomic;
use super::binary::Source;
use super::binary_io::{R, Stream, put_str, put_varint};
use super::error::SiteError;
use super::registry::{Registry, UserEntry};
use crate::credential::Credential;
use crate::intern::{self, Sym};

const MAGIC: &[u8; 8] = b"SMRREGC\0";
const VERSION: u32 = 1;
const CORRUPT: &str = "the checksum does not match";
/// Users decoded at a time.
const BATCH: usize = 1 << 15;

/// Where the cache of `registry` sits.
pub fn path_of(registry: &Path) -> PathBuf {
    registry.with_extension("bin")
}

/// Writes the cache of `registry`, made from the file `source` names, atomically.
pub fn save(path: &Path, registry: &Registry, source: Source) -> Result<(), SiteError> {
    let mut syms: HashMap<Sym, u32> = HashMap::new();
    let mut sym_list: Vec<Sym> = Vec::new();
    let mut users: Vec<u8> = Vec::with_capacity(registry.len() * 128);
    for u in registry.users() {
        put_str(&mut users, &u.name);
        let blob = u.credential().remapped(|sym| {
            *syms.entry(sym).or_insert_with(|| {
                sym_list.push(sym);
                (sym_list.len() - 1) as u32
            })
        });
        put_varint(&mut users, blob.len() as u64);
        users.extend_from_slice(&blob);
    }
    let mut head = Vec::with_capacity(1 << 16);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    source.put(&mut head);
    head.extend_from_slice(&(sym_list.len() as u32).to_le_bytes());
    for sym in &sym_list {
        put_str(&mut head, intern::resolve(*sym));
    }
    head.extend_from_slice(&(registry.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&users);
    let crc = crc.finalize();
    atomic::write_cache(path, |out| {
        out.write_all(&head)?;
        out.write_all(&users)?;
        out.write_all(&crc.to_le_bytes())
    })
}

/// The registry in the cache at `path`, when it names `source` and loads whole; `None`
/// otherwise (absent, made from another file, damaged): the file itself is then read.
pub fn load(path: &Path, source: Source) -> Option<Registry> {
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut s = Stream::new(file, size.checked_sub(4)?, CORRUPT);
    if s.exact(8).ok()? != MAGIC || s.u32().ok()? != VERSION {
        return None;
    }
    let named = Source {
        len: s.u64().ok()?,
        mtime_s: i64::from_le_bytes(s.u64().ok()?.to_le_bytes()),
        mtime_ns: s.u32().ok()?,
        inode: s.u64().ok()?,
    };
    if named != source {
        return None;
    }
    let users = read_users(&mut s).ok()?;
    s.check_crc().ok()?;
    Registry::from_cache(users)
}

fn read_users<I: std::io::Read>(s: &mut Stream<I>) -> R<Vec<UserEntry>> {
    let n_syms = s.u32()? as usize;
    let mut syms = Vec::with_capacity(n_syms.min(usize::try_from(s.left).unwrap_or(0)));
    for _ in 0..n_syms {
        syms.push(intern::intern(&s.string()?));
    }
    let n_users = s.u32()? as usize;
    let mut users = Vec::with_capacity(n_users.min(usize::try_from(s.left).unwrap_or(0)));
    let (mut buf, mut items) = (Vec::new(), Vec::with_capacity(BATCH));
    while users.len() < n_users {
        buf.clear();
        items.clear();
        for _ in 0..(n_users - users.len()).min(BATCH) {
            items.push((s.bytes_into(&mut buf)?, s.bytes_into(&mut buf)?));
        }
        let decoded: Vec<UserEntry> = items
            .par_iter()
            .map(|(name, cred)| {
                let name =
                    std::str::from_utf8(&buf[name.clone()]).map_err(|_| "a name is not UTF-8")?;
                let credential = Credential::from_remapped(&buf[cred.clone()], &syms)?;
                Ok(UserEntry::from_parts(name, credential))
            })
            .collect::<Result<_, &str>>()?;
        users.extend(decoded);
    }
    Ok(users)
}
