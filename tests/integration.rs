//! The one integration-test binary: every module drives the real `smsrefresh` binary on real
//! files, or the library through its public API.

// A test is one scenario read top to bottom; the 80-line limit is for the product's code.
#![allow(clippy::too_many_lines, reason = "tests read as whole scenarios")]

mod integration {
    pub mod util;

    pub mod appliance;
    mod architecture;
    mod bad_inputs;
    mod catalog_docs;
    mod demo;
    mod directory;
    mod docs;
    mod exec_shell;
    mod inputs;
    mod nothing_lost;
    mod operator;
    pub mod parallel;
    mod policies;
    mod properties;
    pub mod redis;
    mod redis_production;
    pub mod redis_servers;
    mod reliability;
    pub mod slapd_server;
    mod snapshot;
    mod store_boundary;
    mod synthetic;
    mod target;
}
