//! A run over many files: discovery, then batches of files (loaded in parallel, one backend
//! call, then scaled and written in parallel).

use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit_core::scale::FileScale;
use melkit_core::{BatchItem, Config, SegmentPlan, SignalBatch};
use melkit_io::output::check_options;
use melkit_io::{OutputTensor, TensorMeta};
use rayon::prelude::*;

use super::stages::{Loaded, finish_values, load};
use super::{OutputOptions, Pipeline, Progress};
use crate::discover::{InputFile, check_collisions, discover};
use crate::error::{Error, FileError};
use crate::report::{FileOutcome, FileStats, RunReport, Stage};

impl Pipeline {
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
            for outcome in
                self.run_batch(chunk, out_dir, options, &mut batch, &mut out, &mut report)
            {
                report.add(&outcome);
                progress.file_done(&outcome);
            }
        }
        report.total_time = started.elapsed();
        Ok(report)
    }

    /// One batch of files: load in parallel, one backend call, then scale and write in
    /// parallel. The outcomes come back in input order.
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
        let mut jobs: Vec<(usize, FileStats, BatchItem)> = Vec::with_capacity(files.len());
        let mut outcomes: Vec<(usize, FileOutcome)> = Vec::with_capacity(files.len());
        for (index, result) in loaded.into_iter().enumerate() {
            match result {
                Ok(l) => jobs.push((index, l.stats, batch.push(self.backend.plan(), &l.signal))),
                Err(e) => outcomes.push((
                    index,
                    FileOutcome { input: files[index].path.clone(), result: Err(e) },
                )),
            }
        }
        report.stages.add(Stage::Segment, started.elapsed());

        match self.compute(batch, out, &mut report.stages) {
            Ok(steps) => report.backend_steps.merge(&steps),
            Err(e) => {
                outcomes.extend(jobs.into_iter().map(|(index, _, _)| {
                    let path = &files[index].path;
                    (
                        index,
                        FileOutcome {
                            input: path.clone(),
                            result: Err(FileError::new(path, "compute", &e)),
                        },
                    )
                }));
                return in_order(outcomes);
            }
        }

        // Split the batch output into each file's part, then scale and write them in parallel.
        let per_long = self.backend.plan().long_output_len();
        let mut rest = out.as_mut_slice();
        let mut parts = Vec::with_capacity(jobs.len());
        for (index, stats, item) in jobs {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(item.n_long * per_long);
            rest = tail;
            parts.push((index, stats, item, part));
        }
        let finisher = Finisher {
            file_scale: self.file_scale,
            config: &self.config,
            config_json: &self.config_json,
            plan: self.backend.plan(),
            out_dir,
            options,
        };
        let written: Vec<(usize, FileOutcome)> = self.pool.install(|| {
            parts
                .into_par_iter()
                .map(|(index, mut stats, item, part)| {
                    let file = &files[index];
                    let result = finisher.finish(file, part, item, &mut stats);
                    (
                        index,
                        FileOutcome {
                            input: file.path.clone(),
                            result: result.map(|p| (p, stats)),
                        },
                    )
                })
                .collect()
        });
        outcomes.extend(written);
        in_order(outcomes)
    }
}

fn in_order(mut outcomes: Vec<(usize, FileOutcome)>) -> Vec<FileOutcome> {
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

/// What the scale and write stages of a batch need, shared by the worker threads.
struct Finisher<'a> {
    file_scale: FileScale,
    config: &'a Config,
    config_json: &'a str,
    plan: &'a SegmentPlan,
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
        finish_values(self.file_scale, self.config, self.plan, values, item, stats);
        let started = Instant::now();
        let path = file.output_path(self.out_dir, self.options.format);
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
            compression: self.options.compression,
            dtype: self.config.dtype,
            sync: self.options.sync,
        };
        melkit_io::write_tensor(&path, self.options.format, &tensor).map_err(|e| {
            FileError::new(&file.path, "write", format!("cannot write {}: {e}", path.display()))
        })?;
        stats.times.add(Stage::Write, started.elapsed());
        Ok(path)
    }
}
