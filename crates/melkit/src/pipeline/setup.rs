//! What a run sets up before it computes: the manifest it appends to (the shard's own when it is
//! one), the cache, and for `resume` the inputs already done (a compact set read from the
//! manifest) and the temporary files a killed run left (only this run's, never another shard's).

use std::path::{Path, PathBuf};

use melkit_core::Config;

use super::OutputOptions;
use crate::cache::Cache;
use crate::discover::io_reason;
use crate::error::Error;
use crate::manifest::{self, DoneSet, Manifest};
use crate::shard::{Shard, owns_output};

/// A run's manifest, cache and resume state.
pub(super) struct Setup {
    pub manifest: Manifest,
    pub cache: Option<Cache>,
    /// Inputs done by an earlier run (empty without `resume`).
    pub done: DoneSet,
}

/// The manifest of a run: the one given, else the shard's own in `out_dir`.
pub(super) fn manifest_path(options: &OutputOptions, out_dir: &Path) -> PathBuf {
    options.manifest.clone().unwrap_or_else(|| {
        let shard = options.shard.unwrap_or(Shard { index: 0, count: 1 });
        out_dir.join(shard.manifest_name())
    })
}

impl Setup {
    /// Opens the manifest and the cache, and with `resume` reads what is done and removes this
    /// run's stale temporary files.
    ///
    /// # Errors
    /// The output folder, its manifest or the cache folder cannot be written.
    pub fn new(config: &Config, options: &OutputOptions, out_dir: &Path) -> Result<Self, Error> {
        let hash = manifest::config_hash(config, options);
        let out_error = |path: &Path, e: std::io::Error| Error::OutputDir {
            path: path.into(),
            reason: io_reason(&e),
        };
        let path = manifest_path(options, out_dir);
        let manifest = Manifest::open_at(&path, hash.clone()).map_err(|e| out_error(out_dir, e))?;
        let cache_dir = match &options.cache {
            Some(dir) => Some(dir.clone()),
            None if config.cache_spectrograms => Cache::default_dir(),
            None => None,
        };
        let cache = match cache_dir {
            Some(dir) => Some(Cache::new(&dir, &hash).map_err(|e| out_error(&dir, e))?),
            None => None,
        };
        let mut done = DoneSet::default();
        if options.resume {
            let extension = options.format.extension();
            let ours = |output: &Path| {
                output.extension().is_some_and(|e| e == extension)
                    && options.shard.is_none_or(|s| owns_output(s, out_dir, output))
            };
            let stale = manifest::remove_stale_temporaries(out_dir, &ours);
            if stale > 0 {
                tracing::info!("removed {stale} temporary files left by an interrupted run");
            }
            done = manifest::done_set(&path, &hash);
        }
        Ok(Setup { manifest, cache, done })
    }
}
