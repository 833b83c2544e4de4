//! Reading users and groups from a live directory with `ldap3`: connect (ldap://, ldaps://
//! or StartTLS, with a CA file when given), bind (simple, or anonymous), then one paged
//! subtree search (RFC 2696) for users and one for groups, asking only for the attributes
//! the mapping needs.
//!
//! Every failure names the URL and the LDAP result (`invalidCredentials (49)`), never the
//! password. A search that the server's size or time limit cuts short is an error, never a
//! silently shorter registry: paging is how a large directory is read whole.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::asn1::{PL, StructureTag};
use ldap3::{LdapConn, LdapConnSettings, LdapError, ResultEntry, Scope};

use super::config::{Connection, Mapping, PasswordSource};
use super::entry::{Entry, Wanted};
use super::filter::Filter;
use super::{DirectoryError, ReadProgress};

/// Progress is reported every this many entries.
const REPORT_EVERY: u64 = 1000;

/// The name of an LDAP result code (RFC 4511 appendix A, and the client-side codes).
pub fn result_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "error",
    }
}

/// A failure of `what` against the directory of `c`, in words.
fn failure(c: &Connection, what: &str, e: &LdapError) -> DirectoryError {
    let detail = match e {
        LdapError::LdapResult { result } => {
            let mut s = format!("{} ({})", result_name(result.rc), result.rc);
            if !result.text.is_empty() {
                s.push_str(&format!(": {}", result.text.trim()));
            }
            if c.start_tls && what == "connect" && (result.rc == 2 || result.rc == 12) {
                s.push_str(
                    " — the server does not offer StartTLS: enable TLS on it, use `ldaps://` if it listens for TLS, or set `start_tls: false`",
                );
            }
            if result.rc == 4 || result.rc == 3 {
                s.push_str(
                    " — the server's limit cut the search short; nothing was read (raise the limit for paged searches, e.g. OpenLDAP's size.prtotal, or bind as a user without it)",
                );
            }
            s
        }
        LdapError::Io { source } => format!("cannot connect: {source}"),
        LdapError::Timeout { .. } => format!(
            "no answer within the timeout of {} s (directory.yaml `timeout:`)",
            c.timeout.as_secs_f64()
        ),
        other => other.to_string(),
    };
    DirectoryError::Ldap {
        url: c.url.clone(),
        message: format!("{what}: {detail}"),
    }
}

fn password(url: &str, source: &PasswordSource) -> Result<String, DirectoryError> {
    source
        .read("bind_password")
        .map_err(|m| DirectoryError::Ldap {
            url: url.to_string(),
            message: format!("the bind password: {m}"),
        })
}

/// A TLS configuration trusting the certificates of `ca_file` (PEM).
fn tls_config(url: &str, ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |m: String| DirectoryError::Ldap {
        url: url.to_string(),
        message: format!("ca_file {}: {m}", ca_file.display()),
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Connects and binds.
fn connect(c: &Connection) -> Result<LdapConn, DirectoryError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(c.timeout)
        .set_starttls(c.start_tls);
    if let Some(ca) = &c.ca_file {
        settings = settings.set_config(tls_config(&c.url, ca)?);
    }
    let mut conn =
        LdapConn::with_settings(settings, &c.url).map_err(|e| failure(c, "connect", &e))?;
    if let Some((dn, source)) = &c.bind {
        let pw = password(&c.url, source)?;
        conn.with_timeout(c.timeout)
            .simple_bind(dn, &pw)
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| failure(c, &format!("bind as `{dn}`"), &e))?;
    }
    Ok(conn)
}

/// Reads the user entries and the group entries.
pub fn read(
    c: &Connection,
    m: &Mapping,
    progress: Option<&Arc<dyn ReadProgress>>,
) -> Result<(Vec<Entry<'static>>, Vec<Entry<'static>>), DirectoryError> {
    let mut conn = connect(c)?;
    let mut read = 0u64;
    let users = search(
        &mut conn,
        c,
        ("users", &m.users.base_text, &m.users.filter),
        &m.user_types(),
        progress,
        &mut read,
    )?;
    let groups = search(
        &mut conn,
        c,
        ("groups", &m.groups.base_text, &m.groups.filter),
        &m.group_types(),
        progress,
        &mut read,
    )?;
    let _ = conn.unbind();
    Ok((users, groups))
}

/// One paged subtree search: (what, base, filter), keeping the `wanted` attributes.
fn search(
    conn: &mut LdapConn,
    c: &Connection,
    (what, base, filter): (&str, &str, &Filter),
    wanted: &Wanted,
    progress: Option<&Arc<dyn ReadProgress>>,
    read: &mut u64,
) -> Result<Vec<Entry<'static>>, DirectoryError> {
    let what = format!("search for {what} under `{base}` with {filter}");
    let attrs: Vec<String> = wanted.types().to_vec();
    let page_size = i32::try_from(c.page_size).unwrap_or(i32::MAX);
    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(page_size)),
    ];
    let mut stream = conn
        .with_timeout(c.timeout)
        .streaming_search_with(adapters, base, Scope::Subtree, &filter.to_string(), attrs)
        .map_err(|e| failure(c, &what, &e))?;
    let mut out = Vec::new();
    loop {
        match stream.next() {
            Ok(Some(e)) => {
                out.push(entry(e).ok_or_else(|| DirectoryError::Ldap {
                    url: c.url.clone(),
                    message: format!("{what}: the server sent an entry that does not decode"),
                })?);
                *read += 1;
                if let Some(p) = progress.filter(|_| read.is_multiple_of(REPORT_EVERY)) {
                    p.entries(*read);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(failure(c, &what, &e)),
        }
    }
    stream
        .result()
        .success()
        .map_err(|e| failure(c, &what, &e))?;
    if let Some(p) = progress {
        p.entries(*read);
    }
    Ok(out)
}

/// A search result entry, decoded without trusting the server: `None` when it is not the
/// shape RFC 4511 gives (a DN, then attributes with values).
fn entry(e: ResultEntry) -> Option<Entry<'static>> {
    fn bytes(t: StructureTag) -> Option<Vec<u8>> {
        match t.payload {
            PL::P(b) => Some(b),
            PL::C(_) => None,
        }
    }
    let mut parts = match e.0.payload {
        PL::C(v) if e.0.id == 4 => v.into_iter(),
        _ => return None,
    };
    let dn = String::from_utf8(bytes(parts.next()?)?).ok()?;
    let PL::C(attrs) = parts.next()?.payload else {
        return None;
    };
    let mut out = Vec::new();
    for a in attrs {
        let PL::C(pair) = a.payload else { return None };
        let mut pair = pair.into_iter();
        let desc = String::from_utf8(bytes(pair.next()?)?).ok()?;
        // A few descriptions name every value: shared, not copied per value.
        let desc: &'static str = crate::intern::resolve(crate::intern::intern(&desc));
        let PL::C(values) = pair.next()?.payload else {
            return None;
        };
        out.reserve(values.len());
        for v in values {
            out.push((desc, Cow::Owned(bytes(v)?)));
        }
    }
    Some(Entry {
        line: 0,
        dn: Cow::Owned(dn),
        attrs: out.into_boxed_slice(),
    })
}
