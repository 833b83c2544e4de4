//! The key layout (docs/redis.md): every key begins with the site's prefix; a user's
//! record carries its (realm, user) as the hash tag, so all of that user's sessions sit in
//! one slot of a cluster and one function call changes them atomically.
//!
//! ```text
//! P meta                  hash    layout = 2, buckets = N, next_code, r:REALM / p:PREFIX -> code
//! P u{R/USER}             string  the user's record (record.rs)
//! P i{B}                  hash    CODE_REST (the session id, codes.rs) -> R/USER, for ids
//!                                 whose bucket is B
//! ```
//!
//! `R` is the realm's code (codes.rs) and `USER` the case-folded user name, each with `%`,
//! `/`, `{` and `}` written as `%25`, `%2F`, `%7B`, `%7D`, so the tag is unambiguous and
//! never ends early.

use crc::{CRC_16_XMODEM, Crc};

use crate::hash::stable_hash;

/// Index buckets when a store has no `meta` key yet (an empty store).
pub const DEFAULT_BUCKETS: u32 = 4096;

/// The layout version written to `meta`; a store of another version is refused.
pub const LAYOUT: u32 = 2;

/// Redis Cluster's hash slots.
pub const SLOTS: usize = 16384;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The keys of one site's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub prefix: String,
    pub buckets: u32,
}

fn escape_into(out: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

/// Reverses [`escape_into`]; `None` for a malformed escape.
fn unescape(part: &str) -> Option<String> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "2F" => '/',
            "7B" => '{',
            "7D" => '}',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The tag `R/USER` of a realm's code and a folded user name.
pub fn tag(realm: &str, user_key: &str) -> String {
    let mut t = String::with_capacity(realm.len() + user_key.len() + 1);
    escape_into(&mut t, realm);
    t.push('/');
    escape_into(&mut t, user_key);
    t
}

/// The realm name and folded user of a tag.
pub fn untag(tag: &str) -> Option<(String, String)> {
    let (realm, user) = tag.split_once('/')?;
    Some((unescape(realm)?, unescape(user)?))
}

/// Escapes the glob characters of `SCAN … MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Layout {
    pub fn meta(&self) -> String {
        format!("{}meta", self.prefix)
    }

    pub fn record(&self, tag: &str) -> String {
        format!("{}u{{{tag}}}", self.prefix)
    }

    /// The index bucket of a session id.
    pub fn bucket(&self, id: &str) -> String {
        let b = stable_hash(&[id.as_bytes()]) % u64::from(self.buckets.max(1));
        format!("{}i{{{b}}}", self.prefix)
    }

    /// `SCAN … MATCH` for every record, or for one realm's (by its code).
    pub fn record_pattern(&self, realm: Option<&str>) -> String {
        let mut p = glob_escape(&self.prefix);
        p.push_str("u{");
        if let Some(r) = realm {
            let mut t = String::new();
            escape_into(&mut t, r);
            p.push_str(&glob_escape(&t));
            p.push('/');
        }
        p.push('*');
        p
    }

    /// `SCAN … MATCH` for every key of the prefix.
    pub fn all_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.prefix))
    }
}

/// The cluster hash slot of a key: CRC16 of its hash tag (the part between the first `{`
/// and the next `}`, when not empty), else of the whole key.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    CRC16.checksum(hashed) % SLOTS as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn tags_round_trip_and_stay_in_one_slot() {
        let l = Layout {
            prefix: "smsrefresh:".into(),
            buckets: 16,
        };
        for (realm, user) in [("ibm.com", "johnq"), ("a/b", "x}{%y/z"), ("r", "")] {
            let t = tag(realm, user);
            assert!(!t.contains(['{', '}']));
            assert_eq!(untag(&t), Some((realm.to_string(), user.to_string())));
            let key = l.record(&t);
            assert_eq!(slot(key.as_bytes()), slot(t.as_bytes()));
        }
        assert_eq!(untag("r/%zz"), None);
        assert_eq!(l.record_pattern(Some("a*")), "smsrefresh:u{a\\*/*");
    }
}
