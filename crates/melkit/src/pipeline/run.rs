//! A run over many files. Decoding, computing and writing are tasks on the one worker pool,
//! handed out by a coordinator on the calling thread within three budgets: decoded audio
//! waiting for a batch, the batch being computed, and outputs waiting to be written. So the
//! stages overlap (the next files decode while a batch computes and finished tensors are
//! written), every core has work, and memory stays bounded whatever the corpus or file length.
//! A file's blocks are written in order; HDF5, whose library takes one call at a time, is
//! written by one task at a time.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use melkit_core::scale::FileScale;
use melkit_core::{
    Backend, BackendError, Config, Done, Job, SegmentPlan, SignalBatch, StepTimings,
};
use melkit_io::OutputFormat;
use melkit_io::output::check_options;

use super::sink::{FileSink, OutputSpec, restore};
use super::source::{Block, FileSource};
use super::{Budget, OutputOptions, Pipeline, Progress, compute_time};
use crate::cache::Cache;
use crate::discover::{Discovery, InputFile, check_collisions, discover, io_reason};
use crate::error::{Error, FileError};
use crate::manifest::{self, Manifest};
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};

impl Pipeline {
    /// [`process_paths`](Self::process_paths), reporting progress to `progress`.
    ///
    /// # Errors
    /// As [`process_paths`](Self::process_paths).
    pub fn process_paths_with(
        &mut self,
        inputs: &[std::path::PathBuf],
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        check_options(options.format, options.compression)?;
        self.process_discovered(discover(inputs), out_dir, options, progress)
    }

    /// Processes files already found by [`discover`](crate::discover::discover) (a file that
    /// has gone since fails with its reason; the failures of the search are reported as they
    /// are). This is the entry point for callers that choose their own files, such as a shard.
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
        let started = Instant::now();
        check_options(options.format, options.compression)?;
        check_collisions(&found.files, out_dir, options.format)?;
        let hash = manifest::config_hash(&self.config, options);
        let out_error = |path: &Path, e: std::io::Error| Error::OutputDir {
            path: path.into(),
            reason: io_reason(&e),
        };
        let manifest_path =
            options.manifest.clone().unwrap_or_else(|| out_dir.join(manifest::MANIFEST));
        let mut manifest =
            Manifest::open_at(&manifest_path, hash.clone()).map_err(|e| out_error(out_dir, e))?;
        let cache_dir = match &options.cache {
            Some(dir) => Some(dir.clone()),
            None if self.config.cache_spectrograms => Cache::default_dir(),
            None => None,
        };
        let cache = match cache_dir {
            Some(dir) => Some(Cache::new(&dir, &hash).map_err(|e| out_error(&dir, e))?),
            None => None,
        };
        let mut found = found;
        let mut skipped = 0;
        if options.resume {
            let outputs: std::collections::HashSet<std::path::PathBuf> =
                found.files.iter().map(|f| f.output_path(out_dir, options.format)).collect();
            let stale = manifest::remove_stale_temporaries(out_dir, &|o| outputs.contains(o));
            if stale > 0 {
                tracing::info!("removed {stale} temporary files left by an interrupted run");
            }
            let done = manifest::done_in(&manifest_path, &hash);
            let before = found.files.len();
            found.files.retain(|f| !done.contains_key(&f.path));
            skipped = before - found.files.len();
        }
        let mut report = RunReport {
            backend: self.backend.name().to_string(),
            workers: self.workers,
            on_device: self.backend.on_device(),
            skipped,
            ..RunReport::default()
        };
        progress.start(found.files.len() + found.failures.len());
        for failure in found.failures {
            manifest.record(&failure.path, None, Some(&failure.reason), 0.0, false);
            let outcome = FileOutcome { input: failure.path.clone(), result: Err(failure) };
            report.add(&outcome);
            progress.file_done(&outcome);
        }
        let context = Context {
            plan: self.backend.plan().clone(),
            config: &self.config,
            config_json: &self.config_json,
            file_scale: self.file_scale,
            options,
            out_dir,
            budget: self.budget,
            cache,
        };
        let device = Mutex::new(Device { backend: &mut self.backend, waiting: VecDeque::new() });
        let decode_slots =
            if self.config.cpu_workers == 0 { self.workers } else { self.config.cpu_workers };
        let (tx, rx) = channel();
        let mut run = Coordinator {
            cx: &context,
            device: &device,
            files: &found.files,
            states: found.files.iter().map(|_| FileState::default()).collect(),
            tx,
            rx,
            next_to_open: 0,
            ready: VecDeque::new(),
            ready_values: 0,
            decoding: 0,
            decode_slots,
            computing: false,
            in_backend: 0,
            unwritten: 0,
            writing: 0,
            write_slots: if options.format == OutputFormat::H5 { 1 } else { self.workers },
            settled: 0,
            report: &mut report,
            manifest: &mut manifest,
            progress,
            spare_batches: Vec::new(),
            spare_outputs: Vec::new(),
            live_outputs: Vec::new(),
            writer: None,
        };
        // HDF5 takes one call at a time: its writes go to a thread of their own, always ready,
        // rather than waiting in the pool's queue behind computing; other formats are written by
        // pool tasks, several at once.
        std::thread::scope(|threads| {
            if options.format == OutputFormat::H5 {
                let (jobs, queue) = channel::<WriteJob<'_>>();
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
                run.write_slots = 4;
                run.report.dedicated_writer = true;
            }
            self.pool.in_place_scope(|scope| run.run(scope));
            run.writer = None;
        });
        drop(run);
        report.failures.sort_by_key(|f| found.files.iter().position(|i| i.path == f.path));
        report.total_time = started.elapsed();
        report.device_memory = self.backend.device_memory();
        Ok(report)
    }
}

