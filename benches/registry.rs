//! The registry readers (contract §12) on the same generated users: `registry.jsonl` against
//! an LDIF export of it (`gen --ldif`: users, then groups listing their members), read into a
//! registry in the same process. `cargo bench --bench registry`; docs/performance.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use smsrefresh::directory::LdifFile;
use smsrefresh::site::Registry;
use smsrefresh::synthetic::{GenConfig, generate};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: u64 = 20_000;

fn write(dir: &Path, ldif: bool) {
    generate(&GenConfig {
        out: dir.to_path_buf(),
        users: USERS,
        groups: 200,
        ldif,
        ..GenConfig::default()
    })
    .expect("generate");
}

fn readers(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (jsonl, ldif) = (tmp.path().join("jsonl"), tmp.path().join("ldif"));
    write(&jsonl, false);
    write(&ldif, true);
    let jsonl_bytes = std::fs::read(jsonl.join("registry.jsonl")).expect("read");
    let ldif_bytes = std::fs::read(ldif.join("registry.ldif")).expect("read");
    let file = LdifFile {
        path: ldif.join("registry.ldif"),
        mapping: smsrefresh::directory::config::load(&ldif.join("directory.yaml"))
            .expect("mapping")
            .mapping,
    };
    let mut g = c.benchmark_group("registry");
    g.throughput(Throughput::Elements(USERS));
    g.sample_size(20);
    g.bench_function("jsonl", |b| {
        b.iter(|| Registry::parse_jsonl(Path::new("registry.jsonl"), black_box(&jsonl_bytes)));
    });
    g.bench_function("ldif", |b| {
        b.iter(|| {
            let users = file.parse(black_box(&ldif_bytes)).expect("parse");
            Registry::from_directory(&file.path, users)
        });
    });
    g.finish();
}

criterion_group!(benches, readers);
criterion_main!(benches);
