//! The session-id index of the in-memory store: one shard of it, which owns both the ids'
//! bytes and the table from id to where its session sits.
//!
//! Why the shard owns the bytes: a session id is the largest thing a session has (WebSEAL's
//! are ~56 bytes), and an index keyed by a copy of it, beside the session's own copy, cost
//! ~120 bytes a session. Here each id is written once, into the shard's arena, with the place
//! of its session, and the table holds only the records' 4-byte offsets, found by the id's
//! hash and confirmed by comparing bytes in the same arena, under the same lock — no second
//! lock is needed to tell two ids with one hash apart. A session keeps only its shard and
//! offset.
//!
//! Ids share prefixes: WebSEAL's are `base64(server name)_counter`. The part up to the last
//! `_` is kept once per shard in a short prefix list and an id stores its number there, so an
//! id costs its counter, not its server's name. Ids without such a prefix are kept whole.
//!
//! Arena record: partition and slot (u32 LE each), LEB128 prefix number (0: none, n:
//! `prefixes[n - 1]`), LEB128 length, bytes. A removed id's record stays in the arena until
//! the store is dropped: sessions are only added by loading, so the arena never holds more
//! than the site loaded.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use smallvec::SmallVec;

/// Where a session sits: its partition and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) partition: u32,
    pub(super) slot: u32,
}

/// Prefixes kept per shard; ids with a prefix beyond these are stored whole.
const MAX_PREFIXES: usize = 64;
/// A shorter prefix is not worth a lookup.
const MIN_PREFIX: usize = 8;

/// The hash of a session id: picks the shard (bits 40..) and the table bucket.
pub(super) fn id_hash(id: &str) -> u64 {
    id_hash_bytes(id.as_bytes())
}

fn id_hash_bytes(id: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5e55_1011).hash_one(id)
}

/// The shard of an id of hash `hash`, among `2^bits` shards. Not the top bits (the table's
/// tags) nor the low ones (its buckets), so the ids of one shard still spread in its table.
pub(super) fn shard_of(hash: u64, bits: u32) -> usize {
    ((hash >> 40) as usize) & ((1usize << bits) - 1)
}

/// One shard of the id index.
#[derive(Default)]
pub(super) struct IdShard {
    arena: Vec<u8>,
    prefixes: Vec<Box<str>>,
    /// Offsets of the records in `arena`, by the id's hash.
    table: HashTable<u32>,
}

fn put_varint(out: &mut Vec<u8>, v: usize) {
    crate::leb128::put(out, v as u64);
}

fn get_varint(b: &[u8], pos: &mut usize) -> usize {
    usize::try_from(crate::leb128::get(b, pos)).unwrap_or(usize::MAX)
}

/// Appends a record: `loc`, the prefix number `p`, and the rest of the id.
fn put_record(arena: &mut Vec<u8>, loc: Loc, p: usize, rest: &str) {
    arena.extend_from_slice(&loc.partition.to_le_bytes());
    arena.extend_from_slice(&loc.slot.to_le_bytes());
    put_varint(arena, p);
    put_varint(arena, rest.len());
    arena.extend_from_slice(rest.as_bytes());
}

/// The place written at the head of the record at `offset`.
fn loc_in(arena: &[u8], offset: u32) -> Loc {
    let at = offset as usize;
    let word = |i: usize| {
        arena
            .get(at + i..at + i + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(u32::MAX, u32::from_le_bytes)
    };
    Loc {
        partition: word(0),
        slot: word(4),
    }
}

/// The id of the record at `offset`, as (prefix, rest).
fn parts_in<'a>(arena: &'a [u8], prefixes: &'a [Box<str>], offset: u32) -> (&'a str, &'a str) {
    let mut pos = offset as usize + 8;
    let p = get_varint(arena, &mut pos);
    let len = get_varint(arena, &mut pos);
    let prefix = match p {
        0 => "",
        n => prefixes.get(n - 1).map_or("", |s| s),
    };
    // Only whole `&str`s are copied in, so the bytes are UTF-8 at the boundaries.
    let rest = arena
        .get(pos..pos.saturating_add(len))
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("");
    (prefix, rest)
}

fn matches_in(arena: &[u8], prefixes: &[Box<str>], offset: u32, id: &str) -> bool {
    let (prefix, rest) = parts_in(arena, prefixes, offset);
    id.len() == prefix.len() + rest.len()
        && id.as_bytes().starts_with(prefix.as_bytes())
        && id.as_bytes().ends_with(rest.as_bytes())
}

