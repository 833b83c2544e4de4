//! The one integration-test binary: every module drives the real `smsrefresh` binary on real
//! files, or the library through its public API.

mod integration {
    pub mod util;

    mod bad_inputs;
    mod catalog_docs;
    mod demo;
    mod exec_shell;
    mod inputs;
    mod parallel;
    mod policies;
    mod properties;
    mod reliability;
    mod snapshot;
    mod synthetic;
}
