//! Stacking a run's parts into its HDF5 file: the rows in input order, the parts read ahead on
//! a thread of their own while this one writes the stack, and the parts removed once stacked.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use melkit_io::stacked::{StackedReader, StackedWriter};
use melkit_io::{OutputFormat, WriteError};
use rayon::prelude::*;

use super::source_key;
use crate::discover::InputSource;

/// What stacking needs of a run: its inputs, which of them have a part, the earlier stack's
/// rows of the others (by [`source_key`]), and the folder of parts.
pub(super) struct Stacking<'a> {
    /// The shard's inputs, listed once more, in order.
    pub mine: &'a dyn InputSource,
    /// Whether an input's part is done (the manifest says so).
    pub is_done: &'a (dyn Fn(&Path) -> bool + Sync),
    /// The row of each input the earlier stack holds.
    pub kept: &'a HashMap<u64, usize>,
    /// The folder of parts.
    pub parts: &'a Path,
}

/// A row as the reader hands it over: its index, its input and where its values are.
type Row = (u64, String, Values);

/// Where a row's values are.
enum Values {
    /// Read from its part.
    Part(Result<Vec<f32>, WriteError>),
    /// Its row in the earlier stack, read on the writing thread (HDF5 takes one call at a time).
    Kept(usize),
}

/// Rows the reader may have queued ahead of the writer (besides the one it is reading and the
/// one being written).
const AHEAD: usize = 2;

/// Pushes every row, in input order, into the stack: its part, else its row in the earlier
/// stack; an input that failed has neither. A thread of its own lists the inputs and reads the
/// parts ahead through buffers handed back and forth (neither allocated nor zeroed again a
/// part), so that the reads and the HDF5 writes (each about a third of stacking) overlap, with
/// at most [`AHEAD`] rows queued, one being read and one being written, whatever the corpus.
///
/// # Errors
/// A part cannot be read (the error names it), a row cannot be written, or the reader cannot
/// start or stops by a panic.
pub(super) fn stack_rows(
    run: &Stacking<'_>,
    previous: Option<&StackedReader>,
    writer: &mut StackedWriter,
) -> Result<(), WriteError> {
    let stop = &AtomicBool::new(false);
    std::thread::scope(|threads| {
        let (ready, next) = sync_channel::<Row>(AHEAD);
        let (spent, buffers) = channel::<Vec<f32>>();
        let reader = std::thread::Builder::new()
            .name("melkit-parts".into())
            .spawn_scoped(threads, move || read_rows(run, &ready, &buffers, stop))
            .map_err(|e| {
                let reason = format!("cannot start a thread to read the parts: {e}");
                WriteError::Io(std::io::Error::new(e.kind(), reason))
            })?;
        // `next` goes with the call, so a reader still sending stops when the writing does;
        // one still listing inputs without rows stops at the flag.
        let written = push_rows(next, &spent, previous, writer);
        stop.store(true, Ordering::Relaxed);
        // Joined here, so that the reader's panic is this run's error and not a panic: its
        // rows ending early would otherwise look like the end of the inputs. The writer's own
        // error, where it stopped first, is the one reported.
        let joined = reader.join();
        match (written, joined) {
            (Err(e), _) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(_)) => Err(WriteError::Io(std::io::Error::other(
                "the thread reading the parts stopped by a panic",
            ))),
        }
    })
}

/// The reader: every row with values, in order, until the writer stops listening.
fn read_rows(
    run: &Stacking<'_>,
    ready: &SyncSender<Row>,
    buffers: &Receiver<Vec<f32>>,
    stop: &AtomicBool,
) {
    for listed in run.mine.list() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(file) = listed.result else { continue };
        let source = file.path.display().to_string();
        let values = if (run.is_done)(&file.path) {
            let buffer = buffers.try_recv().unwrap_or_default();
            Values::Part(read_part(&file.output_path(run.parts, OutputFormat::Npy), buffer))
        } else if let Some(&i) = run.kept.get(&source_key(&source)) {
            Values::Kept(i)
        } else {
            continue;
        };
        if ready.send((listed.index, source, values)).is_err() {
            return;
        }
    }
}

