//! Applying the settings `melkit tune` saved for this machine to a run, wherever the caller set
//! nothing, and starting the tuned backend (falling back to `auto` when it will not start): the
//! command line, the Python package and the service all go through here.

use std::path::PathBuf;

use melkit::{Backend, BackendError, BackendKind, Compression, Config};

use crate::tune::{TuneProfile, profile_path};

/// What the caller chose itself; the profile fills in the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    /// The backend, if the caller named one.
    pub backend: Option<BackendKind>,
    /// The compression, if the caller named one.
    pub compression: Option<Compression>,
    /// The output format's extension (`h5`, `npy`, ...): the profile's compression applies only
    /// to the format it was tuned for.
    pub format: String,
    /// Configuration keys the caller set (a flag, a file): the profile leaves them alone.
    pub keys: Vec<String>,
}

/// What a run uses after the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuned {
    /// The backend to start.
    pub backend: BackendKind,
    /// The compression.
    pub compression: Compression,
    /// Whether the backend came from the profile (then one that will not start falls back).
    pub from_profile: bool,
}

/// The profile for this machine at the usual place (`$MELKIT_TUNE_PROFILE`, else the user's
/// configuration folder), if there is a usable one; a warning says why one is not used.
pub fn load() -> Option<(PathBuf, TuneProfile)> {
    let path = profile_path()?;
    match TuneProfile::load_for_this_machine(&path) {
        Ok(Some(profile)) => Some((path, profile)),
        Ok(None) => None,
        Err(reason) => {
            tracing::warn!("{reason}; using the defaults");
            None
        }
    }
}

/// Applies `profile` to `config` where `chosen` set nothing (workers, batch size) and says which
/// backend and compression the run uses.
pub fn apply(
    profile: Option<&(PathBuf, TuneProfile)>,
    chosen: &Chosen,
    config: &mut Config,
) -> Tuned {
    let Some((path, profile)) = profile else {
        return Tuned {
            backend: chosen.backend.unwrap_or(BackendKind::Auto),
            compression: chosen.compression.unwrap_or(Compression::None),
            from_profile: false,
        };
    };
    let set = |key: &str| chosen.keys.iter().any(|k| k == key);
    let s = profile.settings;
    if !set("max_workers") {
        config.max_workers = s.max_workers;
    }
    let gpu = matches!(s.backend, BackendKind::Wgpu | BackendKind::Cuda);
    let batch_key = if gpu { "gpu_batch_size" } else { "batch_size" };
    if !set(batch_key) {
        s.apply_batch(config, gpu);
    }
    let compression = match chosen.compression {
        Some(c) => c,
        None if profile.format == chosen.format => s.compression,
        None => Compression::None,
    };
    tracing::info!(
        "using the settings tuned for this machine in {}: {s} (--no-tune-profile ignores them)",
        path.display()
    );
    match chosen.backend {
        Some(backend) => Tuned { backend, compression, from_profile: false },
        None => Tuned { backend: s.backend, compression, from_profile: true },
    }
}

/// Starts the backend `tuned` names; a tuned backend that will not start gives way to `auto`
/// with a warning (one the caller named is an error).
///
/// # Errors
/// The backend cannot start (and did not come from the profile), or `auto` cannot either.
pub fn start(tuned: &Tuned, config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    match melkit::create_backend(tuned.backend, config) {
        Err(e) if tuned.from_profile && !matches!(e, BackendError::Config(_)) => {
            tracing::warn!("the tuned backend {} does not start: {e}; using auto", tuned.backend);
            melkit::create_backend(BackendKind::Auto, config)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::{Machine, Settings};

    fn profile(backend: BackendKind) -> (PathBuf, TuneProfile) {
        let settings =
            Settings { backend, max_workers: 1, batch_size: 4, compression: Compression::Lzf };
        let profile = TuneProfile {
            melkit_version: melkit::VERSION.into(),
            machine: Machine::here(),
            format: "h5".into(),
            settings,
            default_seconds: 2.0,
            tuned_seconds: 1.0,
            tried: Vec::new(),
        };
        ("tune.json".into(), profile)
    }

    #[test]
    fn the_profile_fills_what_the_caller_left_and_a_dead_backend_falls_back() {
        let tuned = profile(BackendKind::Cuda);
        let chosen = Chosen { format: "h5".into(), ..Chosen::default() };
        let mut config = Config::default();
        let t = apply(Some(&tuned), &chosen, &mut config);
        assert_eq!(config.max_workers, 1);
        assert_eq!(
            t,
            Tuned { backend: BackendKind::Cuda, compression: Compression::Lzf, from_profile: true }
        );
        // Where CUDA will not start, auto takes over; where it does, it is CUDA.
        let backend = start(&t, &config).unwrap();
        assert!(["cuda", "cpu", "wgpu"].contains(&backend.name()), "{}", backend.name());
        // What the caller set wins: a named backend, a key, another format's compression.
        let chosen = Chosen {
            backend: Some(BackendKind::Cpu),
            format: "npy".into(),
            keys: vec!["max_workers".into()],
            ..Chosen::default()
        };
        let mut config = Config::default();
        let t = apply(Some(&tuned), &chosen, &mut config);
        assert_eq!(config.max_workers, 0);
        assert_eq!(
            t,
            Tuned {
                backend: BackendKind::Cpu,
                compression: Compression::None,
                from_profile: false
            }
        );
        let named = Tuned {
            backend: BackendKind::Cuda,
            compression: Compression::None,
            from_profile: false,
        };
        if let Err(e) = start(&named, &config) {
            assert!(matches!(e, BackendError::Unavailable { backend: "cuda", .. }), "{e}");
        }
    }
}