/// What every task of a run reads.
struct Context<'a> {
    plan: SegmentPlan,
    config: &'a Config,
    config_json: &'a str,
    file_scale: FileScale,
    options: &'a OutputOptions,
    out_dir: &'a Path,
    budget: Budget,
    cache: Option<Cache>,
}

/// A computed block waiting to be written: its values are `data[range]`.
struct Computed {
    data: Arc<Vec<f32>>,
    range: std::ops::Range<usize>,
    n_long: usize,
}

/// The backend, and what the run knows of the batches it holds, under one lock.
struct Device<'r> {
    backend: &'r mut Box<dyn Backend>,
    /// The batches submitted and not yet given back, oldest first.
    waiting: VecDeque<BatchInfo>,
}

/// What the run knows of a batch given to the backend.
struct BatchInfo {
    placed: Vec<Placed>,
    /// Whether each block is a whole file (which gets its per-file scaling at once).
    whole: Vec<bool>,
    times: StageTimes,
}

/// A block in a batch: which file, which long segments.
#[derive(Clone, Copy)]
struct Placed {
    file: usize,
    first_long: usize,
    n_long: usize,
}

/// What a task reports back.
enum Event {
    Decoded {
        file: usize,
        result: Result<Opened, FileError>,
        times: StageTimes,
    },
    /// The backend took a batch and gave none back yet (after `wall` of the call).
    Submitted {
        wall: Duration,
    },
    Computed {
        /// The wall time of the backend call.
        wall: Duration,
        placed: Vec<Placed>,
        result: Result<(Arc<Vec<f32>>, StepTimings), BackendError>,
        batch: SignalBatch,
        times: StageTimes,
    },
    Written {
        file: usize,
        values: usize,
        result: Result<(Option<Box<FileSink>>, Option<f64>), FileError>,
        times: StageTimes,
    },
}

/// What a decode task made of a file.
enum Opened {
    /// Its next block, and for a newly opened file the cache entry to fill.
    Block(Box<(FileSource, Block)>, Option<std::path::PathBuf>),
    /// Its output, written from the cache: its long segments.
    Restored(usize),
}

/// A slot that a task may have borrowed.
#[derive(Default)]
enum Slot<T> {
    #[default]
    Empty,
    Idle(T),
    Busy,
}

/// Where one file stands.
#[derive(Default)]
struct FileState {
    source: Slot<FileSource>,
    opened: bool,
    n_long: usize,
    sink: Slot<Box<FileSink>>,
    pending: VecDeque<Computed>,
    written: usize,
    stats: FileStats,
    settled: bool,
    /// The cache entry to write beside the output.
    cache_entry: Option<std::path::PathBuf>,
    /// Written from the cache.
    cached: bool,
}

