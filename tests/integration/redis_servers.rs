//! Real Redis servers for the tests: a standalone `redis-server`, or a six-node Redis
//! Cluster (three primaries, one replica each) made with `redis-cli --cluster create`, each
//! on free loopback ports in a temporary folder, stopped by pid when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Ports are taken from a range per test process, checked free (with the cluster bus port,
/// port + 10000) before use.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20000 + (std::process::id() % 200) as u16 * 100;
    loop {
        let p = base + NEXT.fetch_add(1, Ordering::SeqCst) % 10000;
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(p) && free(p + 10000) {
            return p;
        }
    }
}

/// One `redis-server`.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `redis-cli -p PORT ARGS…`, its standard output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed (.ci/run installs redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Server {
    /// Starts a server with extra `redis-server` arguments (`--requirepass x`, …).
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn(dir.path(), port, extra);
        wait_for("redis-server", || {
            let pong = cli(port, &["PING"]);
            pong.contains("PONG") || pong.contains("NOAUTH")
        });
        Self {
            port,
            child: Some(child),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server at once (SIGKILL), as a crashed node.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.to_str().unwrap(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "redis.log",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (.ci/run installs it)")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A six-node cluster: three primaries with a replica each.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start() -> Self {
        let nodes: Vec<Server> = (0..6)
            .map(|_| {
                Server::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // A replica syncs at once, and may take over whatever its lag.
                    "--repl-diskless-sync-delay",
                    "0",
                    "--cluster-replica-validity-factor",
                    "0",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        for n in &cluster.nodes {
            wait_for("the replicas to sync", || {
                let role = cli(n.port, &["INFO", "replication"]);
                role.contains("role:master") || role.contains("master_link_status:up")
            });
        }
        cluster
    }

    /// Waits until every live node says the cluster is ok and sees three primaries.
    pub fn wait_until_ok(&self) {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            wait_for("the cluster", || {
                cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && self.primaries_seen_by(n.port) == 3
            });
        }
    }

    fn primaries_seen_by(&self, port: u16) -> usize {
        cli(port, &["CLUSTER", "NODES"])
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail") && l.split(' ').count() > 8)
            .count()
    }

    /// The nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].child.is_some()
                    && cli(self.nodes[i].port, &["ROLE"]).starts_with("master")
            })
            .collect()
    }

    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .take(3)
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }
}
