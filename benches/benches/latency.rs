//! One 10 s file through the library (`Pipeline::process_file`, a warm pipeline, one worker).

use criterion::{Criterion, criterion_group, criterion_main};
use melkit::{BackendKind, Config, Pipeline};

fn latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("clip.wav");
    melkit_benches::write_wav(&wav, 4096, 10.0);
    let mut config = Config::default();
    config.set("max_workers", "1").unwrap();
    let mut pipeline = Pipeline::new(config, BackendKind::Cpu).unwrap();
    pipeline.process_file(&wav).unwrap();
    let mut group = c.benchmark_group("latency");
    group.bench_function("process_file_10s_1_worker", |b| {
        b.iter(|| pipeline.process_file(&wav).unwrap())
    });
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
