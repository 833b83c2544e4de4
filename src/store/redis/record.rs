//! A user's record: every session of one (realm, user), in one Redis string, with each
//! distinct credential written once (a user's sessions usually share one).
//!
//! ```text
//! nonce        8 bytes, new on every write (the compare-and-set token)
//! version      1 byte = 1
//! realm        str                      the realm as the topology spells it
//! user         str                      the user as the first session spells it
//! names        varint n, n × str        replica set and server names the sessions use
//! credentials  varint n, n × credential
//! sessions     varint n, n × session
//! credential   varint n, n × (name, value)
//! name         varint k: k > 0 is WELL_KNOWN[k - 1]; 0 is followed by a str
//! value        0 str | 1 varint n, n × str (a list)
//! session      varint p, str rest        the id: p bytes of the previous session's id, then rest
//!              str user (empty: as above), varint replica_set name, varint server name,
//!              varint created, varint last_access, varint last_refresh (0: none),
//!              varint credential index
//! str          varint length, UTF-8 bytes
//! ```
//! Times are Unix seconds, zigzag-encoded (`last_refresh` as zigzag + 1); varints are
//! LEB128. `WELL_KNOWN` is the credential attribute names ISVA writes (append-only: a
//! record names them by position).

use compact_str::CompactString;

use super::names::Names;
use crate::credential::{Credential, CredentialBuilder, ValueRef};
use crate::ids::RealmId;
use crate::session::Session;

pub const NONCE: usize = 8;
const VERSION: u8 = 1;

/// Credential attribute names written as one byte (their position + 1). Append only.
const WELL_KNOWN: [&str; 24] = [
    "AZN_CRED_PRINCIPAL_NAME",
    "AZN_CRED_GROUPS",
    "AZN_CRED_AUTH_METHOD",
    "AZN_CRED_AUTHNMECH_INFO",
    "AZN_CRED_IP_ADDRESS",
    "AZN_CRED_BROWSER_INFO",
    "AZN_CRED_REGISTRY_ID",
    "AZN_CRED_USER_INFO",
    "AZN_CRED_QOP_INFO",
    "AZN_CRED_PRINCIPAL_UUID",
    "AZN_CRED_PRINCIPAL_DOMAIN",
    "AZN_CRED_AUTHZN_ID",
    "AZN_CRED_AUTH_EPOCH_TIME",
    "AZN_CRED_NETWORK_ADDRESS_STR",
    "AZN_CRED_NETWORK_ADDRESS_BIN",
    "AZN_CRED_MECH_ID",
    "AZN_CRED_VERSION",
    "AZN_CRED_GROUP_REFS",
    "AZN_CRED_ATTR_VALUE",
    "authentication_level",
    "tagvalue_login_realm",
    "tagvalue_session_index",
    "tagvalue_user_session_id",
    "emailAddress",
];

const VALUE_STR: u8 = 0;
const VALUE_LIST: u8 = 1;

fn put_credential(out: &mut Vec<u8>, c: &Credential) {
    put_varint(out, c.len() as u64);
    for attr in c.iter() {
        let name = attr.name_str();
        match WELL_KNOWN.iter().position(|w| *w == name) {
            Some(k) => put_varint(out, k as u64 + 1),
            None => {
                out.push(0);
                put_str(out, name);
            }
        }
        match attr.value() {
            ValueRef::Str(v) => {
                out.push(VALUE_STR);
                put_str(out, v);
            }
            ValueRef::List(list) => {
                out.push(VALUE_LIST);
                put_varint(out, list.len() as u64);
                for v in list.strs() {
                    put_str(out, v);
                }
            }
        }
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord(pub String);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, BadRecord> {
        let b = *self
            .b
            .get(self.pos)
            .ok_or_else(|| BadRecord("the record ends early".into()))?;
        self.pos += 1;
        Ok(b)
    }

    /// The next session id, which shares a prefix with the one before (`id`).
    fn id(&mut self, id: &mut String) -> Result<(), BadRecord> {
        let shared = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        if shared > id.len() || !id.is_char_boundary(shared) {
            return Err(BadRecord(
                "a session id shares more than the one before".into(),
            ));
        }
        id.truncate(shared);
        id.push_str(self.str()?);
        Ok(())
    }

    fn count(&mut self) -> Result<usize, BadRecord> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        // Every counted item takes at least one byte: a larger count is a damaged record.
        if n > self.b.len() - self.pos {
            return Err(BadRecord(
                "a count in the record is larger than the record".into(),
            ));
        }
        Ok(n)
    }

    fn credential(&mut self, builder: &mut CredentialBuilder) -> Result<Credential, BadRecord> {
        builder.clear();
        let dup = |e: crate::credential::DuplicateAttr| BadRecord(e.to_string());
        for _ in 0..self.count()? {
            let name = match usize::try_from(self.varint()?).unwrap_or(usize::MAX) {
                0 => self.str()?,
                k => WELL_KNOWN
                    .get(k - 1)
                    .copied()
                    .ok_or_else(|| BadRecord(format!("unknown attribute name code {k}")))?,
            };
            match self.byte()? {
                VALUE_STR => builder.push_str(name, self.str()?).map_err(dup)?,
                VALUE_LIST => {
                    let n = self.count()?;
                    let mut values = Vec::with_capacity(n);
                    for _ in 0..n {
                        values.push(self.str()?);
                    }
                    builder.push_list(name, values).map_err(dup)?;
                }
                t => return Err(BadRecord(format!("unknown value kind {t}"))),
            }
        }
        Ok(builder.build())
    }

    fn varint(&mut self) -> Result<u64, BadRecord> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| BadRecord("the record ends inside a number".into()))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BadRecord("a number in the record is too long".into()))
    }

    fn str(&mut self) -> Result<&'a str, BadRecord> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| BadRecord("the record ends inside a string".into()))?;
        let s = std::str::from_utf8(&self.b[self.pos..end])
            .map_err(|_| BadRecord("a string in the record is not UTF-8".into()))?;
        self.pos = end;
        Ok(s)
    }
}

