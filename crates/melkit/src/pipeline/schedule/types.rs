//! The scheduler's vocabulary: its limits, the events it takes in and the actions it answers
//! with, and why a file can fail.

use std::fmt;

/// An input file, numbered in the run's input order.
pub type FileId = u64;
/// A block of long segments of one file.
pub type BlockId = u64;
/// A batch given to the backend.
pub type BatchId = u64;

/// The scheduler's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Decode tasks at once.
    pub decode_slots: usize,
    /// Write tasks at once.
    pub write_slots: usize,
    /// Long segments per batch.
    pub batch_longs: usize,
    /// Decoded samples waiting for a batch (a decode starts only below this).
    pub ready_values: usize,
    /// Output values computed and not yet written (a decode starts only below this).
    pub unwritten_values: usize,
    /// Output values of one long segment.
    pub long_output_len: usize,
}

/// How a backend broke its `submit`/`flush` contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breach {
    /// It gave back a batch it was not holding (one never given, or one given back already).
    Unknown,
    /// It gave back a batch before an older one.
    OutOfOrder,
    /// `flush` gave nothing back while it held batches.
    EmptyFlush {
        /// Batches it held.
        held: usize,
    },
    /// Not the backend's doing: the run could make no progress (a bug in melkit).
    Stalled,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::Unknown => f.write_str("it gave back a batch it was not holding"),
            Breach::OutOfOrder => f.write_str("it gave back a batch before an older one"),
            Breach::EmptyFlush { held } => {
                write!(f, "its flush gave nothing back while it held {held} batches")
            }
            Breach::Stalled => f.write_str("internal error: the run could make no progress"),
        }
    }
}

/// Why a file failed: its own error, or a backend that broke its contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure<E> {
    /// The error of a task (decode, compute, write).
    Task(E),
    /// The backend broke its contract; nothing it computed is trusted.
    Breach(Breach),
}

/// What a decode task made of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A block of `n_long` long segments from `first_long`, of `samples` samples; `file_longs`
    /// in the whole output; `more` when blocks remain.
    Block {
        /// Long segments of the file's output.
        file_longs: usize,
        /// The block's first long segment.
        first_long: usize,
        /// Its long segments.
        n_long: usize,
        /// Its samples.
        samples: usize,
        /// Whether the file has blocks after it.
        more: bool,
    },
    /// The output was written from the cache: its long segments.
    Restored {
        /// Long segments of the output.
        n_long: usize,
    },
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<E> {
    /// The next input, asked for by [`Action::NextInput`], exists (`Some(error)` when it could
    /// not even be listed) or there are no more (`None` as `found`).
    Input {
        /// The input's number, or `None` when there are no more inputs.
        found: Option<Option<E>>,
    },
    /// A decode task ended.
    Decoded {
        /// The file.
        file: FileId,
        /// What it read.
        result: Result<Decoded, E>,
    },
    /// The backend call ended and gave no batch back.
    Idle,
    /// The backend gave a batch back (`None`: one the executor does not know).
    Returned {
        /// The batch.
        batch: Option<BatchId>,
        /// Its result: an error fails every file in it.
        result: Result<(), E>,
    },
    /// A write task ended.
    Written {
        /// The file.
        file: FileId,
        /// Its result.
        result: Result<(), E>,
    },
}

/// A block placed in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Its file.
    pub file: FileId,
    /// The block.
    pub block: BlockId,
    /// Its long segments.
    pub n_long: usize,
    /// Whether it is the whole file (whose per-file scaling can be done at once).
    pub whole: bool,
}

/// What a settled file became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Its output was written (`n_long` long segments).
    Written {
        /// Long segments.
        n_long: usize,
    },
    /// Its output was written from the cache.
    Restored {
        /// Long segments.
        n_long: usize,
    },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<E> {
    /// Find the next input and call it `file`; answer with [`Event::Input`].
    NextInput {
        /// Its number.
        file: FileId,
    },
    /// Decode the next block of `file` into `block` (`open`: the file is not open yet).
    Decode {
        /// The file.
        file: FileId,
        /// The block to fill.
        block: BlockId,
        /// Whether the file must be opened first.
        open: bool,
    },
    /// Give the backend a batch of these blocks, in order.
    Submit {
        /// The batch.
        batch: BatchId,
        /// Its blocks.
        blocks: Vec<Placed>,
    },
    /// Ask the backend for the batch it holds.
    Flush,
    /// Write these computed blocks of `file`, in order.
    Write {
        /// The file.
        file: FileId,
        /// Its blocks.
        blocks: Vec<BlockId>,
        /// Whether its output must be created first.
        create: bool,
        /// Whether these are its last blocks.
        complete: bool,
        /// Long segments of its output.
        n_long: usize,
    },
    /// Drop the data of these blocks (of a file that failed).
    Discard {
        /// The blocks.
        blocks: Vec<BlockId>,
    },
    /// The file is settled: report it.
    Settle {
        /// The file.
        file: FileId,
        /// How.
        result: Result<Settled, Failure<E>>,
    },
    /// Nothing of the file is in flight any more: drop what is kept of it.
    Forget {
        /// The file.
        file: FileId,
    },
}
