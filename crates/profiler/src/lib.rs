//! melkit's profiler and optimizer: what a run spent where and what removing each stage would
//! gain (`profile`), a backend against the reference (`validate`), the fastest settings for this
//! machine (`tune`), regressions against a saved baseline, and tensors rendered as images
//! (`show`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod analysis;
pub mod baseline;
mod error;
mod fonts;
pub mod plot;
pub mod probe;
pub mod profile;
pub mod show;
pub mod tune;
pub mod tuned;
pub mod validate;

pub use analysis::{Analysis, analyse};
pub use baseline::{Baseline, Regression};
pub use error::ProfilerError;
pub use profile::{Profile, ProfileOptions, profile};
pub use tune::{Settings, TuneProfile};
pub use validate::{Validation, validate};
