//! One input file as a stream of blocks of long segments, prepared for the backend: decoded,
//! mixed to mono and resampled as it is read, cut or padded to its fixed length. Only what the
//! fixed length needs is read, and only one block (plus the overlap of long segments) is held.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use melkit_core::SegmentPlan;
use melkit_io::{AudioStream, StreamResampler, resampled_len};

use crate::error::FileError;
use crate::report::{Stage, StageTimes};

/// Samples read from the file at a time.
const READ_FRAMES: usize = 1 << 16;

/// Sample buffers of finished blocks, kept for the next files (a fresh buffer costs a page fault
/// per page as it fills).
static SPARE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// An empty buffer, with the capacity of an earlier block when one is spare.
fn spare_buffer() -> Vec<f32> {
    SPARE.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default()
}

/// Spare buffers kept at most, in samples all together (8 MiB: a few ten-second blocks).
const SPARE_SAMPLES: usize = 2 << 20;

/// Keeps a block's buffer for a later file, while the spares stay within `SPARE_SAMPLES`.
pub(super) fn recycle(mut buffer: Vec<f32>) {
    buffer.clear();
    if let Ok(mut spare) = SPARE.lock() {
        let kept: usize = spare.iter().map(Vec::capacity).sum();
        if kept + buffer.capacity() <= SPARE_SAMPLES {
            spare.push(buffer);
        }
    }
}

/// Prepared samples for long segments `first_long .. first_long + n_long` of a file.
pub(super) struct Block {
    /// From `first_long · hop` to `(first_long + n_long - 1) · hop + long_len`.
    pub samples: Vec<f32>,
    pub first_long: usize,
    pub n_long: usize,
}

/// An open input file (see the module documentation).
pub(super) struct FileSource {
    stream: AudioStream,
    resampler: Option<StreamResampler>,
    /// Prepared-signal samples from `window_start` on.
    window: Vec<f32>,
    window_start: usize,
    /// Samples at the target rate produced so far.
    produced: usize,
    exhausted: bool,
    /// Samples of real signal in the prepared signal (its fixed length).
    signal_len: usize,
    n_long: usize,
    next_long: usize,
    long_len: usize,
    long_hop: usize,
    read: Vec<f32>,
    staged: Vec<f32>,
}

impl FileSource {
    /// Opens `path` for the plan's rate and length.
    pub fn open(
        path: &Path,
        plan: &SegmentPlan,
        times: &mut StageTimes,
    ) -> Result<Self, FileError> {
        let started = Instant::now();
        let stream =
            melkit_io::AudioStream::open(path).map_err(|e| FileError::new(path, "decode", e))?;
        times.add(Stage::Decode, started.elapsed());
        let (rate, frames) = (stream.sample_rate(), stream.frames() as usize);
        let resampler = if rate == plan.sample_rate {
            None
        } else {
            let started = Instant::now();
            let resampler = StreamResampler::new(rate, plan.sample_rate)
                .map_err(|e| FileError::new(path, "resample", e))?;
            times.add(Stage::Resample, started.elapsed());
            Some(resampler)
        };
        let total = if resampler.is_some() {
            resampled_len(frames, rate, plan.sample_rate)
        } else {
            frames
        };
        let signal_len = plan.fixed_length(total).min(total);
        Ok(FileSource {
            stream,
            resampler,
            window: spare_buffer(),
            window_start: 0,
            produced: 0,
            exhausted: false,
            signal_len,
            n_long: plan.n_long(plan.fixed_length(total)),
            next_long: 0,
            long_len: plan.long_len,
            long_hop: plan.long_hop,
            read: Vec::new(),
            staged: Vec::new(),
        })
    }

    /// Long segments in the file's output.
    pub fn n_long(&self) -> usize {
        self.n_long
    }

    /// Seconds of audio in the file.
    pub fn audio_seconds(&self) -> f64 {
        self.stream.frames() as f64 / f64::from(self.stream.sample_rate())
    }

    /// Whether every block has been taken.
    pub fn done(&self) -> bool {
        self.next_long >= self.n_long
    }