struct Coordinator<'a, 'r> {
    cx: &'a Context<'a>,
    device: &'a Mutex<Device<'r>>,
    files: &'a [InputFile],
    states: Vec<FileState>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// The next file never opened.
    next_to_open: usize,
    /// Decoded blocks waiting for a batch, and their values.
    ready: VecDeque<(usize, Block)>,
    ready_values: usize,
    decoding: usize,
    decode_slots: usize,
    /// Whether a task is giving the backend a batch or waiting for one.
    computing: bool,
    /// Batches the backend holds.
    in_backend: usize,
    /// Output values computed and not yet written.
    unwritten: usize,
    writing: usize,
    write_slots: usize,
    settled: usize,
    report: &'a mut RunReport,
    manifest: &'a mut Manifest,
    progress: &'a dyn Progress,
    /// Buffers kept for the next batch (allocating them afresh costs a page fault per page).
    spare_batches: Vec<SignalBatch>,
    spare_outputs: Vec<Vec<f32>>,
    /// Batch outputs some blocks of which are still to be written.
    live_outputs: Vec<Arc<Vec<f32>>>,
    /// The writer thread's queue, when writes do not run on the pool.
    writer: Option<Sender<WriteJob<'a>>>,
}

/// Writing some blocks of one file (see [`write`]).
struct WriteJob<'a> {
    file: usize,
    input: &'a InputFile,
    sink: Option<Box<FileSink>>,
    blocks: Vec<Computed>,
    n_long: usize,
    complete: bool,
    values: usize,
    cache_entry: Option<std::path::PathBuf>,
}

impl WriteJob<'_> {
    fn run(self, cx: &Context<'_>) -> Event {
        let started = Instant::now();
        let first = WriteStart { n_long: self.n_long, cache_entry: self.cache_entry.as_deref() };
        let result = write(cx, self.input, self.sink, &self.blocks, first, self.complete);
        let mut times = StageTimes::default();
        times.add(Stage::Write, started.elapsed());
        Event::Written { file: self.file, values: self.values, result, times }
    }
}

