//! Helpers of the profiler tests: corpora of tones, and a backend with a planted slow compute
//! stage to wrap around a real one (a wrong one is `melkit_core::testing::Perturbed`).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use melkit::{Backend, BackendError, BackendKind, Config, SegmentPlan, SignalBatch, StepTimings};

/// Writes `n` WAV files of `seconds` of a noisy tone at `rate` Hz into `dir` (16-bit PCM).
pub fn corpus(dir: &Path, n: usize, rate: u32, seconds: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let len = (seconds * f64::from(rate)) as usize;
    for i in 0..n {
        let mut w = hound::WavWriter::create(dir.join(format!("tone_{i:02}.wav")), spec).unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64 ^ i as u64;
        for t in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            let hz = 200.0 + 50.0 * i as f64;
            let v = 0.3 * (std::f64::consts::TAU * hz * t as f64 / f64::from(rate)).sin()
                + 0.02 * noise;
            w.write_sample((v * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
}

/// The CPU backend for `config`.
pub fn cpu(config: &Config) -> Box<dyn Backend> {
    melkit::create_backend(BackendKind::Cpu, config).unwrap()
}

/// A backend that sleeps `delay` in every call: a planted slow compute stage.
pub struct Throttled {
    pub inner: Box<dyn Backend>,
    pub delay: Duration,
}

impl Backend for Throttled {
    fn name(&self) -> &'static str {
        "throttled"
    }

    fn plan(&self) -> &SegmentPlan {
        self.inner.plan()
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        std::thread::sleep(self.delay);
        let mut steps = self.inner.compute(batch, out)?;
        steps.add("throttle", self.delay);
        Ok(steps)
    }
}

/// A configuration keeping whole files, with `workers` threads and `batch` files per call.
pub fn config(workers: usize, batch: usize) -> Config {
    let mut c = Config::default();
    c.set("sample_length", "full").unwrap();
    c.set("max_workers", &workers.to_string()).unwrap();
    c.set("batch_size", &batch.to_string()).unwrap();
    c
}

/// A profile of `repeats` runs over `inputs` on `backend`, into NPY, without the probes; every
/// file written.
pub fn profiled(
    config: &Config,
    backend: Box<dyn Backend>,
    inputs: &Path,
    repeats: usize,
) -> melkit_profiler::Profile {
    let mut pipeline = melkit::Pipeline::with_backend(config.clone(), backend).unwrap();
    let options = melkit_profiler::ProfileOptions {
        repeats,
        probe: false,
        out_dir: None,
        output: melkit::OutputOptions {
            format: melkit::OutputFormat::Npy,
            ..melkit::OutputOptions::default()
        },
    };
    let found = melkit::discover::discover(&[inputs.to_path_buf()]);
    let p = melkit_profiler::profile(&mut pipeline, &found, &options).unwrap();
    assert!(p.report.success() && p.report.files_ok > 0, "{}", p.report);
    p
}

/// Eight 20 s files at 48 kHz and the same at 4096 Hz (no resampling), in `dir`.
pub fn high_and_low_rates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (high, low) = (dir.join("48k"), dir.join("4096"));
    corpus(&high, 8, 48_000, 20.0);
    corpus(&low, 8, 4096, 20.0);
    (high, low)
}
