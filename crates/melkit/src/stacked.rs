//! Runs into one stacked HDF5 file (`--format stacked-h5`), whole or as one shard of a cluster
//! job. Each input's tensor is first written as its own part (an NPY file, atomically, logged in
//! the shard's manifest as it finishes), so a killed shard re-run with `--resume` redoes only
//! what is missing; once every input is settled the parts are stacked, in input order, row by
//! row into `melkit-stacked[.shard-K-of-N].h5` (renamed into place when complete), and removed.
//! A descriptor (`melkit-stacked[...].json`), written first, records which inputs the shard owns
//! so that `melkit merge` can tell a missing input from a failed one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use melkit_core::Config;
use melkit_io::stacked::{StackedMeta, StackedReader, StackedWriter};
use melkit_io::{Compression, OutputFormat, WriteError};
use serde::{Deserialize, Serialize};

use crate::discover::{Discovery, InputFile};
use crate::error::Error;
use crate::manifest;
use crate::pipeline::{OutputOptions, Pipeline, Progress};
use crate::report::RunReport;
use crate::shard::{Shard, split};

/// The files a stacked run of one shard writes in its output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The stacked HDF5 file.
    pub stacked: String,
    /// The descriptor: the shard's inputs and configuration.
    pub descriptor: String,
    /// The manifest of the shard.
    pub manifest: String,
    /// The folder of the parts not yet stacked.
    pub parts: String,
}

impl Names {
    /// The names for `shard` (`melkit-stacked.h5` ... for a whole run).
    pub fn of(shard: Shard) -> Self {
        let tag = if shard.count <= 1 {
            String::new()
        } else {
            format!(".shard-{}-of-{}", shard.index + 1, shard.count)
        };
        Names {
            stacked: format!("melkit-stacked{tag}.h5"),
            descriptor: format!("melkit-stacked{tag}.json"),
            manifest: shard.manifest_name(),
            parts: format!(".melkit-parts{tag}"),
        }
    }
}

/// One input a shard owns: its position in the whole run's input list, and its path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    /// Position in the run's input list (the row order of the stacked result).
    pub index: u64,
    /// The input, as given.
    pub input: String,
}

/// What a shard records before it computes anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// This shard, from 0.
    pub shard_index: usize,
    /// Shards in all.
    pub shard_count: usize,
    /// Inputs of the whole run.
    pub inputs_total: usize,
    /// The configuration hash of the outputs.
    pub config_hash: String,
    /// The melkit that wrote it.
    pub melkit_version: String,
    /// The inputs of this shard.
    pub inputs: Vec<Assigned>,
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::OutputDir { path: path.to_path_buf(), reason: e.to_string() }
}

