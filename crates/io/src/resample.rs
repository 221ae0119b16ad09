//! Resampling to the configured rate (SPEC §1 step 3), aligned in time with the input and
//! with the frequency response of librosa's default (`soxr_hq`): flat to 0.913 of the lower
//! Nyquist frequency, −3 dB near 0.95, ≥ 120 dB down from 1.0.
//!
//! Two steps: rubato's synchronous FFT resampler, run with one long FFT block so its own
//! anti-aliasing filter is flat almost to Nyquist, and one short zero-phase FIR at the lower of
//! the two rates (a Kaiser-windowed sinc, soxr's own design rule; after rubato when
//! downsampling, before it when upsampling) that gives the soxr-HQ transition band and removes
//! the fraction of a sample by which rubato's output runs early (rubato reports its delay in
//! whole samples; when downsampling its output is half an input sample early, rubato issue
//! #96). The output has `ceil(N · (to / from))` samples, computed in floating point as librosa
//! computes it (one more than the exact ceiling for some rate pairs, e.g. 220500 samples at
//! 44100 Hz give 120001 at 24000 Hz).

use std::cell::RefCell;
use std::collections::HashMap;
use std::f64::consts::PI;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::error::DecodeError;

/// Output samples per rubato FFT block at least: rubato's cutoff is `1 - ~14 / block`.
const MIN_BLOCK_OUT: usize = 2048;
/// soxr HQ: the passband ends (0 dB) at this fraction of the lower Nyquist frequency...
const PASSBAND_END: f64 = 0.913;
/// ...and the stopband begins here.
const STOPBAND_BEGIN: f64 = 1.0;
/// soxr HQ's stopband attenuation: 20 bits, `21 × 20 log10(2)` dB.
const ATTENUATION_DB: f64 = 126.4;

/// One rate pair's resampler and the filter that shapes and aligns its output.
struct Converter {
    fft: Fft<f64>,
    /// Zero-phase taps `h[-half..=half]` at the lower rate, centred on the measured advance.
    taps: Vec<f64>,
    half: usize,
    /// Upsampling: the filter runs on the input, before rubato.
    before: bool,
}

thread_local! {
    /// Converters are costly to build: each thread keeps one per rate pair.
    static CONVERTERS: RefCell<HashMap<(u32, u32), Converter>> = RefCell::new(HashMap::new());
}

