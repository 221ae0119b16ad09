//! Each backend's compute step on a batch of default-configuration files (10 s at 4096 Hz,
//! 80 short segments each), reported per short segment. The wgpu backend runs on the best
//! adapter wgpu finds (lavapipe on a machine without a GPU), and is left out when there is none.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use melkit_backend_cpu::{CpuBackend, CpuFft};
use melkit_backend_wgpu::WgpuBackend;
use melkit_core::{Backend, Config, ReferenceBackend};

fn backends(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("backend");
    let mut backends = vec![
        ("cpu", 32, Box::new(CpuBackend::new(&config).unwrap()) as Box<dyn Backend>),
        // The pair path (two frames per rustfft transform), for the lane path's ratio.
        ("cpu-pairs", 32, Box::new(CpuBackend::with_fft(&config, CpuFft::Pairs).unwrap())),
        ("reference", 1, Box::new(ReferenceBackend::new(&config).unwrap())),
    ];
    match WgpuBackend::new(&config) {
        Ok(b) => {
            eprintln!("wgpu adapter: {} ({})", b.adapter().name, b.adapter().device_type);
            backends.push(("wgpu", 32, Box::new(b)));
        }
        Err(e) => eprintln!("wgpu left out: {e}"),
    }
    for (name, files, mut backend) in backends {
        let (plan, batch) = melkit_benches::batch(&config, files);
        let mut out = vec![0.0; batch.output_len(&plan)];
        group.throughput(Throughput::Elements((batch.n_long() * plan.n_short) as u64));
        group.sample_size(if name.starts_with("cpu") { 30 } else { 10 });
        group.bench_function(format!("{name}/{files}_files"), |b| {
            b.iter(|| backend.compute(&batch, &mut out).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, backends);
criterion_main!(benches);
