//! Atomic outputs: written under a temporary name in the destination folder and renamed over
//! the final name only when complete, so a crash never leaves a partial file under that name
//! (and, when flushed to disk first, neither does a power cut).

use std::path::Path;

use tempfile::TempPath;

use crate::error::WriteError;

/// Creates a new temporary file beside `path` (its folder created if needed), named
/// `.NAME.XXXX.tmp`, with `create` (which must create the file exclusively, never truncate
/// one: on ext4 a truncated file is flushed to disk when it is closed). The path is deleted
/// if dropped before [`commit`] renames it.
///
/// # Errors
/// The folder cannot be created, or `create` fails.
pub fn temp_beside<R>(
    path: &Path,
    mut create: impl FnMut(&Path) -> std::io::Result<R>,
) -> Result<(R, TempPath), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut make =
        || tempfile::Builder::new().prefix(&prefix).suffix(".tmp").make_in(dir, &mut create);
    // The folder is made only when creating the file fails: a run writes most outputs into
    // folders that exist, and making sure first cost two system calls per output (mkdir, then
    // stat). A missing folder is not always reported as `NotFound` (HDF5 says only that it
    // could not create the file), and another thread may make the folder between this
    // thread's failure and any check of it, so every failure makes the folder (a no-op where
    // it exists) and tries once more; a failure for another reason fails again, as itself.
    let temp = match make() {
        Ok(made) => made,
        Err(_) => {
            std::fs::create_dir_all(dir)?;
            make()?
        }
    };
    let (file, temp) = temp.into_parts();
    Ok((file, temp))
}

/// A new file for writing, created exclusively (with the permissions of any new file).
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(path)
}

/// Writes `bytes` to `path` through a temporary file beside it (creating the folder), so that
/// `path` holds either its old content or all of `bytes`.
///
/// # Errors
/// The folder or the file cannot be written.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write;
    let (mut file, temp) = temp_beside(path, create_new)?;
    file.write_all(bytes)?;
    drop(file);
    commit(temp, path, false)
}

/// Renames a complete temporary file over `path`; with `sync` its data reaches the disk first.
///
/// # Errors
/// The flush or the rename fails (the temporary file is then removed).
pub fn commit(temp: TempPath, path: &Path, sync: bool) -> Result<(), WriteError> {
    if sync {
        std::fs::File::open(&temp)?.sync_all()?;
    }
    temp.persist(path).map_err(|e| WriteError::Io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_writing_into_the_same_missing_folder_all_succeed() {
        for round in 0..200 {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join(format!("new{round}/nested"));
            std::thread::scope(|s| {
                for t in 0..8 {
                    let path = folder.join(format!("{t}.npy"));
                    s.spawn(move || write_file(&path, b"melkit").unwrap());
                }
            });
            assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 8);
        }
    }

    #[test]
    fn a_file_lands_in_an_existing_folder_and_in_missing_nested_ones() {
        let dir = tempfile::tempdir().unwrap();
        for path in [dir.path().join("a.npy"), dir.path().join("x/y/z/b.npy")] {
            write_file(&path, b"melkit").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"melkit");
            // Nothing temporary is left beside it.
            let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        }
    }
}