impl Converter {
    fn new(from: u32, to: u32) -> Result<Self, String> {
        let block_in = (MIN_BLOCK_OUT as u64 * u64::from(from)).div_ceil(u64::from(to)) as usize;
        let fft = Fft::<f64>::new_custom(
            from as usize,
            to as usize,
            block_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .map_err(|e| e.to_string())?;
        let before = to > from;
        let mut converter = Converter { fft, taps: vec![1.0], half: 0, before };
        // rubato's advance in output samples, as a delay at the rate the filter runs at.
        let advance = converter.measure_advance(from, to)?;
        let advance = if before { advance * f64::from(from) / f64::from(to) } else { advance };
        (converter.taps, converter.half) = soxr_like_taps(from.min(to), advance);
        Ok(converter)
    }

    fn rubato(&mut self, input: &[f64]) -> Result<Vec<f64>, String> {
        let adapter = InterleavedSlice::new(input, 1, input.len()).map_err(|e| e.to_string())?;
        let out = self.fft.process_all(&adapter, input.len(), None).map_err(|e| e.to_string())?;
        Ok(out.take_data())
    }

    /// `input` resampled to `len` samples, shaped and aligned.
    fn run(&mut self, input: &[f64], len: usize) -> Result<Vec<f64>, String> {
        let mut out = if self.before {
            let filtered = self.filter(input);
            self.rubato(&filtered)?
        } else {
            let raw = self.rubato(input)?;
            self.filter(&raw)
        };
        out.resize(len, 0.0);
        Ok(out)
    }

    /// `y[i] = Σ_k h[k] x[i - k]` for k in `-half..=half`, zeros outside the signal.
    fn filter(&self, x: &[f64]) -> Vec<f64> {
        let (half, len) = (self.half as isize, x.len() as isize);
        (0..len)
            .map(|i| {
                let (lo, hi) = ((i - (len - 1)).max(-half), i.min(half));
                (lo..=hi).map(|k| self.taps[(k + half) as usize] * x[(i - k) as usize]).sum()
            })
            .collect()
    }

    /// How many output samples early rubato's output of a steady tone well inside the
    /// passband is, from a least-squares fit of its phase.
    fn measure_advance(&mut self, from: u32, to: u32) -> Result<f64, String> {
        let hz = 0.05 * f64::from(from.min(to));
        let n = 4 * self.fft.input_frames_max().max(from as usize);
        let input: Vec<f64> =
            (0..n).map(|i| (2.0 * PI * hz * i as f64 / f64::from(from)).sin()).collect();
        let out = self.rubato(&input)?;
        let (mut ys, mut yc, mut ss, mut cc, mut sc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &y) in out.iter().enumerate().take(3 * out.len() / 4).skip(out.len() / 4) {
            let (s, c) = (2.0 * PI * hz * i as f64 / f64::from(to)).sin_cos();
            (ys, yc, ss, cc, sc) = (ys + y * s, yc + y * c, ss + s * s, cc + c * c, sc + s * c);
        }
        let det = ss * cc - sc * sc;
        let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
        let advance = b.atan2(a) / (2.0 * PI * hz) * f64::from(to);
        if advance.is_finite() && (a * a + b * b) > 0.25 {
            Ok(advance)
        } else {
            Err(format!("cannot measure the resampler's delay (fit {a}, {b})"))
        }
    }
}

/// The zeroth-order modified Bessel function of the first kind (series; converges fast for the
/// Kaiser window's arguments).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// soxr's low-pass design (`lsx_design_lpf`: a Kaiser-windowed sinc cut at the middle of the
/// transition band) for the Nyquist frequency of `rate`, delayed by `delay` samples. Returns
/// the taps `h[-half..=half]` and `half`.
fn soxr_like_taps(rate: u32, delay: f64) -> (Vec<f64>, usize) {
    let rate = f64::from(rate);
    let nyquist = rate / 2.0;
    // Cut-off and transition width in cycles per output sample.
    let cutoff = (PASSBAND_END + STOPBAND_BEGIN) / 2.0 * nyquist / rate;
    let transition = (STOPBAND_BEGIN - PASSBAND_END) * nyquist / rate;
    let beta = 0.1102 * (ATTENUATION_DB - 8.7);
    let taps = ((ATTENUATION_DB - 7.95) / (2.285 * 2.0 * PI * transition)).ceil() as usize + 1;
    let half = taps / 2 + delay.abs().ceil() as usize;
    let width = (taps / 2) as f64 + 0.5;
    let mut h: Vec<f64> = (-(half as isize)..=half as isize)
        .map(|k| {
            let t = k as f64 - delay;
            let r = t / width;
            if r.abs() >= 1.0 {
                return 0.0;
            }
            let sinc =
                if t == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * t).sin() / (PI * t) };
            sinc * bessel_i0(beta * (1.0 - r * r).sqrt()) / bessel_i0(beta)
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|x| *x /= sum);
    (h, half)
}

/// Source rates melkit resamples from, in Hz.
pub const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1..=1_536_000;

/// The length librosa gives `n` samples resampled from `from` to `to` Hz:
/// `int(np.ceil(n * (float(to) / from)))`.
pub fn resampled_len(n: usize, from: u32, to: u32) -> usize {
    (n as f64 * (f64::from(to) / f64::from(from))).ceil() as usize
}

