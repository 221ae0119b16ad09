//! The run scheduler as a pure state machine: it is told what happened (an input found, a block
//! decoded, a batch given back, a write done) and answers with what to do next (read the next
//! input, decode, submit or flush a batch, write, settle a file, drop data). It holds no data,
//! starts no thread and does no I/O; its cost per event is constant (explicit queues, no scan of
//! all files) and it remembers only the files in flight. The executor (`run.rs`) carries out its
//! actions on the worker pool and feeds the results back.
//!
//! Budgets: decodes start while the decoded audio waiting for a batch is under its limit and the
//! outputs not yet written are under theirs; a batch is given once it holds enough long segments
//! (or nothing more can come). A backend that breaks the `submit`/`flush` contract (gives back a
//! batch it was not holding, out of order, or nothing on `flush` while it holds some) fails the
//! files concerned with an error naming the breach, and every later file, never a hang.

use std::collections::{HashMap, VecDeque};
use std::fmt;

mod types;

pub use types::{
    Action, BatchId, BlockId, Breach, Decoded, Event, Failure, FileId, Limits, Placed, Settled,
};

/// A file in flight.
#[derive(Debug, Default)]
struct File {
    /// Long segments of its output, once known.
    n_long: usize,
    opened: bool,
    /// A decode task of it runs.
    decoding: bool,
    /// The block its decode task fills.
    block: BlockId,
    /// Computed blocks waiting to be written, with their long segments.
    pending: VecDeque<(BlockId, usize)>,
    queued_for_write: bool,
    writing: bool,
    completing: bool,
    created: bool,
    written: usize,
    /// Its blocks in the backend.
    in_backend: usize,
    settled: bool,
}

impl File {
    fn busy(&self) -> bool {
        self.decoding || self.writing || self.in_backend > 0
    }
}

/// A decoded block waiting for a batch.
#[derive(Debug)]
struct Ready {
    file: FileId,
    block: BlockId,
    n_long: usize,
    samples: usize,
    whole: bool,
}

/// The scheduler (see the module documentation).
#[derive(Debug)]
pub struct Scheduler<E> {
    limits: Limits,
    next_file: FileId,
    next_block: BlockId,
    next_batch: BatchId,
    asking: bool,
    exhausted: bool,
    files: HashMap<FileId, File>,
    /// Files found and not opened yet.
    fresh: VecDeque<FileId>,
    /// Open files whose next block can be read.
    to_read: VecDeque<FileId>,
    ready: VecDeque<Ready>,
    ready_values: usize,
    ready_longs: usize,
    decoding: usize,
    /// A backend call runs: `Some(true)` a flush, `Some(false)` a submit.
    calling: Option<bool>,
    in_backend: VecDeque<(BatchId, Vec<Placed>)>,
    writable: VecDeque<FileId>,
    unwritten: usize,
    writing: usize,
    broken: Option<Breach>,
    actions: VecDeque<Action<E>>,
}

