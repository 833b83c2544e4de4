//! The binary session loader: corrupted or hostile bytes are an error, never a panic. The
//! checksum is recomputed first, so that mutations reach the parser behind it.
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
    let mut bytes = b"SMRSNAP\0\x01\0\0\0\0\0\0\0".to_vec();
    bytes.extend_from_slice(data);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let store = MemoryStore::default();
    let _ = smsrefresh::site::binary::load_bytes(
        std::path::Path::new("sessions.bin"),
        &bytes,
        &topology,
        &store,
    );
    store.check_invariants().expect("consistent store");
});
