//! Throughput of the CUDA backend on the batches torchaudio's anchor times
//! (`../shared/bench/anchors_gpu.py`): SPEC's default configuration, files of 10 s at 4096 Hz
//! (80 short segments each), 256, 1024 and 4096 files a batch, both FFT paths. Prints
//! segments/s end to end (upload, kernels, readback of every value) and the share of the wait
//! for the device. A measurement, not a check: ignored by default, run on a GPU by
//! `xtask/device/cuda-check.sh` (`--ignored`), and on the emulated device where that is all
//! there is (`MELKIT_THROUGHPUT_EMULATED=1`, small batches: its numbers say nothing of a GPU).

use std::time::Instant;

use melkit_backend_cuda::{CudaBackend, CudaOptions, Device, FftPath};
use melkit_core::{Backend, Config, SignalBatch};

fn measure<D: Device>(devices: impl Fn() -> Vec<D>, batches: &[usize]) {
    let config = Config::default();
    for path in [FftPath::Fused, FftPath::CuFft] {
        let options = CudaOptions { path: Some(path), ..CudaOptions::default() };
        let mut backend = match CudaBackend::on_devices(&config, devices(), options) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path:?}: {e}");
                continue;
            }
        };
        let plan = backend.plan().clone();
        let noise: Vec<f32> =
            (0..40960).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0 * 0.3).collect();
        for &files in batches {
            let mut batch = SignalBatch::new();
            for _ in 0..files {
                batch.push(&plan, &noise);
            }
            let segments = batch.n_long() * plan.n_short;
            assert_eq!(segments, files * 80);
            let mut out = vec![0.0; batch.output_len(&plan)];
            backend.compute(&batch, &mut out).unwrap();
            let iters = 5;
            let (mut kernel, started) = (0.0, Instant::now());
            for _ in 0..iters {
                let steps = backend.compute(&batch, &mut out).unwrap();
                let wait = steps.steps().iter().find(|(n, _)| *n == "kernel");
                kernel += wait.map_or(0.0, |(_, d)| d.as_secs_f64());
            }
            let seconds = started.elapsed().as_secs_f64() / f64::from(iters);
            println!(
                "{} {path:?} files={files:6} segments={segments:8} end-to-end {:12.0} seg/s \
                 {:9.0} files/s, waiting for the device {:.0}%",
                D::NAME,
                segments as f64 / seconds,
                files as f64 / seconds,
                100.0 * kernel / f64::from(iters) / seconds
            );
        }
    }
}

#[test]
#[ignore = "a measurement: run on a GPU with --ignored"]
fn segments_per_second_on_the_anchor_batches() {
    match melkit_backend_cuda::Cuda::devices(1) {
        Ok(_) => measure(|| melkit_backend_cuda::Cuda::devices(1).unwrap(), &[256, 1024, 4096]),
        Err(e) => eprintln!("no device: {e}"),
    }
    #[cfg(feature = "cuda-emulated")]
    if std::env::var("MELKIT_THROUGHPUT_EMULATED").is_ok_and(|v| v == "1") {
        let emulator = melkit_backend_cuda::emulated::Emulator::default();
        measure(|| emulator.start(), &[4, 16]);
    }
}
