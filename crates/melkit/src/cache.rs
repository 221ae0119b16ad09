//! The result cache (`--cache DIR`, the seeds' `cache_spectrograms`): each computed tensor is
//! kept as `DIR/<blake3 of the input's bytes>-<configuration hash>.npy` (float32, scaled), so an
//! input seen before under any name or path is written from the cache without decoding or
//! computing. Entries are written atomically beside their final name, like outputs.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use melkit_io::WriteError;

/// A cache folder for one configuration.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    config: String,
}

impl Cache {
    /// The cache in `dir` (created if needed) for the configuration hashed as `config`.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn new(dir: &Path, config: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Cache { dir: dir.to_path_buf(), config: config[..16.min(config.len())].to_string() })
    }

    /// The default folder: `$XDG_CACHE_HOME/melkit`, else `~/.cache/melkit`.
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("XDG_CACHE_HOME") {
            Some(d) if !d.is_empty() => Some(PathBuf::from(d).join("melkit")),
            _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/melkit")),
        }
    }

    /// The entry for the input at `path`, found by hashing its bytes.
    ///
    /// # Errors
    /// The input cannot be read.
    pub fn entry(&self, path: &Path) -> std::io::Result<PathBuf> {
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(File::open(path)?)?;
        let content = hasher.finalize().to_hex();
        Ok(self.dir.join(format!("{}-{}.npy", &content[..32], self.config)))
    }
}

/// A cached tensor opened for reading: its shape and a reader positioned at its values.
pub struct CachedTensor {
    /// `[long, short, mel, time]`.
    pub shape: [usize; 4],
    reader: BufReader<File>,
    /// The entry's size in bytes, which bounds what its header may claim.
    size: u64,
}

impl CachedTensor {
    /// Opens an entry written by melkit (an NPY file of little-endian float32).
    ///
    /// # Errors
    /// It cannot be read or is not such a file.
    pub fn open(path: &Path) -> Result<Self, WriteError> {
        let bad = || WriteError::Npy(format!("{} is not a melkit cache entry", path.display()));
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let mut reader = BufReader::new(file);
        let header = melkit_io::npy::read_header(&mut reader)?.ok_or_else(bad)?;
        if header.descr != "<f4" {
            return Err(bad());
        }
        let shape: [usize; 4] = header.shape.try_into().map_err(|_| bad())?;
        Ok(CachedTensor { shape, reader, size })
    }

    /// Reads the next `n_long` long segments into `values` (resized).
    ///
    /// # Errors
    /// The entry ends early or cannot be read.
    pub fn read_longs(&mut self, n_long: usize, values: &mut Vec<f32>) -> Result<(), WriteError> {
        let n = [n_long, self.shape[1], self.shape[2], self.shape[3]]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| WriteError::Npy("a cache entry's shape is too large".into()))?;
        melkit_io::npy::read_values(&mut self.reader, "<f4", n, self.size, values)?;
        Ok(())
    }
}
