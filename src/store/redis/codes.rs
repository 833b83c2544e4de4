//! The store's short codes (layout 2, docs/redis.md): each realm, and each session-id prefix
//! (`base64(server)_`, the part of an ISVA user session id up to its last `_`), is written as
//! a small number wherever it repeats — in every record key, every index entry's user and
//! every index entry's id. They are kept in `Pmeta` (`r:REALM` and `p:PREFIX` → code), given
//! out by `store import` (and `--add`) from one counter, and read by every engine when it
//! opens the store, so engines with topologies in any order agree.
//!
//! This is what brings the store under 300 bytes a session (contract §11): an index entry
//! `ZGVm…bQ_00001 → realm1.example.com/user0000001` (≈ 80 bytes) becomes `1_00001 →
//! 5/user0000001` (≈ 22), and every record's key is 17 bytes shorter.

use std::collections::HashMap;

use crate::fold::fold;

/// A session id as its prefix (through the last `_`; empty when it has none) and the rest.
pub fn split_id(id: &str) -> (&str, &str) {
    match id.rfind('_') {
        Some(at) => id.split_at(at + 1),
        None => ("", id),
    }
}

/// The meta field that holds a realm's code.
pub fn realm_field(realm: &str) -> String {
    format!("r:{}", fold(realm))
}

/// The meta field that holds an id prefix's code.
pub fn prefix_field(prefix: &str) -> String {
    format!("p:{prefix}")
}

/// The meta field of the counter codes are given out from.
pub const COUNTER: &str = "next_code";

/// The codes a store has given out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codes {
    /// Folded realm name → code.
    realms: HashMap<String, u64>,
    /// Id prefix → code (the empty prefix is always 0, and not stored).
    prefixes: HashMap<String, u64>,
}

impl Codes {
    /// The codes among `Pmeta`'s fields.
    pub fn from_meta(meta: &HashMap<String, String>) -> Self {
        let mut codes = Self::default();
        for (field, value) in meta {
            let Ok(code) = value.parse::<u64>() else {
                continue;
            };
            if let Some(realm) = field.strip_prefix("r:") {
                codes.realms.insert(realm.to_string(), code);
            } else if let Some(prefix) = field.strip_prefix("p:") {
                codes.prefixes.insert(prefix.to_string(), code);
            }
        }
        codes
    }

    /// A realm's code; `None` when no session of that realm was ever imported.
    pub fn realm(&self, name: &str) -> Option<u64> {
        self.realms.get(fold(name).as_str()).copied()
    }

    /// The index field of a session id: `CODE_REST`, the code of its prefix and what follows
    /// it (`0_ID` for an id with no `_`). `None` when the store has no code for its prefix:
    /// then no session with that id was ever imported.
    pub fn field(&self, id: &str) -> Option<String> {
        let (prefix, rest) = split_id(id);
        let code = if prefix.is_empty() {
            0
        } else {
            *self.prefixes.get(prefix)?
        };
        Some(format!("{code}_{rest}"))
    }

    /// The realms (folded) and prefixes among `realms` and `ids` that have no code yet.
    pub fn missing<'a>(
        &self,
        realms: impl Iterator<Item = &'a str>,
        ids: impl Iterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut fields: Vec<String> = realms
            .filter(|r| self.realm(r).is_none())
            .map(realm_field)
            .chain(
                ids.map(|id| split_id(id).0)
                    .filter(|p| !p.is_empty() && !self.prefixes.contains_key(*p))
                    .map(prefix_field),
            )
            .collect();
        fields.sort_unstable();
        fields.dedup();
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_at_their_last_underscore_and_fields_are_unambiguous() {
        assert_eq!(split_id("ZGVm_bQ_00001"), ("ZGVm_bQ_", "00001"));
        assert_eq!(split_id("678"), ("", "678"));
        assert_eq!(split_id("x_"), ("x_", ""));
        let meta: HashMap<String, String> = [
            ("r:ibm.com", "1"),
            ("p:ZGVm_", "2"),
            ("layout", "2"),
            ("p:bad", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let codes = Codes::from_meta(&meta);
        assert_eq!(codes.realm("IBM.com"), Some(1));
        assert_eq!(codes.realm("other"), None);
        assert_eq!(codes.field("ZGVm_00001").as_deref(), Some("2_00001"));
        assert_eq!(codes.field("678").as_deref(), Some("0_678"));
        assert_eq!(codes.field("Zm9v_00001"), None);
        let missing = codes.missing(
            ["ibm.com", "Other.com", "other.com"].into_iter(),
            ["ZGVm_1", "Zm9v_1", "Zm9v_2", "678"].into_iter(),
        );
        assert_eq!(missing, vec!["p:Zm9v_", "r:other.com"]);
    }
}
