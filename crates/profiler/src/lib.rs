//! melkit's profiler and optimizer: what a run spent where and what removing each stage would
//! gain (`profile`), a backend against the reference (`validate`), the fastest settings for this
//! machine (`tune`), regressions against a saved baseline, and tensors rendered as images
//! (`show`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod analysis;
pub mod baseline;
mod fonts;
pub mod plot;
pub mod probe;
pub mod profile;
pub mod show;
pub mod tune;
pub mod validate;

use std::io::Write;
use std::path::Path;

pub use analysis::{Analysis, analyse};
pub use baseline::{Baseline, Regression};
pub use profile::{Profile, ProfileOptions, profile};
pub use tune::{Settings, TuneProfile};
pub use validate::{Validation, validate};

/// Writes `bytes` to `path` through a temporary file beside it (creating the folder), so that
/// the file is whole or absent.
///
/// # Errors
/// The folder or file cannot be written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
