//! The CUDA backend's own host code on emulated devices (`cuda-emulated`): the very `.cu`
//! sources NVRTC compiles, built by g++, under the same chunking, rebasing, slots, streams,
//! buffer sizing, out-of-memory halving and spread over devices as on a GPU. The conformance
//! suite through both FFT paths within the GPU tolerance, chunks of every size over
//! overlapping segments of several files, injected faults, and sizes the device cannot take.
//! What only a device shows (races between threads, the driver's compiler, cuFFT itself) is
//! checked on a real GPU by tests/conformance.rs.
#![cfg(feature = "cuda-emulated")]

use melkit_backend_cuda::emulated::{Emulated, Emulator, Faults};
use melkit_backend_cuda::{CudaBackend, CudaOptions, FftPath};
use melkit_core::compare::{Precision, Tolerance, ToleranceClass, compare};
use melkit_core::testing::{gpu_required, mixed_batch, signals};
use melkit_core::{Backend, BackendError, Config, Job, ReferenceBackend, SignalBatch};

fn start(
    config: &Config,
    emulator: &Emulator,
    options: CudaOptions,
) -> Result<CudaBackend<Emulated>, BackendError> {
    CudaBackend::on_devices(config, emulator.start(), options)
}

fn path(path: FftPath) -> CudaOptions {
    CudaOptions { path: Some(path), ..CudaOptions::default() }
}

fn fused(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(start(config, &Emulator::default(), path(FftPath::Fused))?))
}

fn cufft(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(start(config, &Emulator::default(), path(FftPath::CuFft))?))
}

mod fused_path {
    melkit_core::conformance_tests!(super::fused, melkit_core::compare::Precision::Gpu);
}

mod cufft_path {
    melkit_core::conformance_tests!(super::cufft, melkit_core::compare::Precision::Gpu);
}

