//! The profiler's errors.

use std::path::PathBuf;

/// Why a profiler call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfilerError {
    /// The tuning profile exists but cannot be read.
    #[error("cannot read the tuning profile {}: {reason}", path.display())]
    ProfileRead {
        /// The profile.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The tuning profile is not one melkit wrote.
    #[error("the tuning profile {} is not valid: {reason}", path.display())]
    ProfileInvalid {
        /// The profile.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The tuning profile was measured elsewhere.
    #[error("the tuning profile {} was measured on another machine ({cpu}, {threads} threads); run `melkit tune` here", path.display())]
    OtherMachine {
        /// The profile.
        path: PathBuf,
        /// Its CPU.
        cpu: String,
        /// Its threads.
        threads: usize,
    },
    /// Nothing to measure.
    #[error("no audio files found in the inputs")]
    NoInputs,
    /// The default settings do not run, so nothing can be compared with them.
    #[error("the default settings cannot run: {0}")]
    DefaultsFail(String),
    /// A tensor of the wrong rank was given to draw.
    #[error("the tensor is {0}-D, not [long, short, mel, time]")]
    NotATensor(usize),
    /// A chart or picture cannot be drawn or written.
    #[error("cannot draw {}: {reason}", path.display())]
    Draw {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