/// The writer: each row the reader hands over into the stack, its buffer handed back.
fn push_rows(
    next: Receiver<Row>,
    spent: &Sender<Vec<f32>>,
    previous: Option<&StackedReader>,
    writer: &mut StackedWriter,
) -> Result<(), WriteError> {
    for (index, source, values) in next {
        match values {
            Values::Part(read) => {
                let values = read?;
                writer.push(index, &source, &values)?;
                let _ = spent.send(values);
            }
            Values::Kept(i) => {
                let earlier = previous.ok_or_else(|| {
                    WriteError::Npy(format!("{source}: no earlier stack holds its row"))
                })?;
                writer.push(index, &source, &earlier.row(i)?)?;
            }
        }
    }
    Ok(())
}

/// The values of a part (an NPY file this run wrote), read into `buffer`'s allocation.
fn read_part(path: &Path, buffer: Vec<f32>) -> Result<Vec<f32>, WriteError> {
    let read = melkit_io::read::read_npy_reusing(path, buffer);
    Ok(read.map_err(|e| WriteError::Npy(e.to_string()))?.values)
}

/// Removes the folder of parts once stacked: each folder's files over the calling pool's
/// threads as they are listed (most of an unlink, dropping the file's cached pages, runs outside
/// the folder's lock), its subfolders the same way, then what is left.
pub(super) fn remove_parts(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        entries.par_bridge().for_each(|entry| {
            let Ok(entry) = entry else { return };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_parts(&entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        });
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use melkit_io::output::{Compression, Dtype};
    use melkit_io::stacked::StackedMeta;

    use super::*;
    use crate::discover::Inputs;

    /// The shape of a row here: six values.
    const SHAPE: [usize; 4] = [1, 1, 2, 3];

    /// Five inputs (never decoded: only listed) and the folder of their parts.
    fn inputs(dir: &Path) -> (Inputs, Vec<PathBuf>, PathBuf) {
        let root = dir.join("in");
        std::fs::create_dir_all(&root).unwrap();
        let files: Vec<PathBuf> = (0..5).map(|k| root.join(format!("clip_{k}.wav"))).collect();
        files.iter().for_each(|f| std::fs::write(f, b"").unwrap());
        (Inputs::new(&[root]), files, dir.join("parts"))
    }

    /// Row `k`'s values, `offset` added.
    fn values(k: usize, offset: f32) -> Vec<f32> {
        (0..6).map(|i| (10 * k + i) as f32 + offset).collect()
    }

    /// Writes input `k`'s part with `values`, its header claiming `claimed` of them.
    fn part_claiming(parts: &Path, k: usize, values: &[f32], claimed: usize) {
        std::fs::create_dir_all(parts).unwrap();
        let mut bytes = melkit_io::npy::npy_header("<f4", &[claimed]);
        values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
        std::fs::write(parts.join(format!("clip_{k}.npy")), bytes).unwrap();
    }

    /// Writes input `k`'s part with `values`.
    fn part(parts: &Path, k: usize, values: &[f32]) {
        part_claiming(parts, k, values, values.len());
    }

    /// Stacks into `path` the inputs `done` says have parts and those `kept` from `previous`.
    fn stack(
        path: &Path,
        (inputs, parts): (&Inputs, &Path),
        is_done: &(dyn Fn(&Path) -> bool + Sync),
        (kept, previous): (&HashMap<u64, usize>, Option<&StackedReader>),
    ) -> Result<(), WriteError> {
        let meta = StackedMeta {
            config_json: "{}".into(),
            sample_rate: 4096,
            melkit_version: "test".into(),
        };
        let mut writer =
            StackedWriter::create(path, &meta, SHAPE, Compression::None, Dtype::F32).unwrap();
        let run = Stacking { mine: inputs, is_done, kept, parts };
        stack_rows(&run, previous, &mut writer)?;
        writer.close()
    }

    /// A first stack from every part, then one keeping two rows of it, taking two new parts
    /// and leaving out a failed input: every row in input order with its own values.
    #[test]
    fn every_row_is_its_part_or_its_earlier_row_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, files, parts) = inputs(dir.path());
        (0..5).for_each(|k| part(&parts, k, &values(k, 0.0)));
        let first = dir.path().join("first.h5");
        let all = |_: &Path| true;
        stack(&first, (&inputs, &parts), &all, (&HashMap::new(), None)).unwrap();
        let earlier = StackedReader::open(&first).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        assert_eq!((&earlier.sources, &earlier.indices), (&names, &vec![0, 1, 2, 3, 4]));
        for k in 0..5 {
            assert_eq!(earlier.row(k).unwrap(), values(k, 0.0), "row {k}");
        }

        // Inputs 0 and 3 kept from the earlier stack, the others' parts new, input 2 failed
        // (neither), through buffers of the sizes the reader hands back.
        (0..5).for_each(|k| part(&parts, k, &values(k, 1000.0)));
        let kept: HashMap<u64, usize> = [0, 3].map(|k| (source_key(&names[k]), k)).into();
        let new = [&files[1], &files[4]];
        let is_new = |input: &Path| new.iter().any(|f| f.as_path() == input);
        let second = dir.path().join("second.h5");
        stack(&second, (&inputs, &parts), &is_new, (&kept, Some(&earlier))).unwrap();
        let got = StackedReader::open(&second).unwrap();
        assert_eq!(got.indices, vec![0, 1, 3, 4]);
        let want = [values(0, 0.0), values(1, 1000.0), values(3, 0.0), values(4, 1000.0)];
        for (row, want) in want.iter().enumerate() {
            assert_eq!(&got.row(row).unwrap(), want, "row {row}");
        }
    }

    /// A missing part, a part holding less than its header claims and a part of another shape
    /// each stop the stack with their own message.
    #[test]
    fn a_part_that_cannot_be_read_or_written_stops_the_stack_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, _, parts) = inputs(dir.path());
        [0, 1, 3, 4].into_iter().for_each(|k| part(&parts, k, &values(k, 0.0)));
        let all = |_: &Path| true;
        let none = HashMap::new();
        let out = dir.path().join("a.h5");
        let e = stack(&out, (&inputs, &parts), &all, (&none, None)).unwrap_err();
        let missing = parts.join("clip_2.npy");
        let want = format!(
            "NPY: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        );
        assert_eq!(e.to_string(), want);

        // The first part holding less than its header claims, then holding five values: each
        // its own error while the reader reads ahead, and the call returns (the reader stops
        // when the writing does).
        part(&parts, 2, &values(2, 0.0));
        let first = parts.join("clip_0.npy");
        part_claiming(&parts, 0, &values(0, 0.0)[..5], 6);
        let out = dir.path().join("b.h5");
        let e = stack(&out, (&inputs, &parts), &all, (&none, None)).unwrap_err();
        let want = format!(
            "NPY: cannot read {}: its header claims 6 values (24 bytes) but it holds only 20 \
             bytes of data",
            first.display()
        );
        assert_eq!(e.to_string(), want);
        part(&parts, 0, &values(0, 0.0)[..5]);
        let out = dir.path().join("c.h5");
        let e = stack(&out, (&inputs, &parts), &all, (&none, None)).unwrap_err();
        let input = dir.path().join("in/clip_0.wav");
        let want = format!("HDF5: {}: its tensor is not [1, 1, 2, 3]", input.display());
        assert_eq!(e.to_string(), want);
    }

    /// The reader stopping by a panic (here in the manifest's lookup) is the stack's error, not
    /// a panic of the run, even though its rows end as if the inputs had.
    #[test]
    fn a_panic_of_the_reader_is_an_error_of_the_stack() {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, files, parts) = inputs(dir.path());
        (0..5).for_each(|k| part(&parts, k, &values(k, 0.0)));
        let third = files[2].clone();
        let panics = move |input: &Path| {
            assert!(input != third, "a lookup that fails");
            true
        };
        let out = dir.path().join("a.h5");
        let e = stack(&out, (&inputs, &parts), &panics, (&HashMap::new(), None)).unwrap_err();
        assert_eq!(e.to_string(), "the thread reading the parts stopped by a panic");
    }
}
