//! The Redis nodes a store talks to: one server, or a cluster's primaries with the slot map
//! that says which primary owns each key; pooled connections; pipelined batches routed by
//! slot, with the cluster's redirections (MOVED, ASK), a failover in progress and lost
//! connections retried until the store timeout.
//!
//! A batch's commands go out as one pipeline per node (in slices of [`PIPELINE`]), the
//! slices in parallel on the caller's rayon pool, the replies back in the batch's order.
//! After a slice of writes, `WAIT 1` asks for a replica's acknowledgement when the primary
//! has replicas (contract §11: no write is `ok` that a failover could lose).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use redis::{Cmd, Connection, ConnectionInfo, ConnectionLike, RedisError, ServerErrorKind, Value};

use super::keys::{SLOTS, slot};
use super::target::Target;
use crate::store::StoreError;

/// Commands per pipeline slice.
pub const PIPELINE: usize = 512;

/// The function library every primary holds (docs/redis.md): a compare-and-set of a user's
/// record on its nonce, so a record computed from a stale read is never written.
pub const LIBRARY: &str = r"#!lua name=smsrefresh_1
redis.register_function('smsrefresh_cas_1', function(keys, args)
  local current = redis.call('GETRANGE', keys[1], 0, 7)
  if current ~= args[1] then return 0 end
  if args[2] == '' then
    redis.call('DEL', keys[1])
  else
    redis.call('SET', keys[1], args[2])
  end
  return 1
end)
";

/// One primary.
pub struct Node {
    pub addr: String,
    pub info: ConnectionInfo,
    pub replicas: usize,
}

/// Which node owns each slot.
pub struct SlotMap {
    pub nodes: Vec<Node>,
    owner: Vec<u16>,
}

impl SlotMap {
    fn node_of(&self, slot: u16) -> Option<usize> {
        let owner = *self.owner.get(usize::from(slot))?;
        (owner != u16::MAX).then_some(usize::from(owner))
    }
}

/// What became of one command of a batch.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok(Value),
    /// The connection broke after the command was sent: it may or may not have run.
    Lost(String),
    /// It ran, but no replica acknowledged it in time.
    Unreplicated(String),
    /// It did not run (the store stayed unreachable until the timeout), or the server
    /// refused it.
    Failed(String),
}

impl Reply {
    /// The reply's value, or why there is none.
    pub fn value(self) -> Result<Value, String> {
        match self {
            Reply::Ok(v) => Ok(v),
            Reply::Lost(why) | Reply::Unreplicated(why) | Reply::Failed(why) => Err(why),
        }
    }
}

/// A command and the slot of the key that routes it.
pub struct Keyed {
    slot: u16,
    pub cmd: Cmd,
}

impl Keyed {
    /// `name key args…`, routed by `key`.
    pub fn new(name: &str, key: &str) -> Self {
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        Self {
            slot: slot(key.as_bytes()),
            cmd,
        }
    }

    /// A command whose key is not its first argument (`FCALL f 1 KEY …`).
    pub fn routed(key: &str, cmd: Cmd) -> Self {
        Self {
            slot: slot(key.as_bytes()),
            cmd,
        }
    }

    /// Adds an argument after the key.
    pub fn arg(mut self, a: impl redis::ToRedisArgs) -> Self {
        self.cmd.arg(a);
        self
    }
}

/// A store's nodes and connections.
pub struct Nodes {
    pub target: Target,
    map: RwLock<Arc<SlotMap>>,
    pool: Mutex<HashMap<String, Vec<Connection>>>,
    /// Since when no node has answered at all (every slice of every round broke), if that
    /// is so now. Every batch waits for the store only until this plus the store timeout:
    /// a whole cluster gone fails each later batch after one quick try instead of making
    /// each wait the full timeout again (contract §11: a lost store gives error results
    /// within the store timeout, and the run ends).
    unreachable_since: Mutex<Option<Instant>>,
}

fn reason(e: &RedisError) -> String {
    e.to_string()
}

