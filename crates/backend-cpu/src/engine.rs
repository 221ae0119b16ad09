//! The fused computation of long segments, generic over the FFT's float type.
//!
//! A long segment is cut into tiles of whole short segments (a few dozen frames). For a tile:
//! frames are gathered and windowed two at a time into one complex buffer (frame `a` in the real
//! part, `b` in the imaginary part), one complex FFT gives both spectra, the power of each goes
//! into a bin-major table `[bin][frame]`, and the sparse mel projection adds each filter weight
//! times a whole bin row into `[mel][frame]` (an AXPY over frames, which vectorises). Everything a
//! tile touches stays in L1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use melkit_core::backend::{SignalBatch, StepTimings};
use melkit_core::config::Config;
use melkit_core::error::BackendError;
use melkit_core::mel::MelFilterbank;
use melkit_core::plan::SegmentPlan;
use melkit_core::scale::ElementScale;
use melkit_core::window::window;
use rustfft::num_complex::Complex;
use rustfft::num_traits::Float;
use rustfft::{Fft, FftNum, FftPlanner};

use crate::for_each_task;
use crate::mel::SparseMel;
use crate::simd::Simd;

/// Frames a tile aims for: enough to amortise the per-tile work, few enough to stay in L1.
const TILE_FRAMES: usize = 64;

