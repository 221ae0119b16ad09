//! The settings `melkit tune` saved for this machine, applied to a run wherever the user set
//! nothing (flags and the configuration file win).

use std::path::PathBuf;

use melkit::{BackendKind, Compression, Config};
use melkit_profiler::TuneProfile;

use crate::args::RunArgs;

/// The profile for this machine, if there is a usable one (a warning says why one is not).
pub fn load() -> Option<(PathBuf, TuneProfile)> {
    let path = melkit_profiler::tune::profile_path()?;
    match TuneProfile::load_for_this_machine(&path) {
        Ok(Some(profile)) => Some((path, profile)),
        Ok(None) => None,
        Err(reason) => {
            tracing::warn!("{reason}; using the defaults");
            None
        }
    }
}

/// What the run uses: the backend and compression, from the flags, else the profile, else the
/// defaults; the profile's workers and batch size go into `config` unless a flag or the
/// configuration file set them (`set`). The `bool` says whether the backend came from the
/// profile.
pub fn apply(
    tuned: Option<&(PathBuf, TuneProfile)>,
    args: &RunArgs,
    set: &[String],
    config: &mut Config,
) -> (BackendKind, Compression, bool) {
    let Some((path, profile)) = tuned else {
        return (
            args.backend.unwrap_or(BackendKind::Auto),
            args.compression.unwrap_or(Compression::None),
            false,
        );
    };
    let set = |key: &str| set.iter().any(|k| k == key);
    let s = profile.settings;
    if !set("max_workers") {
        config.max_workers = s.max_workers;
    }
    let gpu = matches!(s.backend, BackendKind::Wgpu | BackendKind::Cuda);
    let batch_key = if gpu { "gpu_batch_size" } else { "batch_size" };
    if !set(batch_key) {
        s.apply_batch(config, gpu);
    }
    let compression = match args.compression {
        Some(c) => c,
        None if profile.format == args.format.files().extension() => s.compression,
        None => Compression::None,
    };
    tracing::info!(
        "using the settings tuned for this machine in {}: {s} (--no-tune-profile ignores them)",
        path.display()
    );
    match args.backend {
        Some(kind) => (kind, compression, false),
        None => (s.backend, compression, true),
    }
}
