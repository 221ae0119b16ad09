//! melkit-core: the configuration, the segmentation plan, windows, the mel filterbank, scaling,
//! the [`Backend`] trait and the reference backend. No I/O, no GPU, no threads.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod batch;
pub mod compare;
pub mod config;
pub mod device;
pub mod error;
pub mod mel;
pub mod plan;
pub mod reference;
pub mod scale;
#[cfg(feature = "testing")]
pub mod testing;
pub mod window;

pub use backend::{Backend, BatchItem, DeviceTimes, Done, Job, SignalBatch, StepTimings};
pub use config::Config;
pub use error::{BackendError, ConfigError};
pub use plan::SegmentPlan;
pub use reference::ReferenceBackend;
