//! The policy loader: any bytes give a policy or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smsrefresh::policy::Policy::parse(
        std::path::Path::new("/nonexistent/p.yaml"),
        data.to_vec(),
    );
});
