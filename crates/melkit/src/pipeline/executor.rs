//! The executor of a run: it lists the inputs as the scheduler asks for them, carries out its
//! actions as tasks on the worker pool (or the HDF5 writer thread), keeps the data of the files
//! in flight and turns the tasks' messages into the scheduler's events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use melkit_core::{Job, SignalBatch};

use super::Progress;
use super::schedule::{
    Action, BlockId, Breach, Decoded, Event, Failure, FileId, Placed, Scheduler, Settled,
};
use super::sink::FileSink;
use super::source::{Block, FileSource};
use super::tasks::{
    Computed, Context, Device, Message, Opened, Returned, Waiting, WriteJob, decode, drive,
};
use crate::discover::{InputFile, Listed};
use crate::error::FileError;
use crate::manifest::Manifest;
use crate::report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};

/// What the executor keeps of a file in flight.
pub(super) struct FileCtx {
    input: InputFile,
    index: u64,
    stats: FileStats,
    source: Option<FileSource>,
    sink: Option<Box<FileSink>>,
    /// The cache entry to write beside the output.
    cache_entry: Option<PathBuf>,
    f16_error: Option<f64>,
}

pub(super) struct Executor<'a, 'r> {
    pub(super) cx: &'a Context<'a>,
    pub(super) device: &'a Mutex<Device<'r>>,
    pub(super) listing: Box<dyn Iterator<Item = Listed> + 'a>,
    pub(super) done: &'a crate::manifest::DoneSet,
    pub(super) tx: Sender<Message>,
    pub(super) rx: Receiver<Message>,
    pub(super) files: HashMap<FileId, FileCtx>,
    pub(super) blocks: HashMap<BlockId, Block>,
    pub(super) computed: HashMap<BlockId, Computed>,
    /// Buffers kept for the next batch (allocating them afresh costs a page fault per page).
    pub(super) spare_batches: Vec<SignalBatch>,
    pub(super) spare_outputs: Vec<Vec<f32>>,
    /// Batch outputs some blocks of which are still to be written.
    pub(super) live_outputs: Vec<Arc<Vec<f32>>>,
    /// The writer thread's queue, when writes do not run on the pool.
    pub(super) writer: Option<Sender<WriteJob>>,
    pub(super) report: &'a mut RunReport,
    pub(super) failures: &'a mut Vec<(u64, FileError)>,
    pub(super) manifest: &'a mut Manifest,
    pub(super) progress: &'a dyn Progress,
}

impl<'a, 'r> Executor<'a, 'r>
where
    'r: 'a,
{
    pub(super) fn run<'s>(&mut self, scope: &rayon::Scope<'s>, mut schedule: Scheduler<FileError>)
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
        // The batch takes the blocks' buffers as they are (copying them cost most of this
        // stage); they go back to the sources when the batch returns.
        let mut signal = self.spare_batches.pop().unwrap_or_default();
        signal.clear_with(super::source::recycle);
        for p in &blocks {
            if let Some(block) = self.blocks.remove(&p.block) {
                signal.push_block(&self.cx.plan, block.samples, block.n_long);
            }
        }
        // A spare output is not zeroed again (only what it grows by is): every backend writes
        // every value of its output (the conformance suite hands each one NaN to overwrite).
        let mut out = self.spare_outputs.pop().unwrap_or_default();
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
                            // What the block holds in memory, not only its length.
                            samples: data.samples.capacity(),
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
        let Returned { batch, result, mut signal, times } = returned;
        signal.clear_with(super::source::recycle);
        self.spare_batches.push(signal);
        self.report.stages.merge(&times);
        let Some((batch, placed)) = batch else {
            return Event::Returned { batch: None, result: Ok(()) };
        };
        let result = match result {
            Ok((data, steps)) => {
                self.report.backend_steps.merge(&steps);
                let per_long = self.cx.plan.long_output_len();
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
        match &outcome.result {
            Ok(_) => self.report.add(&outcome),
            // Failures go to the report in input order once the run is over.
            Err(e) => self.failures.push((ctx.index, e.clone())),
        }
        self.progress.file_done(&outcome);
    }
}