/// The hash of the id at `offset` (for the table when it grows, and to remove an id),
/// assembled on the stack for ids of up to 128 bytes.
fn rehash(arena: &[u8], prefixes: &[Box<str>], offset: u32) -> u64 {
    let (prefix, rest) = parts_in(arena, prefixes, offset);
    let mut id: SmallVec<[u8; 128]> = SmallVec::with_capacity(prefix.len() + rest.len());
    id.extend_from_slice(prefix.as_bytes());
    id.extend_from_slice(rest.as_bytes());
    id_hash_bytes(&id)
}

impl IdShard {
    /// The id stored at `offset`, as (prefix, rest).
    fn parts(&self, offset: u32) -> (&str, &str) {
        parts_in(&self.arena, &self.prefixes, offset)
    }

    /// Appends the id at `offset` to `out`.
    pub(super) fn write_id(&self, offset: u32, out: &mut String) {
        let (prefix, rest) = self.parts(offset);
        out.push_str(prefix);
        out.push_str(rest);
    }

    /// Where the session `id` (of hash `hash`) sits, if the store has it.
    pub(super) fn find(&self, id: &str, hash: u64) -> Option<Loc> {
        let (arena, prefixes) = (&self.arena, &self.prefixes);
        self.table
            .find(hash, |o| matches_in(arena, prefixes, *o, id))
            .map(|o| loc_in(arena, *o))
    }

    /// Records `id` at `loc` and returns its offset; `Err` with the other session's place
    /// when the id is already here. One probe of the table either way.
    pub(super) fn insert(&mut self, id: &str, hash: u64, loc: Loc) -> Result<u32, Loc> {
        let (p, rest) = self.split(id);
        let IdShard {
            arena,
            prefixes,
            table,
        } = self;
        let offset = u32::try_from(arena.len()).expect("under 4 GiB of ids a shard");
        match table.entry(
            hash,
            |o| matches_in(arena, prefixes, *o, id),
            // Runs only when the table grows; it reads the ids from the arena.
            |o| rehash(arena, prefixes, *o),
        ) {
            Entry::Occupied(other) => Err(loc_in(arena, *other.get())),
            Entry::Vacant(slot) => {
                slot.insert(offset);
                put_record(arena, loc, p, rest);
                Ok(offset)
            }
        }
    }

    /// Writes `id`'s record at `loc` into the arena without indexing it, and returns its
    /// offset. A bulk load appends every id this way, then indexes each shard once with
    /// [`IdShard::index_from`]: the table is then built shard by shard, in cache, instead of
    /// probed at random as sessions arrive.
    pub(super) fn append(&mut self, id: &str, loc: Loc) -> u32 {
        let (p, rest) = self.split(id);
        let offset = self.end();
        put_record(&mut self.arena, loc, p, rest);
        offset
    }

    /// Indexes every record appended at or after `start`, in arena order. Returns the places
    /// of every two records found to hold one id (the indexed one first); the other is left
    /// unindexed.
    pub(super) fn index_from(&mut self, start: u32) -> Vec<(Loc, Loc)> {
        let mut clashes = Vec::new();
        let IdShard {
            arena,
            prefixes,
            table,
        } = self;
        let mut at = start as usize;
        while at < arena.len() {
            let offset = u32::try_from(at).expect("under 4 GiB of ids a shard");
            let mut pos = at + 8;
            let _ = get_varint(arena, &mut pos);
            let len = get_varint(arena, &mut pos);
            at = pos.saturating_add(len);
            let hash = rehash(arena, prefixes, offset);
            let (prefix, rest) = parts_in(arena, prefixes, offset);
            let same = |o: &u32| {
                let (p2, r2) = parts_in(arena, prefixes, *o);
                p2.len() + r2.len() == prefix.len() + rest.len() && {
                    let mut a = prefix.bytes().chain(rest.bytes());
                    p2.bytes().chain(r2.bytes()).all(|b| a.next() == Some(b))
                }
            };
            match table.entry(hash, same, |o| rehash(arena, prefixes, *o)) {
                Entry::Occupied(other) => {
                    clashes.push((loc_in(arena, *other.get()), loc_in(arena, offset)));
                }
                Entry::Vacant(slot) => {
                    slot.insert(offset);
                }
            }
        }
        clashes
    }

