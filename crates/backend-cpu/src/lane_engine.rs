//! The lane-batched computation of long segments: `L` frames per FFT (8, or 16 with AVX-512),
//! one per SIMD lane, window, transform, power and mel projection fused per group of frames.
//!
//! Frames of a short segment start `hop` samples apart, so the padded segment is laid out once
//! as a table `[c][r] = padded[r · hop + c]` (`c < hop`): sample `i` of `L` consecutive frames
//! `t..t+L` is then the `L` neighbours `table[i % hop][t + i / hop ..]`, one vector load. The
//! frames of a segment go through the transform `L` at a time; what is left of each segment
//! (its last `n_frames % L`) is copied out of several segments' tables, one frame a lane (by
//! 8x8 transposes where each lane is the same frame of the next table), or, where that is at
//! least half of `L` and the segment has `L` frames, taken as the segment's last `L` frames, a
//! few of them computed twice.
//! Each bin's power is one vector of `L` frames, kept in a small L1 buffer, and each mel value
//! is a sum of weights times those vectors, stored as `L` consecutive frames of the output. Work
//! is split across threads by groups of whole long segments, so the leftovers of short long
//! segments fill their lanes too.

use melkit_core::backend::{SignalBatch, StepTimings};
use melkit_core::config::Config;
use melkit_core::error::BackendError;
use melkit_core::mel::MelFilterbank;
use melkit_core::plan::SegmentPlan;
use melkit_core::scale::ElementScale;
use melkit_core::window::window;
use rustfft::num_traits::{NumCast, Zero};
use std::ops::Range;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::{Busy, Power};
use crate::for_each_task;
use crate::lanes::{Cv, LaneFft};
use crate::mel::{MEL_BLOCK, MelBlocks, SparseMel};
use crate::simd::Simd;
use crate::table::{Cell, Layout};
use crate::taps::Taps;
use crate::vector::{MAX_LANES, Vector};

mod spectrum;

/// Short segments a tile aims for at most (their tables stay in L1 or L2).
const TILE_SHORTS: usize = 8;

/// The most samples of a segment the next task's prefetch brings into L1 (4 KB); a longer one
/// goes to L2 only.
const NEAR_PREFETCH: usize = 1024;

/// The steps' names, as the backend reports them.
pub const LANE_STEPS: [&str; 2] = ["window+fft+power+mel", "scale"];

/// Everything prepared once for a configuration, with the transform on vectors `V`.
pub struct LaneEngine<V: Vector> {
    fft: LaneFft<V>,
    /// Where sample `i` of frame 0 sits in a segment's table (`(i % hop) · rows + i / hop`).
    offsets: Vec<usize>,
    /// The first pass's inputs from a segment's table (from `offsets`).
    taps: Taps<V::T>,
    /// The first pass's inputs from the copied-out last frames (sample `i` of lane 0 at `i · L`).
    packed: Taps<V::T>,
    /// What each cell of a segment's table holds, and how the table is laid out.
    layout: Layout,
    /// The filters in blocks whose sums run side by side.
    mel: MelBlocks,
    power: Power,
    scale: ElementScale,
    /// Short segments per tile.
    tile_shorts: usize,
    /// Whether each segment's last `n_frames % L` frames are computed as its last `L` frames,
    /// one more whole vector read straight from its table, recomputing the `L - n_frames % L`
    /// before them (to the same values, lane by lane), rather than copied out of several
    /// segments' tables into vectors of such frames. A vector of copied-out frames costs about
    /// two whole ones, so this is taken where they are at least half of `L` (and the segment has
    /// `L` frames): on a Zen 3 (8 lanes), 4 to 7 of them took 4, 12, 20 and 23 % off the lane
    /// path, and 3 of them (hop 48 of `n_fft` 256, 11 frames) cost 9 % more.
    overlap: bool,
    /// Long segments a worker takes at once.
    task_longs: usize,
    simd: Simd,
    /// Buffers of earlier calls, lent to the workers of the next (each call zeroing fresh ones
    /// measured 12 % of a one-file call).
    spare: Mutex<Vec<LaneScratch<V>>>,
}

/// Per-thread buffers.
pub struct LaneScratch<V: Vector> {
    /// The layout's scratch: one short segment and a trailing zero, or eight hops of the padded
    /// segment (see [`Layout::lay_out`]).
    short: Vec<V::T>,
    /// The tables of a tile's segments.
    tables: Vec<V::T>,
    data: Vec<Cv<V>>,
    /// `[bin]`: the power of one group.
    power: Vec<V::P>,
    /// `[sample][lane]`: the frames of a group of segments' last frames.
    left: Vec<V::T>,
}

