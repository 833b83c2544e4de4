//! Real Redis servers for the tests: a standalone `redis-server`, or a six-node Redis
//! Cluster (three primaries, one replica each) made with `redis-cli --cluster create`, each
//! on free loopback ports in a temporary folder, stopped by pid when dropped; either may
//! speak TLS only (`--port 0 --tls-port P`, the cluster bus and replication over TLS too),
//! with certificates the tests make.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use super::slapd_server::Tls;

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
    /// The CA that signed the server's certificate, when it speaks TLS.
    pub ca: Option<PathBuf>,
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
    cli_with(port, None, args)
}

/// `redis-cli`, over TLS verified against `ca` when one is given.
fn cli_with(port: u16, ca: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(ca) = ca {
        cmd.arg("--tls").arg("--cacert").arg(ca);
    }
    let out = cmd
        .args(args)
        .output()
        .expect("redis-cli is installed (.ci/run installs redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `redis-server` arguments for a server that speaks TLS only, with `tls`'s certificate.
fn tls_args(tls: &Tls, port: u16) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        "--port".into(),
        "0".into(),
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        path(&tls.cert),
        "--tls-key-file".into(),
        path(&tls.key),
        "--tls-ca-cert-file".into(),
        path(&tls.ca),
        "--tls-auth-clients".into(),
        "no".into(),
    ]
}

impl Server {
    /// Starts a server with extra `redis-server` arguments (`--requirepass x`, …).
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(None, extra)
    }

    /// Starts a server that speaks TLS only, with `tls`'s certificate.
    pub fn start_tls(tls: &Tls, extra: &[&str]) -> Self {
        Self::start_with(Some(tls), extra)
    }

    fn start_with(tls: Option<&Tls>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> = tls.map(|t| tls_args(t, port)).unwrap_or_default();
        args.extend(extra.iter().map(ToString::to_string));
        let child = spawn(dir.path(), port, &args);
        let ca = tls.map(|t| t.ca.clone());
        wait_for("redis-server", || {
            let pong = cli_with(port, ca.as_deref(), &["PING"]);
            pong.contains("PONG") || pong.contains("NOAUTH")
        });
        Self {
            port,
            ca,
            child: Some(child),
            _dir: dir,
        }
    }

    /// `redis-cli ARGS…` against this server (over TLS when it speaks TLS).
    pub fn cli(&self, args: &[&str]) -> String {
        cli_with(self.port, self.ca.as_deref(), args)
    }

    pub fn url(&self) -> String {
        match &self.ca {
            None => format!("redis://127.0.0.1:{}/0", self.port),
            Some(_) => format!("rediss://127.0.0.1:{}/0", self.port),
        }
    }

    /// Stops the server at once (SIGKILL), as a crashed node.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, port: u16, extra: &[String]) -> Child {
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
        Self::start_with(None)
    }

    /// A cluster that speaks TLS only: clients, the cluster bus and replication.
    pub fn start_tls(tls: &Tls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&Tls>) -> Self {
        let mut args = vec![
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
        ];
        if tls.is_some() {
            args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"]);
        }
        let nodes: Vec<Server> = (0..6).map(|_| Server::start_with(tls, &args)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(t) = tls {
            create.arg("--tls").arg("--cacert").arg(&t.ca);
        }
        let out = create
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
                let role = n.cli(&["INFO", "replication"]);
                role.contains("role:master") || role.contains("master_link_status:up")
            });
        }
        cluster
    }

    /// Waits until every live node says the cluster is ok and sees three primaries.
    pub fn wait_until_ok(&self) {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            wait_for("the cluster", || {
                n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && self.primaries_seen_by(n) == 3
            });
        }
    }

    fn primaries_seen_by(&self, node: &Server) -> usize {
        node.cli(&["CLUSTER", "NODES"])
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail") && l.split(' ').count() > 8)
            .count()
    }

    /// The nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].child.is_some() && self.nodes[i].cli(&["ROLE"]).starts_with("master")
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
        let scheme = if self.nodes[0].ca.is_some() {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        format!("{scheme}://{}", seeds.join(","))
    }
}