    /// Makes the id recorded at `from` be found at `to` instead (both records hold one id).
    pub(super) fn repoint(&mut self, from: u32, to: u32) {
        let hash = rehash(&self.arena, &self.prefixes, from);
        if let Ok(mut e) = self.table.find_entry(hash, |o| *o == from) {
            *e.get_mut() = to;
        }
    }

    /// The arena's length: where the next appended record starts.
    pub(super) fn end(&self) -> u32 {
        u32::try_from(self.arena.len()).expect("under 4 GiB of ids a shard")
    }

    /// The prefix number of `id` (0: none) and what follows the prefix.
    fn split<'a>(&mut self, id: &'a str) -> (usize, &'a str) {
        let Some(cut) = id.rfind('_').map(|i| i + 1).filter(|c| *c >= MIN_PREFIX) else {
            return (0, id);
        };
        let (prefix, rest) = id.split_at(cut);
        if let Some(i) = self.prefixes.iter().position(|p| **p == *prefix) {
            return (i + 1, rest);
        }
        if self.prefixes.len() < MAX_PREFIXES {
            self.prefixes.push(prefix.into());
            return (self.prefixes.len(), rest);
        }
        (0, id)
    }

    /// Whether the record at `offset` holds `id`.
    pub(super) fn holds(&self, offset: u32, id: &str) -> bool {
        matches_in(&self.arena, &self.prefixes, offset, id)
    }

    /// Forgets the id stored at `offset` (its record stays in the arena).
    pub(super) fn remove(&mut self, offset: u32) {
        let hash = rehash(&self.arena, &self.prefixes, offset);
        if let Ok(e) = self.table.find_entry(hash, |o| *o == offset) {
            e.remove();
        }
    }

    /// Room for `n` more ids of about `bytes` bytes each (their records).
    pub(super) fn reserve(&mut self, n: usize, bytes: usize) {
        let IdShard {
            arena,
            prefixes,
            table,
        } = self;
        arena.reserve(n * (bytes + 8));
        table.reserve(n, |o| rehash(arena, prefixes, *o));
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The place of every id in the shard (for the store's self-check).
    pub(super) fn locs(&self) -> impl Iterator<Item = (u32, Loc)> + '_ {
        self.table.iter().map(|o| (*o, loc_in(&self.arena, *o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(slot: u32) -> Loc {
        Loc { partition: 1, slot }
    }

    #[test]
    fn ids_round_trip_share_prefixes_and_refuse_duplicates() {
        let mut shard = IdShard::default();
        let ids: Vec<String> = (0..3000)
            .map(|i| match i % 3 {
                0 => format!("ZGVmYXVsdC13ZWJzZWFsZA_{i:08}"),
                1 => format!("c2Vydm  VyMg_x_{i}"),
                _ => format!("plain-{i}"),
            })
            .collect();
        let mut offsets = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            offsets.push(shard.insert(id, id_hash(id), loc(i as u32)).unwrap());
        }
        assert_eq!(shard.prefixes.len(), 2, "{:?}", shard.prefixes);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(shard.find(id, id_hash(id)), Some(loc(i as u32)));
            let mut back = String::new();
            shard.write_id(offsets[i], &mut back);
            assert_eq!(&back, id);
        }
        assert_eq!(shard.insert(&ids[7], id_hash(&ids[7]), loc(9)), Err(loc(7)));
        assert_eq!(shard.find("ZGVmYXVsdC13ZWJzZWFsZA_", id_hash("x")), None);
        shard.remove(offsets[7]);
        assert_eq!(shard.find(&ids[7], id_hash(&ids[7])), None);
        assert_eq!(shard.len(), 2999);
        // Ids of one hash stay apart: compared by their bytes.
        let mut same = IdShard::default();
        same.insert("a", 42, loc(1)).unwrap();
        same.insert("b", 42, loc(2)).unwrap();
        assert_eq!(same.find("b", 42), Some(loc(2)));
        assert_eq!(same.find("c", 42), None);
    }

    #[test]
    fn many_prefixes_fall_back_to_whole_ids() {
        let mut shard = IdShard::default();
        for i in 0..200 {
            let id = format!("server-number-{i}_1");
            let off = shard.insert(&id, id_hash(&id), loc(i)).unwrap();
            let mut back = String::new();
            shard.write_id(off, &mut back);
            assert_eq!(back, id);
        }
        assert_eq!(shard.prefixes.len(), MAX_PREFIXES);
    }
}
