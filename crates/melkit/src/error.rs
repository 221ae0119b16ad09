//! The errors of the facade: what stops a run before it starts, and why one file failed.

use std::path::PathBuf;

use melkit_core::{BackendError, ConfigError};
use melkit_io::WriteError;

/// An error that stops a run (or a call) as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The backend cannot start.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Two or more inputs would be written to the same output.
    #[error("{} inputs would overwrite each other's outputs:\n{}", .0.iter().map(|(_, i)| i.len()).sum::<usize>(), format_collisions(.0))]
    Collision(Vec<(PathBuf, Vec<PathBuf>)>),
    /// The output options do not fit together.
    #[error("{0}")]
    Output(#[from] WriteError),
    /// A single file failed (from [`Pipeline::process_file`](crate::Pipeline::process_file)).
    #[error(transparent)]
    File(#[from] FileError),
    /// The output folder cannot be written (nothing was done).
    #[error("cannot write to the output folder {}: {reason}", path.display())]
    OutputDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Options that cannot work together (nothing was done).
    #[error("{0}")]
    Usage(String),
    /// The worker threads could not be started.
    #[error("cannot start {workers} worker threads: {reason}")]
    Threads {
        /// Threads asked for.
        workers: usize,
        /// The system's answer.
        reason: String,
    },
}

fn format_collisions(collisions: &[(PathBuf, Vec<PathBuf>)]) -> String {
    collisions
        .iter()
        .map(|(out, ins)| {
            let ins: Vec<String> = ins.iter().map(|p| p.display().to_string()).collect();
            format!("  {} <- {}", out.display(), ins.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why one input file produced no output. The run goes on with the other files.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct FileError {
    /// The input file.
    pub path: PathBuf,
    /// The stage that failed (`discover`, `decode`, `resample`, `compute`, `write`).
    pub stage: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl FileError {
    /// An error of `path` in `stage`.
    pub fn new(path: impl Into<PathBuf>, stage: &'static str, reason: impl ToString) -> Self {
        FileError { path: path.into(), stage, reason: reason.to_string() }
    }
}
