//! `cargo xtask test [ARGS…]`: the README's test command on any machine. The integration
//! tests start real servers — `redis-server` (standalone and a six-node cluster, with
//! `redis-cli`), OpenLDAP's `slapd` with `slapadd`, `ldapsearch`/`ldapmodify` — and render the
//! manual page with `man`. This finds what is missing; as root it installs it with apt-get
//! (what CI does on a fresh machine), otherwise it prints the one command to run and stops.
//! Then it runs `cargo test ARGS…` with `/usr/sbin` on the PATH, where Debian puts slapd.
//! `cargo test` alone keeps working wherever the servers already are.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A program the tests run, and the Debian package that brings it.
const NEEDED: [(&str, &str); 7] = [
    ("redis-server", "redis-server"),
    ("redis-cli", "redis-server"),
    ("slapd", "slapd"),
    ("slapadd", "slapd"),
    ("ldapsearch", "ldap-utils"),
    ("ldapmodify", "ldap-utils"),
    ("man", "man-db"),
];

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("test") => test(args.collect()),
        _ => {
            eprintln!(
                "usage: cargo xtask test [CARGO TEST ARGS…]\n  installs what the tests need (as root, with apt-get), then runs cargo test"
            );
            ExitCode::from(2)
        }
    }
}

/// The PATH with the sbin folders added, since a non-login shell may not search them.
fn search_path() -> OsString {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    env::join_paths(dirs).unwrap_or_default()
}

fn found(program: &str, path: &OsString) -> bool {
    env::split_paths(path).any(|d| d.join(program).is_file())
}

/// The packages that bring what is missing, each once, in a fixed order.
fn missing_packages(path: &OsString) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (program, package) in NEEDED {
        if !found(program, path) && !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn install(packages: &[&str]) -> bool {
    eprintln!(
        "xtask: installing {} (the tests start their own servers)",
        packages.join(" ")
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-qq"];
    install.extend_from_slice(packages);
    apt(&["update", "-qq"]) && apt(&install)
}

fn test(args: Vec<OsString>) -> ExitCode {
    let path = search_path();
    let missing = missing_packages(&path);
    if !missing.is_empty() {
        if !is_root() {
            eprintln!(
                "xtask: the tests need {} — install them first:\n  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
                missing.join(", "),
                missing.join(" ")
            );
            return ExitCode::from(1);
        }
        if !install(&missing) {
            eprintln!("xtask: apt-get could not install {}", missing.join(" "));
            return ExitCode::from(1);
        }
        let still = missing_packages(&path);
        if !still.is_empty() {
            eprintln!(
                "xtask: still missing after the install: {}",
                still.join(", ")
            );
            return ExitCode::from(1);
        }
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    match Command::new(cargo)
        .arg("test")
        .args(args)
        .env("PATH", &path)
        .status()
    {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::from(1)
        }
    }
}
