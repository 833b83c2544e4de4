//! smsrefresh: a policy-driven batch engine for IBM Security Verify Access (ISVA) WebSEAL
//! session credential refreshes.
//!
//! The library owns everything but argument parsing: the pdadmin command grammar
//! ([`command`]), the site files ([`site`]), the partitioned session store ([`store`]),
//! the WebSEAL credential refresh rules ([`rules`]), command execution ([`exec`]), result
//! rendering ([`output`]) and whole runs ([`run`]). The `smsrefresh` binary only converts its
//! command line into the validated configurations these modules take.

pub mod batch;
pub mod bench;
pub mod command;
pub mod credential;
pub mod fold;
pub mod hash;
pub mod input;
pub mod intern;
pub mod lines;
pub mod message;
pub mod ordered;
pub mod output;
pub mod policy;
pub mod report;
pub mod rules;
pub mod run;
pub mod session;
pub mod site;
pub mod store;
pub mod synthetic;
pub mod time;

pub mod exec;
