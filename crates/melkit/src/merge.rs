//! `melkit merge`: the stacked outputs of a run's shards checked against each other (one
//! configuration, every input exactly once, failures listed) and written as one stacked dataset
//! in the run's input order, a row at a time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use melkit_io::Compression;
use melkit_io::stacked::{StackedMeta, StackedReader, StackedWriter};

use crate::shard::Shard;
use crate::stacked::{Descriptor, Names, descriptors_in};

/// Why shards were not merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A folder holds no stacked output.
    #[error(
        "{} holds no stacked melkit output (melkit-stacked*.json): was it written by `melkit run --format stacked-h5`?",
        .0.display()
    )]
    NoShard(PathBuf),
    /// A file cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The shards disagree on the configuration or on the split.
    #[error("the shards were computed with different configurations or splits:\n{}", .0.join("\n"))]
    Mismatch(Vec<String>),
    /// Inputs are missing or in more than one shard.
    #[error(
        "cannot merge: {} inputs missing, {} in more than one shard (--allow-partial merges what there is):\n{}",
        .missing.len(), .duplicated.len(), list(.missing, .duplicated)
    )]
    Incomplete {
        /// Inputs without a row or a failure, with the shard that owns them.
        missing: Vec<String>,
        /// Inputs with rows in more than one shard.
        duplicated: Vec<String>,
    },
    /// The merged file cannot be written.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn list(missing: &[String], duplicated: &[String]) -> String {
    let missing = missing.iter().map(|m| format!("  missing: {m}"));
    let duplicated = duplicated.iter().map(|d| format!("  duplicated: {d}"));
    missing.chain(duplicated).collect::<Vec<_>>().join("\n")
}

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MergeReport {
    /// Rows written.
    pub rows: usize,
    /// Shards merged.
    pub shards: usize,
    /// Inputs that failed in their shard, with the reason.
    pub failures: Vec<(String, String)>,
    /// Inputs missing (merged anyway with `--allow-partial`).
    pub missing: Vec<String>,
    /// Inputs found in more than one shard (the first kept, with `--allow-partial`).
    pub duplicated: Vec<String>,
}

impl fmt::Display for MergeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "merged {} rows from {} shards", self.rows, self.shards)?;
        for (input, reason) in &self.failures {
            write!(f, "\nfailed in its shard: {input}: {reason}")?;
        }
        for m in &self.missing {
            write!(f, "\nmissing: {m}")?;
        }
        for d in &self.duplicated {
            write!(f, "\nduplicated: {d}")?;
        }
        Ok(())
    }
}

/// A shard found: its descriptor, its stacked file (if it finished) and its failures.
struct Found {
    descriptor_path: PathBuf,
    descriptor: Descriptor,
    reader: Option<StackedReader>,
    failures: HashMap<String, String>,
}

fn read_descriptor(path: &Path) -> Result<Descriptor, MergeError> {
    let read = |reason: String| MergeError::Read { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| read(e.to_string()))
}

/// The last status of each input in a manifest: the failed ones, with their error.
fn failures_in(manifest: &Path) -> HashMap<String, String> {
    let mut failed = HashMap::new();
    for line in std::fs::read_to_string(manifest).unwrap_or_default().lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(input) = entry["input"].as_str() else { continue };
        match entry["error"].as_str() {
            Some(e) if entry["status"] == "failed" => {
                failed.insert(input.to_string(), e.to_string())
            }
            _ => failed.remove(input),
        };
    }
    failed
}

fn find(dirs: &[PathBuf]) -> Result<Vec<Found>, MergeError> {
    let mut found = Vec::new();
    for dir in dirs {
        let descriptors = descriptors_in(dir)
            .map_err(|e| MergeError::Read { path: dir.clone(), reason: e.to_string() })?;
        if descriptors.is_empty() {
            return Err(MergeError::NoShard(dir.clone()));
        }
        for path in descriptors {
            let descriptor = read_descriptor(&path)?;
            let names =
                Names::of(Shard { index: descriptor.shard_index, count: descriptor.shard_count });
            let stacked = dir.join(&names.stacked);
            let reader = if stacked.is_file() {
                Some(
                    StackedReader::open(&stacked)
                        .map_err(|e| MergeError::Read { path: stacked, reason: e.to_string() })?,
                )
            } else {
                None
            };
            let failures = failures_in(&dir.join(&names.manifest));
            found.push(Found { descriptor_path: path, descriptor, reader, failures });
        }
    }
    Ok(found)
}

