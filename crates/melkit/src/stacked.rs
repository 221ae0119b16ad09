//! Runs into one stacked HDF5 file (`--format stacked-h5`), whole or as one shard of a cluster
//! job. Each input's tensor is first written as its own part (an NPY file, atomically, logged in
//! the shard's manifest as it finishes), so a killed shard re-run with `--resume` redoes only
//! what is missing; once every input is settled the parts are stacked, in input order, row by
//! row into `melkit-stacked[.shard-K-of-N].h5` (renamed into place when complete), and removed.
//! A descriptor (`melkit-stacked[...].json`), written first, records which inputs the shard owns
//! so that `melkit merge` can tell a missing input from a failed one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel};
use std::time::Instant;

use melkit_core::Config;
use melkit_io::stacked::{StackedMeta, StackedReader, StackedWriter};
use melkit_io::{Compression, OutputFormat, WriteError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::discover::{InputFile, InputSource, Listed};
use crate::error::Error;
use crate::manifest;
use crate::pipeline::{OutputOptions, Pipeline, Progress};
use crate::report::{RunReport, Stage};
use crate::shard::{Shard, Sharded, shard_of};

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
        // Each row's values: its part, else its row in the earlier stack; a file that failed
        // has neither.
        let rows: Vec<(u64, String, Row)> = mine
            .list()
            .filter_map(|listed| {
                let f = listed.result.ok()?;
                let source = f.path.display().to_string();
                let row = match (done.contains(&f.path), kept.get(&source_key(&source))) {
                    (true, _) => Row::Part(f.output_path(&parts, OutputFormat::Npy)),
                    (false, Some(&i)) if previous.is_some() => Row::Kept(i),
                    _ => return None,
                };
                Some((listed.index, source, row))
            })
            .collect();
        stack_rows(&rows, previous.as_ref(), &mut writer)
            .map_err(|e| write_error(&stacked_path, e))?;
        let rows = writer.rows();
        writer.close().map_err(|e| write_error(&stacked_path, e))?;
        drop(previous);
        melkit_io::atomic::commit(temp, &stacked_path, options.sync)
            .map_err(|e| write_error(&stacked_path, e))?;
        tracing::info!("stacked {rows} files into {}", stacked_path.display());
        self.pool.install(|| remove_parts(&parts));
        // Stacking is writing (reading the parts back, writing the stack, removing the parts),
        // and the run's wall time is the whole call's, not only its parts'.
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

/// Where a row of the stack comes from.
enum Row {
    /// The part this run (or the run it resumes) wrote.
    Part(PathBuf),
    /// Its row in the earlier stack.
    Kept(usize),
}

/// Pushes `rows`, in order, into the stack. The parts are read ahead on a thread of their own,
/// through buffers handed back and forth, while this one writes the stack: the HDF5 writes and
/// the reads (each about a third of stacking on its own) overlap, and no buffer is allocated
/// or zeroed anew a part.
fn stack_rows(
    rows: &[(u64, String, Row)],
    previous: Option<&StackedReader>,
    writer: &mut StackedWriter,
) -> Result<(), WriteError> {
    std::thread::scope(|threads| {
        let (ready, next) = sync_channel::<Result<Vec<f32>, WriteError>>(1);
        let (spent, buffers) = channel::<Vec<f32>>();
        let parts = rows.iter().filter_map(|(.., row)| match row {
            Row::Part(path) => Some(path),
            Row::Kept(_) => None,
        });
        // Named, so that what it reads is told apart in a profile; it stops when this thread
        // stops listening (the stack failed).
        std::thread::Builder::new().name("melkit-parts".into()).spawn_scoped(
            threads,
            move || {
                for path in parts {
                    let buffer = buffers.try_recv().unwrap_or_default();
                    if ready.send(read_part(path, buffer)).is_err() {
                        break;
                    }
                }
            },
        )?;
        for (index, source, row) in rows {
            let values = match row {
                Row::Part(_) => next
                    .recv()
                    .map_err(|_| WriteError::Npy("the parts' reader stopped".into()))??,
                Row::Kept(i) => previous.map_or_else(
                    || Err(WriteError::Npy(format!("{source}: no earlier stack holds it"))),
                    |r| r.row(*i),
                )?,
            };
            writer.push(*index, source, &values)?;
            if matches!(row, Row::Part(_)) {
                let _ = spent.send(values);
            }
        }
        Ok(())
    })
}

/// The values of a part (an NPY file this run wrote), read into `buffer`'s allocation.
fn read_part(path: &Path, buffer: Vec<f32>) -> Result<Vec<f32>, WriteError> {
    let read = melkit_io::read::read_npy_reusing(path, buffer);
    Ok(read.map_err(|e| WriteError::Npy(e.to_string()))?.values)
}

/// Removes the folder of parts once stacked, its files over the calling pool's threads (most
/// of an unlink, dropping the file's cached pages, runs outside the folder's lock).
fn remove_parts(parts: &Path) {
    if let Ok(entries) = std::fs::read_dir(parts) {
        let files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.par_iter().for_each(|file| {
            let _ = std::fs::remove_file(file);
        });
    }
    let _ = std::fs::remove_dir_all(parts);
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
