//! melkit: segmented mel-spectrogram tensors `[long_segment, short_segment, mel_bin, time_frame]`
//! from audio files and folders, with librosa's numbers, written to HDF5, NPY or NPZ.
//!
//! ```no_run
//! use melkit::{BackendKind, Config, OutputFormat, OutputOptions, Pipeline};
//!
//! let mut config = Config::default();
//! config.set("n_mels", "40")?;
//! let mut pipeline = Pipeline::new(config, BackendKind::Auto)?;
//! let (tensor, _stats) = pipeline.process_file("clip.wav".as_ref())?;
//! assert_eq!(tensor.shape(), [40, 2, 40, 17]);
//! let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
//! let report = pipeline.process_paths(&["data/".into()], "out/".as_ref(), &options)?;
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backends;
pub mod cache;
pub mod discover;
pub mod error;
pub mod info;
pub mod keys;
pub mod limits;
pub mod manifest;
#[cfg(feature = "hdf5")]
pub mod merge;
pub mod pipeline;
pub mod report;
pub mod shard;
#[cfg(feature = "hdf5")]
pub mod stacked;
pub mod stream;
pub mod tensor;
pub mod verify;

pub use backends::{BackendKind, create_backend};
pub use error::{Error, ErrorKind, FileError, FileErrorKind};
pub use melkit_core::compare;
pub use melkit_core::config::{self, Config, KEYS};
pub use melkit_core::{
    Backend, BackendError, ConfigError, Done, Job, SegmentPlan, SignalBatch, StepTimings,
};
pub use melkit_io::{Compression, OutputFormat};
pub use pipeline::{OutputOptions, Pipeline, Progress};
pub use report::{FileOutcome, FileStats, RunReport, Stage, StageTimes};
pub use stream::Streamer;
pub use tensor::MelTensor;

/// The version of melkit, as recorded in every output.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
