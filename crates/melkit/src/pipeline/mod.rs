//! The pipeline: discover → decode → resample → segment → compute → scale → write, with files
//! batched into one backend call and the per-file stages spread over worker threads.

mod executor;
mod run;
pub mod schedule;
mod setup;
mod sink;
mod source;
mod stages;
mod tasks;

use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit_core::scale::FileScale;
use melkit_core::{
    Backend, BackendError, BatchItem, Config, SegmentPlan, SignalBatch, StepTimings,
};
use melkit_io::{Compression, OutputFormat};

use crate::backends::{BackendKind, create_backend};
use crate::error::{Error, FileError};
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};
use crate::tensor::MelTensor;

pub use stages::f16_error;

/// Where and how outputs are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// The file format.
    pub format: OutputFormat,
    /// The compression (HDF5 and NPZ).
    pub compression: Compression,
    /// Flush each output to disk before it takes its final name, so that a power cut never
    /// leaves an empty file under it (renaming alone already protects against crashes).
    pub sync: bool,
    /// Skip the inputs that the output folder's manifest lists as done with the same
    /// configuration (and unchanged since), and remove temporary files a killed run left.
    pub resume: bool,
    /// Keep every result in this cache folder, and write inputs already in it from there
    /// (`cache_spectrograms = true` alone uses [`Cache::default_dir`](crate::cache::Cache::default_dir)).
    pub cache: Option<PathBuf>,
    /// The manifest to append to (`OUT/melkit-manifest.jsonl` when none; a shard keeps its own).
    pub manifest: Option<PathBuf>,
    /// Process only this shard's inputs (see [`shard_of`](crate::shard::shard_of)): shards of
    /// one run can share the output folder, each with its own manifest.
    pub shard: Option<crate::shard::Shard>,
}

impl Default for OutputOptions {
    fn default() -> Self {
        let format =
            if OutputFormat::H5.available() { OutputFormat::H5 } else { OutputFormat::Npy };
        OutputOptions {
            format,
            compression: Compression::None,
            sync: false,
            resume: false,
            cache: None,
            manifest: None,
            shard: None,
        }
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
    /// The worker threads (stacking also removes its parts over them).
    pub(crate) pool: rayon::ThreadPool,
    workers: usize,
    budget: Budget,
    /// The batch of the one-file calls, kept so its buffers are not allocated (and faulted
    /// in page by page) again on every call.
    batch: SignalBatch,
}

/// How much data a run keeps in flight, derived from `memory_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The memory limit, in bytes.
    pub bytes: u64,
    /// Long segments per backend call (and per block of a long file).
    pub batch_longs: usize,
    /// Decoded samples waiting for a batch, at most.
    pub ready_values: usize,
    /// Output values computed and not yet written, at most.
    pub unwritten_values: usize,
}

impl Budget {
    /// The budget of a configuration: `memory_limit`, or 1/8 of the memory available at most
    /// 32 MiB (halved with `memory_efficient`), shared as a quarter for decoded audio, a
    /// quarter for the batch and half for outputs waiting to be written. On a GPU backend
    /// (`gpu`), `gpu_batch_size` (files per call) takes the place of `batch_size`.
    pub fn new(config: &Config, plan: &SegmentPlan, gpu: bool) -> Self {
        let mut bytes = match config.memory_limit {
            0 => (available_memory() / 8).clamp(8 << 20, 32 << 20),
            n => n,
        };
        if config.memory_efficient {
            bytes /= 2;
        }
        let values = (bytes / 4) as usize;
        let per_long = plan.long_len + plan.long_output_len();
        let files = if gpu && config.gpu_batch_size > 0 {
            config.gpu_batch_size
        } else {
            config.batch_size
        };
        let batch_longs = match files {
            0 => values / 4 / per_long,
            files => files * plan.n_long(plan.fixed_len.unwrap_or(10 * plan.sample_rate as usize)),
        };
        Budget {
            bytes,
            batch_longs: batch_longs.max(1),
            ready_values: values / 4,
            unwritten_values: values / 2,
        }
    }
}

