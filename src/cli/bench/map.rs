//! The tuned sharded map of reference/perf-anchors.md, measured in the bench's own process
//! (issue 24): the machine's speed drifts from day to day by more than any change of ours, so
//! the headline's "vs the map" is a ratio to this map run on the same machine in the same
//! command, not to the figure measured once.
//!
//! As the anchor describes it: 64 shards behind `parking_lot::RwLock`, each a hash map of
//! sessions by id plus an index from (user, realm) to its session ids; a compact credential
//! (group and attribute names as numbers) shared by a user's sessions; a refresh finds the
//! user's sessions through the index, builds one new credential (10 groups, 8 attributes)
//! and swaps it into each session, on the rayon pool, in a random order of users.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::FixedState;
use parking_lot::RwLock;
use rayon::prelude::*;
use smallvec::SmallVec;

const SHARDS: usize = 64;

type Map<K, V> = HashMap<K, V, FixedState>;

/// A compact credential: names and values as numbers.
struct Credential {
    groups: Vec<u32>,
    attributes: Vec<(u32, u32)>,
}

struct Session {
    _created: i64,
    credential: Arc<Credential>,
}

#[derive(Default)]
struct Shard {
    sessions: Map<u64, Session>,
    users: Map<u64, SmallVec<[u64; 4]>>,
}

fn credential(user: u64, version: u32) -> Arc<Credential> {
    let u = u32::try_from(user % 1_000_000).unwrap_or(0);
    Arc::new(Credential {
        groups: (0..10)
            .map(|g| u.wrapping_mul(31).wrapping_add(g + version) % 1000)
            .collect(),
        attributes: (0..8).map(|a| (a, u.wrapping_add(a + version))).collect(),
    })
}

/// SplitMix64: the same shuffle on any machine.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The map's refresh rate (sessions per second, the median of `runs`) for `users` (user,
/// realm) entries holding `sessions` sessions in all.
pub fn sessions_per_s(users: u64, sessions: u64, runs: usize) -> f64 {
    measure(users, sessions, runs).1
}

/// The sessions one refresh of every user reached, and the median rate.
fn measure(users: u64, sessions: u64, runs: usize) -> (u64, f64) {
    let users = users.max(1);
    let shards: Vec<RwLock<Shard>> = (0..SHARDS).map(|_| RwLock::default()).collect();
    let shard_of = |u: u64| (mix(u) % SHARDS as u64) as usize;
    let mut id = 0u64;
    for u in 0..users {
        let n = sessions * (u + 1) / users - sessions * u / users;
        let mut shard = shards[shard_of(u)].write();
        let cred = credential(u, 0);
        let mut ids = SmallVec::new();
        for _ in 0..n {
            shard.sessions.insert(
                id,
                Session {
                    _created: 1_795_737_600,
                    credential: cred.clone(),
                },
            );
            ids.push(id);
            id += 1;
        }
        shard.users.insert(u, ids);
    }
    let mut order: Vec<u64> = (0..users).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (mix(i as u64) % (i as u64 + 1)) as usize);
    }
    let mut rates = Vec::with_capacity(runs.max(1));
    let mut reached = 0;
    for run in 0..runs.max(1) {
        let version = u32::try_from(run + 1).unwrap_or(1);
        let t = Instant::now();
        let refreshed: u64 = order
            .par_chunks(4096)
            .map(|chunk| {
                let mut n = 0u64;
                for &u in chunk {
                    let mut shard = shards[shard_of(u)].write();
                    let Shard { sessions, users } = &mut *shard;
                    let fresh = credential(u, version);
                    for sid in users.get(&u).into_iter().flatten() {
                        if let Some(s) = sessions.get_mut(sid) {
                            s.credential = fresh.clone();
                            n += 1;
                        }
                    }
                }
                n
            })
            .sum();
        rates.push(refreshed as f64 / t.elapsed().as_secs_f64().max(1e-9));
        reached = refreshed;
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    // Read what was written, so that none of it is optimised away.
    std::hint::black_box(
        shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .sessions
                    .values()
                    .map(|x| x.credential.groups.len() + x.credential.attributes.len())
                    .collect::<Vec<_>>()
            })
            .sum::<usize>(),
    );
    (reached, median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_refreshes_every_session_once_per_run() {
        for (users, sessions) in [(4, 10), (1000, 2999), (7, 7)] {
            let (reached, rate) = measure(users, sessions, 2);
            assert_eq!(reached, sessions);
            assert!(rate.is_finite() && rate > 0.0);
        }
    }
}
