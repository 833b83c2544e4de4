//! The JSON Lines session loader: errors, never panics, and the store stays consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsrefresh::site::Topology;
use smsrefresh::store::MemoryStore;

fuzz_target!(|data: &[u8]| {
    let topology = Topology::parse(
        std::path::Path::new("topology.yaml"),
        "realms:\n  ibm.com: {replica_sets: [www]}\nservers:\n  a-webseald-b: {replica_sets: [www]}\n",
    )
    .expect("a valid topology");
    let store = MemoryStore::default();
    let _ = smsrefresh::site::snapshot::load_from(
        std::path::Path::new("sessions.jsonl"),
        data,
        &topology,
        &store,
    );
    store.check_invariants().expect("consistent store");
});
