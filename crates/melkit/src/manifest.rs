//! The run manifest `OUT/melkit-manifest.jsonl`: one JSON line per input as it is settled
//! (input, output, status, error, configuration hash, input size and time, seconds), appended
//! with one write each so a killed run leaves whole lines (a torn last line is ignored). A
//! re-run with `resume` skips the inputs it lists as done with the same configuration.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use melkit_core::Config;
use melkit_core::config::{KEYS, KeyGroup};
use serde_json::{Value, json};

use crate::pipeline::OutputOptions;

/// The manifest's file name in the output folder.
pub const MANIFEST: &str = "melkit-manifest.jsonl";

/// A hash of what decides an output's bytes: every key that changes the numbers, the output
/// format, compression and type, and melkit's version (run-control keys leave it alone).
pub fn config_hash(config: &Config, options: &OutputOptions) -> String {
    let json = config.to_json();
    let mut hasher = blake3::Hasher::new();
    for key in KEYS.iter().filter(|k| k.group != KeyGroup::Run) {
        let value = json.get(key.name).map(Value::to_string).unwrap_or_default();
        hasher.update(format!("{}={value}\n", key.name).as_bytes());
    }
    hasher.update(format!("format={}\n", options.format.extension()).as_bytes());
    hasher.update(format!("compression={}\n", options.compression).as_bytes());
    hasher.update(format!("melkit={}\n", crate::VERSION).as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// An input's size and modification time (nanoseconds since 1970), to notice a changed file.
pub fn input_stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

/// The manifest being appended to.
pub struct Manifest {
    file: File,
    config: String,
    warned: bool,
}

impl Manifest {
    /// Opens (or creates) the manifest of `out_dir` for appending, creating the folder.
    ///
    /// # Errors
    /// The folder or the manifest cannot be created or written: the run cannot write there.
    pub fn open(out_dir: &Path, config: String) -> std::io::Result<Self> {
        Self::open_at(&out_dir.join(MANIFEST), config)
    }

    /// Opens (or creates) the manifest at `path` for appending, creating its folder.
    ///
    /// # Errors
    /// The folder or the manifest cannot be created or written.
    pub fn open_at(path: &Path, config: String) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Manifest { file, config, warned: false })
    }

    /// Appends the line of one settled input (a failure to write it is logged once).
    pub fn record(
        &mut self,
        input: &Path,
        output: Option<&Path>,
        error: Option<&str>,
        seconds: f64,
        cached: bool,
    ) {
        let (size, mtime) = input_stamp(input).unwrap_or((0, 0));
        let line = json!({
            "input": input.display().to_string(),
            "output": output.map(|p| p.display().to_string()),
            "status": if error.is_none() { "ok" } else { "failed" },
            "error": error,
            "config": self.config,
            "input_size": size,
            "input_mtime_ns": mtime.to_string(),
            "seconds": seconds,
            "cached": cached,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        if let Err(e) = self.file.write_all(&bytes)
            && !self.warned
        {
            tracing::warn!("cannot append to the manifest {MANIFEST}: {e}");
            self.warned = true;
        }
    }
}

/// The inputs a manifest lists as done, kept as 16-byte keys of their paths (a few tens of MB
/// for millions of inputs, instead of their paths).
#[derive(Clone, Debug, Default)]
pub struct DoneSet(std::collections::HashSet<u128>);

fn key(input: &Path) -> u128 {
    use std::os::unix::ffi::OsStrExt;
    crate::keys::key128(input.as_os_str().as_bytes())
}

impl DoneSet {
    /// Whether `input` is done.
    pub fn contains(&self, input: &Path) -> bool {
        self.0.contains(&key(input))
    }

    /// How many inputs are done.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The inputs the manifest at `path` lists as done with configuration `config`, whose output
/// still exists and whose input has not changed since (the last line of an input wins), read a
/// line at a time into a [`DoneSet`].
pub fn done_set(path: &Path, config: &str) -> DoneSet {
    let mut done = std::collections::HashSet::new();
    let Ok(file) = File::open(path) else {
        return DoneSet(done);
    };
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
        let Some(input) = entry["input"].as_str().map(PathBuf::from) else { continue };
        if finished(&entry, &input, config) {
            done.insert(key(&input));
        } else {
            done.remove(&key(&input));
        }
    }
    DoneSet(done)
}

/// Whether a manifest line says `input` is done with `config`, unchanged since and with its
/// output still there.
fn finished(entry: &Value, input: &Path, config: &str) -> bool {
    let ok = entry["status"] == "ok" && entry["config"] == config;
    let unchanged = input_stamp(input).is_some_and(|(size, mtime)| {
        entry["input_size"].as_u64() == Some(size)
            && entry["input_mtime_ns"].as_str() == Some(&mtime.to_string())
    });
    ok && unchanged && entry["output"].as_str().is_some_and(|o| Path::new(o).is_file())
}

/// Removes the temporary files a killed run left beside its outputs (`.NAME.XXXXXX.tmp`) under
/// `out_dir`, those of the outputs `ours` accepts only (other shards may be writing beside
/// them); returns how many.
pub fn remove_stale_temporaries(out_dir: &Path, ours: &dyn Fn(&Path) -> bool) -> usize {
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(out_dir).into_iter().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy();
        // `.NAME.XXXXXX.tmp` is the temporary of NAME in the same folder.
        let output = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .map(|(n, _)| entry.path().with_file_name(n));
        if entry.file_type().is_file()
            && output.is_some_and(|o| ours(&o))
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}
