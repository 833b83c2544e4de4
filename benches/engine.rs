//! Micro-benchmarks of the engine's parts: the pdadmin parser, the refresh rules (decision
//! and merge), one user's refresh in the store, a chunk of the parallel engine (and a chunk in
//! store order against the same chunk shuffled), and the snapshot loaders. `cargo bench`; figures and method in docs/performance.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use smsrefresh::command::parse;
use smsrefresh::credential::CredentialBuilder;
use smsrefresh::engine::{BatchConfig, Engine, Executor};
use smsrefresh::ids::UserKey;
use smsrefresh::input::{CommandSource, Job};
use smsrefresh::rules::RefreshRules;
use smsrefresh::site::{Site, SnapshotFormat};
use smsrefresh::store::{Op, Scope};
use smsrefresh::synthetic::{GEN_EPOCH, GenConfig, generate};

/// The allocator the `smsrefresh` binary uses, so that these figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A generated site of `users` users (about three sessions each) in a temporary directory,
/// with both snapshot forms.
fn site(users: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("site");
    generate(&GenConfig {
        out: dir.clone(),
        users,
        ..GenConfig::default()
    })
    .expect("generate");
    let site = Site::load(&dir).expect("load");
    site.save_as(SnapshotFormat::Binary)
        .expect("binary snapshot");
    tmp
}

fn parser(c: &mut Criterion) {
    let lines = [
        "server task default-webseald-cruz sms session refresh all_sessions johnq -realm ibm.com",
        r#"pdadmin> server task default-webseald-cruz sms session refresh all_sessions "Mary Jones" –realm ibm.com"#,
        "server task web2-webseald-cruz sms session list -realm ibm.com contractor_* 100",
    ];
    let mut g = c.benchmark_group("parser");
    for (i, line) in lines.iter().enumerate() {
        let line = smsrefresh::command::reader::strip_prompt(line);
        g.bench_with_input(BenchmarkId::new("parse", i), line, |b, l| {
            b.iter(|| parse(black_box(l)));
        });
    }
    let cmd = parse(lines[0]).expect("valid");
    g.bench_function("display", |b| b.iter(|| black_box(&cmd).to_string()));
    g.finish();
}

fn rules(c: &mut Criterion) {
    let mut rules = RefreshRules::new([
        (
            "authentication_level",
            smsrefresh::rules::RuleAction::Preserve,
        ),
        (
            "tagvalue_last_refresh_time",
            smsrefresh::rules::RuleAction::Refresh,
        ),
        ("tagvalue_*", smsrefresh::rules::RuleAction::Preserve),
    ])
    .expect("rules");
    let mut old = CredentialBuilder::default();
    old.push_str("AZN_CRED_PRINCIPAL_NAME", "user0000001").ok();
    old.push_list(
        "AZN_CRED_GROUPS",
        (0..10).map(|i| {
            [
                "group0001",
                "group0002",
                "group0003",
                "group0004",
                "group0005",
                "group0006",
                "group0007",
                "group0008",
                "group0009",
                "group0010",
            ][i]
        }),
    )
    .ok();
    for (k, v) in [
        ("AZN_CRED_AUTH_METHOD", "password"),
        ("AZN_CRED_IP_ADDRESS", "10.1.2.3"),
        ("authentication_level", "2"),
        ("tagvalue_login_realm", "realm1.example.com"),
        ("emailAddress", "old@example.com"),
    ] {
        old.push_str(k, v).ok();
    }
    let old = old.build();
    let mut new = CredentialBuilder::default();
    new.push_str("AZN_CRED_PRINCIPAL_NAME", "user0000001").ok();
    new.push_list("AZN_CRED_GROUPS", ["group0001", "group0002", "group0011"])
        .ok();
    for (k, v) in [
        ("emailAddress", "user0000001@example.com"),
        ("departmentNumber", "hr"),
        ("title", "t1"),
        ("preferredLanguage", "en"),
    ] {
        new.push_str(k, v).ok();
    }
    let new = new.build();
    let mut g = c.benchmark_group("rules");
    g.bench_function("decide_by_glob", |b| {
        b.iter(|| rules.decide(black_box("tagvalue_session_index")));
    });
    g.bench_function("merge_matching", |b| {
        b.iter(|| rules.merge(black_box(&old), black_box(&new)));
    });
    rules.compile();
    g.bench_function("merge_compiled", |b| {
        b.iter(|| rules.merge(black_box(&old), black_box(&new)));
    });
    g.finish();
}

