//! The backend seam: a batch of prepared signals in, mel tensors out (see STYLE.md).

use std::time::Duration;

pub use crate::batch::{BatchItem, SignalBatch};
use crate::error::BackendError;
use crate::plan::SegmentPlan;

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

    /// Computes as [`compute`](Self::compute) does, on the calling thread alone: a pipeline
    /// of one worker calls this instead of handing the call to a worker thread (two thread
    /// switches per call). The default calls `compute`, which is right for a backend that
    /// spreads no work over rayon's threads.
    ///
    /// # Errors
    /// As [`compute`](Self::compute).
    fn compute_here(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        self.compute(batch, out)
    }

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
