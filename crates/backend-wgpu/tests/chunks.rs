//! A batch bigger than a chunk is split, never failed: computed in many chunks, two in flight
//! at a time, it gives exactly what one chunk gives, and what the reference gives within the
//! GPU tolerance. Batches submitted as a stream stay in flight while the next is computed, and
//! come back in order with what `compute` gives.

use melkit_backend_wgpu::WgpuBackend;
use melkit_core::compare::{Precision, Tolerance, ToleranceClass, compare};
use melkit_core::testing::{gpu_required, mixed_batch, signals};
use melkit_core::{Backend, BackendError, Config, Job, ReferenceBackend, SignalBatch};

/// The backend, or `None` (with the reason printed) where wgpu is unavailable and not required.
fn backend(config: &Config, chunk_bytes: Option<u64>) -> Option<WgpuBackend> {
    melkit_core::testing::quiet_lavapipe();
    let built = match chunk_bytes {
        Some(bytes) => WgpuBackend::with_chunk_bytes(config, bytes),
        None => WgpuBackend::new(config),
    };
    match built {
        Ok(b) => Some(b),
        Err(BackendError::Unavailable { reason, .. }) => {
            assert!(!gpu_required("wgpu"), "wgpu is required but unavailable: {reason}");
            eprintln!("skipping: wgpu is unavailable: {reason}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn many_chunks_give_what_one_chunk_gives() {
    let mut config = Config::default();
    config.set("sample_length", "full").unwrap();
    config.validate().unwrap();
    let Some(whole) = backend(&config, None) else { return };
    // Three long segments' output per chunk: a 7 s, a 3 s and a 0.1 s file take 42 chunks.
    let per_long = whole.plan().long_output_len() as u64 * 4;
    let mut chunked = WgpuBackend::with_chunk_bytes(&config, 3 * per_long).unwrap();
    let mut whole = whole;
    // The 3 s and 0.1 s files handed over as blocks: chunks cross from part to part.
    let batch = mixed_batch(whole.plan(), &signals(4096, &[4096 * 7 + 5, 4096 * 3, 400]));
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

#[test]
fn a_stream_keeps_one_batch_in_flight_and_gives_them_back_in_order() {
    let mut config = Config::default();
    config.set("sample_length", "full").unwrap();
    config.validate().unwrap();
    // Chunks of three long segments, so that batches of several chunks meet in the two slots.
    let Some(mut one) = backend(&config, None) else { return };
    let per_long = one.plan().long_output_len() as u64 * 4;
    let mut streamed = backend(&config, Some(3 * per_long)).unwrap();
    let lengths: [&[usize]; 4] =
        [&[4096 * 7 + 5, 400], &[4096], &[4096 * 2 + 1], &[9000, 4096 * 5]];
    let batches: Vec<SignalBatch> = lengths
        .iter()
        .enumerate()
        .map(|(i, lens)| mixed_batch(one.plan(), &signals(4096 + 7 * i as u32, lens)))
        .collect();
    let mut back = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        // A reused buffer, longer than needed and full of NaN: every value must be written.
        let out = vec![f32::NAN; batch.output_len(one.plan()) + 3];
        let done = streamed.submit(Job { batch: batch.clone(), out });
        // The first batch stays on the device while the second is computed.
        assert_eq!(done.is_some(), i > 0, "batch {i}");
        back.extend(done);
    }
    back.extend(streamed.flush());
    assert!(streamed.flush().is_none(), "every batch was given back");
    assert_eq!(back.len(), batches.len());
    for (i, ((job, result), batch)) in back.into_iter().zip(&batches).enumerate() {
        let steps = result.unwrap_or_else(|e| panic!("batch {i}: {e}"));
        assert!(steps.steps().iter().any(|(n, _)| *n == "download"));
        let all = |b: &SignalBatch| b.samples_in(0..b.samples_len()).into_owned();
        assert_eq!(all(&job.batch), all(batch), "batch {i} came back in its place");
        let mut want = vec![f32::NAN; batch.output_len(one.plan())];
        one.compute(batch, &mut want).unwrap();
        assert!(job.out == want, "batch {i}: the streamed output differs from compute's");
    }
    // Once the stream is empty, compute works again.
    let mut out = vec![0.0; batches[1].output_len(one.plan())];
    streamed.compute(&batches[1], &mut out).unwrap();
}
