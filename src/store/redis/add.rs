//! `store import --add`: the sessions of a site that a store already holding an import lacks
//! (by session id) are added beside what it holds — the sessions that logged in since the
//! last import — without replacing anything.
//!
//! Each new session's index entry is written before its record changes, and an entry that
//! already names the session's own user counts as new again: so a second `--add` of the same
//! file after an interrupted one finishes it, and never leaves a session its index cannot
//! find. A session whose id the index gives to another user is left out (ids are unique in
//! a site).

use std::collections::HashMap;

use super::RedisStore;
use super::nodes::Keyed;
use super::update::Change;
use crate::ids::UserKey;
use crate::session::Session;
use crate::store::StoreError;

/// What `store import --add` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    /// Sessions written into the store.
    pub added: u64,
    /// Sessions the store already held (by id, under the same user).
    pub present: u64,
    /// Sessions left out because the store gives their id to another user.
    pub elsewhere: u64,
}

impl RedisStore {
    /// Adds the sessions of `sessions` that the store lacks; imports them all into a store
    /// that holds no import yet.
    pub fn add(&mut self, sessions: &[Session]) -> Result<Added, StoreError> {
        if let Some(e) = self.foreign.take() {
            return Err(e);
        }
        if !self.imported {
            self.import(sessions)?;
            self.imported = true;
            return Ok(Added {
                added: sessions.len() as u64,
                ..Added::default()
            });
        }
        let names = self.names.clone();
        self.assign_codes(
            sessions.iter().map(|s| names.realm_name(s.realm)),
            sessions.iter().map(|s| &*s.id),
        )?;
        let tag_of = |s: &Session| self.tag(s.realm, &UserKey::of(&s.user));
        let ids: Vec<&str> = sessions.iter().map(|s| &*s.id).collect();
        let indexed = self.tags_of(&ids);
        let mut counts = Added::default();
        // Record key -> the sessions to add to it, in the file's order.
        let mut groups: Vec<(String, Vec<&Session>)> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut entries: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (s, indexed) in sessions.iter().zip(indexed) {
            let tag = tag_of(s);
            match indexed? {
                Some(other) if other != tag => {
                    counts.elsewhere += 1;
                    continue;
                }
                Some(_) => {}
                None => entries
                    .entry(self.layout.bucket(&s.id))
                    .or_default()
                    .push((self.codes.field(&s.id).unwrap_or_default(), tag.clone())),
            }
            let key = self.layout.record(&tag);
            let g = *by_key.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(s);
        }
        let writes: Vec<Keyed> = entries
            .iter()
            .map(|(bucket, pairs)| {
                pairs
                    .iter()
                    .fold(Keyed::new("HSET", bucket), |c, (id, tag)| {
                        c.arg(id).arg(tag)
                    })
            })
            .collect();
        self.run_all(&writes)?;
        let keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
        let changes = self.update(&keys, &|g, mut held: Vec<Session>| {
            let before = held.len();
            for s in &groups[g].1 {
                if !held.iter().any(|h| h.id == s.id) {
                    held.push((*s).clone());
                }
            }
            let added = held.len() - before;
            Change {
                value: (added, groups[g].1.len() - added),
                sessions: (added > 0).then_some(held),
            }
        });
        for change in changes {
            let (added, present) = change?;
            counts.added += added as u64;
            counts.present += present as u64;
        }
        Ok(counts)
    }
}
