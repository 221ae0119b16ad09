//! The per-file stages around the backend: decode, resample, segment and write.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use melkit_core::{Config, SegmentPlan, SignalBatch};
use melkit_io::{Compression, Dtype, OutputFormat, OutputTensor, TensorMeta};

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("stage");

    let wav = dir.path().join("clip.wav");
    melkit_benches::write_wav(&wav, 4096, 10.0);
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode/wav_10s_4096", |b| {
        b.iter(|| melkit_io::decode_file(&wav).unwrap())
    });

    let signal = &melkit_core::testing::signals(16000, &[160_000])[0];
    group.bench_function("resample/10s_16000_to_4096", |b| {
        b.iter(|| melkit_io::resample(signal, 16000, 4096).unwrap())
    });
    let signal = &melkit_core::testing::signals(44100, &[441_000])[0];
    group.bench_function("resample/10s_44100_to_4096", |b| {
        b.iter(|| melkit_io::resample(signal, 44100, 4096).unwrap())
    });

    let config = Config::default();
    let plan = SegmentPlan::new(&config).unwrap();
    let signals = melkit_core::testing::signals(4096, &[40960; 32]);
    let mut batch = SignalBatch::new();
    group.throughput(Throughput::Elements(32));
    group.bench_function("segment/32_files", |b| {
        b.iter(|| {
            batch.clear();
            signals.iter().for_each(|s| {
                batch.push(&plan, s);
            });
        })
    });

    let data: Vec<f32> = (0..40 * 2 * 64 * 17).map(|i| ((i * 7919) % 1000) as f32 * 0.01).collect();
    let meta = TensorMeta {
        source: "clip.wav",
        config_json: "{}",
        sample_rate: 4096,
        melkit_version: "bench",
    };
    group.throughput(Throughput::Elements(1));
    for (format, compression) in [
        (OutputFormat::H5, Compression::None),
        (OutputFormat::H5, Compression::Lzf),
        (OutputFormat::H5, Compression::Deflate(1)),
        (OutputFormat::H5, Compression::Deflate(4)),
        (OutputFormat::Npy, Compression::None),
        (OutputFormat::Npz, Compression::None),
        (OutputFormat::Npz, Compression::Deflate(1)),
        (OutputFormat::Npz, Compression::Deflate(4)),
    ] {
        // A new file every time, as in a run (replacing a file costs ext4 a flush); the file of
        // the previous iteration is removed outside the timed part.
        let mut count = 0u64;
        group.bench_function(format!("write/{format}_{compression}"), |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_file(dir.path().join(format!("out{count}.{format}")));
                    count += 1;
                    dir.path().join(format!("out{count}.{format}"))
                },
                |path| {
                    let tensor = OutputTensor {
                        data: &data,
                        shape: [40, 2, 64, 17],
                        meta,
                        compression,
                        dtype: Dtype::F32,
                        sync: false,
                    };
                    melkit_io::write_tensor(&path, format, &tensor).unwrap()
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