/// Thread-time of each step, summed over the worker threads.
pub(crate) struct Busy<const N: usize> {
    names: [&'static str; N],
    total: [AtomicU64; N],
}

/// The pair engine's steps.
const STEPS: [&str; 3] = ["window+fft+power", "mel", "scale"];

impl<const N: usize> Busy<N> {
    /// No time yet for the steps `names`.
    pub(crate) fn new(names: [&'static str; N]) -> Self {
        Busy { names, total: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    pub(crate) fn add(&self, times: [Duration; N]) {
        for (total, t) in self.total.iter().zip(times) {
            total.fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn timings(&self) -> StepTimings {
        let mut timings = StepTimings::default();
        for (name, total) in self.names.iter().zip(&self.total) {
            timings.add(name, Duration::from_nanos(total.load(Ordering::Relaxed)));
        }
        timings
    }
}

/// How one frame of a short segment is gathered.
#[derive(Clone, Debug)]
enum Gather {
    /// `len` samples from `src` placed at `dst`; zeros elsewhere (all of it when `len` is 0).
    Run { dst: usize, src: usize, len: usize },
    /// Anything else (reflect padding): the source of each sample, `None` for a zero.
    Indexed(Vec<Option<usize>>),
}

/// The exponent applied to the magnitude.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Power {
    Square,
    Magnitude,
    Other(f64),
}

impl Power {
    /// The exponent of a configuration's `power`.
    pub(crate) fn from_config(config: &Config) -> Self {
        match config.power {
            2.0 => Power::Square,
            1.0 => Power::Magnitude,
            p => Power::Other(p / 2.0),
        }
    }

    /// `|X|^power` from `|X|²`, in f32.
    #[inline(always)]
    pub(crate) fn apply<T: Float + Into<f64>>(self, squared: T) -> f32 {
        match self {
            Power::Square => to_f32(squared),
            Power::Magnitude => to_f32(squared.sqrt()),
            Power::Other(half) => squared.into().powf(half) as f32,
        }
    }
}

/// Everything prepared once for a configuration, with the FFT in `T`.
pub struct Engine<T: FftNum> {
    fft: Arc<dyn Fft<T>>,
    window: Vec<T>,
    gathers: Vec<Gather>,
    mel: SparseMel,
    power: Power,
    scale: ElementScale,
    /// Short segments per tile.
    tile_shorts: usize,
    simd: Simd,
}

/// Per-thread buffers, reused across the long segments a thread computes.
pub struct Scratch<T> {
    /// Two windowed frames, before they are packed into `buffer`.
    frame_a: Vec<T>,
    frame_b: Vec<T>,
    buffer: Vec<Complex<T>>,
    fft: Vec<Complex<T>>,
    /// `[frame][bin]` for one tile, as the FFTs give it.
    by_frame: Vec<f32>,
    /// `[bin][frame]` for one tile, as the mel projection takes it.
    power: Vec<f32>,
}

impl<T: FftNum + Float + From<f32> + Into<f64>> Engine<T> {
    /// Prepares the FFT plan, window, frame gathers and the sparse filterbank.
    pub fn new(config: &Config, plan: &SegmentPlan) -> Self {
        let fft = FftPlanner::<T>::new().plan_fft_forward(plan.n_fft);
        let gathers = (0..plan.n_frames).map(|t| gather(plan, t)).collect();
        let power = Power::from_config(config);
        Engine {
            window: window(config.window, config.window_length(), plan.n_fft)
                .into_iter()
                .map(|w| T::from_f64(w).unwrap_or_else(T::zero))
                .collect(),
            mel: SparseMel::new(&MelFilterbank::from_config(config)),
            gathers,
            power,
            scale: ElementScale::from_config(config),
            tile_shorts: (TILE_FRAMES / plan.n_frames).clamp(1, plan.n_short),
            // The pair path as it was measured: its loops are tuned for AVX2 at most.
            simd: Simd::detect().min(Simd::Avx2Fma),
            fft,
        }
    }

    /// Buffers for one thread.
    pub fn scratch(&self, plan: &SegmentPlan) -> Scratch<T> {
        let frames = self.tile_shorts * plan.n_frames;
        Scratch {
            frame_a: vec![T::zero(); plan.n_fft],
            frame_b: vec![T::zero(); plan.n_fft],
            buffer: vec![Complex::new(T::zero(), T::zero()); plan.n_fft],
            by_frame: vec![0.0; plan.n_bins * frames],
            fft: vec![Complex::new(T::zero(), T::zero()); self.fft.get_inplace_scratch_len()],
            power: vec![0.0; plan.n_bins * frames],
        }
    }

    /// Every long segment of `batch` into `out` (already checked to fit), over rayon's threads
    /// where `parallel`, else on the calling thread.
    pub fn compute(
        &self,
        plan: &SegmentPlan,
        batch: &SignalBatch,
        out: &mut [f32],
        parallel: bool,
    ) -> Result<StepTimings, BackendError> {
        let busy = Busy::new(STEPS);
        for_each_task(
            (out, plan.long_output_len()),
            (batch.n_long(), 1),
            parallel,
            || self.scratch(plan),
            |scratch, (dest, long)| {
                let long = batch.long(plan, long.start);
                let times = self.simd.run(
                    #[inline(always)]
                    || self.long_segment(plan, long, dest, scratch),
                );
                busy.add(times);
            },
        );
        Ok(busy.timings())
    }

    /// The instruction set the kernel runs with.
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Frames in a full tile.
    pub fn tile_frames(&self, plan: &SegmentPlan) -> usize {
        self.tile_shorts * plan.n_frames
    }

    /// The mel projection of the spectra in `s` (a tile of `frames` frames) into `out`.
    #[inline(always)]
    pub fn project(&self, plan: &SegmentPlan, frames: usize, s: &Scratch<T>, out: &mut [f32]) {
        self.mel.project(&s.power[..plan.n_bins * frames], frames, plan.n_frames, out);
    }

    /// The element-wise scaling.
    #[inline(always)]
    pub fn scale(&self, values: &mut [f32]) {
        self.scale.apply_f32(values);
    }

    /// One long segment, tile by tile; returns the time of its three steps.
    #[inline(always)]
    fn long_segment(
        &self,
        plan: &SegmentPlan,
        long: &[f32],
        dest: &mut [f32],
        s: &mut Scratch<T>,
    ) -> [Duration; 3] {
        let per_short = plan.short_output_len();
        let mut times = [Duration::ZERO; 3];
        let mut clock = Instant::now();
        let mut lap = |step: usize, clock: &mut Instant| {
            let now = Instant::now();
            times[step] += now - *clock;
            *clock = now;
        };
        for first in (0..plan.n_short).step_by(self.tile_shorts) {
            let shorts = self.tile_shorts.min(plan.n_short - first);
            let frames = shorts * plan.n_frames;
            self.spectra(plan, long, first, frames, s);
            lap(0, &mut clock);
            let out = &mut dest[first * per_short..(first + shorts) * per_short];
            self.mel.project(&s.power[..plan.n_bins * frames], frames, plan.n_frames, out);
            lap(1, &mut clock);
            self.scale.apply_f32(out);
            lap(2, &mut clock);
        }
        times
    }

    /// The power spectra `[bin][frame]` of `frames` frames starting at short segment `first`.
    #[inline(always)]
    pub fn spectra(
        &self,
        plan: &SegmentPlan,
        long: &[f32],
        first: usize,
        frames: usize,
        s: &mut Scratch<T>,
    ) {
        let n_bins = plan.n_bins;
        let frame_input = |f: usize| {
            let start = (first + f / plan.n_frames) * plan.short_hop;
            (&long[start..start + plan.short_len], &self.gathers[f % plan.n_frames])
        };
        for a in (0..frames).step_by(2) {
            let (short_a, gather_a) = frame_input(a);
            let has_b = a + 1 < frames;
            let (short_b, gather_b) = frame_input(if has_b { a + 1 } else { a });
            match (gather_a, gather_b) {
                // Two frames wholly inside their segments: window both in one pass.
                (
                    Gather::Run { dst: 0, src: sa, len: la },
                    Gather::Run { dst: 0, src: sb, len: lb },
                ) if has_b && *la == plan.n_fft && *lb == plan.n_fft => {
                    let (xa, xb) = (&short_a[*sa..sa + la], &short_b[*sb..sb + lb]);
                    for (((c, &x), &y), &w) in s.buffer.iter_mut().zip(xa).zip(xb).zip(&self.window)
                    {
                        *c = Complex::new(
                            <T as From<f32>>::from(x) * w,
                            <T as From<f32>>::from(y) * w,
                        );
                    }
                }
                _ => {
                    fill(&mut s.frame_a, short_a, gather_a, &self.window);
                    if has_b {
                        fill(&mut s.frame_b, short_b, gather_b, &self.window);
                    } else {
                        s.frame_b.fill(T::zero());
                    }
                    for ((c, &re), &im) in s.buffer.iter_mut().zip(&s.frame_a).zip(&s.frame_b) {
                        *c = Complex::new(re, im);
                    }
                }
            }
            self.fft.process_with_scratch(&mut s.buffer, &mut s.fft);
            let rows = &mut s.by_frame[a * n_bins..(a + 2).min(frames) * n_bins];
            let (row_a, row_b) = rows.split_at_mut(n_bins);
            unpack(&s.buffer, row_a, if has_b { Some(row_b) } else { None });
        }
        let by_frame = &mut s.by_frame[..frames * n_bins];
        match self.power {
            Power::Square => {}
            Power::Magnitude => by_frame.iter_mut().for_each(|p| *p = p.sqrt()),
            Power::Other(half) => {
                by_frame.iter_mut().for_each(|p| *p = f64::from(*p).powf(half) as f32)
            }
        }
        crate::simd::transpose(
            self.simd,
            by_frame,
            &mut s.power[..n_bins * frames],
            n_bins,
            frames,
        );
    }
}

/// Splits the spectrum `z` of `a + i b` into `|A|²` and `|B|²` over the one-sided bins.
#[inline(always)]
fn unpack<T: FftNum + Float + From<f32> + Into<f64>>(
    z: &[Complex<T>],
    a: &mut [f32],
    b: Option<&mut [f32]>,
) {
    let n = z.len();
    let n_bins = a.len();
    let quarter = <T as From<f32>>::from(0.25);
    let square = |x: T, y: T| to_f32((x * x + y * y) * quarter);
    // k = 0 pairs with itself: A = Re Z0, B = Im Z0 (times 2 inside the quarter).
    let two = <T as From<f32>>::from(2.0);
    a[0] = square(z[0].re * two, T::zero());
    // A_k = (Z_k + conj Z_{n-k}) / 2,  B_k = (Z_k - conj Z_{n-k}) / 2i, for k = 1..n_bins.
    let (lo, hi) = (&z[1..n_bins], &z[n + 1 - n_bins..]);
    for ((out, zk), zn) in a[1..].iter_mut().zip(lo).zip(hi.iter().rev()) {
        *out = square(zk.re + zn.re, zk.im - zn.im);
    }
    if let Some(b) = b {
        b[0] = square(z[0].im * two, T::zero());
        for ((out, zk), zn) in b[1..].iter_mut().zip(lo).zip(hi.iter().rev()) {
            *out = square(zk.im + zn.im, zn.re - zk.re);
        }
    }
}

#[inline(always)]
fn to_f32<T: Into<f64>>(x: T) -> f32 {
    x.into() as f32
}

/// Gathers and windows one frame into `frame`.
#[inline(always)]
fn fill<T: FftNum + From<f32>>(frame: &mut [T], short: &[f32], gather: &Gather, window: &[T]) {
    match gather {
        Gather::Run { dst, src, len } => {
            frame[..*dst].fill(T::zero());
            let run = frame[*dst..dst + len]
                .iter_mut()
                .zip(&short[*src..src + len])
                .zip(&window[*dst..dst + len]);
            for ((f, &x), &w) in run {
                *f = <T as From<f32>>::from(x) * w;
            }
            frame[dst + len..].fill(T::zero());
        }
        Gather::Indexed(sources) => {
            for ((f, j), &w) in frame.iter_mut().zip(sources).zip(window) {
                *f = j.map_or(T::zero(), |j| <T as From<f32>>::from(short[j]) * w);
            }
        }
    }
}

/// How frame `t` of a short segment is gathered (see [`SegmentPlan::frame_source`]).
fn gather(plan: &SegmentPlan, t: usize) -> Gather {
    let sources: Vec<Option<usize>> = (0..plan.n_fft).map(|i| plan.frame_source(t, i)).collect();
    match sources.iter().position(Option::is_some) {
        None => Gather::Run { dst: 0, src: 0, len: 0 },
        Some(dst) => {
            let len = sources[dst..].iter().take_while(|s| s.is_some()).count();
            let src = sources[dst].unwrap_or(0);
            let contiguous =
                sources[dst..dst + len].iter().enumerate().all(|(i, s)| *s == Some(src + i))
                    && sources[dst + len..].iter().all(Option::is_none);
            if contiguous { Gather::Run { dst, src, len } } else { Gather::Indexed(sources) }
        }
    }
}
