//! The pipeline: discover → decode → resample → segment → compute → scale → write, with files
//! batched into one backend call and the per-file stages spread over worker threads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit_core::config::Dtype;
use melkit_core::scale::FileScale;
use melkit_core::{Backend, BatchItem, Config, SegmentPlan, SignalBatch};
use melkit_io::output::check_options;
use melkit_io::{Compression, OutputFormat, OutputTensor, TensorMeta};
use rayon::prelude::*;

use crate::backends::{BackendKind, create_backend};
use crate::discover::{InputFile, check_collisions, discover};
use crate::error::{Error, FileError};
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};
use crate::tensor::MelTensor;

/// Where and how outputs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// The file format.
    pub format: OutputFormat,
    /// The compression (HDF5 and NPZ).
    pub compression: Compression,
}

impl Default for OutputOptions {
    fn default() -> Self {
        let format =
            if OutputFormat::H5.available() { OutputFormat::H5 } else { OutputFormat::Npy };
        OutputOptions { format, compression: Compression::None }
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

/// A decoded, resampled signal and what it took.
struct Loaded {
    signal: Vec<f32>,
    stats: FileStats,
}

/// A configured pipeline: one backend (prepared once), a pool of worker threads.
pub struct Pipeline {
    config: Config,
    config_json: String,
    plan: SegmentPlan,
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
        let plan = SegmentPlan::new(&config)?;
        let workers = match config.max_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = thread_pool(workers, "worker")?;
        let decode_pool = match config.cpu_workers {
            0 => None,
            n => Some(thread_pool(n, "decode")?),
        };
        if config.cache_spectrograms {
            tracing::warn!(
                "cache_spectrograms has no effect in this version: every file is computed"
            );
        }
        let backend = create_backend(kind, &config)?;
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
            plan,
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
        &self.plan
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
        let loaded = load(path, self.config.sample_rate)?;
        let mut stats = loaded.stats;
        let tensor = self.compute_one(&loaded.signal, &mut stats.times)?;
        stats.long_segments = tensor.shape()[0];
        stats.segments = stats.long_segments * self.plan.n_short;
        Ok((tensor, stats))
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
        self.compute_one(&signal, &mut StageTimes::default())
    }

    fn compute_one(&mut self, signal: &[f32], times: &mut StageTimes) -> Result<MelTensor, Error> {
        let started = Instant::now();
        let mut batch = SignalBatch::new();
        let item = batch.push(&self.plan, signal);
        times.add(Stage::Segment, started.elapsed());
        let mut out = vec![0.0; batch.output_len(&self.plan)];
        let started = Instant::now();
        let (pool, backend) = (&self.pool, &mut self.backend);
        pool.install(|| backend.compute(&batch, &mut out))?;
        times.add(Stage::Compute, started.elapsed());
        let started = Instant::now();
        self.file_scale.apply(&mut out);
        times.add(Stage::Scale, started.elapsed());
        Ok(MelTensor::new(out, self.plan.shape(item.n_long)))
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

    /// [`process_paths`](Self::process_paths), reporting progress to `progress`.
    ///
    /// # Errors
    /// As [`process_paths`](Self::process_paths).
    pub fn process_paths_with(
        &mut self,
        inputs: &[PathBuf],
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        let started = Instant::now();
        check_options(options.format, options.compression)?;
        let found = discover(inputs);
        check_collisions(&found.files, out_dir, options.format)?;
        let mut report = RunReport {
            backend: self.backend.name().to_string(),
            workers: self.workers,
            ..RunReport::default()
        };
        progress.start(found.files.len() + found.failures.len());
        for failure in found.failures {
            let outcome = FileOutcome { input: failure.path.clone(), result: Err(failure) };
            report.add(&outcome);
            progress.file_done(&outcome);
        }
        let mut batch = SignalBatch::new();
        let mut out = Vec::new();
        for chunk in found.files.chunks(self.batch_files) {
            let outcomes =
                self.run_batch(chunk, out_dir, options, &mut batch, &mut out, &mut report);
            for outcome in outcomes {
                report.add(&outcome);
                progress.file_done(&outcome);
            }
        }
        report.total_time = started.elapsed();
        Ok(report)
    }

    /// One batch of files: load in parallel, one backend call, then scale and write in parallel.
    fn run_batch(
        &mut self,
        files: &[InputFile],
        out_dir: &Path,
        options: &OutputOptions,
        batch: &mut SignalBatch,
        out: &mut Vec<f32>,
        report: &mut RunReport,
    ) -> Vec<FileOutcome> {
        let sample_rate = self.config.sample_rate;
        let decode_pool = self.decode_pool.as_ref().unwrap_or(&self.pool);
        let loaded: Vec<Result<Loaded, FileError>> =
            decode_pool.install(|| files.par_iter().map(|f| load(&f.path, sample_rate)).collect());

        let started = Instant::now();
        batch.clear();
        let mut jobs: Vec<(&InputFile, FileStats, BatchItem)> = Vec::with_capacity(files.len());
        let mut outcomes = Vec::with_capacity(files.len());
        for (file, result) in files.iter().zip(loaded) {
            match result {
                Ok(l) => jobs.push((file, l.stats, batch.push(&self.plan, &l.signal))),
                Err(e) => outcomes.push(FileOutcome { input: file.path.clone(), result: Err(e) }),
            }
        }
        out.clear();
        out.resize(batch.output_len(&self.plan), 0.0);
        report.stages.add(Stage::Segment, started.elapsed());

        let started = Instant::now();
        let (pool, backend) = (&self.pool, &mut self.backend);
        match pool.install(|| backend.compute(batch, out)) {
            Ok(steps) => report.backend_steps.merge(&steps),
            Err(e) => {
                outcomes.extend(jobs.into_iter().map(|(file, _, _)| FileOutcome {
                    input: file.path.clone(),
                    result: Err(FileError::new(&file.path, "compute", &e)),
                }));
                return outcomes;
            }
        }
        report.stages.add(Stage::Compute, started.elapsed());

        // Split the batch output into each file's part, then scale and write them in parallel.
        let per_long = self.plan.long_output_len();
        let mut rest = out.as_mut_slice();
        let mut parts = Vec::with_capacity(jobs.len());
        for (file, stats, item) in jobs {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(item.n_long * per_long);
            rest = tail;
            parts.push((file, stats, item, part));
        }
        let finisher = Finisher {
            file_scale: self.file_scale,
            plan: &self.plan,
            config: &self.config,
            config_json: &self.config_json,
            out_dir,
            options,
        };
        let written: Vec<FileOutcome> = self.pool.install(|| {
            parts
                .into_par_iter()
                .map(|(file, mut stats, item, part)| {
                    let result = finisher.finish(file, part, item, &mut stats);
                    FileOutcome { input: file.path.clone(), result: result.map(|p| (p, stats)) }
                })
                .collect()
        });
        outcomes.extend(written);
        // Keep input order in the report.
        outcomes.sort_by_key(|o| files.iter().position(|f| f.path == o.input));
        outcomes
    }
}

/// What the scale and write stages of a batch need, shared by the worker threads.
struct Finisher<'a> {
    file_scale: FileScale,
    plan: &'a SegmentPlan,
    config: &'a Config,
    config_json: &'a str,
    out_dir: &'a Path,
    options: &'a OutputOptions,
}

impl Finisher<'_> {
    /// Per-file scaling and the atomic write of one output.
    fn finish(
        &self,
        file: &InputFile,
        values: &mut [f32],
        item: BatchItem,
        stats: &mut FileStats,
    ) -> Result<PathBuf, FileError> {
        let (out_dir, options) = (self.out_dir, self.options);
        let started = Instant::now();
        self.file_scale.apply(values);
        stats.times.add(Stage::Scale, started.elapsed());
        stats.long_segments = item.n_long;
        stats.segments = item.n_long * self.plan.n_short;
        if self.config.dtype == Dtype::F16 {
            stats.f16_error = Some(f16_error(values));
        }
        let started = Instant::now();
        let path = file.output_path(out_dir, options.format);
        let source = file.path.display().to_string();
        let tensor = OutputTensor {
            data: values,
            shape: self.plan.shape(item.n_long),
            meta: TensorMeta {
                source: &source,
                config_json: self.config_json,
                sample_rate: self.config.sample_rate,
                melkit_version: crate::VERSION,
            },
            compression: options.compression,
            dtype: self.config.dtype,
        };
        melkit_io::write_tensor(&path, options.format, &tensor).map_err(|e| {
            FileError::new(&file.path, "write", format!("cannot write {}: {e}", path.display()))
        })?;
        stats.times.add(Stage::Write, started.elapsed());
        Ok(path)
    }
}

/// The largest error of rounding `values` to f16, relative to their largest magnitude
/// (infinite when a value overflows the f16 range).
pub fn f16_error(values: &[f32]) -> f64 {
    let (mut err, mut max) = (0f64, 0f64);
    for &v in values {
        let rounded = f64::from(half::f16::from_f32(v).to_f32());
        err = err.max((rounded - f64::from(v)).abs());
        max = max.max(f64::from(v).abs());
    }
    if err == 0.0 { 0.0 } else { err / max }
}

/// Decodes and resamples one file.
fn load(path: &Path, sample_rate: u32) -> Result<Loaded, FileError> {
    let mut stats = FileStats::default();
    let started = Instant::now();
    let audio = melkit_io::decode_file(path).map_err(|e| FileError::new(path, "decode", e))?;
    stats.times.add(Stage::Decode, started.elapsed());
    stats.audio_seconds = audio.duration();
    let started = Instant::now();
    let signal = melkit_io::resample(&audio.samples, audio.sample_rate, sample_rate)
        .map_err(|e| FileError::new(path, "resample", e))?;
    stats.times.add(Stage::Resample, started.elapsed());
    Ok(Loaded { signal, stats })
}
