//! A run over many files: its setup, then the executor (`executor.rs`) around the
//! [scheduler](super::schedule), on the worker pool, with HDF5 writes on a thread of their own
//! (the library takes one call at a time). Nothing is kept per input once it is settled: the
//! manifest records it on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::channel;
use std::time::Instant;

use melkit_io::OutputFormat;
use melkit_io::output::check_options;

use super::executor::Executor;
use super::schedule::{Limits, Scheduler};
use super::setup::Setup;
use super::tasks::{Context, Device, WriteJob};
use super::{OutputOptions, Pipeline, Progress};
use crate::discover::{Discovery, InputSource, Inputs, survey};
use crate::error::{Error, FileError};
use crate::report::RunReport;
use crate::shard::Sharded;

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
        self.process_inputs(&Inputs::new(inputs), out_dir, options, progress)
    }

    /// Processes files already found by [`discover`](crate::discover::discover) (a file that
    /// has gone since fails with its reason; the failures of the search are reported as they
    /// are).
    ///
    /// # Errors
    /// As [`process_paths`](Self::process_paths).
    pub fn process_discovered(
        &mut self,
        found: Discovery,
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        self.process_inputs(&found, out_dir, options, progress)
    }

    /// Processes the inputs of `source` (of this shard only, with `options.shard`), listed as
    /// they are processed: the run's memory does not grow with the corpus. They are listed once
    /// before, to count them and refuse outputs that would collide.
    ///
    /// # Errors
    /// As [`process_paths`](Self::process_paths).
    pub fn process_inputs(
        &mut self,
        source: &dyn InputSource,
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        let started = Instant::now();
        check_options(options.format, options.compression)?;
        crate::limits::file_size_limit_is_an_error();
        let sharded;
        let mine: &dyn InputSource = match options.shard {
            Some(shard) if shard.count > 1 => {
                sharded = Sharded { source, shard };
                &sharded
            }
            _ => source,
        };
        let counted = survey(source, out_dir, options.format, options.shard)?;
        let setup = Setup::new(&self.config, options, out_dir)?;
        let mut report = RunReport {
            backend: self.backend.name().to_string(),
            workers: self.workers,
            on_device: self.backend.on_device(),
            ..RunReport::default()
        };
        progress.start((counted.mine as usize).saturating_sub(setup.done.len()));
        let cx = Context {
            plan: self.backend.plan().clone(),
            config: &self.config,
            config_json: &self.config_json,
            file_scale: self.file_scale,
            options,
            out_dir,
            budget: self.budget,
            cache: setup.cache,
        };
        let hdf5 = options.format == OutputFormat::H5;
        let decode_slots =
            if self.config.cpu_workers == 0 { self.workers } else { self.config.cpu_workers };
        let limits = Limits {
            decode_slots,
            // One writer thread for HDF5, kept fed with up to 4 files; other formats in the pool.
            write_slots: if hdf5 { 4 } else { self.workers },
            batch_longs: self.budget.batch_longs,
            ready_values: self.budget.ready_values,
            unwritten_values: self.budget.unwritten_values,
            long_output_len: cx.plan.long_output_len(),
        };
        let device = Mutex::new(Device { backend: &mut self.backend, waiting: Default::default() });
        let (tx, rx) = channel();
        let mut failures: Vec<(u64, FileError)> = Vec::new();
        let mut manifest = setup.manifest;
        let mut run = Executor {
            cx: &cx,
            device: &device,
            listing: mine.list(),
            done: &setup.done,
            tx,
            rx,
            files: HashMap::new(),
            blocks: HashMap::new(),
            computed: HashMap::new(),
            spare_batches: Vec::new(),
            spare_outputs: Vec::new(),
            live_outputs: Vec::new(),
            writer: None,
            report: &mut report,
            failures: &mut failures,
            manifest: &mut manifest,
            progress,
        };
        std::thread::scope(|threads| {
            if hdf5 {
                let (jobs, queue) = channel::<WriteJob>();
                let (events, cx) = (run.tx.clone(), run.cx);
                let _ = std::thread::Builder::new().name("melkit-writer".into()).spawn_scoped(
                    threads,
                    move || {
                        for job in queue {
                            let _ = events.send(job.run(cx));
                        }
                    },
                );
                run.writer = Some(jobs);
                run.report.dedicated_writer = true;
            }
            self.pool.in_place_scope(|scope| run.run(scope, Scheduler::new(limits)));
            run.writer = None;
        });
        drop(run);
        failures.sort_by_key(|(index, _)| *index);
        report.failures = failures.into_iter().map(|(_, e)| e).collect();
        report.total_time = started.elapsed();
        report.device_memory = self.backend.device_memory();
        Ok(report)
    }
}
