//! smsrefresh: a policy-driven batch engine for IBM Security Verify Access (ISVA) WebSEAL
//! session credential refreshes.
//!
//! The library owns everything but the command line. From the bottom up (see
//! `docs/ARCHITECTURE.md`): shared names and ids ([`ids`], [`time`], [`message`]); the
//! credential model and refresh rules ([`credential`], [`rules`], [`session`]); the pdadmin
//! grammar ([`command`]); the session-store boundary and its in-memory store ([`store`]);
//! the site's files ([`site`]); inputs ([`input`]); executing one command ([`exec`]);
//! policies ([`policy`]); the parallel engine ([`engine`]); result rendering ([`output`]);
//! whole runs ([`run`]); synthetic sites ([`synthetic`]). The `smsrefresh` binary converts
//! its command line into the validated configurations these modules take.

pub mod command;
pub mod credential;
pub mod directory;
pub mod engine;
pub mod exec;
pub mod ids;
pub mod input;
pub mod message;
pub mod output;
pub mod policy;
pub mod rules;
pub mod run;
pub mod secret;
pub mod serve;
pub mod session;
pub mod site;
pub mod store;
pub mod synthetic;
pub mod target;
pub mod time;

pub(crate) mod fold;
pub(crate) mod hash;
pub(crate) mod intern;
pub(crate) mod leb128;
pub(crate) mod lines;
pub mod located;
pub(crate) mod ordered;
pub(crate) mod yaml_depth;
