//! This machine's measured peaks (an FFT and a memory-bandwidth probe, a fraction of a second
//! each), the compute stage's work in FLOPs and bytes, and where it sits on the roofline.

use std::time::{Duration, Instant};

use melkit::{RunReport, SegmentPlan};
use rayon::prelude::*;
use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

/// What this machine's CPU can do at most, as measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// FLOP/s of real FFTs of the configuration's size on every thread.
    pub fft_flops: f64,
    /// Bytes/s of a large copy on every thread (read + write).
    pub memory_bytes: f64,
    /// Threads the probes ran on.
    pub threads: usize,
}

/// FLOPs of one real FFT of `n` points (the usual `2.5 n log2 n`).
pub fn fft_flops(n: usize) -> f64 {
    2.5 * n as f64 * (n as f64).log2()
}

/// Runs both probes for about `budget` each.
pub fn measure(n_fft: usize, budget: Duration) -> Peaks {
    let threads = rayon::current_num_threads();
    Peaks { fft_flops: fft_probe(n_fft, budget), memory_bytes: memory_probe(budget), threads }
}

fn fft_probe(n: usize, budget: Duration) -> f64 {
    let frames = 64;
    let threads = rayon::current_num_threads();
    let counts: Vec<u64> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
            let mut input = vec![0.25f32; n * frames];
            let mut output = vec![realfft::num_complex::Complex::default(); (n / 2 + 1) * frames];
            let mut scratch = fft.make_scratch_vec();
            let started = Instant::now();
            let mut done = 0u64;
            while started.elapsed() < budget {
                for (i, o) in input.chunks_exact_mut(n).zip(output.chunks_exact_mut(n / 2 + 1)) {
                    let _ = fft.process_with_scratch(i, o, &mut scratch);
                }
                done += frames as u64;
            }
            let rate = done as f64 / started.elapsed().as_secs_f64();
            rate as u64
        })
        .collect();
    counts.iter().map(|&c| c as f64).sum::<f64>() * fft_flops(n)
}

fn memory_probe(budget: Duration) -> f64 {
    const BYTES: usize = 64 << 20;
    let src = vec![1u8; BYTES];
    let mut dst = vec![0u8; BYTES];
    let chunk = BYTES / rayon::current_num_threads().max(1);
    let mut best = 0f64;
    let started = Instant::now();
    while started.elapsed() < budget || best == 0.0 {
        let t = Instant::now();
        dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| {
            d.copy_from_slice(s);
        });
        std::hint::black_box(&dst);
        best = best.max(2.0 * BYTES as f64 / t.elapsed().as_secs_f64());
    }
    best
}

/// The compute stage's work over a run: FLOPs and bytes moved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Floating-point operations: window, FFT, power, mel projection.
    pub flops: f64,
    /// Bytes read (signal) and written (mel values).
    pub bytes: f64,
}

/// The work of computing `long_segments` long segments of `plan`.
pub fn work(plan: &SegmentPlan, long_segments: u64) -> Work {
    let frames = (long_segments as usize * plan.n_short * plan.n_frames) as f64;
    // Window (n), FFT, power (3 per bin), mel (each bin in at most two triangles: 2 × 2 per bin).
    let per_frame = plan.n_fft as f64 + fft_flops(plan.n_fft) + 7.0 * plan.n_bins as f64;
    let read = long_segments as f64 * plan.long_len as f64 * 4.0;
    let written = long_segments as f64 * plan.long_output_len() as f64 * 4.0;
    Work { flops: frames * per_frame, bytes: read + written }
}

/// Where the compute stage sits against the machine's peaks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Achieved FLOP/s over the compute lane's wall time.
    pub flops: f64,
    /// Achieved bytes/s.
    pub bytes: f64,
    /// FLOPs per byte.
    pub intensity: f64,
    /// The most this intensity allows here: `min(peak FLOP/s, intensity × bandwidth)`.
    pub attainable: f64,
    /// Achieved over attainable.
    pub efficiency: f64,
    /// Whether the roof is the memory bandwidth (else the FFT peak).
    pub memory_bound: bool,
}

/// The roofline position of a run's compute stage.
pub fn roofline(report: &RunReport, plan: &SegmentPlan, peaks: &Peaks) -> Option<Roofline> {
    let seconds = report.compute_wall.as_secs_f64();
    if seconds <= 0.0 || report.long_segments == 0 {
        return None;
    }
    let w = work(plan, report.long_segments);
    let intensity = w.flops / w.bytes;
    let memory_roof = intensity * peaks.memory_bytes;
    let attainable = peaks.fft_flops.min(memory_roof);
    let flops = w.flops / seconds;
    Some(Roofline {
        flops,
        bytes: w.bytes / seconds,
        intensity,
        attainable,
        efficiency: flops / attainable,
        memory_bound: memory_roof < peaks.fft_flops,
    })
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_counts_every_frame() {
        let plan = SegmentPlan::new(&melkit::Config::default()).unwrap();
        let w = work(&plan, 40);
        // 40 long segments × 2 short × 17 frames of a 256-point FFT.
        let frame = 256.0 + 2.5 * 256.0 * 8.0 + 7.0 * 129.0;
        assert!((w.flops - 1360.0 * frame).abs() < 1e-6);
        assert_eq!(w.bytes, 40.0 * 1024.0 * 4.0 + 40.0 * 2.0 * 64.0 * 17.0 * 4.0);
    }

    #[test]
    fn probes_measure_something() {
        let p = measure(256, Duration::from_millis(20));
        assert!(p.fft_flops > 1e6 && p.memory_bytes > 1e6, "{p:?}");
    }
}
