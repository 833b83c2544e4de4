//! `smsrefresh registry export` (contract §12): a site's registry — its own file, an LDIF
//! export or a live directory — written as `registry.jsonl`, sorted by user, to keep as the
//! `before` of a later `group_changes` policy.

use std::io::{self, Write};

use anyhow::Result;

use smsrefresh::site::{RegistrySource, Staged};

use super::args::{ProgressArg, RegistryAction, RegistryCmdArgs, RegistryExportArgs};
use super::terminal::PipeSafe;

pub fn registry(args: &RegistryCmdArgs) -> Result<u8> {
    match &args.action {
        RegistryAction::Export(a) => export(a),
    }
}

fn export(args: &RegistryExportArgs) -> Result<u8> {
    let dir = smsrefresh::site::resolve(args.site.as_deref())?;
    let options = args
        .registry
        .options(super::progress::directory_spinner(ProgressArg::Auto));
    let source = RegistrySource::choose(&dir, &options)?;
    let registry = source.load(options.progress.as_ref())?;
    match &args.output {
        None => {
            let mut out = PipeSafe::new(io::BufWriter::new(io::stdout().lock()));
            registry.write_jsonl(&mut out)?;
            out.flush()?;
        }
        Some(path) => {
            let mut staged = Staged::create(path)?;
            registry.write_jsonl(&mut staged)?;
            staged.commit()?;
        }
    }
    eprintln!(
        "smsrefresh: wrote {} users from {}{}",
        registry.len(),
        source.describe(),
        args.output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    // The process exits next: let the OS reclaim the registry rather than free it user by user.
    crate::cli::free_at_exit(registry);
    Ok(0)
}
