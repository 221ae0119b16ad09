//! The pipeline: discover → decode → resample → segment → compute → scale → write, with files
//! batched into one backend call and the per-file stages spread over worker threads.

mod run;
mod stages;

use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit_core::scale::FileScale;
use melkit_core::{Backend, BackendError, Config, SegmentPlan, SignalBatch, StepTimings};
use melkit_io::{Compression, OutputFormat};

use crate::backends::{BackendKind, create_backend};
use crate::error::{Error, FileError};
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};
use crate::tensor::MelTensor;

pub use stages::f16_error;

/// Where and how outputs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// The file format.
    pub format: OutputFormat,
    /// The compression (HDF5 and NPZ).
    pub compression: Compression,
    /// Flush each output to disk before it takes its final name, so that a power cut never
    /// leaves an empty file under it (renaming alone already protects against crashes).
    pub sync: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        let format =
            if OutputFormat::H5.available() { OutputFormat::H5 } else { OutputFormat::Npy };
        OutputOptions { format, compression: Compression::None, sync: false }
    }
}

/// Receives a run's progress (a progress bar, a log). Called from the thread running the
/// pipeline.
pub trait Progress {
    /// The run found `files` inputs.
    fn start(&self, _files: usize) {}
    /// One input is done, written or failed.
    fn file_done(&self, _outcome: &FileOutcome) {}
}

/// No progress reporting.
impl Progress for () {}

/// A configured pipeline: one backend (prepared once), a pool of worker threads.
pub struct Pipeline {
    config: Config,
    config_json: String,
    backend: Box<dyn Backend>,
    file_scale: FileScale,
    pool: rayon::ThreadPool,
    /// Threads for decoding and resampling when `cpu_workers` sets their number.
    decode_pool: Option<rayon::ThreadPool>,
    workers: usize,
    batch_files: usize,
}

fn thread_pool(threads: usize, name: &'static str) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("melkit-{name}-{i}"))
        .build()
        .map_err(|e| Error::Threads { workers: threads, reason: e.to_string() })
}

impl Pipeline {
    /// A pipeline for `config` on backend `kind`. The configuration is validated first.
    ///
    /// # Errors
    /// An invalid configuration, a backend that cannot start, or no threads.
    pub fn new(config: Config, kind: BackendKind) -> Result<Self, Error> {
        config.validate()?;
        let workers = match config.max_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = thread_pool(workers, "worker")?;
        let decode_pool = match config.cpu_workers {
            0 => None,
            n => Some(thread_pool(n, "decode")?),
        };
        let backend = create_backend(kind, &config)?;
        warn_about_idle_keys(&config, backend.name());
        let batch_files = match config.batch_size {
            0 if config.memory_efficient => workers.max(2),
            0 => (8 * workers).max(16),
            n => n,
        };
        tracing::debug!(backend = backend.name(), workers, batch_files, "pipeline ready");
        Ok(Pipeline {
            config_json: config.to_json().to_string(),
            file_scale: FileScale::from_config(&config),
            config,
            backend,
            pool,
            decode_pool,
            workers,
            batch_files,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The segmentation plan.
    pub fn plan(&self) -> &SegmentPlan {
        self.backend.plan()
    }

    /// The name of the backend in use.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Decodes, resamples and computes one file.
    ///
    /// # Errors
    /// The file cannot be decoded, or the backend fails.
    pub fn process_file(&mut self, path: &Path) -> Result<(MelTensor, FileStats), Error> {
        let loaded = stages::load(path, self.config.sample_rate)?;
        Ok(self.compute_one(&loaded.signal, loaded.stats)?)
    }

    /// Computes the tensor of a mono signal in memory at `sample_rate` Hz.
    ///
    /// # Errors
    /// Resampling or the backend fails.
    pub fn process_signal(
        &mut self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<MelTensor, Error> {
        let signal = melkit_io::resample(samples, sample_rate, self.config.sample_rate)
            .map_err(|e| FileError::new("<signal>", "resample", e))?;
        Ok(self.compute_one(&signal, FileStats::default())?.0)
    }

    /// Segment, compute and scale one prepared signal.
    fn compute_one(
        &mut self,
        signal: &[f32],
        mut stats: FileStats,
    ) -> Result<(MelTensor, FileStats), BackendError> {
        let started = Instant::now();
        let mut batch = SignalBatch::new();
        let item = batch.push(self.plan(), signal);
        stats.times.add(Stage::Segment, started.elapsed());
        let mut out = Vec::new();
        self.compute(&batch, &mut out, &mut stats.times)?;
        stages::finish_values(
            self.file_scale,
            &self.config,
            self.plan(),
            &mut out,
            item,
            &mut stats,
        );
        Ok((MelTensor::new(out, self.plan().shape(item.n_long)), stats))
    }

    /// The backend's call for a whole batch, on the worker threads; its wall time is the
    /// compute stage's, whether it succeeds or not.
    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut Vec<f32>,
        times: &mut StageTimes,
    ) -> Result<StepTimings, BackendError> {
        out.clear();
        out.resize(batch.output_len(self.backend.plan()), 0.0);
        let started = Instant::now();
        let (pool, backend) = (&self.pool, &mut self.backend);
        let result = pool.install(|| backend.compute(batch, out));
        times.add(Stage::Compute, started.elapsed());
        result
    }

    /// Processes every input (files, or folders searched recursively) into `out_dir`, mirroring
    /// each folder's tree. A file that fails is reported and skipped; the others go on.
    ///
    /// # Errors
    /// Only what stops the whole run before it starts: outputs that would collide, or output
    /// options that do not fit together. Per-file failures are in the report.
    pub fn process_paths(
        &mut self,
        inputs: &[PathBuf],
        out_dir: &Path,
        options: &OutputOptions,
    ) -> Result<RunReport, Error> {
        self.process_paths_with(inputs, out_dir, options, &())
    }
}

/// Run-control keys that mean nothing to the backend in use are said to do nothing.
fn warn_about_idle_keys(config: &Config, backend: &str) {
    if config.cache_spectrograms {
        tracing::warn!("cache_spectrograms has no effect in this version: every file is computed");
    }
    if (config.gpu_workers != 0 || config.gpu_batch_size != 0)
        && !matches!(backend, "wgpu" | "cuda")
    {
        tracing::warn!("gpu_workers and gpu_batch_size have no effect on backend {backend}");
    }
}