impl<'a, 'r> Coordinator<'a, 'r>
where
    'r: 'a,
{
    fn run<'s>(&mut self, scope: &rayon::Scope<'s>)
    where
        'a: 's,
    {
        while self.settled < self.files.len() {
            self.start_decodes(scope);
            self.start_compute(scope);
            self.start_writes(scope);
            let Ok(event) = self.rx.recv() else { break };
            self.handle(event);
        }
        // Every file is settled; wait for what is still running (results of failed files).
        while self.decoding + self.writing + self.in_backend > 0 || self.computing {
            self.start_compute(scope);
            let Ok(event) = self.rx.recv() else { break };
            self.handle(event);
        }
    }

    fn start_decodes<'s>(&mut self, scope: &rayon::Scope<'s>)
    where
        'a: 's,
    {
        let budget = &self.cx.budget;
        while self.decoding < self.decode_slots
            && (self.ready_values < budget.ready_values
                || self.ready.is_empty() && self.decoding == 0)
            && self.unwritten < budget.unwritten_values
        {
            // Finish the files already open before opening more.
            let open =
                self.states.iter().position(|s| matches!(s.source, Slot::Idle(_)) && !s.settled);
            let (file, source) = match open {
                Some(file) => match std::mem::replace(&mut self.states[file].source, Slot::Busy) {
                    Slot::Idle(source) => (file, Some(source)),
                    _ => continue,
                },
                None if self.next_to_open < self.files.len() => {
                    self.next_to_open += 1;
                    let file = self.next_to_open - 1;
                    self.states[file].source = Slot::Busy;
                    (file, None)
                }
                None => break,
            };
            self.decoding += 1;
            let (tx, cx, input) = (self.tx.clone(), self.cx, &self.files[file]);
            scope.spawn(move |_| {
                let mut times = StageTimes::default();
                let path = &input.path;
                let result = (|| {
                    let mut entry = None;
                    let mut source = match source {
                        Some(s) => s,
                        None => {
                            if let Some(cache) = &cx.cache {
                                match lookup(cx, cache, input, &mut times)? {
                                    Ok(n_long) => return Ok(Opened::Restored(n_long)),
                                    Err(miss) => entry = miss,
                                }
                            }
                            FileSource::open(path, &cx.plan, &mut times)?
                        }
                    };
                    let block = source.next_block(path, cx.budget.batch_longs, &mut times)?;
                    Ok(Opened::Block(Box::new((source, block)), entry))
                })();
                let _ = tx.send(Event::Decoded { file, result, times });
            });
        }
    }

    fn start_compute<'s>(&mut self, scope: &rayon::Scope<'s>)
    where
        'a: 's,
    {
        let budget = &self.cx.budget;
        let ready_longs: usize = self.ready.iter().map(|(_, b)| b.n_long).sum();
        let more_coming = self.decoding > 0 || self.next_to_open < self.files.len();
        if self.computing {
            return;
        }
        let (cx, device) = (self.cx, self.device);
        if self.ready.is_empty()
            || (self.unwritten >= budget.unwritten_values && self.writing > 0)
            || (ready_longs < budget.batch_longs
                && more_coming
                && self.ready_values < budget.ready_values)
        {
            // No batch to give: take back the one the backend holds.
            if self.in_backend > 0 {
                self.computing = true;
                let tx = self.tx.clone();
                scope.spawn(move |_| {
                    let _ = tx.send(drive(cx, device, None));
                });
            }
            return;
        }
        let started = Instant::now();
        let mut batch = self.spare_batches.pop().unwrap_or_default();
        batch.clear();
        let out = self.spare_outputs.pop().unwrap_or_default();
        let mut placed = Vec::new();
        let mut longs = 0;
        while let Some((file, block)) = self.ready.pop_front() {
            self.ready_values -= block.samples.len();
            longs += block.n_long;
            batch.push_prepared(&self.cx.plan, &block.samples, block.n_long);
            super::source::recycle(block.samples);
            placed.push(Placed { file, first_long: block.first_long, n_long: block.n_long });
            if longs >= budget.batch_longs {
                break;
            }
        }
        let mut times = StageTimes::default();
        times.add(Stage::Segment, started.elapsed());
        let whole = placed
            .iter()
            .map(|p| p.first_long == 0 && p.n_long == self.states[p.file].n_long)
            .collect();
        self.computing = true;
        self.in_backend += 1;
        let tx = self.tx.clone();
        let info = BatchInfo { placed, whole, times };
        scope.spawn(move |_| {
            let _ = tx.send(drive(cx, device, Some((Job { batch, out }, info))));
        });
    }

    fn start_writes<'s>(&mut self, scope: &rayon::Scope<'s>)
    where
        'a: 's,
    {
        for file in 0..self.states.len() {
            if self.writing >= self.write_slots {
                return;
            }
            let state = &mut self.states[file];
            if state.settled || state.pending.is_empty() || matches!(state.sink, Slot::Busy) {
                continue;
            }
            let sink = match std::mem::replace(&mut state.sink, Slot::Busy) {
                Slot::Idle(sink) => Some(sink),
                _ => None,
            };
            let blocks: Vec<Computed> = state.pending.drain(..).collect();
            let longs: usize = blocks.iter().map(|b| b.n_long).sum();
            let complete = state.written + longs == state.n_long;
            let values: usize = blocks.iter().map(|b| b.range.len()).sum();
            let n_long = state.n_long;
            self.writing += 1;
            let cache_entry = if sink.is_none() { state.cache_entry.take() } else { None };
            let job = WriteJob {
                file,
                input: &self.files[file],
                sink,
                blocks,
                n_long,
                complete,
                values,
                cache_entry,
            };
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
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Decoded { file, result, times } => {
                self.decoding -= 1;
                let state = &mut self.states[file];
                state.stats.times.merge(&times);
                match result {
                    _ if state.settled => {}
                    Ok(Opened::Restored(n_long)) => {
                        state.source = Slot::Empty;
                        state.cached = true;
                        state.stats.long_segments = n_long;
                        state.stats.segments = n_long * self.cx.plan.n_short;
                        let path =
                            self.files[file].output_path(self.cx.out_dir, self.cx.options.format);
                        let stats = std::mem::take(&mut state.stats);
                        self.settle(file, Ok((path, stats)));
                    }
                    Ok(Opened::Block(decoded, entry)) => {
                        let (source, block) = *decoded;
                        if entry.is_some() {
                            state.cache_entry = entry;
                        }
                        if !state.opened {
                            state.opened = true;
                            state.n_long = source.n_long();
                            state.stats.audio_seconds = source.audio_seconds();
                        }
                        state.source = if source.done() { Slot::Empty } else { Slot::Idle(source) };
                        self.ready_values += block.samples.len();
                        self.ready.push_back((file, block));
                    }
                    Err(e) => self.fail(file, e),
                }
            }
            Event::Submitted { wall } => {
                self.computing = false;
                self.report.compute_wall += wall;
            }
            Event::Computed { wall, placed, result, batch, times } => {
                self.computing = false;
                self.report.compute_wall += wall;
                self.in_backend -= 1;
                self.spare_batches.push(batch);
                self.report.stages.merge(&times);
                match result {
                    Ok((data, steps)) => {
                        self.live_outputs.push(data.clone());
                        self.report.backend_steps.merge(&steps);
                        let per_long = self.cx.plan.long_output_len();
                        let mut at = 0;
                        for p in placed {
                            let range = at..at + p.n_long * per_long;
                            at = range.end;
                            if !self.states[p.file].settled {
                                self.unwritten += range.len();
                                let computed =
                                    Computed { data: data.clone(), range, n_long: p.n_long };
                                self.states[p.file].pending.push_back(computed);
                            }
                        }
                    }
                    Err(e) => {
                        for p in placed {
                            self.fail(
                                p.file,
                                FileError::new(&self.files[p.file].path, "compute", &e),
                            );
                        }
                    }
                }
            }
            Event::Written { file, values, result, times } => {
                self.writing -= 1;
                self.unwritten -= values;
                self.reclaim_outputs();
                let state = &mut self.states[file];
                state.stats.times.merge(&times);
                match result {
                    _ if state.settled => {}
                    Ok((Some(sink), _)) => {
                        state.written += values / self.cx.plan.long_output_len();
                        state.sink = Slot::Idle(sink);
                    }
                    Ok((None, f16_error)) => {
                        state.stats.long_segments = state.n_long;
                        state.stats.segments = state.n_long * self.cx.plan.n_short;
                        state.stats.f16_error = f16_error;
                        let path =
                            self.files[file].output_path(self.cx.out_dir, self.cx.options.format);
                        let stats = std::mem::take(&mut state.stats);
                        self.settle(file, Ok((path, stats)));
                    }
                    Err(e) => self.fail(file, e),
                }
            }
        }
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

    /// A file failed: its pending output is dropped (with its temporary file), the others go on.
    fn fail(&mut self, file: usize, error: FileError) {
        let state = &mut self.states[file];
        if state.settled {
            return;
        }
        self.unwritten -= state.pending.iter().map(|c| c.range.len()).sum::<usize>();
        state.pending.clear();
        state.source = Slot::Empty;
        state.sink = Slot::Empty;
        self.reclaim_outputs();
        self.settle(file, Err(error));
    }

    fn settle(&mut self, file: usize, result: Result<(std::path::PathBuf, FileStats), FileError>) {
        let state = &mut self.states[file];
        state.settled = true;
        self.settled += 1;
        let input = &self.files[file].path;
        match &result {
            Ok((output, stats)) => {
                let seconds = Stage::ALL.iter().map(|s| stats.times.get(*s).as_secs_f64()).sum();
                self.manifest.record(input, Some(output), None, seconds, state.cached);
                if state.cached {
                    self.report.cached += 1;
                }
            }
            Err(e) => self.manifest.record(input, None, Some(&e.reason), 0.0, false),
        }
        let outcome = FileOutcome { input: self.files[file].path.clone(), result };
        self.report.add(&outcome);
        self.progress.file_done(&outcome);
    }
}

