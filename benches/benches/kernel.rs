//! The CPU backend's fused kernel split into its steps, on one long segment (two short
//! segments, 34 frames, with the default configuration): window + FFT + power, the mel
//! projection, and the dB scaling.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use melkit_backend_cpu::Steps;
use melkit_core::Config;

fn kernel(c: &mut Criterion) {
    let mut config = Config::default();
    config.set("scale", "db").unwrap();
    let mut steps = Steps::new(&config).unwrap();
    let long = &melkit_core::testing::signals(4096, &[1024])[0];
    let mut out = vec![0.0; steps.tile_output_len()];
    let mut group = c.benchmark_group("kernel");
    group.throughput(Throughput::Elements(34));
    group.bench_function("window_fft_power_34_frames", |b| b.iter(|| steps.spectra(long)));
    steps.spectra(long);
    group.bench_function("mel_projection_34_frames", |b| b.iter(|| steps.mel(&mut out)));
    steps.mel(&mut out);
    let mels = out.clone();
    group.bench_function("db_scale_34_frames", |b| {
        b.iter(|| {
            out.copy_from_slice(&mels);
            steps.scale(&mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
