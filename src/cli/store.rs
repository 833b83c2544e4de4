//! `smsrefresh store import|export|stats` (contract §11): moving a site's sessions into a
//! Redis store, writing a store's sessions as sessions.jsonl, and counting them.

use std::io::{self, Write};

use anyhow::{Result, bail};

use smsrefresh::session::Session;
use smsrefresh::site::{Site, Staged, StoreOptions, choose_store, names_of, snapshot};
use smsrefresh::store::{RedisStore, SessionStore, StoreUrl};

use super::args::{StoreAction, StoreArgs, StoreTargetArgs};
use super::terminal::PipeSafe;

pub fn store(args: &StoreArgs) -> Result<u8> {
    match &args.action {
        StoreAction::Import(a) => import(&a.target, a.replace, a.add),
        StoreAction::Export(a) => export(&a.target, a.output.as_deref()),
        StoreAction::Stats(a) => stats(a),
    }
}

fn import(target: &StoreTargetArgs, replace: bool, add: bool) -> Result<u8> {
    let dir = smsrefresh::site::resolve(target.site.as_deref())?;
    let files = Site::load_with_store(&dir, &StoreOptions::url(Some("file:")))?;
    let url = match choose_store(target.store.as_deref(), &files.topology)? {
        StoreUrl::Files => {
            bail!("store import copies a site's files into a Redis store: give --store redis://…")
        }
        StoreUrl::Redis(url) => url,
    };
    let mut redis = RedisStore::open(&url, names_of(&files.topology), target.store_timeout)?;
    if add && (redis.is_imported() || !redis.holds_anything()?) {
        let mut sessions: Vec<Session> = Vec::with_capacity(files.store.len()?);
        files.store.export(&mut |s| sessions.push(s.clone()))?;
        let added = redis.add(&sessions)?;
        eprintln!(
            "smsrefresh: added {} sessions from {} to {} ({} already there{})",
            added.added,
            dir.display(),
            redis.location(),
            added.present,
            if added.elsewhere == 0 {
                String::new()
            } else {
                format!(
                    "; {} left out: the store gives their ids to other users",
                    added.elsewhere
                )
            }
        );
        crate::cli::free_at_exit(files);
        return Ok(0);
    }
    if redis.holds_anything()? {
        if add {
            bail!(
                "the store {} holds keys under the prefix `{}` but no import of smsrefresh's \
                 (no `{}meta` key), so `--add` cannot know what they are; \
                 `store import --replace` removes them first",
                redis.location(),
                redis.prefix(),
                redis.prefix()
            );
        }
        if !replace {
            bail!(
                "the store {} already holds keys under the prefix `{}`; \
                 `store import --replace` removes them first, `--add` adds what it lacks",
                redis.location(),
                redis.prefix()
            );
        }
        let removed = redis.clear()?;
        eprintln!(
            "smsrefresh: removed {removed} keys under `{}`",
            redis.prefix()
        );
    }
    let mut sessions: Vec<Session> = Vec::with_capacity(files.store.len()?);
    files.store.export(&mut |s| sessions.push(s.clone()))?;
    redis.import(&sessions)?;
    eprintln!(
        "smsrefresh: imported {} sessions from {} into {}",
        sessions.len(),
        dir.display(),
        redis.location()
    );
    crate::cli::free_at_exit(files);
    Ok(0)
}

fn export(target: &StoreTargetArgs, output: Option<&std::path::Path>) -> Result<u8> {
    let dir = smsrefresh::site::resolve(target.site.as_deref())?;
    let site = Site::load_with_store(&dir, &target.options())?;
    match output {
        None => {
            let mut out = PipeSafe::new(io::BufWriter::new(io::stdout().lock()));
            snapshot::write_to(&mut out, &site.topology, &*site.store)?;
            out.flush()?;
        }
        Some(path) => {
            let mut staged = Staged::create(path)?;
            snapshot::write_to(&mut staged, &site.topology, &*site.store)?;
            staged.commit()?;
            eprintln!(
                "smsrefresh: exported {} sessions from {} to {}",
                site.store.len()?,
                site.store.location(),
                path.display()
            );
        }
    }
    crate::cli::free_at_exit(site);
    Ok(0)
}

fn stats(target: &StoreTargetArgs) -> Result<u8> {
    let dir = smsrefresh::site::resolve(target.site.as_deref())?;
    let topology = smsrefresh::site::Topology::load(&dir.join("topology.yaml"))?;
    let url = match choose_store(target.store.as_deref(), &topology)? {
        StoreUrl::Files => bail!("store stats counts a Redis store: give --store redis://…"),
        StoreUrl::Redis(url) => url,
    };
    let redis =
        RedisStore::open(&url, names_of(&topology), target.store_timeout)?.require_imported()?;
    let st = redis.stats()?;
    let per = |bytes: u64| bytes.checked_div(st.sessions).unwrap_or(0);
    let mut out = PipeSafe::new(io::stdout().lock());
    writeln!(
        out,
        "store         {} (prefix `{}`)",
        redis.location(),
        redis.prefix()
    )?;
    writeln!(out, "nodes         {}", st.nodes)?;
    writeln!(out, "sessions      {}", st.sessions)?;
    writeln!(out, "users         {}", st.users)?;
    for (realm, n) in &st.realms {
        writeln!(out, "realm         {realm} {n}")?;
    }
    for (server, n) in &st.servers {
        writeln!(out, "server        {server} {n}")?;
    }
    writeln!(
        out,
        "record bytes  {} ({} per session)",
        st.record_bytes,
        per(st.record_bytes)
    )?;
    writeln!(
        out,
        "used memory   {} (all keys of every primary, {} per session)",
        st.used_memory,
        per(st.used_memory)
    )?;
    Ok(0)
}
