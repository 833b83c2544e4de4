//! Redis as production runs it (contract §11): TLS verified against the deployment's own CA,
//! on a standalone server and a six-node cluster that speak TLS only; and a store that does
//! not grow, however many sessions end in it.

use std::path::Path;

use super::redis::{assert_same, exported, same_as_files, store};
use super::redis_servers::{Cluster, Server};
use super::slapd_server::Tls;
use super::util::*;

/// A fresh CA and a server certificate for 127.0.0.1, in `dir/name`.
fn certificates(dir: &Path, name: &str) -> Tls {
    let at = dir.join(name);
    std::fs::create_dir(&at).unwrap();
    Tls::create(&at)
}

/// `smsrefresh ARGS…` with `SMSREFRESH_STORE_CA` set to `ca`.
fn with_ca_env(ca: &Path, args: &[&str]) -> std::process::Output {
    run_cmd(bin().args(args).env("SMSREFRESH_STORE_CA", ca), None)
}

/// A store that cannot be trusted stops the run before anything changes: exit 2, the URL
/// (redacted) and the reason named, no password printed, nothing written to standard output.
fn refused(out: &std::process::Output, location: &str, reason: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 2, "{err}");
    assert!(err.contains(location), "{location}: {err}");
    assert!(err.contains(reason), "{reason}: {err}");
    assert!(!err.contains("s3cr3t-pw"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(out).is_empty());
}

#[test]
fn tls_stores_verify_the_deployments_ca_and_give_the_site_files_answers() {
    let certs = tempfile::tempdir().unwrap();
    let ours = certificates(certs.path(), "ours");
    let theirs = certificates(certs.path(), "theirs");
    let server = Server::start_tls(&ours, &["--requirepass", "s3cr3t-pw"]);
    let cluster = Cluster::start_tls(&ours);
    let (_d, demo) = demo_copy();
    let site = demo.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("demo.pdadmin");
    std::fs::copy(demo.join("commands.pdadmin"), &input).unwrap();
    let ca = ours.ca.to_str().unwrap();
    let standalone = format!("rediss://:s3cr3t-pw@127.0.0.1:{}/0", server.port);
    let tls_cluster = cluster.url();
    assert!(tls_cluster.starts_with("rediss+cluster://"));

    // With the deployment's CA, in the URL: the same answers as the site files.
    same_as_files(&demo, &input, &format!("{standalone}?prefix=demo:&ca={ca}"));
    same_as_files(
        &demo,
        &input,
        &format!("{tls_cluster}?prefix=demo:&ca={ca}"),
    );
    // From the environment instead of the URL.
    let url = format!("{tls_cluster}?prefix=demo:");
    let out = with_ca_env(
        &ours.ca,
        &["store", "export", "--site", site, "--store", &url],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).lines().count() > 10);

    // A server whose certificate another CA signed: exit 2, nothing changed, no password.
    let before_standalone = exported(&demo, &format!("{standalone}?prefix=demo:&ca={ca}"));
    let before_cluster = exported(&demo, &format!("{tls_cluster}?prefix=demo:&ca={ca}"));
    let wrong = theirs.ca.to_str().unwrap();
    let redacted = format!("rediss://:***@127.0.0.1:{}/0", server.port);
    for (url, location) in [
        (
            format!("{standalone}?prefix=demo:&ca={wrong}"),
            redacted.as_str(),
        ),
        (
            format!("{tls_cluster}?prefix=demo:&ca={wrong}"),
            tls_cluster.as_str(),
        ),
    ] {
        let out = run(
            &[
                "run",
                input.to_str().unwrap(),
                "--site",
                site,
                "--store",
                &url,
            ],
            None,
        );
        refused(&out, location, "cannot be trusted");
        assert!(stderr(&out).contains("does not verify against the CA in"));
        assert!(stderr(&out).contains(wrong), "{}", stderr(&out));
    }
    let url = format!("{standalone}?prefix=demo:");
    let out = with_ca_env(
        &theirs.ca,
        &[
            "run",
            input.to_str().unwrap(),
            "--site",
            site,
            "--store",
            &url,
        ],
    );
    refused(&out, &redacted, "does not verify against the CA in");
    // No CA at all: the system's roots do not know the test CA.
    let out = run(&["store", "stats", "--site", site, "--store", &url], None);
    refused(&out, &redacted, "the system's root certificates");
    assert_same(
        &exported(&demo, &format!("{standalone}?prefix=demo:&ca={ca}")),
        &before_standalone,
        "the standalone store after the refusals",
    );
    assert_same(
        &exported(&demo, &format!("{tls_cluster}?prefix=demo:&ca={ca}")),
        &before_cluster,
        "the cluster after the refusals",
    );

    // What cannot be a TLS store: said before connecting, as a bad URL.
    let port = server.port;
    for (url, reason) in [
        (
            format!("rediss://:s3cr3t-pw@127.0.0.1:{port}/0#insecure"),
            "TLS always verifies the server",
        ),
        (
            format!("redis://:s3cr3t-pw@127.0.0.1:{port}/0?ca={ca}"),
            "`ca=` is for TLS",
        ),
        (
            format!("rediss://:s3cr3t-pw@127.0.0.1:{port}/0?ca=/nonexistent/ca.pem"),
            "cannot be read",
        ),
        (
            format!(
                "rediss://:s3cr3t-pw@127.0.0.1:{port}/0?ca={}",
                ours.key.display()
            ),
            "holds no certificate",
        ),
    ] {
        let out = store(&["stats", "--site", site, "--store", &url]);
        let location = url.replace("s3cr3t-pw", "***");
        refused(&out, &location, reason);
    }
}