/// Encodes a user's sessions (all of one realm) with a new `nonce`.
pub fn encode(nonce: [u8; NONCE], sessions: &[Session], names: &Names) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sessions.len() * 64);
    out.extend_from_slice(&nonce);
    out.push(VERSION);
    let first = &sessions[0];
    put_str(&mut out, names.realm_name(first.realm));
    put_str(&mut out, &first.user);
    let mut table: Vec<&str> = Vec::new();
    let mut creds: Vec<&Credential> = Vec::new();
    let mut refs = Vec::with_capacity(sessions.len());
    for s in sessions {
        let c = creds
            .iter()
            .position(|c| Credential::ptr_eq(c, &s.credential) || **c == s.credential)
            .unwrap_or_else(|| {
                creds.push(&s.credential);
                creds.len() - 1
            });
        let rs = index_of(&mut table, names.replica_set_name(s.replica_set));
        let server = index_of(&mut table, names.server_name(s.server));
        refs.push((c, rs, server));
    }
    put_varint(&mut out, table.len() as u64);
    for n in &table {
        put_str(&mut out, n);
    }
    put_varint(&mut out, creds.len() as u64);
    for c in creds {
        put_credential(&mut out, c);
    }
    put_varint(&mut out, sessions.len() as u64);
    let mut previous: &str = "";
    for (s, (c, rs, server)) in sessions.iter().zip(refs) {
        let shared = common_prefix(previous, &s.id);
        put_varint(&mut out, shared as u64);
        put_str(&mut out, &s.id[shared..]);
        previous = &s.id;
        put_str(&mut out, if s.user == first.user { "" } else { &s.user });
        put_varint(&mut out, rs as u64);
        put_varint(&mut out, server as u64);
        put_varint(&mut out, zigzag(s.created));
        put_varint(&mut out, zigzag(s.last_access));
        put_varint(&mut out, s.last_refresh.map_or(0, |t| zigzag(t) + 1));
        put_varint(&mut out, c as u64);
    }
    out
}

/// The position of `name` in `table`, added when new.
fn index_of<'a>(table: &mut Vec<&'a str>, name: &'a str) -> usize {
    table.iter().position(|t| *t == name).unwrap_or_else(|| {
        table.push(name);
        table.len() - 1
    })
}

/// The length of the longest common prefix of two strings that ends on a char boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (0..=n).rev().find(|i| b.is_char_boundary(*i)).unwrap_or(0)
}

/// The nonce of a stored record.
pub fn nonce_of(bytes: &[u8]) -> Option<[u8; NONCE]> {
    bytes.get(..NONCE)?.try_into().ok()
}