/// A write task: creates the output on the first block, appends the blocks, completes the file
/// after its last one. Returns the sink to keep, or the f16 error once complete.
fn write(
    cx: &Context<'_>,
    input: &InputFile,
    sink: Option<Box<FileSink>>,
    blocks: &[Computed],
    first: WriteStart<'_>,
    complete: bool,
) -> Result<(Option<Box<FileSink>>, Option<f64>), FileError> {
    let path = input.output_path(cx.out_dir, cx.options.format);
    let failed = |e: melkit_io::WriteError| write_error(input, &path, &e);
    let mut sink = match sink {
        Some(sink) => sink,
        None => {
            let spec = output_spec(cx, input, first.n_long);
            // A file that is not computed in one block is scaled once all of it is known.
            let deferred = !(cx.file_scale.is_identity() || complete && blocks.len() == 1);
            Box::new(FileSink::create(spec, deferred, first.cache_entry).map_err(failed)?)
        }
    };
    for block in blocks {
        sink.write(&block.data[block.range.clone()]).map_err(failed)?;
    }
    if complete {
        let f16 = sink.finish(cx.file_scale).map_err(failed)?;
        Ok((None, f16))
    } else {
        Ok((Some(sink), None))
    }
}

/// What the first write of a file needs: its long segments and its cache entry, if any.
struct WriteStart<'e> {
    n_long: usize,
    cache_entry: Option<&'e Path>,
}

