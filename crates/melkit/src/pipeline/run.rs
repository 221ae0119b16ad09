//! A run over many files: the executor around the [scheduler](super::schedule). It lists the
//! inputs as the scheduler asks for them, carries out its actions as tasks on the worker pool
//! (HDF5 writes on a thread of their own: the library takes one call at a time), keeps the data
//! of the files in flight (sources, decoded blocks, computed blocks, open outputs) and feeds the
//! tasks' results back as events. Nothing is kept per input once it is settled: the manifest
//! records it on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use melkit_core::{Job, SignalBatch};
use melkit_io::OutputFormat;
use melkit_io::output::check_options;

use super::schedule::{
    Action, BlockId, Breach, Decoded, Event, Failure, FileId, Limits, Placed, Scheduler, Settled,
};
use super::setup::Setup;
use super::sink::FileSink;
use super::source::{Block, FileSource};
use super::tasks::{
    Computed, Context, Device, Message, Opened, Returned, Waiting, WriteJob, decode, drive,
};
use super::{OutputOptions, Pipeline, Progress};
use crate::discover::{Discovery, InputFile, InputSource, Inputs, Listed, survey};
use crate::error::{Error, FileError};
use crate::manifest::Manifest;
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};
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
        let plan = self.backend.plan().clone();
        let cx = Context {
            long_output_len: plan.long_output_len(),
            plan,
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
            long_output_len: cx.long_output_len,
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

/// What the executor keeps of a file in flight.
struct FileCtx {
    input: InputFile,
    index: u64,
    stats: FileStats,
    source: Option<FileSource>,
    sink: Option<Box<FileSink>>,
    /// The cache entry to write beside the output.
    cache_entry: Option<PathBuf>,
    f16_error: Option<f64>,
}

struct Executor<'a, 'r> {
    cx: &'a Context<'a>,
    device: &'a Mutex<Device<'r>>,
    listing: Box<dyn Iterator<Item = Listed> + 'a>,
    done: &'a crate::manifest::DoneSet,
    tx: Sender<Message>,
    rx: Receiver<Message>,
    files: HashMap<FileId, FileCtx>,
    blocks: HashMap<BlockId, Block>,
    computed: HashMap<BlockId, Computed>,
    /// Buffers kept for the next batch (allocating them afresh costs a page fault per page).
    spare_batches: Vec<SignalBatch>,
    spare_outputs: Vec<Vec<f32>>,
    /// Batch outputs some blocks of which are still to be written.
    live_outputs: Vec<Arc<Vec<f32>>>,
    /// The writer thread's queue, when writes do not run on the pool.
    writer: Option<Sender<WriteJob>>,
    report: &'a mut RunReport,
    failures: &'a mut Vec<(u64, FileError)>,
    manifest: &'a mut Manifest,
    progress: &'a dyn Progress,
}

impl<'a, 'r> Executor<'a, 'r>
where
    'r: 'a,
{
    fn run<'s>(&mut self, scope: &rayon::Scope<'s>, mut schedule: Scheduler<FileError>)
    where
        'a: 's,
    {
        loop {
            while let Some(action) = schedule.next_action() {
                self.execute(scope, action, &mut schedule);
            }
            if schedule.finished() {
                return;
            }
            let Ok(message) = self.rx.recv() else { return };
            let event = self.absorb(message);
            schedule.handle(event);
        }
    }

    fn execute<'s>(
        &mut self,
        scope: &rayon::Scope<'s>,
        action: Action<FileError>,
        schedule: &mut Scheduler<FileError>,
    ) where
        'a: 's,
    {
        match action {
            Action::NextInput { file } => {
                let found = self.next_input(file);
                schedule.handle(Event::Input { found });
            }
            Action::Decode { file, block, open } => {
                let Some(ctx) = self.files.get_mut(&file) else { return };
                let source = if open { None } else { ctx.source.take() };
                let (tx, cx, input) = (self.tx.clone(), self.cx, ctx.input.clone());
                scope.spawn(move |_| {
                    let mut times = StageTimes::default();
                    let result = decode(cx, &input, source, &mut times);
                    let _ = tx.send(Message::Decoded { file, block, result, times });
                });
            }
            Action::Submit { batch, blocks } => self.submit(scope, batch, blocks),
            Action::Flush => {
                let (tx, cx, device) = (self.tx.clone(), self.cx, self.device);
                scope.spawn(move |_| {
                    let _ = tx.send(drive(cx, device, None));
                });
            }
            Action::Write { file, blocks, create, complete, n_long } => {
                let Some(ctx) = self.files.get_mut(&file) else { return };
                let blocks = blocks.iter().filter_map(|b| self.computed.remove(b)).collect();
                let job = WriteJob {
                    file,
                    input: ctx.input.clone(),
                    sink: if create { None } else { ctx.sink.take() },
                    blocks,
                    n_long,
                    complete,
                    cache_entry: if create { ctx.cache_entry.take() } else { None },
                };
                self.write(scope, job);
            }
            Action::Discard { blocks } => {
                for block in blocks {
                    if let Some(b) = self.blocks.remove(&block) {
                        super::source::recycle(b.samples);
                    }
                    self.computed.remove(&block);
                }
                self.reclaim_outputs();
            }
            Action::Settle { file, result } => self.settle(file, result),
            Action::Forget { file } => {
                // Dropping an unfinished output removes its temporary file.
                self.files.remove(&file);
            }
        }
    }

    /// The next input not already done: `None` at the end, `Some(error)` for one that could
    /// not be listed.
    fn next_input(&mut self, file: FileId) -> Option<Option<FileError>> {
        loop {
            let listed = self.listing.next()?;
            let (input, error) = match listed.result {
                Ok(input) if self.done.contains(&input.path) => {
                    self.report.skipped += 1;
                    continue;
                }
                Ok(input) => (input, None),
                Err(e) => (InputFile { path: e.path.clone(), rel: PathBuf::new() }, Some(e)),
            };
            let ctx = FileCtx {
                input,
                index: listed.index,
                stats: FileStats::default(),
                source: None,
                sink: None,
                cache_entry: None,
                f16_error: None,
            };
            self.files.insert(file, ctx);
            return Some(error);
        }
    }

    fn submit<'s>(&mut self, scope: &rayon::Scope<'s>, batch: u64, blocks: Vec<Placed>)
    where
        'a: 's,
    {
        let started = Instant::now();
        let mut signal = self.spare_batches.pop().unwrap_or_default();
        signal.clear();
        for p in &blocks {
            if let Some(block) = self.blocks.remove(&p.block) {
                signal.push_prepared(&self.cx.plan, &block.samples, block.n_long);
                super::source::recycle(block.samples);
            }
        }
        let mut out = self.spare_outputs.pop().unwrap_or_default();
        out.clear();
        out.resize(signal.output_len(&self.cx.plan), 0.0);
        let mut times = StageTimes::default();
        times.add(Stage::Segment, started.elapsed());
        let waiting = Waiting { batch, buffer: out.as_ptr() as usize, placed: blocks, times };
        let (tx, cx, device) = (self.tx.clone(), self.cx, self.device);
        scope.spawn(move |_| {
            let _ = tx.send(drive(cx, device, Some((Job { batch: signal, out }, waiting))));
        });
    }

    fn write<'s>(&mut self, scope: &rayon::Scope<'s>, job: WriteJob)
    where
        'a: 's,
    {
        match &self.writer {
            Some(writer) => {
                if let Err(unsent) = writer.send(job) {
                    // The writer thread is gone (it panicked): write here instead.
                    let _ = self.tx.send(unsent.0.run(self.cx));
                }
            }
            None => {
                let (tx, cx) = (self.tx.clone(), self.cx);
                scope.spawn(move |_| {
                    let _ = tx.send(job.run(cx));
                });
            }
        }
    }

    /// Keeps a task's data and turns its message into the scheduler's event.
    fn absorb(&mut self, message: Message) -> Event<FileError> {
        match message {
            Message::Decoded { file, block, result, times } => {
                let Some(ctx) = self.files.get_mut(&file) else {
                    return Event::Decoded { file, result: Err(FileError::new("", "decode", "")) };
                };
                ctx.stats.times.merge(&times);
                let result = result.map(|opened| match opened {
                    Opened::Restored(n_long) => Decoded::Restored { n_long },
                    Opened::Block(decoded, entry) => {
                        let (source, data) = *decoded;
                        if entry.is_some() {
                            ctx.cache_entry = entry;
                        }
                        ctx.stats.audio_seconds = source.audio_seconds();
                        let decoded = Decoded::Block {
                            file_longs: source.n_long(),
                            first_long: data.first_long,
                            n_long: data.n_long,
                            samples: data.samples.len(),
                            more: !source.done(),
                        };
                        if !source.done() {
                            ctx.source = Some(source);
                        }
                        self.blocks.insert(block, data);
                        decoded
                    }
                });
                Event::Decoded { file, result }
            }
            Message::Called { wall, returned } => {
                self.report.compute_wall += wall;
                match returned {
                    None => Event::Idle,
                    Some(returned) => self.returned(returned),
                }
            }
            Message::Written { file, result, times } => {
                let result = match (self.files.get_mut(&file), result) {
                    (Some(ctx), Ok((sink, f16))) => {
                        ctx.stats.times.merge(&times);
                        ctx.sink = sink;
                        ctx.f16_error = f16;
                        Ok(())
                    }
                    (_, result) => result.map(|_| ()),
                };
                self.reclaim_outputs();
                Event::Written { file, result }
            }
        }
    }

    /// A batch the backend gave back: its blocks' values are kept for writing.
    fn returned(&mut self, returned: Returned) -> Event<FileError> {
        let Returned { batch, result, signal, times } = returned;
        self.spare_batches.push(signal);
        self.report.stages.merge(&times);
        let Some((batch, placed)) = batch else {
            return Event::Returned { batch: None, result: Ok(()) };
        };
        let result = match result {
            Ok((data, steps)) => {
                self.report.backend_steps.merge(&steps);
                let per_long = self.cx.long_output_len;
                let mut at = 0;
                for p in &placed {
                    let range = at..at + p.n_long * per_long;
                    at = range.end;
                    self.computed.insert(p.block, Computed { data: data.clone(), range });
                }
                self.live_outputs.push(data);
                Ok(())
            }
            Err(e) => Err(FileError::new("", "compute", &e)),
        };
        Event::Returned { batch: Some(batch), result }
    }

    /// Takes back the batch outputs whose blocks are all written.
    fn reclaim_outputs(&mut self) {
        let mut i = 0;
        while i < self.live_outputs.len() {
            if Arc::strong_count(&self.live_outputs[i]) == 1 {
                if let Ok(out) = Arc::try_unwrap(self.live_outputs.swap_remove(i)) {
                    self.spare_outputs.push(out);
                }
            } else {
                i += 1;
            }
        }
        // Two spare buffers are enough to keep the next batches fed.
        self.spare_outputs.truncate(2);
    }

    /// Reports a settled file: the manifest, the report, the progress.
    fn settle(&mut self, file: FileId, result: Result<Settled, Failure<FileError>>) {
        let Some(ctx) = self.files.get_mut(&file) else { return };
        let input = ctx.input.path.clone();
        let plan = &self.cx.plan;
        let result = match result {
            Ok(Settled::Written { n_long } | Settled::Restored { n_long }) => {
                let cached = matches!(result, Ok(Settled::Restored { .. }));
                let mut stats = std::mem::take(&mut ctx.stats);
                stats.long_segments = n_long;
                stats.segments = n_long * plan.n_short;
                stats.f16_error = ctx.f16_error;
                let output = ctx.input.output_path(self.cx.out_dir, self.cx.options.format);
                let seconds = Stage::ALL.iter().map(|s| stats.times.get(*s).as_secs_f64()).sum();
                self.manifest.record(&input, Some(&output), None, seconds, cached);
                if cached {
                    self.report.cached += 1;
                }
                Ok((output, stats))
            }
            Err(failure) => {
                let error = match failure {
                    Failure::Task(e) => FileError { path: input.clone(), ..e },
                    Failure::Breach(Breach::Stalled) => {
                        FileError::new(&input, "compute", Breach::Stalled.to_string())
                    }
                    Failure::Breach(breach) => FileError::new(
                        &input,
                        "compute",
                        format!("backend {} broke its contract: {breach}", self.report.backend),
                    ),
                };
                self.manifest.record(&input, None, Some(&error.reason), 0.0, false);
                // Its open source and output go now (the output's temporary file with it).
                ctx.source = None;
                ctx.sink = None;
                Err(error)
            }
        };
        let outcome = FileOutcome { input, result };
        self.report.add(&outcome);
        if let Err(e) = &outcome.result {
            // The report lists failures in input order (it holds no per-file entry otherwise).
            self.report.failures.pop();
            self.failures.push((ctx.index, e.clone()));
        }
        self.progress.file_done(&outcome);
    }
}
