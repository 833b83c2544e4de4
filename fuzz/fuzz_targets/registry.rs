//! The registry loaders (YAML and JSON Lines) and the topology loader: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = smsrefresh::site::Registry::parse_jsonl(Path::new("registry.jsonl"), data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = smsrefresh::site::Registry::parse_yaml(Path::new("registry.yaml"), text);
        let _ = smsrefresh::site::Topology::parse(Path::new("topology.yaml"), text);
    }
});