/// Memory the system can give without swapping (Linux `MemAvailable`), or 1 GiB when unknown.
fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(1 << 30)
}

fn thread_pool(threads: usize, name: &'static str) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("melkit-{name}-{i}"))
        .build()
        .map_err(|e| Error::Threads { workers: threads, reason: e.to_string() })
}

/// One signal of [`Pipeline::process_signals`] on a host backend, computed into the buffer its
/// tensor keeps: over the pool's threads, or on the calling thread alone where `here`.
fn signal_tensor(
    backend: &mut dyn Backend,
    scale: FileScale,
    signal: &[f32],
    here: bool,
) -> Result<MelTensor, Error> {
    let mut batch = SignalBatch::new();
    let item = batch.push(backend.plan(), signal);
    let mut out = vec![0.0; batch.output_len(backend.plan())];
    match here {
        true => backend.compute_here(&batch, &mut out)?,
        false => backend.compute(&batch, &mut out)?,
    };
    scale.apply(&mut out);
    Ok(MelTensor::new(out, backend.plan().shape(item.n_long)))
}

impl Pipeline {
    /// A pipeline for `config` on backend `kind`. The configuration is validated first.
    ///
    /// # Errors
    /// An invalid configuration, a backend that cannot start, or no threads.
    pub fn new(config: Config, kind: BackendKind) -> Result<Self, Error> {
        config.validate()?;
        let backend = create_backend(kind, &config)?;
        Self::with_backend(config, backend)
    }

