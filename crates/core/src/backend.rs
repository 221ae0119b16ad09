//! The backend seam: a batch of prepared signals in, mel tensors out (see STYLE.md).

use std::time::Duration;

use crate::error::BackendError;
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
/// end in one buffer so that a GPU uploads them with one copy. Framing is left to the backend.
#[derive(Clone, Debug, Default)]
pub struct SignalBatch {
    samples: Vec<f32>,
    long_starts: Vec<usize>,
    items: Vec<BatchItem>,
}

impl SignalBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.long_starts.clear();
        self.items.clear();
    }

    /// Adds a mono signal at the plan's sample rate: its length is fixed (cut or zero-padded to
    /// `sample_length`) and it is zero-padded so its last long segment is complete.
    pub fn push(&mut self, plan: &SegmentPlan, signal: &[f32]) -> BatchItem {
        let len = plan.fixed_length(signal.len());
        let n_long = plan.n_long(len);
        let start = self.samples.len();
        let kept = len.min(signal.len());
        self.samples.extend_from_slice(&signal[..kept]);
        self.samples.resize(start + plan.padded_len(n_long), 0.0);
        let item = BatchItem { first_long: self.long_starts.len(), n_long };
        self.long_starts.extend((0..n_long).map(|i| start + i * plan.long_hop));
        self.items.push(item);
        item
    }

    /// Adds a block already prepared: the samples of `n_long` consecutive long segments of a
    /// signal, `(n_long - 1) · hop + long_len` of them (a whole short signal padded, or a part
    /// of a long one).
    ///
    /// # Panics
    /// When `samples` does not have that length (a caller's bug).
    pub fn push_prepared(
        &mut self,
        plan: &SegmentPlan,
        samples: &[f32],
        n_long: usize,
    ) -> BatchItem {
        assert_eq!(
            samples.len(),
            plan.padded_len(n_long),
            "a prepared block of {n_long} long segments"
        );
        let start = self.samples.len();
        self.samples.extend_from_slice(samples);
        let item = BatchItem { first_long: self.long_starts.len(), n_long };
        self.long_starts.extend((0..n_long).map(|i| start + i * plan.long_hop));
        self.items.push(item);
        item
    }

    /// Every prepared sample, signal after signal.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The start, in [`samples`](Self::samples), of every long segment of the batch.
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

/// How long a backend's own steps took (upload, FFT, mel, download...), in the order they ran:
/// thread-time summed over the threads that ran them, so that stages compare as CPU time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTimings {
    steps: Vec<(&'static str, Duration)>,
}

impl StepTimings {
    /// Adds `duration` to step `name` (appending the step the first time it is seen).
    pub fn add(&mut self, name: &'static str, duration: Duration) {
        match self.steps.iter_mut().find(|(n, _)| *n == name) {
            Some((_, d)) => *d += duration,
            None => self.steps.push((name, duration)),
        }
    }

    /// Adds every step of `other`.
    pub fn merge(&mut self, other: &StepTimings) {
        for &(name, duration) in &other.steps {
            self.add(name, duration);
        }
    }

    /// The steps and their durations.
    pub fn steps(&self) -> &[(&'static str, Duration)] {
        &self.steps
    }

    /// The sum of every step.
    pub fn total(&self) -> Duration {
        self.steps.iter().map(|(_, d)| *d).sum()
    }
}

/// A batch handed to [`Backend::submit`], with the buffer its output goes into (resized by the
/// backend to `batch.output_len(plan)`).
#[derive(Debug, Default)]
pub struct Job {
    /// The signals to compute.
    pub batch: SignalBatch,
    /// Their mel tensors, once the job is done. It may arrive holding an earlier job's values:
    /// a backend writes every value of it (the pipeline reuses buffers without zeroing them).
    pub out: Vec<f32>,
}

/// A job given back by [`Backend::submit`] or [`Backend::flush`]: its output filled, or why not.
pub type Done = (Job, Result<StepTimings, BackendError>);

/// Host time a device backend spent on a batch, in the steps it reports: enqueueing the upload
/// and kernels, waiting for the device, copying the results out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeviceTimes {
    /// Writing the batch to the device and starting its kernels.
    pub upload: Duration,
    /// Waiting for the kernels and the copy back.
    pub kernel: Duration,
    /// Copying results out of the readback buffer.
    pub download: Duration,
}

