//! A real OpenLDAP `slapd` for the tests: its own configuration (the mdb backend, the
//! standard schemas) in a temporary folder, the entries loaded with `slapadd`, started on
//! free loopback ports (`ldap://`, and `ldaps://` when given a certificate) and stopped by
//! pid when dropped. No mock stands in for the directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
/// The test directory's administrator password: every test checks it is never printed.
pub const ROOT_PW: &str = "s3cret-Test-Pw";

/// A program of the slapd package: Debian installs them in /usr/sbin, which the test's
/// PATH may not search.
fn sbin(name: &str) -> String {
    let full = format!("/usr/sbin/{name}");
    if Path::new(&full).exists() {
        full
    } else {
        name.to_string()
    }
}

fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 41000 + (std::process::id() % 100) as u16 * 200;
    loop {
        let p = base + NEXT.fetch_add(1, Ordering::SeqCst) % 200;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A certificate authority and a server certificate for 127.0.0.1, as PEM files.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    /// Writes a fresh CA and a server certificate signed by it into `dir`.
    pub fn create(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "smsrefresh test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(&key, &issuer).unwrap();
        let tls = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&tls.ca, ca.pem()).unwrap();
        std::fs::write(&tls.cert, cert.pem()).unwrap();
        std::fs::write(&tls.key, key.serialize_pem()).unwrap();
        tls
    }
}

/// One running `slapd`.
pub struct Slapd {
    pub port: u16,
    /// The `ldaps://` port, when started with TLS.
    pub tls_port: Option<u16>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// `limits` lines for the configuration: none, or a size limit.
pub fn config(dir: &Path, limits: &str, tls: Option<&Tls>) -> String {
    let d = dir.display();
    let tls_lines = tls.map_or_else(String::new, |t| {
        format!(
            "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
            t.ca.display(),
            t.cert.display(),
            t.key.display()
        )
    });
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         {tls_lines}{limits}\n\
         database mdb\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PW}\n\
         directory {d}/db\n\
         maxsize 1073741824\n\
         index objectClass eq\n\
         index uid,cn eq\n"
    )
}

impl Slapd {
    /// Loads `ldif` (below the base entries this adds) and starts the server.
    pub fn start(ldif: &str, limits: &str, tls: Option<&Tls>) -> Self {
        Self::start_with(&format!("{}{ldif}", base_entries()), limits, tls)
    }

    /// Loads `ldif` as it is (base entries included) and starts the server.
    pub fn start_with(ldif: &str, limits: &str, tls: Option<&Tls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), limits, tls)).unwrap();
        let data = dir.path().join("data.ldif");
        std::fs::write(&data, ldif).unwrap();
        let out = Command::new(sbin("slapadd"))
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&data)
            .output()
            .expect("slapadd is installed (.ci/run installs slapd)");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some(p) = tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let child = Command::new(sbin("slapd"))
            .arg("-f")
            .arg(&conf)
            .args(["-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd is installed (.ci/run installs it)");
        let s = Self {
            port,
            tls_port,
            child: Some(child),
            dir,
        };
        let t = Instant::now();
        while !s.answers() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "slapd did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-b",
                "",
                "-s",
                "base",
                "(objectClass=*)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Applies an LDIF change file with `ldapmodify` as the administrator.
    pub fn modify(&self, changes: &str) {
        let path = self.dir.path().join("changes.ldif");
        std::fs::write(&path, changes).unwrap();
        let out = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&path)
            .output()
            .expect("ldapmodify is installed (.ci/run installs ldap-utils)");
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The suffix and the two organisational units the test entries live under.
pub fn base_entries() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
    )
}