/// `samples` at `from` Hz resampled to `to` Hz (a copy when the rates are equal).
///
/// # Errors
/// The resampler cannot be built for these rates.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, DecodeError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let fail = |reason: String| DecodeError::Resample { from, to, reason };
    if !SOURCE_RATES.contains(&from) || !SOURCE_RATES.contains(&to) {
        return Err(fail(format!(
            "rates must be from {} to {} Hz",
            SOURCE_RATES.start(),
            SOURCE_RATES.end()
        )));
    }
    let n = samples.len();
    let expected = resampled_len(n, from, to);
    if n == 0 {
        return Ok(Vec::new());
    }
    let input: Vec<f64> = samples.iter().map(|&x| f64::from(x)).collect();
    let output = CONVERTERS.with(|cell| {
        let mut cache = cell.borrow_mut();
        let converter = match cache.entry((from, to)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Converter::new(from, to).map_err(fail)?)
            }
        };
        converter.run(&input, expected).map_err(fail)
    })?;
    Ok(output.into_iter().map(|x| x as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (0.5 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as f32).collect()
    }

    #[test]
    fn length_is_the_ceiling() {
        for (from, to, n) in
            [(16000, 4096, 160_000), (44100, 4096, 12345), (8000, 4096, 7), (4096, 8000, 100)]
        {
            let out = resample(&vec![0.1; n], from, to).unwrap();
            assert_eq!(out.len(), (n * to as usize).div_ceil(from as usize), "{from}->{to} n={n}");
        }
        // librosa's float ceiling: 5 s at 44.1 kHz is 120001 samples at 24 kHz, not 120000.
        assert_eq!(resample(&vec![0.1; 220_500], 44100, 24000).unwrap().len(), 120_001);
        assert_eq!(resampled_len(160_000, 16000, 4096), 40960);
        let e = resample(&[0.0; 10], 2_000_000, 4096).unwrap_err();
        assert_eq!(
            e.to_string(),
            "resampling from 2000000 Hz to 4096 Hz failed: rates must be from 1 to 1536000 Hz"
        );
    }

    #[test]
    fn a_tone_keeps_its_phase_and_level() {
        // A tone resampled must still be the same sine at the same times, up and down.
        for (from, to, hz) in
            [(16000, 4096, 300.0), (44100, 4096, 1234.5), (8000, 4096, 1700.0), (4096, 8000, 300.0)]
        {
            let out = resample(&tone(from, hz, 2 * from as usize), from, to).unwrap();
            let want = tone(to, hz, out.len());
            let interior = 512..out.len() - 512;
            let err = interior.clone().map(|i| (out[i] - want[i]).abs()).fold(0.0, f32::max);
            assert!(err < 1e-4, "{from}->{to} {hz} Hz: max error {err}");
        }
    }

    /// The gain of a tone at `fraction` of the lower Nyquist frequency through `from -> to`.
    fn gain(from: u32, to: u32, fraction: f64) -> f64 {
        let hz = fraction * f64::from(from.min(to)) / 2.0;
        let out = resample(&tone(from, hz, 4 * from as usize), from, to).unwrap();
        let interior = &out[out.len() / 4..3 * out.len() / 4];
        let rms = (interior.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>()
            / interior.len() as f64)
            .sqrt();
        rms * 2f64.sqrt() / 0.5
    }

    #[test]
    fn response_follows_soxr_hq() {
        // soxr HQ: 0 dB to 0.913 of the lower Nyquist, -3 dB near 0.95, >= 120 dB down from 1.0.
        for (from, to) in [(16000, 4096), (44100, 4096), (4096, 11025)] {
            assert!((gain(from, to, 0.5) - 1.0).abs() < 1e-4, "{from}->{to} at 0.5");
            assert!((gain(from, to, 0.9) - 1.0).abs() < 2e-3, "{from}->{to} at 0.9");
            let g = gain(from, to, 0.95);
            assert!((0.63..0.79).contains(&g), "{from}->{to} at 0.95: {g}");
            let g = gain(from, to, 0.995);
            assert!(g < 2e-4, "{from}->{to} at 0.995: {g}");
            if from > to {
                // Above the new Nyquist frequency nothing may alias back.
                let g = gain(from, to, 1.05);
                assert!(g < 1e-5, "{from}->{to} at 1.05: {g}");
            }
        }
    }

    #[test]
    fn content_above_the_new_nyquist_is_removed() {
        let out = resample(&tone(16000, 3000.0, 32000), 16000, 4096).unwrap();
        let interior = &out[512..out.len() - 512];
        let peak = interior.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak < 1e-4, "aliased peak {peak}");
    }
}
