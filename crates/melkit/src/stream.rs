//! Streaming: a signal arriving in pieces (a microphone, a socket) turned into tensors as its
//! long segments complete. Samples at the input rate are resampled as they come (sample for
//! sample as the whole signal would be), cut at the fixed `sample_length` (or kept whole with
//! `full`), and each long segment is computed as soon as its last sample is in; `finish` pads
//! the rest as a file's would be. The tensors, concatenated, equal the whole signal's.

use melkit_io::StreamResampler;

use crate::error::{Error, FileError};
use crate::pipeline::Pipeline;
use crate::tensor::MelTensor;

/// A stream's state (see the module documentation); its tensors are computed by the pipeline
/// passed to each call, built for the same configuration.
pub struct Streamer {
    resampler: Option<StreamResampler>,
    /// Prepared samples from `start` on (those later long segments still need).
    held: Vec<f32>,
    start: usize,
    /// Samples at the target rate so far (before the fixed length cuts them).
    received: usize,
    /// Long segments given out so far.
    emitted: usize,
    finished: bool,
}

impl Streamer {
    /// A stream of samples at `sample_rate` Hz for `pipeline`'s configuration.
    ///
    /// # Errors
    /// A configuration whose scaling needs the whole signal (`ref = "max"`, `top_db`), or a
    /// sample rate the resampler cannot take.
    pub fn new(pipeline: &Pipeline, sample_rate: u32) -> Result<Self, Error> {
        if !melkit_core::scale::FileScale::from_config(pipeline.config()).is_identity() {
            return Err(Error::Usage(
                "streaming needs element-wise scaling: ref = \"max\" and top_db depend on the \
                 whole signal"
                    .into(),
            ));
        }
        let target = pipeline.plan().sample_rate;
        let resampler = if sample_rate == target {
            None
        } else {
            Some(
                StreamResampler::new(sample_rate, target)
                    .map_err(|e| FileError::new("<stream>", "resample", e))?,
            )
        };
        Ok(Streamer {
            resampler,
            held: Vec::new(),
            start: 0,
            received: 0,
            emitted: 0,
            finished: false,
        })
    }

    /// Feeds `samples`; returns the long segments they complete (none, one or several).
    ///
    /// # Errors
    /// The stream is finished, resampling fails, or the backend does.
    pub fn push(&mut self, pipeline: &mut Pipeline, samples: &[f32]) -> Result<MelTensor, Error> {
        if self.finished {
            return Err(Error::Usage("the stream is finished".into()));
        }
        match &mut self.resampler {
            Some(r) => {
                let mut out = Vec::new();
                r.process(samples, &mut out)
                    .map_err(|e| FileError::new("<stream>", "resample", e))?;
                self.take(pipeline, &out);
            }
            None => self.take(pipeline, samples),
        }
        self.emit(pipeline, false)
    }

    /// Ends the stream: the long segments left, the last zero-padded (and, with a fixed
    /// `sample_length`, the signal padded to it).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn finish(&mut self, pipeline: &mut Pipeline) -> Result<MelTensor, Error> {
        if self.finished {
            return Err(Error::Usage("the stream is finished".into()));
        }
        if let Some(r) = &mut self.resampler {
            let mut out = Vec::new();
            r.finish(&mut out).map_err(|e| FileError::new("<stream>", "resample", e))?;
            self.take(pipeline, &out);
        }
        self.finished = true;
        self.emit(pipeline, true)
    }

    /// Keeps the samples the fixed length keeps.
    fn take(&mut self, pipeline: &Pipeline, samples: &[f32]) {
        let limit =
            pipeline.config().sample_length.map(|_| pipeline.plan().fixed_length(usize::MAX));
        let room =
            limit.map_or(samples.len(), |l| l.saturating_sub(self.received).min(samples.len()));
        self.held.extend_from_slice(&samples[..room]);
        self.received += samples.len();
    }

    /// Computes the long segments that are complete (all of them, padded, at the end).
    fn emit(&mut self, pipeline: &mut Pipeline, last: bool) -> Result<MelTensor, Error> {
        let plan = pipeline.plan().clone();
        let length = self.start + self.held.len();
        let total = if last {
            plan.n_long(plan.fixed_length(self.received))
        } else {
            // Every segment that ends by the samples in; never beyond the fixed length's count.
            let ready = if length < plan.long_len {
                0
            } else {
                (length - plan.long_len) / plan.long_hop + 1
            };
            let cap =
                pipeline.config().sample_length.map(|_| plan.n_long(plan.fixed_length(usize::MAX)));
            cap.map_or(ready, |c| ready.min(c))
        };
        let n = total.saturating_sub(self.emitted);
        if n == 0 {
            return Ok(MelTensor::new(Vec::new(), plan.shape(0)));
        }
        let from = self.emitted * plan.long_hop - self.start;
        let mut block = self.held[from.min(self.held.len())..].to_vec();
        block.resize(plan.padded_len(n), 0.0);
        let tensor = pipeline.process_block(&block, n)?;
        self.emitted += n;
        // Keep from the next segment's start on.
        let keep = (self.emitted * plan.long_hop).saturating_sub(self.start).min(self.held.len());
        self.held.drain(..keep);
        self.start += keep;
        Ok(tensor)
    }
}
