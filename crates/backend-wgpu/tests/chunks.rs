//! A batch bigger than a chunk is split, never failed: computed in many chunks, two in flight
//! at a time, it gives exactly what one chunk gives, and what the reference gives within the
//! GPU tolerance.

use melkit_backend_wgpu::WgpuBackend;
use melkit_core::compare::{Precision, Tolerance, ToleranceClass, compare};
use melkit_core::testing::{gpu_required, signals};
use melkit_core::{Backend, BackendError, Config, ReferenceBackend, SignalBatch};

#[test]
fn many_chunks_give_what_one_chunk_gives() {
    melkit_core::testing::quiet_lavapipe();
    let mut config = Config::default();
    config.set("sample_length", "full").unwrap();
    config.validate().unwrap();
    let whole = match WgpuBackend::new(&config) {
        Ok(b) => b,
        Err(BackendError::Unavailable { reason, .. }) => {
            assert!(!gpu_required("wgpu"), "wgpu is required but unavailable: {reason}");
            eprintln!("skipping: wgpu is unavailable: {reason}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // Three long segments' output per chunk: a 7 s, a 3 s and a 0.1 s file take 42 chunks.
    let per_long = whole.plan().long_output_len() as u64 * 4;
    let mut chunked = WgpuBackend::with_chunk_bytes(&config, 3 * per_long).unwrap();
    let mut whole = whole;
    let mut batch = SignalBatch::new();
    for s in signals(4096, &[4096 * 7 + 5, 4096 * 3, 400]) {
        batch.push(whole.plan(), &s);
    }
    let mut a = vec![f32::NAN; batch.output_len(whole.plan())];
    let mut b = vec![f32::NAN; a.len()];
    whole.compute(&batch, &mut a).unwrap();
    let steps = chunked.compute(&batch, &mut b).unwrap();
    assert!(a == b, "chunked output differs");
    assert!(steps.steps().iter().any(|(n, _)| *n == "kernel"));
    let mut want = vec![0.0; a.len()];
    ReferenceBackend::new(&config).unwrap().compute(&batch, &mut want).unwrap();
    let report = compare(&a, &want);
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Gpu };
    assert!(tolerance.passes(&report), "{report}");
}
