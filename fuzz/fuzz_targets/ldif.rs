//! The directory readers (contract §12): LDIF files through the default mapping into a
//! registry, DNs, search filters (whose canonical text must parse back to the same filter)
//! and `directory.yaml`. Errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsrefresh::directory::dn::Dn;
use smsrefresh::directory::filter::Filter;
use smsrefresh::directory::{LdifFile, Mapping};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let file = LdifFile {
        path: "registry.ldif".into(),
        mapping: Mapping::default(),
    };
    if let Ok(users) = file.parse(data) {
        let _ = smsrefresh::site::Registry::from_directory(Path::new("registry.ldif"), users);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Dn::parse(text);
        if let Ok(f) = Filter::parse(text) {
            assert_eq!(Filter::parse(&f.to_string()).ok(), Some(f), "{text}");
        }
        let _ = smsrefresh::directory::config::parse(Path::new("directory.yaml"), text);
    }
});
