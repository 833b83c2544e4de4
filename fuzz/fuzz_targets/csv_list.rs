//! The CSV list reader: no input panics, and lines only go forward.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsrefresh::input::{CsvDefaults, CsvSource};
use smsrefresh::site::Topology;

fuzz_target!(|data: &[u8]| {
    let topology = Topology::parse(
        std::path::Path::new("topology.yaml"),
        "realms:\n  ibm.com: {replica_sets: [www]}\nservers:\n  a-webseald-b: {replica_sets: [www]}\n",
    )
    .expect("a valid topology");
    let mut last = 0;
    for job in CsvSource::new(data, CsvDefaults::default(), &topology) {
        let job = job.expect("reading memory cannot fail");
        assert!(job.line > last);
        last = job.line;
    }
});
