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

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

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

/// Source rates melkit resamples from, in Hz.
pub const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1..=1_536_000;

/// The length librosa gives `n` samples resampled from `from` to `to` Hz:
/// `int(np.ceil(n * (float(to) / from)))`.
pub fn resampled_len(n: usize, from: u32, to: u32) -> usize {
    (n as f64 * (f64::from(to) / f64::from(from))).ceil() as usize
}

/// A rate pair's shaping filter, designed (and rubato's delay measured) once per process.
struct Design {
    /// Zero-phase taps `h[-half..=half]` at the lower rate, centred on rubato's advance,
    /// stored from `h[half]` down to `h[-half]`.
    reversed: Vec<f64>,
    half: usize,
    /// Upsampling: the filter runs on the input, before rubato.
    before: bool,
}

/// The designs made so far, by rate pair.
type Designs = HashMap<(u32, u32), Arc<Design>>;

/// Every design made so far, shared by all threads.
static DESIGNS: Mutex<Option<Designs>> = Mutex::new(None);

/// rubato's synchronous resampler with one long FFT block (its filter then passes almost to
/// Nyquist).
fn rubato(from: u32, to: u32) -> Result<Fft<f64>, String> {
    let block_in = (MIN_BLOCK_OUT as u64 * u64::from(from)).div_ceil(u64::from(to)) as usize;
    Fft::<f64>::new_custom(
        from as usize,
        to as usize,
        block_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| e.to_string())
}

fn design(from: u32, to: u32) -> Result<Arc<Design>, String> {
    let known = DESIGNS.lock().ok().and_then(|d| d.as_ref()?.get(&(from, to)).cloned());
    if let Some(design) = known {
        return Ok(design);
    }
    let before = to > from;
    let mut stage = RubatoStage::new(rubato(from, to)?);
    // rubato's advance in output samples, as a delay at the rate the filter runs at.
    let advance = stage.measure_advance(from, to)?;
    let advance = if before { advance * f64::from(from) / f64::from(to) } else { advance };
    let (mut reversed, half) = soxr_like_taps(from.min(to), advance);
    reversed.reverse();
    let design = Arc::new(Design { reversed, half, before });
    if let Ok(mut designs) = DESIGNS.lock() {
        designs.get_or_insert_with(HashMap::new).insert((from, to), design.clone());
    }
    Ok(design)
}

/// rubato fed chunk by chunk, its start-up delay dropped (as its `process_all` does).
struct RubatoStage {
    fft: Fft<f64>,
    pending: Vec<f64>,
    skip: usize,
    chunk_out: Vec<f64>,
    produced: usize,
}

impl RubatoStage {
    fn new(fft: Fft<f64>) -> Self {
        let skip = fft.output_delay();
        let chunk_out = vec![0.0; fft.output_frames_max()];
        RubatoStage { fft, pending: Vec::new(), skip, chunk_out, produced: 0 }
    }

    fn chunk(&mut self, input: &[f64], out: &mut Vec<f64>) -> Result<(), String> {
        let adapter = InterleavedSlice::new(input, 1, input.len()).map_err(|e| e.to_string())?;
        let capacity = self.chunk_out.len();
        let mut target = InterleavedSlice::new_mut(&mut self.chunk_out, 1, capacity)
            .map_err(|e| e.to_string())?;
        let (_, written) =
            self.fft.process_into_buffer(&adapter, &mut target, None).map_err(|e| e.to_string())?;
        let dropped = self.skip.min(written);
        self.skip -= dropped;
        out.extend_from_slice(&self.chunk_out[dropped..written]);
        self.produced += written - dropped;
        Ok(())
    }