/// Decodes a record; sessions that shared a credential share it again. `seq` numbers the
/// sessions from `first_seq`.
pub fn decode(bytes: &[u8], names: &Names, first_seq: u64) -> Result<Vec<Session>, BadRecord> {
    if bytes.len() <= NONCE || bytes[NONCE] != VERSION {
        return Err(BadRecord(
            "not a smsrefresh record of layout version 1".into(),
        ));
    }
    let mut r = Reader {
        b: bytes,
        pos: NONCE + 1,
    };
    let realm_name = r.str()?;
    let realm: RealmId = names
        .realm(realm_name)
        .ok_or_else(|| BadRecord(format!("the realm `{realm_name}` is not in topology.yaml")))?;
    let user: CompactString = r.str()?.into();
    let mut table = Vec::new();
    for _ in 0..r.count()? {
        table.push(r.str()?);
    }
    let name = |i: u64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| table.get(i).copied())
            .ok_or_else(|| BadRecord("a session names a name the record lacks".into()))
    };
    let mut builder = CredentialBuilder::with_capacity(16, 512);
    let mut creds = Vec::new();
    for _ in 0..r.count()? {
        creds.push(r.credential(&mut builder)?);
    }
    let n = r.count()?;
    let mut out: Vec<Session> = Vec::with_capacity(n);
    let mut id = String::new();
    for i in 0..n as u64 {
        r.id(&mut id)?;
        let own_user = r.str()?;
        let rs = name(r.varint()?)?;
        let server = name(r.varint()?)?;
        let replica_set = names.replica_set_in(rs, realm).ok_or_else(|| {
            BadRecord(format!(
                "the replica set `{rs}` is not in realm `{realm_name}`"
            ))
        })?;
        let server = names
            .server(server)
            .ok_or_else(|| BadRecord(format!("the server `{server}` is not in topology.yaml")))?;
        let created = unzigzag(r.varint()?);
        let last_access = unzigzag(r.varint()?);
        let last_refresh = match r.varint()? {
            0 => None,
            v => Some(unzigzag(v - 1)),
        };
        let ci = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
        let credential = creds
            .get(ci)
            .cloned()
            .ok_or_else(|| BadRecord("a session names a credential the record lacks".into()))?;
        out.push(Session {
            seq: first_seq + i,
            id: id.as_str().into(),
            user: if own_user.is_empty() {
                user.clone()
            } else {
                own_user.into()
            },
            realm,
            replica_set,
            server,
            created,
            last_access,
            last_refresh,
            credential,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ReplicaSetId, ServerId};

    fn names() -> Names {
        Names::new(
            vec!["ibm.com".into(), "other".into()],
            vec![("rs1".into(), RealmId(0)), ("rs2".into(), RealmId(1))],
            vec!["web1".into(), "web2".into()],
        )
    }

    fn session(id: &str, user: &str, cred: &Credential, refresh: Option<i64>) -> Session {
        Session {
            seq: 0,
            id: id.into(),
            user: user.into(),
            realm: RealmId(0),
            replica_set: ReplicaSetId(0),
            server: ServerId(1),
            created: -5,
            last_access: 1_700_000_000,
            last_refresh: refresh,
            credential: cred.clone(),
        }
    }

    #[test]
    fn round_trips_and_shares_credentials() {
        let a: Credential =
            serde_json::from_str(r#"{"AZN_CRED_GROUPS":["g1","g2"],"mail":"j@x"}"#).unwrap();
        let b: Credential = serde_json::from_str(r#"{"AZN_CRED_GROUPS":[]}"#).unwrap();
        let sessions = vec![
            session("s1", "JohnQ", &a, None),
            session("s2", "johnq", &a, Some(0)),
            session("s3", "JohnQ", &b, Some(-1)),
        ];
        let n = names();
        let bytes = encode([7; NONCE], &sessions, &n);
        assert_eq!(nonce_of(&bytes), Some([7; NONCE]));
        let back = decode(&bytes, &n, 0).unwrap();
        let mut want = sessions.clone();
        for (i, s) in want.iter_mut().enumerate() {
            s.seq = i as u64;
        }
        assert_eq!(back, want);
        assert!(Credential::ptr_eq(&back[0].credential, &back[1].credential));
        // The shared credential is written once, its well-known names as one byte each.
        let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"j@x"), 1);
        assert_eq!(count(b"AZN_CRED_GROUPS"), 0);
        assert_eq!(count(b"mail"), 1);
        // Ids after the first share their prefix.
        assert_eq!(count(b"s2"), 0);
    }

    #[test]
    fn truncated_or_foreign_records_are_errors() {
        let a: Credential = serde_json::from_str(r#"{"x":"y"}"#).unwrap();
        let n = names();
        let bytes = encode([1; NONCE], &[session("s1", "u", &a, None)], &n);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], &n, 0).is_err(), "cut at {cut}");
        }
        let other = Names::new(vec!["x".into()], vec![], vec![]);
        assert!(decode(&bytes, &other, 0).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_sessions_round_trip_and_damage_never_panics(
            ids in proptest::collection::vec("[a-zé_0-9]{0,12}", 1..6),
            user in "[A-Za-zÀ-ÿ ]{1,10}",
            times in proptest::collection::vec(proptest::num::i64::ANY, 3),
            attrs in proptest::collection::btree_map("(AZN_CRED_GROUPS|mail|[a-z]{1,6})", proptest::collection::vec("[^\\u{0}]{0,6}", 0..4), 0..5),
            cut in 0usize..400,
            flip in proptest::num::u8::ANY,
        ) {
            let mut b = CredentialBuilder::with_capacity(8, 64);
            for (k, v) in &attrs {
                if v.len() == 1 {
                    b.push_str(k, &v[0]).unwrap();
                } else {
                    b.push_list(k, v.iter().map(String::as_str)).unwrap();
                }
            }
            let cred = b.build();
            let mut sessions: Vec<Session> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut s = session(&format!("{id}{i}"), &user, &cred, Some(times[2]));
                    s.created = times[0];
                    s.last_access = times[1];
                    s.seq = i as u64;
                    s
                })
                .collect();
            sessions[0].last_refresh = None;
            let n = names();
            let bytes = encode([3; NONCE], &sessions, &n);
            proptest::prop_assert_eq!(decode(&bytes, &n, 0).unwrap(), sessions);
            let mut damaged = bytes.clone();
            let at = cut % damaged.len();
            damaged[at] ^= flip;
            let _ = decode(&damaged, &n, 0);
            let _ = decode(&bytes[..at], &n, 0);
        }
    }
}
