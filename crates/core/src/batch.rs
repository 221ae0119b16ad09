//! A batch of prepared signals for a backend: their samples, laid end to end in parts, and
//! where each long segment starts.

use std::borrow::Cow;
use std::ops::Range;

use crate::plan::SegmentPlan;

/// Where one signal of a [`SignalBatch`] lies: its long segments are
/// `first_long .. first_long + n_long` of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// Index of the signal's first long segment in the batch.
    pub first_long: usize,
    /// The signal's number of long segments.
    pub n_long: usize,
}

/// Prepared signals (mono, resampled, length fixed, padded to whole long segments), laid end to
/// end. The samples are held in parts: the batch's own buffer, which [`push`](Self::push) and
/// [`push_prepared`](Self::push_prepared) copy into, and blocks handed over whole by
/// [`push_block`](Self::push_block), so that a pipeline that already holds a file's prepared
/// samples does not copy them again. A GPU backend uploads the parts one after the other
/// ([`parts`](Self::parts)); the CPU reads each long segment where it lies
/// ([`longs`](Self::longs)). Framing is left to the backend.
#[derive(Clone, Debug, Default)]
pub struct SignalBatch {
    parts: Vec<Part>,
    /// Emptied buffers of earlier copies, kept for the next.
    spare: Vec<Vec<f32>>,
    /// Samples in all parts.
    len: usize,
    /// Each long segment's start in the samples laid end to end.
    long_starts: Vec<usize>,
    /// Each long segment's part, and its start in that part.
    long_at: Vec<(usize, usize)>,
    items: Vec<BatchItem>,
}

/// One run of a batch's samples.
#[derive(Clone, Debug)]
struct Part {
    /// Where the part starts in the samples laid end to end.
    start: usize,
    samples: Vec<f32>,
    /// Handed over by [`SignalBatch::push_block`], rather than the batch's own copies.
    block: bool,
}

