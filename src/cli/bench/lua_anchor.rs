//! The Lua-per-user anchor of reference/perf-anchors.md, measured by `bench --store` on the
//! same `redis-server` between its own runs (issue 24): what a capable user builds with a
//! standard tool, so "over the anchor" is a ratio on this server today, not to a figure
//! measured once elsewhere.
//!
//! The anchor's model (reference/anchors/redis_workload.py, there for 100k generated users,
//! here for the site's own (user, realm) entries and session counts): each session a hash
//! {user, realm, created, last_access, cred} with a ≈ 430-byte credential text, each user a
//! set of its session ids; a refresh is one `EVALSHA` per user (`SMEMBERS`, then `HSET` of
//! every session's `cred` and `last_access`), 1,000 calls per pipeline, one pipeline at a
//! time. Its keys live under `PREFIX` + `anchor:` and are removed after each measurement.
//! A standalone server only: the model's keys do not share slots.

use std::time::{Duration, Instant};

use redis::{Commands, Connection};

/// The anchor's script, as the reference has it (the session keys' prefix passed in).
const SCRIPT: &str = "local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do
  redis.call('HSET', ARGV[3] .. id, 'cred', ARGV[1], 'last_access', ARGV[2])
end
return #ids";

const GROUPS: [&str; 16] = [
    "employees",
    "engineering",
    "cloud-platform",
    "security-admins",
    "vpn-users",
    "wiki-editors",
    "build-farm",
    "release-managers",
    "hr-readers",
    "finance-approvers",
    "oncall-primary",
    "oncall-secondary",
    "db-operators",
    "support-tier2",
    "auditors",
    "contractors",
];

/// The reference's credential text (≈ 430 bytes).
fn cred_text(user: &str, realm: &str, version: u32, salt: usize) -> String {
    let groups: Vec<&str> = (0..10).map(|g| GROUPS[(salt + g * 3) % 16]).collect();
    format!(
        "v={version};user={user};realm={realm};groups={};AZN_CRED_AUTH_METHOD=password;\
         AZN_CRED_AUTHZN_ID=primary;tagvalue_session_lifetime=3600;tagvalue_login_user_name=x;\
         AZN_CRED_QOP_INFO=SSK: TLSV12: 2F;AZN_CRED_NETWORK_ADDRESS_STR=10.20.30.40;\
         mail={user}@{realm};AZN_CRED_PRINCIPAL_DN=cn={user},ou=people,dc={realm}",
        groups.join(",")
    )
}

/// A connection to a standalone server's database, from a store URL (its query dropped):
/// `None` when the URL is not one the anchor can use (a cluster, a private CA).
pub fn connect(url: &str) -> Option<Connection> {
    if url.contains('?') || url.to_ascii_lowercase().contains("+cluster") {
        return None;
    }
    let client = redis::Client::open(url).ok()?;
    client
        .get_connection_with_timeout(Duration::from_secs(10))
        .ok()
}

/// Loads the model for `users` — (user, realm, sessions) — runs one refresh of every user,
/// removes the model, and returns the sessions refreshed and the refresh's time.
pub fn measure(
    con: &mut Connection,
    prefix: &str,
    users: &[(String, String, usize)],
) -> redis::RedisResult<(u64, Duration)> {
    let base = format!("{prefix}anchor:");
    let user_key = |i: usize| format!("{base}user:{i}");
    let sess = format!("{base}sess:");
    let mut id = 0usize;
    for (chunk_start, chunk) in users.chunks(1000).enumerate() {
        let mut p = redis::pipe();
        for (j, (user, realm, n)) in chunk.iter().enumerate() {
            let i = chunk_start * 1000 + j;
            let cred = cred_text(user, realm, 0, i);
            let ids: Vec<usize> = (id..id + n).collect();
            id += n;
            p.cmd("SADD").arg(user_key(i)).arg(&ids).ignore();
            for s in ids {
                p.cmd("HSET")
                    .arg(format!("{sess}{s}"))
                    .arg(&[("user", user.as_str()), ("realm", realm.as_str())])
                    .arg(&[("created", 1), ("last_access", 1)])
                    .arg("cred")
                    .arg(&cred)
                    .ignore();
            }
        }
        p.query::<()>(con)?;
    }
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(SCRIPT).query(con)?;
    let now = smsrefresh::time::now();
    let t = Instant::now();
    let mut refreshed = 0u64;
    for (chunk_start, chunk) in users.chunks(1000).enumerate() {
        let mut p = redis::pipe();
        for (j, (user, realm, _)) in chunk.iter().enumerate() {
            let i = chunk_start * 1000 + j;
            p.cmd("EVALSHA")
                .arg(&sha)
                .arg(1)
                .arg(user_key(i))
                .arg(cred_text(user, realm, 3, i + 3))
                .arg(now)
                .arg(&sess);
        }
        let counts: Vec<u64> = p.query(con)?;
        refreshed += counts.iter().sum::<u64>();
    }
    let took = t.elapsed();
    let keys: Vec<String> = con
        .scan_match::<_, String>(format!("{base}*"))?
        .collect::<redis::RedisResult<_>>()?;
    for chunk in keys.chunks(1000) {
        let _: () = con.unlink(chunk)?;
    }
    Ok((refreshed, took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_text_is_the_references_size_and_varies_by_version() {
        let c = cred_text("user0000001", "realm1.example.com", 0, 1);
        assert!((380..520).contains(&c.len()), "{}", c.len());
        assert_ne!(c, cred_text("user0000001", "realm1.example.com", 3, 4));
        assert!(connect("redis+cluster://127.0.0.1:1").is_none());
        assert!(connect("redis://127.0.0.1:1/0?prefix=x:").is_none());
    }
}