    /// A pipeline for `config` on a backend built by the caller (one of melkit's, or its own)
    /// for the same configuration.
    ///
    /// # Errors
    /// An invalid configuration, a backend built for another segmentation, or no threads.
    pub fn with_backend(config: Config, backend: Box<dyn Backend>) -> Result<Self, Error> {
        config.validate()?;
        if *backend.plan() != SegmentPlan::new(&config)? {
            return Err(Error::Backend(BackendError::Failed {
                backend: backend.name(),
                reason: "it was built for another configuration".into(),
            }));
        }
        let workers = match config.max_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = thread_pool(workers, "worker")?;
        let gpu = backend.on_device();
        warn_about_idle_keys(&config, backend.name(), gpu);
        let budget = Budget::new(&config, backend.plan(), gpu);
        tracing::debug!(backend = backend.name(), workers, ?budget, "pipeline ready");
        Ok(Pipeline {
            config_json: config.to_json().to_string(),
            file_scale: FileScale::from_config(&config),
            config,
            backend,
            pool,
            workers,
            budget,
            batch: SignalBatch::new(),
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

    /// Whether the backend computes on a device (a GPU), where batching calls pays.
    pub fn on_device(&self) -> bool {
        self.backend.on_device()
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
        let mut stats = FileStats::default();
        let mut source = source::FileSource::open(path, self.plan(), &mut stats.times)?;
        stats.audio_seconds = source.audio_seconds();
        let block = source.next_block(path, source.n_long(), &mut stats.times)?;
        Ok(self.compute_one(
            |batch, plan| batch.push_block(plan, block.samples, block.n_long),
            stats,
        )?)
    }

    /// The memory budget of a run.
    pub fn budget(&self) -> Budget {
        self.budget
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
        Ok(self.compute_one(|batch, plan| batch.push(plan, &signal), FileStats::default())?.0)
    }

    /// Computes `n_long` consecutive long segments of a prepared signal: `samples` runs from
    /// the first one's start to the last one's end (`(n_long − 1) · hop + long_len` samples).
    /// The per-file scaling is applied as if the block were the whole file.
    ///
    /// # Errors
    /// `samples` of the wrong length, or the backend fails.
    pub fn process_block(&mut self, samples: &[f32], n_long: usize) -> Result<MelTensor, Error> {
        let plan = self.plan();
        if n_long == 0 || samples.len() != plan.padded_len(n_long) {
            return Err(Error::Usage(format!(
                "a block of {n_long} long segments has {} samples, not {}",
                plan.padded_len(n_long),
                samples.len()
            )));
        }
        let push = |batch: &mut SignalBatch, plan: &SegmentPlan| {
            batch.push_prepared(plan, samples, n_long)
        };
        Ok(self.compute_one(push, FileStats::default())?.0)
    }

    /// Computes several mono signals already at the configured rate in one backend call (a
    /// service's dynamic batch), each cut or padded to its fixed length and scaled as a file.
    ///
    /// # Errors
    /// The backend fails (for the whole batch).
    pub fn process_signals(&mut self, signals: &[&[f32]]) -> Result<Vec<MelTensor>, Error> {
        if !self.backend.on_device() {
            // On the CPU one call per signal costs nothing more, and each signal's output
            // becomes its tensor without a copy; all of them in one visit to the pool.
            let (pool, backend, scale) = (&self.pool, &mut self.backend, self.file_scale);
            let mut all = |here| {
                let backend = backend.as_mut();
                signals.iter().map(|s| signal_tensor(backend, scale, s, here)).collect()
            };
            return match self.workers {
                1 => all(true),
                _ => pool.install(|| all(false)),
            };
        }
        let mut batch = SignalBatch::new();
        let items: Vec<BatchItem> =
            signals.iter().map(|s| batch.push(self.backend.plan(), s)).collect();
        let mut times = StageTimes::default();
        let out = self.compute(&batch, &mut times)?;
        let plan = self.plan().clone();
        Ok(items
            .iter()
            .map(|&item| {
                let mut values = batch.item_output(&plan, item, &out).to_vec();
                self.file_scale.apply(&mut values);
                MelTensor::new(values, plan.shape(item.n_long))
            })
            .collect())
    }

    /// Segment, compute and scale one prepared signal.
    fn compute_one(
        &mut self,
        push: impl FnOnce(&mut SignalBatch, &SegmentPlan) -> BatchItem,
        mut stats: FileStats,
    ) -> Result<(MelTensor, FileStats), BackendError> {
        let started = Instant::now();
        let mut batch = std::mem::take(&mut self.batch);
        // The last call's block (handed over by `process_file`) goes back for the next file.
        batch.clear_with(source::recycle);
        let item = push(&mut batch, self.backend.plan());
        stats.times.add(Stage::Segment, started.elapsed());
        let computed = self.compute(&batch, &mut stats.times);
        self.batch = batch;
        let mut out = computed?;
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

    /// The backend's call for a whole batch, on the worker threads, into a new output; its
    /// wall time is the compute stage's, whether it succeeds or not.
    fn compute(
        &mut self,
        batch: &SignalBatch,
        times: &mut StageTimes,
    ) -> Result<Vec<f32>, BackendError> {
        // A zeroed allocation: memory fresh from the system is not written twice.
        let mut out = vec![0.0; batch.output_len(self.backend.plan())];
        let started = Instant::now();
        let (pool, backend) = (&self.pool, &mut self.backend);
        // One worker: this thread is it (a hand-over to the pool's thread and back would cost
        // two thread switches).
        let result = match self.workers {
            1 => backend.compute_here(batch, &mut out),
            _ => pool.install(|| backend.compute(batch, &mut out)),
        };
        times.add(Stage::Compute, compute_time(&result, started.elapsed()));
        result.map(|_| out)
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

/// The compute stage's time: the thread-time of the backend's steps as it reports them, or the
/// wall time of the call when it reports none.
pub(crate) fn compute_time(
    result: &Result<StepTimings, BackendError>,
    wall: std::time::Duration,
) -> std::time::Duration {
    match result {
        Ok(steps) if !steps.total().is_zero() => steps.total(),
        _ => wall,
    }
}

/// Run-control keys that mean nothing to the backend in use are said to do nothing.
fn warn_about_idle_keys(config: &Config, backend: &str, gpu: bool) {
    if (config.gpu_workers != 0 || config.gpu_batch_size != 0) && !gpu {
        tracing::warn!("gpu_workers and gpu_batch_size have no effect on backend {backend}");
    }
}