impl<V: Vector> LaneEngine<V> {
    /// The lane engine for a configuration, or `None` where it does not apply: an `n_fft` that is
    /// not a power of two from 8 to 65536, or a padding whose samples depend on the frame and
    /// not only on the position (librosa's separate head and tail reflection). `simd` is the
    /// instruction set the hot loops run under; it must be one `V` computes under.
    pub fn new(config: &Config, plan: &SegmentPlan, simd: Simd) -> Option<Self> {
        let (n, hop, frames) = (plan.n_fft, plan.hop_length, plan.n_frames);
        if !LaneFft::<V>::supports(n) || u32::try_from(plan.short_len).is_err() {
            return None;
        }
        // A multiple of 8, so that a table is laid out by whole 8x8 transposes (the rows past
        // the frames' samples hold zeros).
        let rows = (frames + (n - 1) / hop).next_multiple_of(8);
        let cell = |c: usize, r: usize| {
            let t = r.min(frames - 1);
            let i = r * hop + c - t * hop;
            (i < n).then(|| plan.frame_source(t, i)).flatten()
        };
        let mut sources = Vec::with_capacity(hop * rows);
        for c in 0..hop {
            sources.extend((0..rows).map(|r| cell(c, r).map_or(plan.short_len, |j| j) as u32));
        }
        let offsets: Vec<usize> = (0..n).map(|i| (i % hop) * rows + i / hop).collect();
        let consistent = (0..frames).all(|t| {
            (0..n).all(|i| {
                let at = sources[offsets[i] + t] as usize;
                plan.frame_source(t, i) == (at < plan.short_len).then_some(at)
            })
        });
        if !consistent {
            return None;
        }
        let window: Vec<V::T> = window(config.window, config.window_length(), n)
            .into_iter()
            .map(|w| <V::T as NumCast>::from(w).unwrap_or_else(V::T::zero))
            .collect();
        // The transform gives 4 |X|², so each weight takes 1 / 4^(power / 2).
        let mel = SparseMel::new(&MelFilterbank::from_config(config))
            .scaled(0.25f64.powf(config.power / 2.0));
        let overlap = 2 * (frames % V::L) >= V::L && frames >= V::L;
        let left = if overlap { 0 } else { frames % V::L };
        let unit = if left == 0 { 1 } else { V::L / gcd(left, V::L) };
        let tile_shorts = (TILE_SHORTS / unit * unit).max(unit);
        Some(LaneEngine {
            fft: LaneFft::new(n),
            taps: Taps::new(&offsets, &window, V::L),
            packed: Taps::new(&(0..n).map(|i| i * V::L).collect::<Vec<_>>(), &window, V::L),
            offsets,
            layout: Layout::new(sources, rows, hop, plan.short_len),
            mel: mel.blocks(plan.n_bins),
            power: Power::from_config(config),
            scale: ElementScale::from_config(config),
            tile_shorts,
            overlap,
            task_longs: tile_shorts.div_ceil(plan.n_short),
            simd,
            spare: Mutex::new(Vec::new()),
        })
    }