/// Why a connection could not be made, with what to check (contract §11: a server that
/// wants a password, and `rediss://` to a port that does not speak TLS, are named as such).
fn explain(target: &Target, info: &ConnectionInfo, e: &RedisError) -> String {
    let text = e.to_string();
    let addr = addr_of(info);
    if e.code() == Some("NOAUTH") || text.contains("NOAUTH") {
        return format!(
            "{addr}: the server wants a password ({text}); give it in the URL as `redis://:PASSWORD@HOST:PORT` (or `USER:PASSWORD@`), or in {}",
            super::target::PASSWORD_ENV
        );
    }
    if text.contains("WRONGPASS") || e.kind() == redis::ErrorKind::AuthenticationFailed {
        return format!(
            "{addr}: the server refused the user name or password ({text}); check the URL's `USER:PASSWORD@` or {}",
            super::target::PASSWORD_ENV
        );
    }
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    if untrusted(info, e) {
        let against = target.ca.as_ref().map_or_else(
            || "the system's root certificates".to_string(),
            |ca| format!("the CA in {}", ca.display()),
        );
        return format!(
            "{addr}: the server's TLS certificate does not verify against {against} ({text}); give the CA that signed it with `?ca=PATH` in the URL or {}, and check that the certificate names the address used",
            super::target::CA_ENV
        );
    }
    if tls && e.is_timeout() {
        return format!(
            "{addr}: the TLS handshake got no answer within {:?}: does the server speak TLS on this port? `rediss://` needs the server's TLS port (redis-server --tls-port); a plain port is `redis://`",
            target.timeout
        );
    }
    format!("{addr}: {text}")
}

/// Whether TLS refused the server's certificate.
fn untrusted(info: &ConnectionInfo, e: &RedisError) -> bool {
    let text = e.to_string();
    matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. })
        && (text.contains("certificate") || text.contains("Certificate"))
}

/// The error that stops a store from being opened: untrusted (its certificate) or
/// unavailable (anything else), with what to check.
fn refusal(target: &Target, info: &ConnectionInfo, e: &RedisError) -> StoreError {
    let reason = explain(target, info, e);
    if untrusted(info, e) {
        return StoreError::Untrusted {
            location: target.location.clone(),
            reason,
        };
    }
    target.unavailable(reason)
}