    /// Feeds `input`; appends what rubato gives back.
    fn push(&mut self, input: &[f64], out: &mut Vec<f64>) -> Result<(), String> {
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.fft.input_frames_next() {
            let n = self.fft.input_frames_next();
            let chunk = self.pending[start..start + n].to_vec();
            self.chunk(&chunk, out)?;
            start += n;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Pads the input with zeros until `total` output samples have come out; appends them.
    fn finish(&mut self, total: usize, out: &mut Vec<f64>) -> Result<(), String> {
        while self.produced < total {
            let n = self.fft.input_frames_next();
            let mut chunk = std::mem::take(&mut self.pending);
            chunk.resize(n, 0.0);
            self.chunk(&chunk, out)?;
        }
        let excess = self.produced - total;
        out.truncate(out.len() - excess.min(out.len()));
        self.produced = total;
        Ok(())
    }

    /// How many output samples early rubato's output of a steady tone well inside the
    /// passband is, from a least-squares fit of its phase.
    fn measure_advance(&mut self, from: u32, to: u32) -> Result<f64, String> {
        let hz = 0.05 * f64::from(from.min(to));
        let n = 4 * self.fft.input_frames_max().max(from as usize);
        let input: Vec<f64> =
            (0..n).map(|i| (2.0 * PI * hz * i as f64 / f64::from(from)).sin()).collect();
        let mut out = Vec::new();
        self.push(&input, &mut out)?;
        self.finish(resampled_len(n, from, to), &mut out)?;
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

/// The zero-phase FIR fed chunk by chunk: `y[i] = Σ_k h[k] x[i - k]` for k in `-half..=half`,
/// with zeros before the signal and after its end.
struct FirStage {
    design: Arc<Design>,
    /// Samples from absolute index `start` on (the history the next outputs need).
    x: Vec<f64>,
    start: usize,
    /// The next output index.
    next: usize,
}

impl FirStage {
    fn new(design: Arc<Design>) -> Self {
        FirStage { design, x: Vec::new(), start: 0, next: 0 }
    }

    /// Feeds `input`; appends every output whose inputs are all known. With `end` (the
    /// signal's length, known at its end) every output up to it is emitted.
    fn push(&mut self, input: &[f64], end: Option<usize>, out: &mut Vec<f64>) {
        self.x.extend_from_slice(input);
        let half = self.design.half as isize;
        let available = self.start + self.x.len();
        let stop = match end {
            Some(end) => end,
            None => available.saturating_sub(self.design.half),
        };
        let len = end.map_or(isize::MAX, |e| e as isize);
        for i in self.next as isize..stop as isize {
            // Σ_k h[k] x[i - k] over the k whose x is inside the signal, written as a dot
            // product of the reversed taps with a contiguous run of x.
            let (lo, hi) = ((i - (len - 1)).max(-half), i.min(half));
            let x_first = (i - hi) as usize - self.start;
            let taps_first = (half - hi) as usize;
            let n = (hi - lo + 1) as usize;
            out.push(dot(
                &self.design.reversed[taps_first..taps_first + n],
                &self.x[x_first..x_first + n],
            ));
        }
        self.next = self.next.max(stop);
        // Keep the history the next output needs: x[next - half ..].
        let keep_from = self.next.saturating_sub(self.design.half).max(self.start);
        self.x.drain(..keep_from - self.start);
        self.start = keep_from;
    }
}

/// Resampling from `from` to `to` Hz fed chunk by chunk, for files too long to hold: the
/// output is the same, sample for sample, as [`resample`] of the whole signal.
pub struct StreamResampler {
    from: u32,
    to: u32,
    rubato: RubatoStage,
    fir: FirStage,
    before: bool,
    consumed: usize,
}

impl StreamResampler {
    /// A resampler from `from` to `to` Hz.
    ///
    /// # Errors
    /// Rates outside [`SOURCE_RATES`], or a resampler that cannot be built for them.
    pub fn new(from: u32, to: u32) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError::Resample { from, to, reason };
        if !SOURCE_RATES.contains(&from) || !SOURCE_RATES.contains(&to) {
            return Err(fail(format!(
                "rates must be from {} to {} Hz",
                SOURCE_RATES.start(),
                SOURCE_RATES.end()
            )));
        }
        let design = design(from, to).map_err(fail)?;
        Ok(StreamResampler {
            from,
            to,
            rubato: RubatoStage::new(rubato(from, to).map_err(fail)?),
            before: design.before,
            fir: FirStage::new(design),
            consumed: 0,
        })
    }

    fn fail(&self, reason: String) -> DecodeError {
        DecodeError::Resample { from: self.from, to: self.to, reason }
    }

    /// Feeds `input`; appends the output that is ready.
    ///
    /// # Errors
    /// The resampler fails.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), DecodeError> {
        self.consumed += input.len();
        let input: Vec<f64> = input.iter().map(|&x| f64::from(x)).collect();
        let mut staged = Vec::new();
        let mut done = Vec::new();
        if self.before {
            self.fir.push(&input, None, &mut staged);
            self.rubato.push(&staged, &mut done).map_err(|e| self.fail(e))?;
        } else {
            self.rubato.push(&input, &mut staged).map_err(|e| self.fail(e))?;
            self.fir.push(&staged, None, &mut done);
        }
        out.extend(done.into_iter().map(|x| x as f32));
        Ok(())
    }

    /// Ends the input; appends the rest, so that the whole output has
    /// [`resampled_len`]`(input length)` samples.
    ///
    /// # Errors
    /// The resampler fails.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), DecodeError> {
        let expected = resampled_len(self.consumed, self.from, self.to);
        let mut done = Vec::new();
        if self.before {
            let mut staged = Vec::new();
            self.fir.push(&[], Some(self.consumed), &mut staged);
            self.rubato.push(&staged, &mut done).map_err(|e| self.fail(e))?;
            self.rubato.finish(expected, &mut done).map_err(|e| self.fail(e))?;
        } else {
            let mut staged = Vec::new();
            self.rubato.finish(expected, &mut staged).map_err(|e| self.fail(e))?;
            self.fir.push(&staged, Some(expected), &mut done);
        }
        out.extend(done.into_iter().map(|x| x as f32));
        Ok(())
    }
}

/// `Σ a[j] b[j]` with eight running sums (so that it vectorises; the order is fixed, so the
/// result is the same wherever it runs).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0f64; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for j in 0..8 {
            sums[j] += x[j] * y[j];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    ((sums[0] + sums[4]) + (sums[1] + sums[5])) + ((sums[2] + sums[6]) + (sums[3] + sums[7])) + tail
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
    // Cut-off and transition width in cycles per sample.
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

/// `samples` at `from` Hz resampled to `to` Hz (a copy when the rates are equal).
///
/// # Errors
/// Rates outside [`SOURCE_RATES`], or a resampler that cannot be built for them.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, DecodeError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut stream = StreamResampler::new(from, to)?;
    let mut out = Vec::with_capacity(resampled_len(samples.len(), from, to));
    stream.process(samples, &mut out)?;
    stream.finish(&mut out)?;
    Ok(out)
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
    fn streaming_in_any_chunks_gives_the_same_samples() {
        for (from, to) in [(16000, 4096), (44100, 4096), (4096, 11025), (8000, 4096)] {
            let input = tone(from, 440.0, from as usize * 3 + 77);
            let whole = resample(&input, from, to).unwrap();
            for chunk in [1, 997, 4096, 10_000] {
                let mut stream = StreamResampler::new(from, to).unwrap();
                let mut out = Vec::new();
                for piece in input.chunks(chunk) {
                    stream.process(piece, &mut out).unwrap();
                }
                stream.finish(&mut out).unwrap();
                assert_eq!(out, whole, "{from}->{to} in chunks of {chunk}");
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
