//! The process-wide interner for attribute names and other strings that repeat across
//! millions of credentials (group names, common values).
//!
//! A [`Sym`] is a `u32`; credentials store syms instead of strings, so a group name shared by
//! a million sessions is stored once. Interned strings live as long as the process (they are
//! never freed), lookups from sym to string take no lock (`boxcar`, an append-only vector),
//! and interning takes a shard lock only for a string not seen before.
//!
//! Attribute names compare case-insensitively: every sym also has a *canonical* sym, the one
//! of its case-folded spelling, and two names are equal when their canonical syms are.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::RwLock;

use crate::fold::fold;
use crate::hash::stable_hash;

/// An interned string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

const SHARDS: usize = 16;
const SELF: u32 = u32::MAX;

struct Interner {
    shards: [RwLock<HashMap<&'static str, u32, foldhash::fast::RandomState>>; SHARDS],
    /// sym -> (string, canonical sym, or `SELF` when the string is its own canonical)
    strings: boxcar::Vec<(&'static str, u32)>,
}

static INTERNER: LazyLock<Interner> = LazyLock::new(|| Interner {
    shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
    strings: boxcar::Vec::new(),
});

fn shard(s: &str) -> usize {
    (stable_hash(&[s.as_bytes()]) as usize) % SHARDS
}

fn lookup(s: &str) -> Option<Sym> {
    INTERNER.shards[shard(s)].read().get(s).map(|i| Sym(*i))
}

/// The sym of `s`, interning it if new.
pub fn intern(s: &str) -> Sym {
    if let Some(sym) = lookup(s) {
        return sym;
    }
    // The canonical (folded) spelling first, so that its sym exists.
    let folded = fold(s);
    let canonical = if folded == s {
        None
    } else {
        Some(intern(&folded))
    };
    let mut map = INTERNER.shards[shard(s)].write();
    if let Some(i) = map.get(s) {
        return Sym(*i);
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    // The sym is the index boxcar assigns (other shards may push concurrently).
    let pushed = INTERNER
        .strings
        .push((leaked, canonical.map_or(SELF, |c| c.0)));
    let sym = u32::try_from(pushed).unwrap_or(SELF - 1);
    map.insert(leaked, sym);
    Sym(sym)
}

/// The sym of `s` if it was ever interned.
pub fn get(s: &str) -> Option<Sym> {
    lookup(s)
}

/// The string of a sym.
pub fn resolve(sym: Sym) -> &'static str {
    INTERNER.strings.get(sym.0 as usize).map_or("", |(s, _)| s)
}

/// The sym of the case-folded spelling of `sym`: equal for names that differ only in case.
pub fn canonical(sym: Sym) -> Sym {
    match INTERNER.strings.get(sym.0 as usize) {
        Some((_, c)) if *c != SELF => Sym(*c),
        _ => sym,
    }
}

/// How many syms exist (all are below this).
pub fn count() -> usize {
    INTERNER.strings.count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_case_classes_meet() {
        let a = intern("Interner_Test_Name");
        assert_eq!(intern("Interner_Test_Name"), a);
        assert_eq!(resolve(a), "Interner_Test_Name");
        let b = intern("interner_test_name");
        assert_ne!(a, b);
        assert_eq!(canonical(a), canonical(b));
        assert_eq!(canonical(b), b);
        assert_eq!(get("never interned here, surely"), None);
    }
}