fn write_error(input: &InputFile, path: &Path, e: &melkit_io::WriteError) -> FileError {
    FileError::new(&input.path, "write", format!("cannot write {}: {e}", path.display()))
}

/// The output of `input`, with `n_long` long segments.
fn output_spec(cx: &Context<'_>, input: &InputFile, n_long: usize) -> OutputSpec {
    OutputSpec {
        path: input.output_path(cx.out_dir, cx.options.format),
        format: cx.options.format,
        source: input.path.display().to_string(),
        config_json: cx.config_json.to_string(),
        sample_rate: cx.config.sample_rate,
        shape: cx.plan.shape(n_long),
        compression: cx.options.compression,
        dtype: cx.config.dtype,
        sync: cx.options.sync,
    }
}

/// Looks `input` up in the cache: `Ok(n_long)` when its output was written from there, else the
/// entry to fill once it is computed (none when the entry exists but cannot be used).
fn lookup(
    cx: &Context<'_>,
    cache: &Cache,
    input: &InputFile,
    times: &mut StageTimes,
) -> Result<Result<usize, Option<std::path::PathBuf>>, FileError> {
    let started = Instant::now();
    let entry = cache
        .entry(&input.path)
        .map_err(|e| FileError::new(&input.path, "decode", melkit_io::DecodeError::Io(e)))?;
    times.add(Stage::Decode, started.elapsed());
    if !entry.is_file() {
        return Ok(Err(Some(entry)));
    }
    let started = Instant::now();
    let result = restore(output_spec(cx, input, 1), &entry);
    times.add(Stage::Write, started.elapsed());
    match result {
        Ok(n_long) => Ok(Ok(n_long)),
        Err(e) => {
            tracing::warn!("cache entry {} not used: {e}", entry.display());
            Ok(Err(None))
        }
    }
}

/// Gives the backend a batch (or, with none, asks for the one it holds) and turns the batch it
/// gives back, if any, into an event: its per-file scaling done for the files computed whole.
fn drive(cx: &Context<'_>, device: &Mutex<Device<'_>>, job: Option<(Job, BatchInfo)>) -> Event {
    let started = Instant::now();
    // A backend that panicked has already failed the run (the scope passes the panic on).
    let mut device = device.lock().unwrap_or_else(PoisonError::into_inner);
    let done: Option<Done> = match job {
        Some((job, info)) => {
            device.waiting.push_back(info);
            device.backend.submit(job)
        }
        None => device.backend.flush(),
    };
    let wall = started.elapsed();
    let Some((job, result)) = done else { return Event::Submitted { wall } };
    let Some(info) = device.waiting.pop_front() else { return Event::Submitted { wall } };
    drop(device);
    let BatchInfo { placed, whole, mut times } = info;
    times.add(Stage::Compute, compute_time(&result, wall));
    let Job { batch, mut out } = job;
    let started = Instant::now();
    if result.is_ok() && !cx.file_scale.is_identity() {
        let per_long = cx.plan.long_output_len();
        let mut rest = out.as_mut_slice();
        for (p, whole) in placed.iter().zip(&whole) {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(p.n_long * per_long);
            rest = tail;
            if *whole {
                cx.file_scale.apply(part);
            }
        }
    }
    times.add(Stage::Scale, started.elapsed());
    let result = result.map(|steps| (Arc::new(out), steps));
    Event::Computed { wall, placed, result, batch, times }
}
