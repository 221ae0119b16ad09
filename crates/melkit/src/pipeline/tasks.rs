//! The tasks a run's executor hands to the worker pool: decode a file's next block (opening
//! it, or restoring it from the cache, first), give the backend a batch or ask it for one, and
//! write a file's computed blocks. Each ends in a [`Message`] to the executor.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use melkit_core::scale::FileScale;
use melkit_core::{
    Backend, BackendError, Config, Done, Job, SegmentPlan, SignalBatch, StepTimings,
};

use super::schedule::{BatchId, BlockId, FileId, Placed};
use super::sink::{FileSink, OutputSpec, restore};
use super::source::{Block, FileSource};
use super::{Budget, OutputOptions, compute_time};
use crate::cache::Cache;
use crate::discover::InputFile;
use crate::error::FileError;
use crate::report::{Stage, StageTimes};

/// What every task of a run reads.
pub(super) struct Context<'a> {
    pub plan: SegmentPlan,
    pub config: &'a Config,
    pub config_json: &'a str,
    pub file_scale: FileScale,
    pub options: &'a OutputOptions,
    pub out_dir: &'a Path,
    pub budget: Budget,
    pub cache: Option<Cache>,
}

/// A computed block waiting to be written: its values are `data[range]`.
pub(super) struct Computed {
    pub data: Arc<Vec<f32>>,
    pub range: std::ops::Range<usize>,
}

/// The backend, and the batches it holds, under one lock.
pub(super) struct Device<'r> {
    pub backend: &'r mut Box<dyn Backend>,
    /// The batches submitted and not yet given back, oldest first.
    pub waiting: VecDeque<Waiting>,
}

/// A batch given to the backend: known again by its output buffer.
pub(super) struct Waiting {
    pub batch: BatchId,
    pub buffer: usize,
    pub placed: Vec<Placed>,
    pub times: StageTimes,
}

/// What a task reports back.
pub(super) enum Message {
    Decoded {
        file: FileId,
        block: BlockId,
        result: Result<Opened, FileError>,
        times: StageTimes,
    },
    /// A backend call ended, after `wall`, giving back `returned` if anything.
    Called {
        wall: Duration,
        returned: Option<Returned>,
    },
    Written {
        file: FileId,
        result: Result<(Option<Box<FileSink>>, Option<f64>), FileError>,
        times: StageTimes,
    },
}

/// A batch the backend gave back; `batch` is `None` when it is not one the run gave it.
pub(super) struct Returned {
    pub batch: Option<(BatchId, Vec<Placed>)>,
    pub result: Result<(Arc<Vec<f32>>, StepTimings), BackendError>,
    pub signal: SignalBatch,
    pub times: StageTimes,
}

/// What a decode task made of a file.
pub(super) enum Opened {
    /// Its next block (and the source, to read the rest), and for a newly opened file the cache
    /// entry to fill.
    Block(Box<(FileSource, Block)>, Option<PathBuf>),
    /// Its output, written from the cache: its long segments.
    Restored(usize),
}

/// Decodes the next block of `input` (opening it first when `source` is `None`).
pub(super) fn decode(
    cx: &Context<'_>,
    input: &InputFile,
    source: Option<FileSource>,
    times: &mut StageTimes,
) -> Result<Opened, FileError> {
    let path = &input.path;
    let mut entry = None;
    let mut source = match source {
        Some(s) => s,
        None => {
            if let Some(cache) = &cx.cache {
                match lookup(cx, cache, input, times)? {
                    Ok(n_long) => return Ok(Opened::Restored(n_long)),
                    Err(miss) => entry = miss,
                }
            }
            FileSource::open(path, &cx.plan, times)?
        }
    };
    let block = source.next_block(path, cx.budget.batch_longs, times)?;
    Ok(Opened::Block(Box::new((source, block)), entry))
}

/// Writing some blocks of one file (see [`write`]).
pub(super) struct WriteJob {
    pub file: FileId,
    pub input: InputFile,
    pub sink: Option<Box<FileSink>>,
    pub blocks: Vec<Computed>,
    pub n_long: usize,
    pub complete: bool,
    pub cache_entry: Option<PathBuf>,
}

impl WriteJob {
    pub fn run(self, cx: &Context<'_>) -> Message {
        let started = Instant::now();
        let first = WriteStart { n_long: self.n_long, cache_entry: self.cache_entry.as_deref() };
        let result = write(cx, &self.input, self.sink, &self.blocks, first, self.complete);
        let mut times = StageTimes::default();
        times.add(Stage::Write, started.elapsed());
        Message::Written { file: self.file, result, times }
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
    let cause = crate::error::Cause::from(e);
    let reason = format!("cannot write {}: {}", path.display(), cause.reason);
    FileError::new(&input.path, "write", crate::error::Cause { reason, ..cause })
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
    let entry = cache.entry(&input.path).map_err(|e| FileError::new(&input.path, "decode", &e))?;
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
/// gives back, if any, into a message: its per-file scaling done for the blocks that are whole
/// files. A batch is known by its output buffer, so one the run did not give (or gave back
/// already) is reported as such.
pub(super) fn drive(
    cx: &Context<'_>,
    device: &Mutex<Device<'_>>,
    job: Option<(Job, Waiting)>,
) -> Message {
    let started = Instant::now();
    // A backend that panicked has already failed the run (the scope passes the panic on).
    let mut device = device.lock().unwrap_or_else(PoisonError::into_inner);
    let done: Option<Done> = match job {
        Some((job, waiting)) => {
            device.waiting.push_back(waiting);
            device.backend.submit(job)
        }
        None => device.backend.flush(),
    };
    let wall = started.elapsed();
    let Some((job, result)) = done else { return Message::Called { wall, returned: None } };
    let buffer = job.out.as_ptr() as usize;
    let at = device.waiting.iter().position(|w| w.buffer == buffer);
    let info = at.and_then(|at| device.waiting.remove(at));
    drop(device);
    let Job { batch: signal, mut out } = job;
    let Some(Waiting { batch, placed, mut times, .. }) = info else {
        let result = result.map(|steps| (Arc::new(out), steps));
        let returned = Returned { batch: None, result, signal, times: StageTimes::default() };
        return Message::Called { wall, returned: Some(returned) };
    };
    times.add(Stage::Compute, compute_time(&result, wall));
    let started = Instant::now();
    if result.is_ok() && !cx.file_scale.is_identity() {
        let per_long = cx.plan.long_output_len();
        let mut rest = out.as_mut_slice();
        for p in &placed {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(p.n_long * per_long);
            rest = tail;
            if p.whole {
                cx.file_scale.apply(part);
            }
        }
    }
    times.add(Stage::Scale, started.elapsed());
    let result = result.map(|steps| (Arc::new(out), steps));
    let returned = Returned { batch: Some((batch, placed)), result, signal, times };
    Message::Called { wall, returned: Some(returned) }
}
