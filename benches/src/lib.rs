//! Shared inputs for melkit's criterion benchmarks: deterministic signals and WAV files.

use std::path::Path;

use melkit_core::{Config, SegmentPlan, SignalBatch};

/// A batch of `files` deterministic 10 s signals at the default rate, prepared for `config`.
pub fn batch(config: &Config, files: usize) -> (SegmentPlan, SignalBatch) {
    let plan = SegmentPlan::new(config).expect("valid configuration");
    let lengths = vec![config.sample_rate as usize * 10; files];
    let mut batch = SignalBatch::new();
    for signal in melkit_core::testing::signals(config.sample_rate, &lengths) {
        batch.push(&plan, &signal);
    }
    (plan, batch)
}

/// Writes a 16-bit mono WAV of deterministic audio, `seconds` long at `rate`.
pub fn write_wav(path: &Path, rate: u32, seconds: f64) {
    let n = (f64::from(rate) * seconds) as usize;
    let signal = &melkit_core::testing::signals(rate, &[n])[0];
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create WAV");
    for &x in signal {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16).expect("write WAV");
    }
    w.finalize().expect("finish WAV");
}