/// The backend, or `None` (with the reason) where g++ is missing and the emulation is not
/// required.
fn backend(
    config: &Config,
    emulator: &Emulator,
    options: CudaOptions,
) -> Option<CudaBackend<Emulated>> {
    match start(config, emulator, options) {
        Ok(b) => Some(b),
        Err(BackendError::Unavailable { reason, .. }) => {
            assert!(!gpu_required("cuda-emulated"), "cuda-emulated is required: {reason}");
            eprintln!("skipping: {reason}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Overlapping long segments (hop 1/8 of the length) in files of 7, 1 and 3 segments, with
/// full-length signals so that every chunk boundary falls somewhere new.
fn overlapping() -> (Config, SignalBatch) {
    let mut config = Config::default();
    config.set("long_segment_hop", "0.125").unwrap();
    config.set("short_segment_hop", "256").unwrap();
    config.set("sample_length", "full").unwrap();
    config.validate().unwrap();
    let plan = melkit_core::SegmentPlan::new(&config).unwrap();
    let lens = [plan.long_len + 6 * plan.long_hop, 300, plan.long_len + 2 * plan.long_hop - 5];
    // The second and third files handed over as blocks: the batch's samples lie in three parts.
    let batch = mixed_batch(&plan, &signals(config.sample_rate, &lens));
    (config, batch)
}

fn run(backend: &mut CudaBackend<Emulated>, batch: &SignalBatch) -> Vec<f32> {
    let mut out = vec![f32::NAN; batch.output_len(backend.plan())];
    backend.compute(batch, &mut out).unwrap_or_else(|e| panic!("{e}"));
    out
}

fn reference(config: &Config, batch: &SignalBatch) -> Vec<f32> {
    let mut backend = ReferenceBackend::new(config).unwrap();
    let mut out = vec![f32::NAN; batch.output_len(backend.plan())];
    backend.compute(batch, &mut out).unwrap();
    out
}

fn assert_near_reference(got: &[f32], want: &[f32], what: &str) {
    let report = compare(got, want);
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Gpu };
    assert!(tolerance.passes(&report), "{what}: {report}");
}

/// Chunks of 1, 2, 3 and many long segments, each spanning files whose segments overlap:
/// a chunk's signal is more than `(longs − 1) · hop + long_len` samples, which the device
/// buffers once did not hold (an overrun, now sized from the real span and checked).
#[test]
fn chunks_of_every_size_over_overlapping_segments_of_several_files() {
    let (config, batch) = overlapping();
    assert_eq!(batch.n_long(), 11);
    let want = reference(&config, &batch);
    for fft in [FftPath::Fused, FftPath::CuFft] {
        let mut outputs = Vec::new();
        for longs in [1, 2, 3, 5, 64] {
            let options = CudaOptions { path: Some(fft), chunk_longs: Some(longs) };
            let Some(mut b) = backend(&config, &Emulator::default(), options) else { return };
            assert_eq!(b.chunk_longs(), [longs]);
            let got = run(&mut b, &batch);
            assert_near_reference(&got, &want, &format!("{fft:?}, {longs} per chunk"));
            outputs.push(got);
        }
        // cuFFT's frames are independent of one another; the fused kernel pairs frames into
        // one complex FFT, and a chunk boundary changes the pairs (and the last bits).
        if fft == FftPath::CuFft {
            for (i, o) in outputs.iter().enumerate() {
                assert!(o == &outputs[0], "{fft:?}: chunking {i} changed the numbers");
            }
        }
    }
}

/// Batches of several files submitted as a stream to two devices come back in order, each
/// identical to what `compute` gives for it alone.
#[test]
fn two_devices_split_a_stream_and_give_it_back_in_order() {
    let (config, _) = overlapping();
    let two = Emulator { devices: 2, ..Emulator::default() };
    let options = CudaOptions { chunk_longs: Some(3), ..path(FftPath::Fused) };
    let Some(mut streamed) = backend(&config, &two, options) else { return };
    let mut one = backend(&config, &Emulator::default(), options).unwrap();
    assert_eq!(streamed.device_count(), 2);
    let plan = one.plan().clone();
    let batches: Vec<SignalBatch> = (0..5u32)
        .map(|i| {
            let lens = [plan.long_len * (1 + i as usize) + 9, 500 + 100 * i as usize];
            mixed_batch(&plan, &signals(config.sample_rate + i, &lens))
        })
        .collect();
    let mut back = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        // A reused buffer, longer than needed and full of NaN: every value must be written.
        let out = vec![f32::NAN; batch.output_len(&plan) + 3];
        let done = streamed.submit(Job { batch: batch.clone(), out });
        // One batch per device stays in flight.
        assert_eq!(done.is_some(), i >= 2, "batch {i}");
        back.extend(done);
    }
    while let Some(done) = streamed.flush() {
        back.push(done);
    }
    assert_eq!(back.len(), batches.len());
    for (i, ((job, result), batch)) in back.into_iter().zip(&batches).enumerate() {
        result.unwrap_or_else(|e| panic!("batch {i}: {e}"));
        let all = |b: &SignalBatch| b.samples_in(0..b.samples_len()).into_owned();
        assert_eq!(all(&job.batch), all(batch), "batch {i} came back in its place");
        assert!(job.out == run(&mut one, batch), "batch {i}: differs from compute");
    }
}

/// An out-of-memory on the k-th allocation or launch halves the chunks and the batch succeeds
/// with the same numbers.
#[test]
fn out_of_memory_halves_the_chunks_and_the_batch_succeeds() {
    let (config, batch) = overlapping();
    let options = CudaOptions { chunk_longs: Some(8), ..path(FftPath::CuFft) };
    let Some(mut clean) = backend(&config, &Emulator::default(), options) else { return };
    let want = run(&mut clean, &batch);
    // Allocations 1–5 are the tables; 6–11 the slot's buffers at first use.
    let faults = [
        Faults { oom_at_allocation: Some(8), ..Faults::default() },
        Faults { oom_at_launch: Some(2), ..Faults::default() },
    ];
    for faults in faults {
        let emulator = Emulator { faults, ..Emulator::default() };
        let mut b = backend(&config, &emulator, options).unwrap();
        let got = run(&mut b, &batch);
        assert_eq!(b.chunk_longs(), [4], "{faults:?}");
        assert!(got == want, "{faults:?}: the numbers changed");
    }
    // A device too small for one chunk's buffers at any size is an error, not a hang.
    let tiny = Emulator { memory: 40 << 10, ..Emulator::default() };
    let mut b = backend(&config, &tiny, options).unwrap();
    let mut out = vec![0.0; want.len()];
    let e = b.compute(&batch, &mut out).unwrap_err().to_string();
    assert!(e.starts_with("backend cuda-emulated failed: device 0: out of memory: "), "{e}");
}

/// A kernel that fails fails its own batch, with the device's message, and no other.
#[test]
fn a_kernel_error_fails_only_its_batch() {
    let (config, batch) = overlapping();
    // Batch 1 takes launches 1–4 (chunks of 3 of 11 segments); launch 6 is in batch 2.
    let faults = Faults { error_at_launch: Some(6), ..Faults::default() };
    let emulator = Emulator { faults, ..Emulator::default() };
    let options = CudaOptions { chunk_longs: Some(3), ..path(FftPath::Fused) };
    let Some(mut b) = backend(&config, &emulator, options) else { return };
    let mut back = Vec::new();
    for _ in 0..3 {
        back.extend(b.submit(Job { batch: batch.clone(), out: Vec::new() }));
    }
    back.extend(b.flush());
    let results: Vec<Result<(), String>> =
        back.into_iter().map(|(_, r)| r.map(|_| ()).map_err(|e| e.to_string())).collect();
    let error = "backend cuda-emulated failed: device 0: unspecified launch failure (injected at \
                 launch 6)";
    assert_eq!(results, [Ok(()), Err(error.to_string()), Ok(())]);
}

/// A configuration whose fused kernel needs more shared memory than the device has goes to
/// cuFFT; with no cuFFT either, the backend says it cannot take it (the caller hands the work
/// to the CPU backend).
#[test]
fn sizes_beyond_shared_memory_take_cufft_or_are_refused() {
    let config = Config::default();
    let small = Emulator { shared_memory: 2 << 10, ..Emulator::default() };
    let Some(mut b) = backend(&config, &small, CudaOptions::default()) else { return };
    assert_eq!(b.path(), FftPath::CuFft);
    let mut batch = SignalBatch::new();
    for s in signals(config.sample_rate, &[9000, 300]) {
        batch.push(b.plan(), &s);
    }
    assert_near_reference(&run(&mut b, &batch), &reference(&config, &batch), "cuFFT");
    let no_fft = Emulator { fft: false, ..small.clone() };
    let e = start(&config, &no_fft, CudaOptions::default()).err().unwrap();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "backend cuda-emulated cannot take this configuration: the fused kernel needs 3080 bytes \
         of shared memory for n_fft 256; device 0 has 2048, and there is no cuFFT library"
    );
    let e = start(&config, &small, path(FftPath::Fused)).err().unwrap();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
}
