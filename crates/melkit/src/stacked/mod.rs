//! Runs into one stacked HDF5 file (`--format stacked-h5`), whole or as one shard of a cluster
//! job. Each input's tensor is first written as its own part (an NPY file, atomically, logged in
//! the shard's manifest as it finishes), so a killed shard re-run with `--resume` redoes only
//! what is missing; once every input is settled the parts are stacked, in input order, row by
//! row into `melkit-stacked[.shard-K-of-N].h5` (renamed into place when complete), and removed.
//! A descriptor (`melkit-stacked[...].json`), written first, records which inputs the shard owns
//! so that `melkit merge` can tell a missing input from a failed one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit_core::Config;
use melkit_io::stacked::{StackedMeta, StackedReader, StackedWriter};
use melkit_io::{Compression, OutputFormat};
use serde::{Deserialize, Serialize};

use crate::discover::{InputFile, InputSource, Listed};
use crate::error::Error;
use crate::manifest;
use crate::pipeline::{OutputOptions, Pipeline, Progress};
use crate::report::{RunReport, Stage};
use crate::shard::{Shard, Sharded, shard_of};

mod rows;

use rows::Stacking;

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

/// A source less the inputs `skip` names.
struct Without<'a> {
    source: &'a dyn InputSource,
    skip: &'a (dyn Fn(&InputFile) -> bool + Sync),
}

impl InputSource for Without<'_> {
    fn list(&self) -> Box<dyn Iterator<Item = Listed> + '_> {
        Box::new(self.source.list().filter(|l| l.result.as_ref().map_or(true, |f| !(self.skip)(f))))
    }
}

/// The key of a stacked row's source, to remember many rows compactly.
fn source_key(source: &str) -> u64 {
    crate::keys::key64(source.as_bytes())
}

/// Writes the descriptor of `shard`'s inputs, one input a line (listed as they are found, never
/// all in memory), under a temporary name renamed into place.
fn write_descriptor(
    path: &Path,
    source: &dyn InputSource,
    shard: Shard,
    hash: &str,
) -> Result<(), Error> {
    use std::io::Write;
    let failed = |e: std::io::Error| write_error(path, e);
    let (file, temp) = melkit_io::atomic::temp_beside(path, melkit_io::atomic::create_new)
        .map_err(|e| write_error(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut total = 0u64;
    write!(out, "{{\n  \"inputs\": [").map_err(failed)?;
    let mut first = true;
    for listed in source.list() {
        let Ok(input) = listed.result else { continue };
        total += 1;
        if shard.count > 1 && shard_of(&input.rel, shard.count) != shard.index {
            continue;
        }
        let entry = Assigned { index: listed.index, input: input.path.display().to_string() };
        let line = serde_json::to_string(&entry).map_err(|e| failed(e.into()))?;
        write!(out, "{}\n    {line}", if first { "" } else { "," }).map_err(failed)?;
        first = false;
    }
    let tail = serde_json::json!({
        "shard_index": shard.index,
        "shard_count": shard.count,
        "inputs_total": total,
        "config_hash": hash,
        "melkit_version": crate::VERSION,
    });
    let tail = tail.to_string();
    let fields = tail.trim_start_matches('{').trim_end_matches('}');
    write!(out, "\n  ],\n  {fields}\n}}\n").map_err(failed)?;
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    drop(file);
    melkit_io::atomic::commit(temp, path, false).map_err(|e| write_error(path, e))
}

impl Pipeline {
    /// Processes this shard's share of `source` (every input of the whole run, in its order)
    /// into one stacked HDF5 file in `out_dir`. `options.format` and `options.shard` are
    /// ignored; the compression, `sync`, `resume` and cache options apply.
    ///
    /// # Errors
    /// `sample_length` unset (the rows must share a shape), or what stops any run; a file that
    /// fails is reported and left out of the stack.
    pub fn process_stacked(
        &mut self,
        source: &dyn InputSource,
        shard: Shard,
        out_dir: &Path,
        options: &OutputOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, Error> {
        let started = Instant::now();
        let Some(_) = self.config().sample_length else {
            return Err(Error::Usage(
                "--format stacked-h5 needs sample_length set, so that every file has the same \
                 shape (it is \"full\" here)"
                    .into(),
            ));
        };
        let names = Names::of(shard);
        let part_options = OutputOptions {
            format: OutputFormat::Npy,
            compression: Compression::None,
            manifest: Some(out_dir.join(&names.manifest)),
            shard: None,
            ..options.clone()
        };
        let hash = manifest::config_hash(self.config(), &part_options);
        std::fs::create_dir_all(out_dir).map_err(|e| write_error(out_dir, e))?;
        write_descriptor(&out_dir.join(&names.descriptor), source, shard, &hash)?;
        let sharded = Sharded { source, shard };
        let mine: &dyn InputSource = if shard.count > 1 { &sharded } else { source };

        // Rows of an earlier complete stack of the same configuration are kept by --resume.
        let stacked_path = out_dir.join(&names.stacked);
        let config_json = self.config().to_json().to_string();
        let previous = options
            .resume
            .then(|| StackedReader::open(&stacked_path).ok())
            .flatten()
            .filter(|r| stored_hash(&r.config_json, &part_options).as_deref() == Some(&hash));
        let kept: HashMap<u64, usize> = previous
            .as_ref()
            .map(|r| r.sources.iter().enumerate().map(|(i, s)| (source_key(s), i)).collect())
            .unwrap_or_default();
        let skip = |f: &InputFile| kept.contains_key(&source_key(&f.path.display().to_string()));
        let todo = Without { source: mine, skip: &skip };
        let parts = out_dir.join(&names.parts);
        let mut report = self.process_inputs(&todo, &parts, &part_options, progress)?;
        let stacking = Instant::now();
        if !kept.is_empty() {
            report.skipped += mine.list().filter(|l| l.result.as_ref().is_ok_and(&skip)).count();
        }

        let done = manifest::done_set(&out_dir.join(&names.manifest), &hash);
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
        let is_done = |input: &Path| done.contains(input);
        let stacking_run = Stacking { mine, is_done: &is_done, kept: &kept, parts: &parts };
        rows::stack_rows(&stacking_run, previous.as_ref(), &mut writer)
            .map_err(|e| write_error(&stacked_path, e))?;
        let rows = writer.rows();
        writer.close().map_err(|e| write_error(&stacked_path, e))?;
        drop(previous);
        melkit_io::atomic::commit(temp, &stacked_path, options.sync)
            .map_err(|e| write_error(&stacked_path, e))?;
        tracing::info!("stacked {rows} files into {}", stacked_path.display());
        self.pool.install(|| rows::remove_parts(&parts));
        // Stacking is writing (reading the parts back, writing the stack, removing the parts):
        // its wall time, all of it on this thread, counts as writing (the reader's and the
        // removal's threads beside it are not counted). The run's wall time is the whole
        // call's, not only its parts'.
        report.stages.add(Stage::Write, stacking.elapsed());
        report.total_time = started.elapsed();
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

    /// Workers and batch sizes leave a stored configuration's hash alone; `n_mels` changes it.
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
