//! A batch split into chunks for a device's buffers: each chunk a run of at most `longs` long
//! segments, the samples they span (which may be more than `(longs − 1) · hop + long_len`: a
//! chunk crossing from one file or block to the next jumps by a whole `long_len`), its starts
//! rebased to its first sample, and the buffer sizes the largest chunk of a batch needs.

use std::ops::Range;

use crate::backend::SignalBatch;
use crate::plan::SegmentPlan;

/// One chunk of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Its long segments, as indices into the batch's.
    pub longs: Range<usize>,
    /// The samples of the batch it reads: from its first segment's start to its last one's end.
    pub samples: Range<usize>,
}

impl Chunk {
    /// Its long segments' starts, relative to its first sample.
    pub fn starts<'a>(&self, batch: &'a SignalBatch) -> impl Iterator<Item = u32> + 'a {
        let base = self.samples.start;
        batch.long_starts()[self.longs.clone()].iter().map(move |&s| (s - base) as u32)
    }

    /// Frames it computes (`long segments · n_short · n_frames`).
    pub fn frames(&self, plan: &SegmentPlan) -> usize {
        self.longs.len() * plan.n_short * plan.n_frames
    }

    /// Where its values go in the batch's output.
    pub fn outputs(&self, plan: &SegmentPlan) -> Range<usize> {
        let per_long = plan.long_output_len();
        self.longs.start * per_long..self.longs.end * per_long
    }
}

/// The chunks of `batch`, `longs` long segments each (the last may have fewer), in order.
pub fn chunks<'a>(
    batch: &'a SignalBatch,
    plan: &'a SegmentPlan,
    longs: usize,
) -> impl Iterator<Item = Chunk> + 'a {
    let starts = batch.long_starts();
    let longs = longs.max(1);
    (0..starts.len()).step_by(longs).map(move |first| {
        let end = (first + longs).min(starts.len());
        Chunk { longs: first..end, samples: starts[first]..starts[end - 1] + plan.long_len }
    })
}

/// What a device buffer set must hold for a chunk: samples and long segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkSize {
    /// Samples of signal.
    pub samples: usize,
    /// Long segments (their starts; their output is `long_output_len` values each).
    pub longs: usize,
}

impl ChunkSize {
    /// Whether buffers of this size hold a chunk of size `need`.
    pub fn holds(&self, need: ChunkSize) -> bool {
        self.samples >= need.samples && self.longs >= need.longs
    }

    /// The larger of the two in each dimension.
    pub fn max(self, other: ChunkSize) -> ChunkSize {
        ChunkSize { samples: self.samples.max(other.samples), longs: self.longs.max(other.longs) }
    }
}

/// The size the largest chunk of `batch` needs, with `longs` long segments per chunk.
pub fn largest(batch: &SignalBatch, plan: &SegmentPlan, longs: usize) -> ChunkSize {
    chunks(batch, plan, longs)
        .map(|c| ChunkSize { samples: c.samples.len(), longs: c.longs.len() })
        .fold(ChunkSize::default(), ChunkSize::max)
}

/// Long segments per chunk when each takes `per_long` bytes of a `budget` (at least one).
pub fn longs_within(budget: u64, per_long: u64) -> usize {
    (budget / per_long.max(1)).max(1) as usize
}

/// Bytes a long segment takes at most in a chunk's signal (`max(long_len, long_hop)` samples:
/// consecutive starts are a hop apart within a file, a whole `long_len` across files) or its
/// output, whichever is more, in f32.
pub fn bytes_per_long(plan: &SegmentPlan) -> u64 {
    (plan.long_output_len().max(plan.long_len.max(plan.long_hop)) * 4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Overlapping long segments (hop < length) in three files: every chunk size covers every
    /// segment once, in order, and a chunk's span is exactly what its segments read.
    #[test]
    fn chunks_cover_every_segment_and_span_what_they_read() {
        let mut config = Config::default();
        config.set("long_segment_hop", "0.125").unwrap();
        config.set("sample_length", "full").unwrap();
        config.validate().unwrap();
        let plan = SegmentPlan::new(&config).unwrap();
        assert!(plan.long_hop < plan.long_len);
        let mut batch = SignalBatch::new();
        for len in [plan.long_len * 3, 100, plan.long_len * 2 + 7] {
            batch.push(&plan, &vec![0.5; len]);
        }
        let starts = batch.long_starts().to_vec();
        for longs in [1, 2, 3, 5, starts.len(), starts.len() + 4] {
            let all: Vec<Chunk> = chunks(&batch, &plan, longs).collect();
            let covered: Vec<usize> = all.iter().flat_map(|c| c.longs.clone()).collect();
            assert_eq!(covered, (0..starts.len()).collect::<Vec<_>>(), "{longs} per chunk");
            for c in &all {
                let read = c.longs.clone().map(|i| starts[i] + plan.long_len).max().unwrap();
                assert_eq!(c.samples, starts[c.longs.start]..read);
                let rebased: Vec<u32> = c.starts(&batch).collect();
                assert_eq!(rebased[0], 0);
                assert!(rebased.iter().all(|&s| s as usize + plan.long_len <= c.samples.len()));
            }
            let size = largest(&batch, &plan, longs);
            assert!(
                all.iter()
                    .all(|c| size
                        .holds(ChunkSize { samples: c.samples.len(), longs: c.longs.len() }))
            );
            // A chunk crossing files spans more than (longs − 1) · hop + long_len.
            if (2..starts.len()).contains(&longs) {
                assert!(size.samples > (longs - 1) * plan.long_hop + plan.long_len, "{longs}");
            }
        }
    }

    #[test]
    fn a_budget_gives_at_least_one_segment() {
        assert_eq!(longs_within(10, 100), 1);
        assert_eq!(longs_within(1000, 100), 10);
        assert_eq!(longs_within(1000, 0), 1000);
    }
}