    /// The next block of at most `max_longs` long segments.
    pub fn next_block(
        &mut self,
        path: &Path,
        max_longs: usize,
        times: &mut StageTimes,
    ) -> Result<Block, FileError> {
        let first_long = self.next_long;
        let n_long = max_longs.max(1).min(self.n_long - first_long);
        let start = first_long * self.long_hop;
        let end = (first_long + n_long - 1) * self.long_hop + self.long_len;
        let needed = end.min(self.signal_len);
        while self.window_start + self.window.len() < needed && !self.exhausted {
            let missing = needed - (self.window_start + self.window.len());
            self.pull(path, missing, times)?;
        }
        let started = Instant::now();
        let have = (self.window_start + self.window.len()).min(needed);
        let samples = if start == self.window_start && first_long + n_long == self.n_long {
            // The last block starting where the window does (a short file's only block):
            // take the window itself.
            let mut samples = std::mem::take(&mut self.window);
            samples.truncate(have - start);
            samples.resize(end - start, 0.0);
            // A window read further than this block needs holds memory the budget does not
            // count: give it back (a cheap copy of a short block).
            if samples.capacity() > 2 * samples.len() + 4096 {
                samples.shrink_to_fit();
            }
            samples
        } else {
            let mut samples = Vec::with_capacity(end - start);
            if have > start {
                samples.extend_from_slice(
                    &self.window[start - self.window_start..have - self.window_start],
                );
            }
            samples.resize(end - start, 0.0);
            samples
        };
        self.next_long += n_long;
        self.discard_before(self.next_long * self.long_hop);
        times.add(Stage::Segment, started.elapsed());
        Ok(Block { samples, first_long, n_long })
    }

    /// Forgets the samples before `position` (the next block's start).
    fn discard_before(&mut self, position: usize) {
        let drop = position.saturating_sub(self.window_start).min(self.window.len());
        self.window.drain(..drop);
        self.window_start = position.max(self.window_start);
    }

    /// Reads (and resamples) the next samples of the file into the window; `missing` samples
    /// are still needed (without resampling, no more than that is read, in whole 4096s).
    fn pull(
        &mut self,
        path: &Path,
        missing: usize,
        times: &mut StageTimes,
    ) -> Result<(), FileError> {
        let started = Instant::now();
        if self.resampler.is_none() && self.window_start <= self.produced {
            // No resampling and no gap to skip: decode straight into the window.
            let frames = READ_FRAMES.min(missing.next_multiple_of(4096).max(4096));
            let n = self
                .stream
                .read(frames, &mut self.window)
                .map_err(|e| FileError::new(path, "decode", e))?;
            times.add(Stage::Decode, started.elapsed());
            self.produced += n;
            self.exhausted = n == 0;
            return Ok(());
        }
        self.read.clear();
        let n = self
            .stream
            .read(READ_FRAMES, &mut self.read)
            .map_err(|e| FileError::new(path, "decode", e))?;
        times.add(Stage::Decode, started.elapsed());
        let started = Instant::now();
        let fresh = match &mut self.resampler {
            None => &self.read,
            Some(r) => {
                self.staged.clear();
                let result = if n == 0 {
                    r.finish(&mut self.staged)
                } else {
                    r.process(&self.read, &mut self.staged)
                };
                result.map_err(|e| FileError::new(path, "resample", e))?;
                times.add(Stage::Resample, started.elapsed());
                &self.staged
            }
        };
        if n == 0 {
            self.exhausted = true;
        }
        // Keep what falls at or after the window's start (long segments may leave gaps).
        let skip = self.window_start.saturating_sub(self.produced).min(fresh.len());
        self.window.extend_from_slice(&fresh[skip..]);
        self.produced += fresh.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_block_of_a_long_file_holds_no_more_than_it_needs() {
        // 10 s of audio cut to 0.25 s: one block of 1024 samples, not the whole file's buffer
        // (the run's memory budget counts what blocks hold).
        let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/audio/tones_4096.wav");
        let mut config = melkit_core::Config::default();
        config.set("sample_length", "0.25").unwrap();
        let plan = SegmentPlan::new(&config).unwrap();
        let mut times = StageTimes::default();
        let mut source = FileSource::open(&clip, &plan, &mut times).unwrap();
        let block = source.next_block(&clip, 10, &mut times).unwrap();
        assert_eq!((block.n_long, block.samples.len()), (1, 1024));
        assert!(block.samples.capacity() <= 2 * 1024 + 4096, "{}", block.samples.capacity());
        assert!(source.done());
    }
}