/// Checks that every shard has the same configuration, split and version.
fn check_agreement(found: &[Found]) -> Result<(), MergeError> {
    let first = &found[0].descriptor;
    let agree = |d: &Descriptor| {
        d.config_hash == first.config_hash
            && d.shard_count == first.shard_count
            && d.inputs_total == first.inputs_total
    };
    if found.iter().all(|f| agree(&f.descriptor)) {
        return Ok(());
    }
    Err(MergeError::Mismatch(
        found
            .iter()
            .map(|f| {
                let d = &f.descriptor;
                format!(
                    "  {}: configuration {}, shard {} of {} over {} inputs",
                    f.descriptor_path.display(),
                    &d.config_hash[..16.min(d.config_hash.len())],
                    d.shard_index + 1,
                    d.shard_count,
                    d.inputs_total
                )
            })
            .collect(),
    ))
}

/// Merges the stacked outputs in `dirs` (each the output folder of one or more shards) into
/// `out`, a row at a time in the run's input order.
///
/// # Errors
/// See [`MergeError`]; `allow_partial` merges despite missing or duplicated inputs.
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    allow_partial: bool,
    compression: Compression,
) -> Result<MergeReport, MergeError> {
    let found = find(dirs)?;
    check_agreement(&found)?;
    let count = found[0].descriptor.shard_count;
    let mut report = MergeReport { shards: found.len(), ..MergeReport::default() };
    // Every row of every shard, by input index: (shard, row).
    let mut rows: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut seen_shards: HashMap<usize, &Path> = HashMap::new();
    for (k, f) in found.iter().enumerate() {
        let d = &f.descriptor;
        if let Some(other) = seen_shards.insert(d.shard_index, &f.descriptor_path) {
            report.duplicated.push(format!(
                "shard {}/{count} is in both {} and {}",
                d.shard_index + 1,
                other.display(),
                f.descriptor_path.display()
            ));
            continue;
        }
        let in_stack: HashMap<u64, usize> = f
            .reader
            .as_ref()
            .map(|r| r.indices.iter().enumerate().map(|(row, &i)| (i, row)).collect())
            .unwrap_or_default();
        for a in &d.inputs {
            if let Some(&row) = in_stack.get(&a.index) {
                if rows.insert(a.index, (k, row)).is_some() {
                    report.duplicated.push(a.input.clone());
                }
            } else if let Some(reason) = f.failures.get(&a.input) {
                report.failures.push((a.input.clone(), reason.clone()));
            } else {
                let why = if f.reader.is_none() { "its shard did not finish" } else { "no row" };
                report.missing.push(format!(
                    "{} (shard {}/{count}: {why})",
                    a.input,
                    d.shard_index + 1
                ));
            }
        }
    }
    for k in (0..count).filter(|k| !seen_shards.contains_key(k)) {
        report
            .missing
            .push(format!("every input of shard {}/{count} (no output of it was given)", k + 1));
    }
    if !allow_partial && (!report.missing.is_empty() || !report.duplicated.is_empty()) {
        return Err(MergeError::Incomplete {
            missing: report.missing,
            duplicated: report.duplicated,
        });
    }
    report.rows = write(&found, &rows, out, compression)?;
    Ok(report)
}

fn write(
    found: &[Found],
    rows: &BTreeMap<u64, (usize, usize)>,
    out: &Path,
    compression: Compression,
) -> Result<usize, MergeError> {
    let failed = |reason: String| MergeError::Write { path: out.to_path_buf(), reason };
    let Some(first) = found.iter().find_map(|f| f.reader.as_ref()) else {
        return Err(failed("no shard has a stacked file to merge".into()));
    };
    let meta = StackedMeta {
        config_json: first.config_json.clone(),
        sample_rate: first.sample_rate,
        melkit_version: crate::VERSION.into(),
    };
    let (mut writer, temp) = melkit_io::atomic::temp_beside(out, |p| {
        StackedWriter::create(p, &meta, first.shape, compression, first.dtype)
            .map_err(std::io::Error::other)
    })
    .map_err(|e| failed(e.to_string()))?;
    for (&index, &(k, row)) in rows {
        let Some(reader) = &found[k].reader else { continue };
        let values = reader.row(row).map_err(|e| failed(e.to_string()))?;
        writer.push(index, &reader.sources[row], &values).map_err(|e| failed(e.to_string()))?;
    }
    let n = writer.rows();
    writer.close().map_err(|e| failed(e.to_string()))?;
    melkit_io::atomic::commit(temp, out, false).map_err(|e| failed(e.to_string()))?;
    Ok(n)
}