impl Pipeline {
    /// Processes this shard's share of `found` (every input of the whole run, in its order) into
    /// one stacked HDF5 file in `out_dir`. `options.format` is ignored; the compression, `sync`,
    /// `resume` and cache options apply.
    ///
    /// # Errors
    /// `sample_length` unset (the rows must share a shape), or what stops any run; a file that
    /// fails is reported and left out of the stack.
    pub fn process_stacked(
        &mut self,
        found: Discovery,
        shard: Shard,
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        let Some(_) = self.config().sample_length else {
            return Err(Error::Usage(
                "--format stacked-h5 needs sample_length set, so that every file has the same \
                 shape (it is \"full\" here)"
                    .into(),
            ));
        };
        let names = Names::of(shard);
        let inputs_total = found.files.len();
        let (mine, failures) = split(found, shard);
        let part_options = OutputOptions {
            format: OutputFormat::Npy,
            compression: Compression::None,
            manifest: Some(out_dir.join(&names.manifest)),
            ..options.clone()
        };
        let hash = manifest::config_hash(self.config(), &part_options);
        let descriptor = Descriptor {
            shard_index: shard.index,
            shard_count: shard.count,
            inputs_total,
            config_hash: hash.clone(),
            melkit_version: crate::VERSION.into(),
            inputs: mine
                .iter()
                .map(|(index, f)| Assigned { index: *index, input: f.path.display().to_string() })
                .collect(),
        };
        let descriptor_path = out_dir.join(&names.descriptor);
        let text =
            serde_json::to_string_pretty(&descriptor).map_err(|e| write_error(out_dir, e))?;
        melkit_io::atomic::write_file(&descriptor_path, text.as_bytes())
            .map_err(|e| write_error(&descriptor_path, e))?;

        // Rows of an earlier complete stack of the same configuration are kept by --resume.
        let stacked_path = out_dir.join(&names.stacked);
        let config_json = self.config().to_json().to_string();
        let previous = options
            .resume
            .then(|| StackedReader::open(&stacked_path).ok())
            .flatten()
            .filter(|r| stored_hash(&r.config_json, &part_options).as_deref() == Some(&hash));
        let kept: HashMap<String, usize> = previous
            .as_ref()
            .map(|r| r.sources.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect())
            .unwrap_or_default();
        let todo: Vec<InputFile> = mine
            .iter()
            .filter(|(_, f)| !kept.contains_key(&f.path.display().to_string()))
            .map(|(_, f)| f.clone())
            .collect();
        let kept_here = mine.len() - todo.len();
        let parts = out_dir.join(&names.parts);
        let mut report = self.process_discovered(
            Discovery { files: todo, failures },
            &parts,
            &part_options,
            progress,
        )?;
        report.skipped += kept_here;

        let done = manifest::done_in(&out_dir.join(&names.manifest), &hash);
        let meta = StackedMeta {
            config_json,
            sample_rate: self.config().sample_rate,
            melkit_version: crate::VERSION.into(),
        };
        let shape = self.plan().shape(self.plan().n_long(self.plan().fixed_len.unwrap_or(0)));
        let compression = options.compression;
        let dtype = self.config().dtype;
        let (mut writer, temp) = melkit_io::atomic::temp_beside(&stacked_path, |p| {
            StackedWriter::create(p, &meta, shape, compression, dtype)
                .map_err(std::io::Error::other)
        })
        .map_err(|e| write_error(&stacked_path, e))?;
        for (index, f) in &mine {
            let source = f.path.display().to_string();
            // Its part, else its row in the earlier stack; a file that failed has neither.
            let values = match (done.get(&f.path), &previous, kept.get(&source)) {
                (Some(part), ..) => Some(read_part(part)),
                (None, Some(r), Some(&i)) => Some(r.row(i)),
                _ => None,
            };
            if let Some(values) = values {
                values
                    .and_then(|v| writer.push(*index, &source, &v))
                    .map_err(|e| write_error(&stacked_path, e))?;
            }
        }
        let rows = writer.rows();
        writer.close().map_err(|e| write_error(&stacked_path, e))?;
        drop(previous);
        melkit_io::atomic::commit(temp, &stacked_path, options.sync)
            .map_err(|e| write_error(&stacked_path, e))?;
        tracing::info!("stacked {rows} files into {}", stacked_path.display());
        let _ = std::fs::remove_dir_all(&parts);
        Ok(report)
    }
}

/// The hash of the numbers a configuration stored as JSON gives (see
/// [`manifest::config_hash`]: run-control keys such as workers and batch sizes are left out).
fn stored_hash(json: &str, options: &OutputOptions) -> Option<String> {
    let mut config = Config::default();
    config.apply_json(&serde_json::from_str(json).ok()?).ok()?;
    Some(manifest::config_hash(&config, options))
}

/// The values of a part (an NPY file this run wrote).
fn read_part(path: &Path) -> Result<Vec<f32>, WriteError> {
    Ok(melkit_io::read::read_output(path).map_err(WriteError::Npy)?.values)
}

/// The descriptors (`melkit-stacked*.json`) in `dir`, sorted by name.
pub fn descriptors_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("melkit-stacked") && n.ends_with(".json"))
        })
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_control_keys_do_not_change_the_numbers() {
        let mut a = Config::default();
        let mut b = a.clone();
        b.set("max_workers", "7").unwrap();
        b.set("batch_size", "3").unwrap();
        let o = OutputOptions::default();
        let hash = |c: &Config| stored_hash(&c.to_json().to_string(), &o);
        assert_eq!(hash(&a), hash(&b));
        assert!(hash(&a).is_some());
        a.set("n_mels", "40").unwrap();
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(stored_hash("not json", &o), None);
    }
}