impl<E: Clone + fmt::Debug> Scheduler<E> {
    /// A scheduler within `limits`.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            decode_slots: limits.decode_slots.max(1),
            write_slots: limits.write_slots.max(1),
            batch_longs: limits.batch_longs.max(1),
            ..limits
        };
        Scheduler {
            limits,
            next_file: 0,
            next_block: 0,
            next_batch: 0,
            asking: false,
            exhausted: false,
            files: HashMap::new(),
            fresh: VecDeque::new(),
            to_read: VecDeque::new(),
            ready: VecDeque::new(),
            ready_values: 0,
            ready_longs: 0,
            decoding: 0,
            calling: None,
            in_backend: VecDeque::new(),
            writable: VecDeque::new(),
            unwritten: 0,
            writing: 0,
            broken: None,
            actions: VecDeque::new(),
        }
    }

    /// Decoded samples waiting for a batch.
    pub fn ready_values(&self) -> usize {
        self.ready_values
    }

    /// Output values computed and not yet written.
    pub fn unwritten_values(&self) -> usize {
        self.unwritten
    }

    /// Whether the run is over: every input settled and forgotten, no task running.
    pub fn finished(&self) -> bool {
        self.exhausted && self.files.is_empty() && self.idle()
    }

    /// The next action, or `None` when the scheduler waits for an event (or the run is over).
    pub fn next_action(&mut self) -> Option<Action<E>> {
        if self.actions.is_empty() {
            self.plan();
            if self.actions.is_empty() && self.idle() && !self.finished() {
                // Nothing runs and nothing can start: never wait forever; fail what is left.
                tracing::error!("the run scheduler stalled: {self:?}");
                self.breach(Breach::Stalled);
                self.plan();
            }
        }
        self.actions.pop_front()
    }

    /// No task runs and no input is being looked for.
    fn idle(&self) -> bool {
        !self.asking && self.decoding == 0 && self.writing == 0 && self.calling.is_none()
    }

    /// Takes in what happened.
    pub fn handle(&mut self, event: Event<E>) {
        match event {
            Event::Input { found } => self.on_input(found),
            Event::Decoded { file, result } => self.on_decoded(file, result),
            Event::Idle => {
                let flushed = self.calling.take() == Some(true);
                if flushed && !self.in_backend.is_empty() && self.broken.is_none() {
                    let held = self.in_backend.len();
                    self.breach(Breach::EmptyFlush { held });
                }
            }
            Event::Returned { batch, result } => {
                self.calling = None;
                self.on_returned(batch, result);
            }
            Event::Written { file, result } => self.on_written(file, result),
        }
    }

    /// Turns the state into actions: writes first (they free memory), then the backend, then
    /// decodes (within the budgets), then the next input.
    fn plan(&mut self) {
        self.start_writes();
        self.start_compute();
        self.start_decodes();
    }

    fn start_writes(&mut self) {
        while self.writing < self.limits.write_slots {
            let Some(file) = self.writable.pop_front() else { return };
            let Some(state) = self.files.get_mut(&file) else { continue };
            state.queued_for_write = false;
            if state.settled || state.writing || state.pending.is_empty() {
                continue;
            }
            let longs: usize = state.pending.iter().map(|(_, n)| n).sum();
            let blocks: Vec<BlockId> = state.pending.drain(..).map(|(b, _)| b).collect();
            let complete = state.written + longs == state.n_long;
            let create = !state.created;
            state.created = true;
            state.written += longs;
            state.writing = true;
            state.completing = complete;
            self.unwritten -= longs * self.limits.long_output_len;
            self.writing += 1;
            let n_long = state.n_long;
            self.actions.push_back(Action::Write { file, blocks, create, complete, n_long });
        }
    }

    /// Whether more decoded blocks can still come.
    fn more_coming(&self) -> bool {
        self.decoding > 0 || !self.to_read.is_empty() || !self.fresh.is_empty() || !self.exhausted
    }

    fn start_compute(&mut self) {
        if self.calling.is_some() || self.broken.is_some() {
            return;
        }
        let limits = self.limits;
        let hold = self.ready.is_empty()
            || (self.unwritten >= limits.unwritten_values && self.writing > 0)
            || (self.ready_longs < limits.batch_longs
                && self.more_coming()
                && self.ready_values < limits.ready_values);
        if hold {
            // No batch to give: take back the one the backend holds.
            if !self.in_backend.is_empty() {
                self.calling = Some(true);
                self.actions.push_back(Action::Flush);
            }
            return;
        }
        let mut blocks = Vec::new();
        let mut longs = 0;
        while let Some(r) = self.ready.pop_front() {
            self.ready_values -= r.samples;
            self.ready_longs -= r.n_long;
            longs += r.n_long;
            if let Some(state) = self.files.get_mut(&r.file) {
                state.in_backend += 1;
            }
            blocks.push(Placed { file: r.file, block: r.block, n_long: r.n_long, whole: r.whole });
            if longs >= limits.batch_longs {
                break;
            }
        }
        let batch = self.next_batch;
        self.next_batch += 1;
        self.in_backend.push_back((batch, blocks.clone()));
        self.calling = Some(false);
        self.actions.push_back(Action::Submit { batch, blocks });
    }

    fn start_decodes(&mut self) {
        let limits = self.limits;
        while self.decoding < limits.decode_slots
            && (self.ready_values < limits.ready_values
                || self.ready.is_empty() && self.decoding == 0)
            && self.unwritten < limits.unwritten_values
        {
            // Finish the files already open before opening more.
            let (file, open) = if let Some(file) = self.to_read.pop_front() {
                (file, false)
            } else if let Some(file) = self.fresh.pop_front() {
                (file, true)
            } else {
                if !self.exhausted && !self.asking {
                    self.asking = true;
                    self.actions.push_back(Action::NextInput { file: self.next_file });
                }
                return;
            };
            let Some(state) = self.files.get_mut(&file) else { continue };
            if state.settled {
                continue;
            }
            let block = self.next_block;
            self.next_block += 1;
            state.decoding = true;
            state.block = block;
            self.decoding += 1;
            self.actions.push_back(Action::Decode { file, block, open });
        }
    }

    fn on_input(&mut self, found: Option<Option<E>>) {
        self.asking = false;
        let file = self.next_file;
        match found {
            None => self.exhausted = true,
            Some(error) => {
                self.next_file += 1;
                self.files.insert(file, File::default());
                match (error, &self.broken) {
                    (Some(e), _) => self.fail(file, Failure::Task(e)),
                    (None, Some(b)) => self.fail(file, Failure::Breach(b.clone())),
                    (None, None) => self.fresh.push_back(file),
                }
            }
        }
    }

    fn on_decoded(&mut self, file: FileId, result: Result<Decoded, E>) {
        self.decoding -= 1;
        let Some(state) = self.files.get_mut(&file) else { return };
        state.decoding = false;
        if state.settled {
            if let Ok(Decoded::Block { .. }) = result {
                let block = state.block;
                self.actions.push_back(Action::Discard { blocks: vec![block] });
            }
            self.forget_if_idle(file);
            return;
        }
        match result {
            Err(e) => self.fail(file, Failure::Task(e)),
            Ok(Decoded::Restored { n_long }) => {
                self.settle(file, Ok(Settled::Restored { n_long }));
            }
            Ok(Decoded::Block { file_longs, first_long, n_long, samples, more }) => {
                if !state.opened {
                    state.opened = true;
                    state.n_long = file_longs;
                }
                if more {
                    self.to_read.push_back(file);
                }
                let whole = first_long == 0 && n_long == state.n_long;
                let id = state.block;
                self.ready_values += samples;
                self.ready_longs += n_long;
                self.ready.push_back(Ready { file, block: id, n_long, samples, whole });
                if let Some(b) = self.broken.clone() {
                    self.fail(file, Failure::Breach(b));
                }
            }
        }
    }

    fn on_returned(&mut self, batch: Option<BatchId>, result: Result<(), E>) {
        if self.broken.is_some() {
            return; // nothing a broken backend gives back is used; its blocks were discarded
        }
        let front = self.in_backend.front().map(|(id, _)| *id);
        let Some(id) = batch else { return self.breach(Breach::Unknown) };
        if front != Some(id) {
            let known = self.in_backend.iter().any(|(b, _)| *b == id);
            return self.breach(if known { Breach::OutOfOrder } else { Breach::Unknown });
        }
        let Some((_, placed)) = self.in_backend.pop_front() else { return };
        let per_long = self.limits.long_output_len;
        let mut discard = Vec::new();
        for p in &placed {
            let Some(state) = self.files.get_mut(&p.file) else { continue };
            state.in_backend -= 1;
            match &result {
                _ if state.settled => discard.push(p.block),
                Ok(()) => {
                    self.unwritten += p.n_long * per_long;
                    state.pending.push_back((p.block, p.n_long));
                    if !state.writing && !state.queued_for_write {
                        state.queued_for_write = true;
                        self.writable.push_back(p.file);
                    }
                }
                Err(_) => discard.push(p.block),
            }
        }
        if !discard.is_empty() {
            self.actions.push_back(Action::Discard { blocks: discard });
        }
        for p in &placed {
            if let Err(e) = &result {
                self.fail(p.file, Failure::Task(e.clone()));
            }
            self.forget_if_idle(p.file);
        }
    }

    fn on_written(&mut self, file: FileId, result: Result<(), E>) {
        self.writing -= 1;
        let Some(state) = self.files.get_mut(&file) else { return };
        state.writing = false;
        if state.settled {
            self.forget_if_idle(file);
            return;
        }
        match result {
            Err(e) => self.fail(file, Failure::Task(e)),
            Ok(()) if state.completing => {
                let n_long = state.n_long;
                self.settle(file, Ok(Settled::Written { n_long }));
            }
            Ok(()) => {
                if !state.pending.is_empty() && !state.queued_for_write {
                    state.queued_for_write = true;
                    self.writable.push_back(file);
                }
            }
        }
    }

    /// The backend broke its contract: every file with a block in it fails, and so will every
    /// later one.
    fn breach(&mut self, breach: Breach) {
        self.broken = Some(breach.clone());
        let batches: Vec<(BatchId, Vec<Placed>)> = self.in_backend.drain(..).collect();
        let mut discard = Vec::new();
        for (_, placed) in &batches {
            for p in placed {
                if let Some(state) = self.files.get_mut(&p.file) {
                    state.in_backend -= 1;
                }
                discard.push(p.block);
            }
        }
        if !discard.is_empty() {
            self.actions.push_back(Action::Discard { blocks: discard });
        }
        for (_, placed) in batches {
            for p in placed {
                self.fail(p.file, Failure::Breach(breach.clone()));
                self.forget_if_idle(p.file);
            }
        }
        let waiting: Vec<FileId> = if breach == Breach::Stalled {
            self.files.keys().copied().collect()
        } else {
            self.ready.iter().map(|r| r.file).chain(self.fresh.iter().copied()).collect()
        };
        for file in waiting {
            self.fail(file, Failure::Breach(breach.clone()));
        }
    }

    /// Settles `file` as failed: its waiting data is dropped; the others go on.
    fn fail(&mut self, file: FileId, failure: Failure<E>) {
        let Some(state) = self.files.get_mut(&file) else { return };
        if state.settled {
            return;
        }
        let mut discard: Vec<BlockId> = Vec::new();
        let per_long = self.limits.long_output_len;
        for (block, n_long) in state.pending.drain(..) {
            self.unwritten -= n_long * per_long;
            discard.push(block);
        }
        let (ready_values, ready_longs) = (&mut self.ready_values, &mut self.ready_longs);
        self.ready.retain(|r| {
            let keep = r.file != file;
            if !keep {
                *ready_values -= r.samples;
                *ready_longs -= r.n_long;
                discard.push(r.block);
            }
            keep
        });
        if !discard.is_empty() {
            self.actions.push_back(Action::Discard { blocks: discard });
        }
        self.settle(file, Err(failure));
    }

    fn settle(&mut self, file: FileId, result: Result<Settled, Failure<E>>) {
        let Some(state) = self.files.get_mut(&file) else { return };
        state.settled = true;
        self.actions.push_back(Action::Settle { file, result });
        self.forget_if_idle(file);
    }

    fn forget_if_idle(&mut self, file: FileId) {
        if self.files.get(&file).is_some_and(|s| s.settled && !s.busy()) {
            self.files.remove(&file);
            self.actions.push_back(Action::Forget { file });
        }
    }
}

#[cfg(test)]
mod tests;
