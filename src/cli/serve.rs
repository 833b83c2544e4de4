//! `smsrefresh serve`: the site's engine behind the appliance's pdadmin REST API (contract
//! §14). The passwords come from the environment; SIGINT/SIGTERM stop it after saving.

use anyhow::{Result, bail};

use smsrefresh::serve::{Credentials, Listening, ServeConfig};

use super::args::ServeArgs;

/// The environment variables that hold the two passwords.
const LMI_PASSWORD_ENV: &str = "SMSREFRESH_LMI_PASSWORD";
const ADMIN_PASSWORD_ENV: &str = "SMSREFRESH_ADMIN_PASSWORD";

fn password(var: &str, whose: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => bail!("{var} is not set: it holds the password of {whose}"),
    }
}

pub fn serve(args: &ServeArgs) -> Result<u8> {
    let site = args.site.validate()?;
    if site.target.is_some() {
        bail!("serve answers from the site's own store; --target does not apply");
    }
    let credentials = Credentials {
        lmi_user: args.lmi_user.clone(),
        lmi_password: password(LMI_PASSWORD_ENV, &format!("the LMI user {}", args.lmi_user))?,
        admin_id: args.admin_id.clone(),
        admin_password: password(
            ADMIN_PASSWORD_ENV,
            &format!("the pdadmin user {}", args.admin_id),
        )?,
    };
    let cfg = ServeConfig {
        listen: args.listen,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        write_cert: args.write_cert.clone(),
        credentials,
        save_every: args.save_every,
        latency: args.latency,
    };
    let (_lock, engine) = super::open::open_engine(&site)?;
    super::terminal::print_warnings(&engine);
    let stop = smsrefresh::run::Interrupt::default();
    // Requests change the store from the first one on: a signal stops the server, which then
    // saves (never "stop at once before any change").
    stop.begin_changes();
    super::signals::install(stop.clone())?;
    let ready = |l: &Listening| {
        eprintln!(
            "smsrefresh: serving the pdadmin REST API at https://{}/isam/pdadmin/ ({} certificate, SHA-256 {})",
            l.addr,
            if l.self_signed {
                "self-signed"
            } else {
                "given"
            },
            l.fingerprint
        );
    };
    let requests = smsrefresh::serve::serve(engine, &cfg, &stop, &ready)?;
    eprintln!(
        "smsrefresh: stopped after {requests} requests{}",
        if site.save && !site.dry_run {
            "; changes are saved"
        } else {
            ""
        }
    );
    Ok(0)
}