    /// Buffers for one thread.
    pub fn scratch(&self, plan: &SegmentPlan) -> LaneScratch<V> {
        LaneScratch {
            short: vec![V::T::zero(); plan.short_len + 1],
            tables: vec![V::T::zero(); self.tile_shorts * self.layout.cells()],
            data: vec![Cv::zero(); self.fft.points()],
            power: vec![V::P::splat(0.0); plan.n_bins],
            left: vec![V::T::zero(); plan.n_fft * V::L],
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
        let busy = Busy::new(LANE_STEPS);
        for_each_task(
            (out, plan.long_output_len() * self.task_longs),
            (batch.n_long(), self.task_longs),
            parallel,
            || Lease::take(self, plan),
            |lease, (dest, longs)| {
                let scratch = &mut lease.scratch;
                busy.add(match self.simd {
                    Simd::Avx2Fma | Simd::Avx512 => self.simd.run(
                        #[inline(always)]
                        || self.task::<true>(plan, (batch, longs), dest, scratch),
                    ),
                    Simd::Baseline => self.simd.run(
                        #[inline(always)]
                        || self.task::<false>(plan, (batch, longs), dest, scratch),
                    ),
                });
            },
        );
        Ok(busy.timings())
    }

    /// The long segments `longs` of `batch`, tile by tile; returns the time of the steps.
    /// `FMA`: fused multiply-adds (only where the CPU has them).
    #[inline(always)]
    fn task<const FMA: bool>(
        &self,
        plan: &SegmentPlan,
        (batch, longs): (&SignalBatch, Range<usize>),
        dest: &mut [f32],
        s: &mut LaneScratch<V>,
    ) -> [Duration; 2] {
        let total = longs.len() * plan.n_short;
        let per_short = plan.short_output_len();
        let mut times = [Duration::ZERO; 2];
        let mut clock = Instant::now();
        let mut lap = |step: usize, clock: &mut Instant| {
            let now = Instant::now();
            times[step] += now - *clock;
            *clock = now;
        };
        for first in (0..total).step_by(self.tile_shorts) {
            let shorts = self.tile_shorts.min(total - first);
            // Each segment's counterpart in the next task (usually this thread's next), to be
            // fetched into the cache while this tile computes: laying out the tables is the
            // first touch of a batch's samples, and waited on them.
            let mut ahead: [&[f32]; MAX_LANES] = [&[]; MAX_LANES];
            for (q, ahead) in ahead.iter_mut().enumerate().take(shorts) {
                let g = first + q;
                let start = (g % plan.n_short) * plan.short_hop;
                let long = batch.long(plan, longs.start + g / plan.n_short);
                self.table(&long[start..start + plan.short_len], q, s);
                let next = longs.end + g / plan.n_short;
                if next < batch.n_long() {
                    *ahead = &batch.long(plan, next)[start..start + plan.short_len];
                }
            }
            let out = &mut dest[first * per_short..(first + shorts) * per_short];
            self.groups::<FMA>(plan, shorts, out, s, &ahead[..shorts]);
            lap(0, &mut clock);
            self.scale.apply_f32(out);
            lap(1, &mut clock);
        }
        times
    }

    /// Lays out the short segment `short` as the table of tile slot `q`.
    #[inline(always)]
    fn table(&self, short: &[f32], q: usize, s: &mut LaneScratch<V>) {
        let cells = self.layout.cells();
        let table = &mut s.tables[q * cells..(q + 1) * cells];
        self.layout.lay_out(self.simd, short, &mut s.short, table);
    }

    /// The mel spectra of the tile's `shorts` segments (tables laid out) into `out`
    /// (`[short][mel][frame]`).
    #[inline(always)]
    fn groups<const FMA: bool>(
        &self,
        plan: &SegmentPlan,
        shorts: usize,
        out: &mut [f32],
        s: &mut LaneScratch<V>,
        ahead: &[&[f32]],
    ) {
        let per = plan.n_frames;
        let cells = self.layout.cells();
        let full = per / V::L * V::L;
        let LaneScratch { tables, data, power, left, .. } = s;
        // Whole vectors of a segment's frames (with `overlap`, a last one of its last `L`
        // frames), then each segment's last frames, lanes across segments (lanes past the last
        // frame repeat the first and are not stored), first copied out as `[sample][lane]`. One
        // loop, so the transform is inlined once.
        let (per_short, rest) =
            if self.overlap { (per.div_ceil(V::L), 0) } else { (per / V::L, per % V::L) };
        let whole = shorts * per_short;
        let n_mels = self.mel.n_mels();
        for g in 0..whole + (shorts * rest).div_ceil(V::L) {
            if g < whole {
                let (q, t0) = (g / per_short, (g % per_short * V::L).min(per - V::L));
                // A share of the next task's segment `q` into the cache, spread over this
                // segment's groups (all at once, the prefetches waited on the miss buffers):
                // into L1 where a segment is small (the defaults' 2 KB), else into L2.
                let next = ahead.get(q).copied().unwrap_or_default();
                let part = next.len().div_ceil(per_short);
                let from = (g % per_short * part).min(next.len());
                let near = next.len() <= NEAR_PREFETCH;
                crate::simd::prefetch(&next[from..(from + part).min(next.len())], near);
                let table = &tables[q * cells + t0..(q + 1) * cells];
                self.spectrum::<FMA>(data, power, table, &self.taps);
                // This segment's mel rows, `per` frames a row, this group's frames at `t0..` of
                // each: one check a group, not one a row.
                let rows = &mut out[q * n_mels * per..(q + 1) * n_mels * per];
                assert!(t0 + V::L <= per);
                for b in 0..self.mel.count() {
                    let sums = self.mel.sums::<V::P, FMA>(power, b);
                    let first = b * MEL_BLOCK;
                    for (j, sum) in sums.iter().enumerate().take(n_mels - first) {
                        // SAFETY: `first + j < n_mels` and `t0 + L <= per` (asserted), so the
                        // row's `L` values lie within `rows` (`n_mels · per` values).
                        #[allow(unsafe_code)]
                        unsafe {
                            sum.store_at(rows, (first + j) * per + t0)
                        };
                    }
                }
                continue;
            }
            let group = (g - whole) * V::L;
            let lanes = V::L.min(shorts * rest - group);
            let frame: [(usize, usize); MAX_LANES] = std::array::from_fn(|l| {
                let idx = group + if l < lanes { l } else { 0 };
                (idx / rest, full + idx % rest)
            });
            let bases = frame.map(|(q, t)| q * cells + t);
            // One frame a segment, a whole vector of them: consecutive tables' same cells.
            let consecutive = rest == 1 && lanes == V::L;
            self.collect(plan.hop_length, tables, left, &bases, consecutive);
            self.spectrum::<FMA>(data, power, left, &self.packed);
            // Where each lane's frame of mel 0 goes; mel `m` is `m · per` on.
            let dest = frame.map(|(q, t)| q * n_mels * per + t);
            let mut mel = [0.0; MAX_LANES];
            for b in 0..self.mel.count() {
                let sums = self.mel.sums::<V::P, FMA>(power, b);
                for (m, sum) in (b * MEL_BLOCK..n_mels).zip(sums) {
                    sum.store(&mut mel);
                    let row = &mut out[m * per..];
                    for (&v, &at) in mel.iter().zip(&dest).take(lanes) {
                        row[at] = v;
                    }
                }
            }
        }
    }

    /// `left[i · L + l]` = sample `i` of lane `l`'s frame (`bases[l]`: its cell 0 in
    /// `tables`): by 8x8 transposes where the lanes are `consecutive` tables' same frame (the
    /// samples `c, c + hop, ..` of a frame are `n / hop` neighbouring cells), else cell by cell.
    #[inline(always)]
    fn collect(
        &self,
        hop: usize,
        tables: &[V::T],
        left: &mut [V::T],
        bases: &[usize; MAX_LANES],
        consecutive: bool,
    ) {
        let (n, cells) = (self.offsets.len(), self.layout.cells());
        let rows = cells / hop;
        if consecutive && n.is_multiple_of(hop) {
            let (from, to) = ((bases[0], cells), (0, hop * V::L));
            let transposed = (0..hop).all(|c| {
                let (from, to) = ((from.0 + c * rows, from.1), (to.0 + c * V::L, to.1));
                V::T::transpose(self.simd, tables, from, left, to, V::L, n / hop)
            });
            if transposed {
                return;
            }
        }
        for (cell, &o) in left.chunks_exact_mut(V::L).zip(&self.offsets) {
            for (x, &base) in cell.iter_mut().zip(bases) {
                *x = tables[base + o];
            }
        }
    }
}

/// A worker's buffers, taken from the engine's spares (or made) and given back when dropped.
struct Lease<'a, V: Vector> {
    spare: &'a Mutex<Vec<LaneScratch<V>>>,
    scratch: LaneScratch<V>,
}

impl<'a, V: Vector> Lease<'a, V> {
    /// A spare set of buffers, or a new one.
    fn take(engine: &'a LaneEngine<V>, plan: &SegmentPlan) -> Self {
        let spare = engine.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        Lease { spare: &engine.spare, scratch: spare.unwrap_or_else(|| engine.scratch(plan)) }
    }
}

impl<V: Vector> Drop for Lease<'_, V> {
    fn drop(&mut self) {
        let scratch = std::mem::replace(&mut self.scratch, LaneScratch::empty());
        self.spare.lock().unwrap_or_else(PoisonError::into_inner).push(scratch);
    }
}

impl<V: Vector> LaneScratch<V> {
    /// No buffers (what a lease leaves behind when it gives its own back).
    fn empty() -> Self {
        LaneScratch {
            short: Vec::new(),
            tables: Vec::new(),
            data: Vec::new(),
            power: Vec::new(),
            left: Vec::new(),
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