fn addr_of(info: &ConnectionInfo) -> String {
    match info.addr() {
        redis::ConnectionAddr::Tcp(h, p)
        | redis::ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => {
            format!("{h}:{p}")
        }
        other => format!("{other:?}"),
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// What to do with a server error in a reply.
enum Redirect {
    Moved,
    Ask(String),
    Later,
    NoFunction,
}

fn redirect(e: &redis::ServerError) -> Option<Redirect> {
    match e.kind() {
        Some(ServerErrorKind::Moved) => Some(Redirect::Moved),
        Some(ServerErrorKind::Ask) => e
            .details()
            .and_then(|d| d.split_whitespace().nth(1))
            .map(|a| Redirect::Ask(a.to_string())),
        Some(
            ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly,
        ) => Some(Redirect::Later),
        _ if e
            .details()
            .is_some_and(|d| d.contains("Function not found")) =>
        {
            Some(Redirect::NoFunction)
        }
        _ => None,
    }
}

impl Nodes {
    /// Connects (contract §11: a store that cannot be reached, refuses the password or
    /// lacks the database fails here), reads the slot map and loads the function library on
    /// every primary.
    pub fn connect(target: Target) -> Result<Self, StoreError> {
        let map = Self::read_map(&target)?;
        let nodes = Self {
            target,
            map: RwLock::new(Arc::new(map)),
            pool: Mutex::new(HashMap::new()),
            unreachable_since: Mutex::new(None),
        };
        let map = nodes.map.read().clone();
        for node in &map.nodes {
            nodes
                .load_library(node)
                .map_err(|e| refusal(&nodes.target, &node.info, &e))?;
        }
        Ok(nodes)
    }

    pub fn map(&self) -> Arc<SlotMap> {
        self.map.read().clone()
    }

    fn open(target: &Target, info: &ConnectionInfo) -> Result<Connection, RedisError> {
        let con = redis::Client::open(info.clone())?.get_connection_with_timeout(target.timeout)?;
        // WAIT blocks up to the timeout; the socket waits a little longer than that.
        con.set_read_timeout(Some(target.timeout + Duration::from_secs(2)))?;
        con.set_write_timeout(Some(target.timeout))?;
        Ok(con)
    }

    fn read_map(target: &Target) -> Result<SlotMap, StoreError> {
        let mut last = target.unavailable("no seed node");
        for seed in &target.seeds {
            match Self::map_from(target, seed) {
                Ok(m) => return Ok(m),
                Err(e) => last = refusal(target, seed, &e),
            }
        }
        Err(last)
    }

    fn map_from(target: &Target, seed: &ConnectionInfo) -> Result<SlotMap, RedisError> {
        let mut con = Self::open(target, seed)?;
        if !target.cluster {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut con)?;
            let replicas = info
                .lines()
                .find_map(|l| l.strip_prefix("connected_slaves:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            return Ok(SlotMap {
                nodes: vec![Node {
                    addr: addr_of(seed),
                    info: seed.clone(),
                    replicas,
                }],
                owner: vec![0; SLOTS],
            });
        }
        let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con)?;
        let seed_host = addr_of(seed).rsplit_once(':').map(|(h, _)| h.to_string());
        Ok(Self::parse_slots(
            target,
            &slots,
            seed_host.as_deref().unwrap_or(""),
        ))
    }

    fn parse_slots(target: &Target, slots: &Value, seed_host: &str) -> SlotMap {
        let mut map = SlotMap {
            nodes: Vec::new(),
            owner: vec![u16::MAX; SLOTS],
        };
        let Value::Array(ranges) = slots else {
            return map;
        };
        for range in ranges {
            let Value::Array(parts) = range else { continue };
            let (Some(start), Some(end)) = (
                parts.first().and_then(as_int),
                parts.get(1).and_then(as_int),
            ) else {
                continue;
            };
            let Some(Value::Array(primary)) = parts.get(2) else {
                continue;
            };
            let host = primary
                .first()
                .and_then(as_text)
                .filter(|h| !h.is_empty() && h != "?")
                .unwrap_or_else(|| seed_host.to_string());
            let Some(port) = primary.get(1).and_then(as_int) else {
                continue;
            };
            let addr = format!("{host}:{port}");
            let index = map
                .nodes
                .iter()
                .position(|n| n.addr == addr)
                .unwrap_or_else(|| {
                    map.nodes.push(Node {
                        info: target.node(&host, u16::try_from(port).unwrap_or(0)),
                        addr,
                        replicas: 0,
                    });
                    map.nodes.len() - 1
                });
            map.nodes[index].replicas = map.nodes[index].replicas.max(parts.len() - 3);
            let (start, end) = (start.clamp(0, 16383) as usize, end.clamp(0, 16383) as usize);
            for owner in &mut map.owner[start..=end] {
                *owner = u16::try_from(index).unwrap_or(u16::MAX);
            }
        }
        map
    }

    /// Reads the slot map again (after a redirection or a lost node); keeps the old one
    /// when no node answers.
    pub fn refresh(&self) {
        if !self.target.cluster {
            return;
        }
        let old = self.map();
        let candidates = old.nodes.iter().map(|n| &n.info).chain(&self.target.seeds);
        for info in candidates {
            if let Ok(m) = Self::map_from(&self.target, info)
                && m.owner.iter().all(|o| *o != u16::MAX)
            {
                *self.map.write() = Arc::new(m);
                return;
            }
        }
    }

    fn load_library(&self, node: &Node) -> Result<(), RedisError> {
        self.with_connection(&node.addr, &node.info, |con| {
            redis::cmd("FUNCTION")
                .arg("LOAD")
                .arg("REPLACE")
                .arg(LIBRARY)
                .exec(con)
        })
    }

    /// Runs `f` on a pooled connection to `addr`; a connection that failed is dropped.
    pub fn with_connection<T>(
        &self,
        addr: &str,
        info: &ConnectionInfo,
        f: impl FnOnce(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let pooled = self.pool.lock().get_mut(addr).and_then(Vec::pop);
        let mut con = match pooled {
            Some(c) => c,
            None => Self::open(&self.target, info)?,
        };
        let out = f(&mut con);
        let broken = out
            .as_ref()
            .err()
            .is_some_and(|e| e.is_io_error() || e.is_connection_dropped() || e.is_timeout());
        if !broken {
            self.pool
                .lock()
                .entry(addr.to_string())
                .or_default()
                .push(con);
        }
        out
    }
}

thread_local! {
    /// The packing buffer of [`Nodes::send`].
    static PACKED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One slice of a batch bound for one node.
struct Slice {
    node: usize,
    ask: Option<String>,
    items: Vec<usize>,
}

/// What the replies of one round leave to do.
struct Round<'a> {
    out: &'a mut [Option<Reply>],
    /// Commands to send again, with the node an ASK named.
    pending: &'a mut Vec<(usize, Option<String>)>,
    last: &'a mut String,
    /// The slot map may be out of date.
    stale: bool,
}

/// What one slice's round trip gave.
enum SliceOutcome {
    Replies(Vec<Value>, Option<String>),
    Broken(String),
}

impl Nodes {
    /// Runs `cmds` (each routed by its key), pipelined per node, and returns one reply per
    /// command in order. `idempotent` commands are sent again after a lost connection;
    /// `wait` adds a replica acknowledgement to each slice that goes to a primary with
    /// replicas.
    pub fn run(&self, cmds: &[Keyed], idempotent: bool, wait: bool) -> Vec<Reply> {
        let since = (*self.unreachable_since.lock()).unwrap_or_else(Instant::now);
        let deadline = since + self.target.timeout;
        let mut out: Vec<Option<Reply>> = vec![None; cmds.len()];
        let mut pending: Vec<(usize, Option<String>)> =
            (0..cmds.len()).map(|i| (i, None)).collect();
        let mut pause = Duration::from_millis(20);
        let mut last = String::new();
        while !pending.is_empty() {
            let map = self.map();
            let slices = Self::slices(&map, cmds, &pending, &mut out);
            let send = |s: Slice| {
                let o = self.send(&map, cmds, &s, wait);
                (s, o)
            };
            // One slice goes out on this thread: its replies are then freed where they were
            // allocated, which keeps the allocator's pages warm.
            let done: Vec<(Slice, SliceOutcome)> = if slices.len() == 1 {
                slices.into_iter().map(send).collect()
            } else {
                slices.into_par_iter().map(send).collect()
            };
            self.note_reachability(&done);
            pending.clear();
            let mut round = Round {
                out: &mut out,
                pending: &mut pending,
                last: &mut last,
                stale: false,
            };
            for (slice, outcome) in done {
                self.absorb(&map, slice, outcome, idempotent, &mut round);
            }
            let stale = round.stale;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for (i, _) in pending.drain(..) {
                    out[i] = Some(Reply::Failed(last.clone()));
                }
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
            if stale {
                self.refresh();
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Reply::Failed("no reply".into())))
            .collect()
    }

    /// Remembers whether any node answered in a round: the first round in which none did
    /// starts the store's unreachable time, and any answer ends it.
    fn note_reachability(&self, done: &[(Slice, SliceOutcome)]) {
        if done.is_empty() {
            return;
        }
        let answered = done
            .iter()
            .any(|(_, o)| matches!(o, SliceOutcome::Replies(..)));
        let mut since = self.unreachable_since.lock();
        if answered {
            *since = None;
        } else if since.is_none() {
            *since = Some(Instant::now());
        }
    }

    /// Takes in one slice's replies: results, or commands to send again.
    fn absorb(
        &self,
        map: &SlotMap,
        slice: Slice,
        outcome: SliceOutcome,
        idempotent: bool,
        round: &mut Round<'_>,
    ) {
        let (replies, unreplicated) = match outcome {
            SliceOutcome::Broken(why) => {
                round.stale = true;
                round.last.clone_from(&why);
                for i in slice.items {
                    if idempotent {
                        round.pending.push((i, None));
                    } else {
                        round.out[i] = Some(Reply::Lost(why.clone()));
                    }
                }
                return;
            }
            SliceOutcome::Replies(replies, unreplicated) => (replies, unreplicated),
        };
        for (i, v) in slice.items.into_iter().zip(replies) {
            if let Value::ServerError(e) = &v {
                match redirect(e) {
                    Some(Redirect::Moved | Redirect::Later) => {
                        round.stale = true;
                        *round.last = e.to_string();
                        round.pending.push((i, None));
                    }
                    Some(Redirect::Ask(to)) => round.pending.push((i, Some(to))),
                    Some(Redirect::NoFunction) => {
                        round.stale = true;
                        if let Err(err) = self.load_library(&map.nodes[slice.node]) {
                            *round.last = reason(&err);
                        }
                        round.pending.push((i, None));
                    }
                    None => round.out[i] = Some(Reply::Failed(e.to_string())),
                }
                continue;
            }
            round.out[i] = Some(match &unreplicated {
                Some(why) => Reply::Unreplicated(why.clone()),
                None => Reply::Ok(v),
            });
        }
    }

    fn slices(
        map: &SlotMap,
        cmds: &[Keyed],
        pending: &[(usize, Option<String>)],
        out: &mut [Option<Reply>],
    ) -> Vec<Slice> {
        let mut by_node: HashMap<(usize, Option<String>), Vec<usize>> = HashMap::new();
        for (i, ask) in pending {
            let node = match ask {
                Some(a) => map.nodes.iter().position(|n| &n.addr == a),
                None => map.node_of(cmds[*i].slot),
            };
            match node {
                Some(n) => by_node.entry((n, ask.clone())).or_default().push(*i),
                None => {
                    out[*i] = Some(Reply::Failed(
                        "no node of the cluster serves this key's slot".into(),
                    ));
                }
            }
        }
        let mut slices = Vec::new();
        for ((node, ask), items) in by_node {
            for chunk in items.chunks(PIPELINE) {
                slices.push(Slice {
                    node,
                    ask: ask.clone(),
                    items: chunk.to_vec(),
                });
            }
        }
        slices
    }

    fn send(&self, map: &SlotMap, cmds: &[Keyed], slice: &Slice, wait: bool) -> SliceOutcome {
        let node = &map.nodes[slice.node];
        // The slice's commands packed into one buffer, written once; the replies keep each
        // command's error in place. The buffer is the thread's, reused: growing a fresh one
        // per slice costs more in page faults than the packing itself.
        PACKED.with_borrow_mut(|packed| self.send_packed(node, cmds, slice, wait, packed))
    }

    fn send_packed(
        &self,
        node: &Node,
        cmds: &[Keyed],
        slice: &Slice,
        wait: bool,
        packed: &mut Vec<u8>,
    ) -> SliceOutcome {
        packed.clear();
        let asking = slice
            .ask
            .as_ref()
            .map(|_| redis::cmd("ASKING").get_packed_command());
        for &i in &slice.items {
            if let Some(a) = &asking {
                packed.extend_from_slice(a);
            }
            cmds[i].cmd.write_packed_command(packed);
        }
        let waits = wait && node.replicas > 0;
        let wait_ms = u64::try_from(self.target.timeout.as_millis()).unwrap_or(u64::MAX);
        if waits {
            redis::cmd("WAIT")
                .arg(1)
                .arg(wait_ms)
                .write_packed_command(packed);
        }
        let count = slice.items.len() * (1 + usize::from(asking.is_some())) + usize::from(waits);
        let result = self.with_connection(&node.addr, &node.info, |con| {
            con.req_packed_commands(packed, 0, count)
        });
        match result {
            Err(e) => SliceOutcome::Broken(format!("{}: {}", node.addr, reason(&e))),
            Ok(mut replies) => {
                if asking.is_some() {
                    // Every other reply is an ASKING's OK.
                    let ask_waits = replies.len() % 2 == 1;
                    let wait_reply = if ask_waits { replies.pop() } else { None };
                    replies = replies.into_iter().skip(1).step_by(2).collect();
                    replies.extend(wait_reply);
                }
                let mut unreplicated = None;
                if waits {
                    let acks = replies.pop().as_ref().and_then(as_int).unwrap_or(0);
                    if acks < 1 {
                        unreplicated = Some(format!(
                            "{}: no replica acknowledged the write within {} ms",
                            node.addr, wait_ms
                        ));
                    }
                }
                SliceOutcome::Replies(replies, unreplicated)
            }
        }
    }
}
