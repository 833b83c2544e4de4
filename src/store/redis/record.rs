//! A user's record: every session of one (realm, user), in one Redis string, with each
//! distinct credential written once (a user's sessions usually share one).
//!
//! ```text
//! nonce        8 bytes, new on every write (the compare-and-set token)
//! version      1 byte = 1
//! realm        str                      the realm as the topology spells it
//! user         str                      the user as the first session spells it
//! credentials  varint n, n × str        each a credential as JSON (sessions.jsonl's form)
//! sessions     varint n, n × session
//! session      str id, str user (empty: as above), str replica_set, str server,
//!              varint created, varint last_access, varint last_refresh (0: none),
//!              varint credential index
//! str          varint length, UTF-8 bytes
//! ```
//! Times are Unix seconds, zigzag-encoded (`last_refresh` as zigzag + 1); varints are
//! LEB128.

use std::sync::Arc;

use super::names::Names;
use crate::credential::Credential;
use crate::ids::RealmId;
use crate::session::Session;

pub const NONCE: usize = 8;
const VERSION: u8 = 1;

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
    let mut creds: Vec<&Credential> = Vec::new();
    let mut index = Vec::with_capacity(sessions.len());
    for s in sessions {
        let i = creds
            .iter()
            .position(|c| Credential::ptr_eq(c, &s.credential) || **c == s.credential)
            .unwrap_or_else(|| {
                creds.push(&s.credential);
                creds.len() - 1
            });
        index.push(i);
    }
    put_varint(&mut out, creds.len() as u64);
    for c in creds {
        let json = serde_json::to_string(c).unwrap_or_else(|_| "{}".into());
        put_str(&mut out, &json);
    }
    put_varint(&mut out, sessions.len() as u64);
    for (s, ci) in sessions.iter().zip(index) {
        put_str(&mut out, &s.id);
        put_str(&mut out, if s.user == first.user { "" } else { &s.user });
        put_str(&mut out, names.replica_set_name(s.replica_set));
        put_str(&mut out, names.server_name(s.server));
        put_varint(&mut out, zigzag(s.created));
        put_varint(&mut out, zigzag(s.last_access));
        put_varint(&mut out, s.last_refresh.map_or(0, |t| zigzag(t) + 1));
        put_varint(&mut out, ci as u64);
    }
    out
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
    let user: Arc<str> = r.str()?.into();
    let n_creds = r.varint()?;
    let mut creds = Vec::new();
    for _ in 0..n_creds {
        let c: Credential = serde_json::from_str(r.str()?)
            .map_err(|e| BadRecord(format!("a credential in the record: {e}")))?;
        creds.push(c);
    }
    let n = r.varint()?;
    let mut out = Vec::new();
    for i in 0..n {
        let id = r.str()?;
        let own_user = r.str()?;
        let rs = r.str()?;
        let server = r.str()?;
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
            id: id.into(),
            user: if own_user.is_empty() {
                (*user).into()
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
        // The shared credential is written once.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            bytes
                .windows(json.len())
                .filter(|w| *w == json.as_bytes())
                .count(),
            1
        );
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
}