impl DeviceTimes {
    /// The times as a backend reports them (`upload`, `kernel`, `download`).
    pub fn steps(&self) -> StepTimings {
        let mut steps = StepTimings::default();
        steps.add("upload", self.upload);
        steps.add("kernel", self.kernel);
        steps.add("download", self.download);
        steps
    }
}

/// A way of computing mel tensors.
///
/// A backend is built for one configuration, preparing once everything that depends only on it
/// (FFT plans, window, filterbank, device buffers), and then computes any number of batches:
/// one at a time with [`compute`](Self::compute), or as a stream with
/// [`submit`](Self::submit) and [`flush`](Self::flush), where a device backend reads back one
/// batch while it computes the next.
pub trait Backend: Send {
    /// The backend's name, as `--backend` spells it.
    fn name(&self) -> &'static str;

    /// The segmentation this backend was built for.
    fn plan(&self) -> &SegmentPlan;

    /// Whether it computes on a device of its own (a GPU), whose batches `gpu_batch_size` sets.
    fn on_device(&self) -> bool {
        false
    }

    /// Bytes the backend holds on its device (the buffers it allocated there), for a device
    /// backend; `None` for one that computes in host memory.
    fn device_memory(&self) -> Option<u64> {
        None
    }

    /// Computes the mel tensor of every long segment of `batch` into `out`
    /// (`batch.output_len(plan)` values, long segment after long segment, each
    /// `[short_segment, mel_bin, time_frame]`), with the element-wise scaling
    /// ([`ElementScale`](crate::scale::ElementScale)) applied. The per-file scaling
    /// ([`FileScale`](crate::scale::FileScale)) is left to the caller. Every value of `out` is
    /// written: it may hold an earlier call's values (the conformance suite fills it with NaN).
    ///
    /// # Errors
    /// A wrongly sized `out`, or a failure of the device.
    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError>;

    /// Starts computing `job`, and gives back the oldest job submitted earlier once it is done,
    /// if any: jobs come back in the order they were submitted, each exactly once, the last
    /// ones through [`flush`](Self::flush). The default computes `job` at once and gives it
    /// back; a device backend keeps it in flight, so that the caller's next batch is uploaded
    /// and computed while this one is read back.
    fn submit(&mut self, job: Job) -> Option<Done> {
        let mut job = job;
        job.out.resize(job.batch.output_len(self.plan()), 0.0);
        let result = self.compute(&job.batch, &mut job.out);
        Some((job, result))
    }

    /// Waits for the oldest job still in flight and gives it back; `None` when there is none.
    fn flush(&mut self) -> Option<Done> {
        None
    }
}

/// Checks that `out` fits `batch` (for backends to call first).
///
/// # Errors
/// [`BackendError::OutputSize`] when it does not.
pub fn check_output(
    plan: &SegmentPlan,
    batch: &SignalBatch,
    out: &[f32],
) -> Result<(), BackendError> {
    let expected = batch.output_len(plan);
    if out.len() == expected {
        Ok(())
    } else {
        Err(BackendError::OutputSize { expected, got: out.len() })
    }
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
        assert_eq!(batch.samples().len(), 2 * 40960);
        assert_eq!(batch.long_starts()[41], 40960 + 1024);
        assert_eq!(batch.samples()[40959], 1.0);
        assert_eq!(&batch.samples()[40960..40961], &[2.0]);
        assert_eq!(batch.samples()[40960 + 100], 0.0);
        assert_eq!(batch.output_len(&plan), 80 * 2 * 64 * 17);
    }

    #[test]
    fn full_length_keeps_the_file_and_completes_the_last_segment() {
        let mut c = Config::default();
        c.set("sample_length", "full").unwrap();
        let plan = SegmentPlan::new(&c).unwrap();
        let mut batch = SignalBatch::new();
        let item = batch.push(&plan, &[0.5; 1500]);
        assert_eq!(item.n_long, 2);
        assert_eq!(batch.samples().len(), 2048);
        assert_eq!(batch.samples()[1499], 0.5);
        assert_eq!(batch.samples()[1500], 0.0);
    }
}