impl SignalBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the batch, keeping its own buffers; the blocks handed over are dropped.
    pub fn clear(&mut self) {
        self.clear_with(drop);
    }

    /// Empties the batch, keeping its own buffers and giving each block handed over by
    /// [`push_block`](Self::push_block) to `give_back` (to reuse its memory).
    pub fn clear_with(&mut self, mut give_back: impl FnMut(Vec<f32>)) {
        for mut part in self.parts.drain(..) {
            if part.block {
                give_back(part.samples);
            } else {
                part.samples.clear();
                self.spare.push(part.samples);
            }
        }
        self.len = 0;
        self.long_starts.clear();
        self.long_at.clear();
        self.items.clear();
    }

    /// Adds a mono signal at the plan's sample rate: its length is fixed (cut or zero-padded to
    /// `sample_length`) and it is zero-padded so its last long segment is complete.
    pub fn push(&mut self, plan: &SegmentPlan, signal: &[f32]) -> BatchItem {
        let len = plan.fixed_length(signal.len());
        let n_long = plan.n_long(len);
        let (part, own) = self.own_part();
        let offset = own.len();
        own.extend_from_slice(&signal[..len.min(signal.len())]);
        own.resize(offset + plan.padded_len(n_long), 0.0);
        self.record(plan, part, offset, n_long)
    }

    /// Adds a block already prepared: the samples of `n_long` consecutive long segments of a
    /// signal, `(n_long - 1) · hop + long_len` of them (a whole short signal padded, or a part
    /// of a long one), copied into the batch's own buffer.
    ///
    /// # Panics
    /// When `samples` does not have that length (a caller's bug).
    pub fn push_prepared(
        &mut self,
        plan: &SegmentPlan,
        samples: &[f32],
        n_long: usize,
    ) -> BatchItem {
        check_block(plan, samples.len(), n_long);
        let (part, own) = self.own_part();
        let offset = own.len();
        own.extend_from_slice(samples);
        self.record(plan, part, offset, n_long)
    }

    /// Adds a prepared block as [`push_prepared`](Self::push_prepared) does, taking its buffer
    /// instead of copying it; [`clear_with`](Self::clear_with) gives the buffer back.
    ///
    /// # Panics
    /// When `samples` does not have the length of `n_long` long segments (a caller's bug).
    pub fn push_block(
        &mut self,
        plan: &SegmentPlan,
        samples: Vec<f32>,
        n_long: usize,
    ) -> BatchItem {
        check_block(plan, samples.len(), n_long);
        self.parts.push(Part { start: self.len, samples, block: true });
        self.record(plan, self.parts.len() - 1, 0, n_long)
    }

    /// The batch's own buffer at the end of the parts (a new part after a block), and its index.
    fn own_part(&mut self) -> (usize, &mut Vec<f32>) {
        if self.parts.last().is_none_or(|p| p.block) {
            let samples = self.spare.pop().unwrap_or_default();
            self.parts.push(Part { start: self.len, samples, block: false });
        }
        let index = self.parts.len() - 1;
        (index, &mut self.parts[index].samples)
    }

    /// Records the `n_long` long segments of a signal pushed at `offset` of part `part`.
    fn record(
        &mut self,
        plan: &SegmentPlan,
        part: usize,
        offset: usize,
        n_long: usize,
    ) -> BatchItem {
        let start = self.parts[part].start + offset;
        let item = BatchItem { first_long: self.long_starts.len(), n_long };
        self.long_starts.extend((0..n_long).map(|i| start + i * plan.long_hop));
        self.long_at.extend((0..n_long).map(|i| (part, offset + i * plan.long_hop)));
        self.len = start + plan.padded_len(n_long);
        self.items.push(item);
        item
    }

    /// Samples in the batch, all parts together.
    pub fn samples_len(&self) -> usize {
        self.len
    }

    /// The parts of the samples, in order: each one's start in the samples laid end to end, and
    /// its values.
    pub fn parts(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.parts.iter().map(|p| (p.start, p.samples.as_slice()))
    }

    /// Every sample of the batch, signal after signal: borrowed where one part holds them all
    /// (a batch only pushed to), else gathered into a new buffer.
    #[deprecated(
        since = "0.1.0",
        note = "a batch's samples may lie in several parts: read them with `parts`, \
                `samples_in` or `gather`, or each long segment with `long`/`longs`"
    )]
    pub fn samples(&self) -> Cow<'_, [f32]> {
        self.samples_in(0..self.len)
    }

    /// The samples `range` of the batch laid end to end: borrowed where one part holds them
    /// all, else gathered into a new buffer (see [`gather`](Self::gather) to reuse one).
    ///
    /// # Panics
    /// When `range` is not within [`samples_len`](Self::samples_len).
    pub fn samples_in(&self, range: Range<usize>) -> Cow<'_, [f32]> {
        match self.within_part(range.clone()) {
            Some(samples) => Cow::Borrowed(samples),
            None => {
                let mut out = Vec::new();
                self.gather(range, &mut out);
                Cow::Owned(out)
            }
        }
    }

    /// The samples `range` of the batch laid end to end where one part holds them all; `None`
    /// where they cross parts.
    ///
    /// # Panics
    /// When `range` is not within [`samples_len`](Self::samples_len).
    pub fn within_part(&self, range: Range<usize>) -> Option<&[f32]> {
        self.check_range(&range);
        if range.is_empty() {
            return Some(&[]);
        }
        let p = self.parts.get(self.first_part(range.start))?;
        (range.end <= p.start + p.samples.len())
            .then(|| &p.samples[range.start - p.start..range.end - p.start])
    }

    /// Copies the samples `range` of the batch laid end to end into `out`, replacing what it
    /// held (its memory is kept, so a caller can reuse one buffer for every chunk).
    ///
    /// # Panics
    /// When `range` is not within [`samples_len`](Self::samples_len).
    pub fn gather(&self, range: Range<usize>, out: &mut Vec<f32>) {
        self.check_range(&range);
        out.clear();
        out.reserve(range.len());
        for p in &self.parts[self.first_part(range.start)..] {
            if p.start >= range.end {
                break;
            }
            let (from, to) = (range.start.max(p.start), range.end.min(p.start + p.samples.len()));
            out.extend_from_slice(&p.samples[from - p.start..to - p.start]);
        }
    }

    /// Panics unless `range` lies within the batch's samples.
    fn check_range(&self, range: &Range<usize>) {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "samples {range:?} of {}",
            self.len
        );
    }

    /// The first part that holds samples at or after `at` (the number of parts when none does).
    fn first_part(&self, at: usize) -> usize {
        self.parts.partition_point(|p| p.start + p.samples.len() <= at)
    }

    /// The samples of the batch's long segment `i` (`long_len` of them), where they lie.
    ///
    /// # Panics
    /// When `i` is not below [`n_long`](Self::n_long).
    pub fn long(&self, plan: &SegmentPlan, i: usize) -> &[f32] {
        let (part, at) = self.long_at[i];
        &self.parts[part].samples[at..at + plan.long_len]
    }

    /// The samples of every long segment of the batch (`long_len` each), in order.
    pub fn longs<'a>(&'a self, plan: &'a SegmentPlan) -> impl Iterator<Item = &'a [f32]> + 'a {
        (0..self.n_long()).map(move |i| self.long(plan, i))
    }

    /// The start, in the samples laid end to end, of every long segment of the batch.
    pub fn long_starts(&self) -> &[usize] {
        &self.long_starts
    }

    /// The signals, in the order they were pushed.
    pub fn items(&self) -> &[BatchItem] {
        &self.items
    }

    /// Long segments in the batch.
    pub fn n_long(&self) -> usize {
        self.long_starts.len()
    }

    /// Signals in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no signal.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Values of the batch's whole output.
    pub fn output_len(&self, plan: &SegmentPlan) -> usize {
        self.n_long() * plan.long_output_len()
    }

    /// The part of a batch output that belongs to `item`.
    pub fn item_output<'a>(
        &self,
        plan: &SegmentPlan,
        item: BatchItem,
        out: &'a [f32],
    ) -> &'a [f32] {
        let per = plan.long_output_len();
        &out[item.first_long * per..(item.first_long + item.n_long) * per]
    }
}