fn store_and_engine(c: &mut Criterion) {
    let tmp = site(20_000);
    let dir = tmp.path().join("site");
    let engine = Engine::load(&dir, Some(GEN_EPOCH), true).expect("engine");
    let entry = engine.site.registry.get("user0000042").expect("user");
    let realm = engine
        .site
        .topology
        .realm("realm1.example.com")
        .expect("realm");
    let mut g = c.benchmark_group("store");
    g.bench_function("refresh_user", |b| {
        let ctx = engine.context();
        b.iter(|| {
            let op = Op::RefreshUser {
                realm,
                user: UserKey::of("user0000042"),
                scope: Scope::Realm,
                fresh: entry.credential(),
            };
            engine.site.store.apply(&engine.clock, &[op], &ctx)
        });
    });
    g.finish();

    let text: String = (1..=10_000)
        .map(|i| format!("server task default-webseald-node1.example.com sms session refresh all_sessions user{i:07} -realm realm{}.example.com\n", 1 + i % 2))
        .collect();
    let jobs: Vec<Job> = CommandSource::new(text.as_bytes())
        .map(|j| j.expect("job"))
        .collect();
    let source: Arc<str> = Arc::from("bench");
    let mut g = c.benchmark_group("engine_chunk");
    g.throughput(Throughput::Elements(jobs.len() as u64));
    for threads in [1, 2] {
        let mut ex = Executor::new(
            &engine,
            BatchConfig {
                jobs: threads,
                fail_fast: false,
                rate: 0.0,
            },
        )
        .expect("pool");
        g.bench_with_input(
            BenchmarkId::new("refresh_10k_commands", threads),
            &threads,
            |b, _| b.iter(|| ex.run_chunk(&source, black_box(&jobs)).len()),
        );
    }
    g.finish();

    // The same 16,384 commands (a chunk) in the store's order and in a seeded random order,
    // as an export from a directory comes: the cost of locality (issue 13).
    let ordered = jobs_of(
        &(1..=16_384)
            .map(|i| format!("server task default-webseald-node1.example.com sms session refresh all_sessions user{:07} -realm realm{}.example.com\n", 1 + i % 20_000, 1 + i % 2))
            .collect::<String>(),
    );
    let mut shuffled = ordered.clone();
    let mut x: u64 = 42;
    for i in (1..shuffled.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        shuffled.swap(i, (x >> 33) as usize % (i + 1));
    }
    let mut ex = Executor::new(
        &engine,
        BatchConfig {
            jobs: 2,
            fail_fast: false,
            rate: 0.0,
        },
    )
    .expect("pool");
    let mut g = c.benchmark_group("execute_order");
    g.throughput(Throughput::Elements(ordered.len() as u64));
    for (name, jobs) in [("ordered", &ordered), ("shuffled", &shuffled)] {
        g.bench_function(name, |b| {
            b.iter(|| ex.run_chunk(&source, black_box(jobs)).len());
        });
    }
    g.finish();
}

/// Command-file text as jobs.
fn jobs_of(text: &str) -> Vec<Job> {
    CommandSource::new(text.as_bytes())
        .map(|j| j.expect("job"))
        .collect()
}

fn loaders(c: &mut Criterion) {
    let tmp = site(5_000);
    let dir = tmp.path().join("site");
    let topology = smsrefresh::site::Topology::load(&dir.join("topology.yaml")).expect("topology");
    let mut g = c.benchmark_group("load_15k_sessions");
    g.sample_size(20);
    g.bench_function("jsonl", |b| {
        b.iter(|| {
            let store = smsrefresh::store::MemoryStore::default();
            smsrefresh::site::snapshot::load(&dir.join("sessions.jsonl"), &topology, &store)
                .expect("load");
            store.session_count()
        });
    });
    g.bench_function("binary", |b| {
        b.iter(|| {
            let store = smsrefresh::store::MemoryStore::default();
            smsrefresh::site::binary::load(&dir.join("sessions.bin"), &topology, &store)
                .expect("load");
            store.session_count()
        });
    });
    g.bench_function("registry_jsonl", |b| {
        b.iter(|| {
            smsrefresh::site::Registry::load_jsonl(Path::new(&dir.join("registry.jsonl")))
                .expect("registry")
                .len()
        });
    });
    g.finish();
}

criterion_group!(benches, parser, rules, store_and_engine, loaders);
criterion_main!(benches);