/// Panics unless `len` samples are `n_long` whole long segments.
fn check_block(plan: &SegmentPlan, len: usize, n_long: usize) {
    assert_eq!(len, plan.padded_len(n_long), "a prepared block of {n_long} long segments");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn batch_fixes_length_and_pads() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        let mut batch = SignalBatch::new();
        let a = batch.push(&plan, &vec![1.0; 50_000]); // cut to 40960
        let b = batch.push(&plan, &[2.0; 100]); // padded to 40960
        assert_eq!(a, BatchItem { first_long: 0, n_long: 40 });
        assert_eq!(b, BatchItem { first_long: 40, n_long: 40 });
        assert_eq!(batch.samples_len(), 2 * 40960);
        assert_eq!(batch.long_starts()[41], 40960 + 1024);
        let samples = batch.samples_in(0..batch.samples_len());
        assert_eq!(samples[40959], 1.0);
        assert_eq!(&samples[40960..40961], &[2.0]);
        assert_eq!(samples[40960 + 100], 0.0);
        assert_eq!(batch.output_len(&plan), 80 * 2 * 64 * 17);
    }

    /// The deprecated `samples` still gives every sample: borrowed from a batch of copies,
    /// gathered from one with a block.
    #[test]
    #[allow(deprecated)]
    fn samples_reads_every_part() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        let mut batch = SignalBatch::new();
        batch.push(&plan, &[1.0; 100]);
        assert!(matches!(batch.samples(), Cow::Borrowed(s) if s.len() == 40960 && s[99] == 1.0));
        batch.push_block(&plan, vec![2.0; plan.padded_len(1)], 1);
        let all = batch.samples();
        assert!(matches!(all, Cow::Owned(_)));
        assert_eq!(all.len(), 40960 + plan.long_len);
        assert_eq!((all[99], all[100], all[40960], all[all.len() - 1]), (1.0, 0.0, 2.0, 2.0));
    }

    #[test]
    fn full_length_keeps_the_file_and_completes_the_last_segment() {
        let mut c = Config::default();
        c.set("sample_length", "full").unwrap();
        let plan = SegmentPlan::new(&c).unwrap();
        let mut batch = SignalBatch::new();
        let item = batch.push(&plan, &[0.5; 1500]);
        assert_eq!(item.n_long, 2);
        assert_eq!(batch.samples_len(), 2048);
        assert_eq!(batch.samples_in(1499..1501).as_ref(), &[0.5, 0.0]);
    }

    /// Copies and handed-over blocks mixed (a block first, two blocks in a row, copies after
    /// a block): every long segment, every range (within a part and across each boundary),
    /// the parts laid end to end and a gathered range give the same samples as one buffer
    /// would, and clearing gives back exactly the blocks handed over.
    #[test]
    fn blocks_and_copies_read_as_one_buffer() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        let block = |n_long: usize, base: f32| -> Vec<f32> {
            (0..plan.padded_len(n_long)).map(|i| base + i as f32).collect()
        };
        let mut batch = SignalBatch::new();
        let mut whole = Vec::new();
        let mut gathered = Vec::new();
        for round in 0..2 {
            let pieces =
                [(2, 1e6, true), (1, 2e6, true), (1, 3e6, false), (2, 4e6, false), (2, 5e6, true)];
            let mut boundaries = Vec::new();
            for (n_long, base, handed) in pieces {
                let samples = block(n_long, base);
                whole.extend_from_slice(&samples);
                boundaries.push(whole.len());
                let item = if handed {
                    batch.push_block(&plan, samples, n_long)
                } else {
                    batch.push_prepared(&plan, &samples, n_long)
                };
                assert_eq!(item.n_long, n_long);
            }
            assert_eq!(batch.samples_len(), whole.len());
            // Block, block, copies (one part), block.
            assert_eq!(batch.parts().count(), 4, "round {round}");
            let laid: Vec<f32> = batch.parts().flat_map(|(_, p)| p.iter().copied()).collect();
            assert_eq!(laid, whole);
            for (start, part) in batch.parts() {
                assert_eq!(&whole[start..start + part.len()], part);
            }
            assert_eq!(batch.longs(&plan).count(), 8);
            for (i, &start) in batch.long_starts().iter().enumerate() {
                assert_eq!(batch.long(&plan, i), &whole[start..start + plan.long_len]);
            }
            let end = whole.len();
            let mut ranges = vec![0..10, 100..3000, 0..end, end..end];
            for &b in &boundaries {
                ranges.extend([b - 7..b, b - 7..(b + 9).min(end), b.saturating_sub(3000)..end]);
            }
            for range in ranges {
                assert_eq!(batch.samples_in(range.clone()).as_ref(), &whole[range.clone()]);
                batch.gather(range.clone(), &mut gathered);
                assert_eq!(gathered, &whole[range.clone()]);
                let within = batch
                    .parts()
                    .any(|(start, part)| start <= range.start && range.end <= start + part.len());
                assert_eq!(batch.within_part(range.clone()).is_some(), within, "{range:?}");
            }
            let mut given = Vec::new();
            batch.clear_with(|b| given.push(b[0]));
            assert_eq!(given, [1e6, 2e6, 5e6]);
            assert!(batch.is_empty() && batch.samples_len() == 0 && batch.n_long() == 0);
            whole.clear();
        }
    }

    #[test]
    #[should_panic(expected = "a prepared block of 2 long segments")]
    fn a_block_of_the_wrong_length_is_a_callers_bug() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        SignalBatch::new().push_block(&plan, vec![0.0; 1000], 2);
    }
}
