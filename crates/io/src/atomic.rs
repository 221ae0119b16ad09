//! Atomic outputs: written under a temporary name in the destination folder and renamed over
//! the final name only when complete, so a crash never leaves a partial file under that name.

use std::path::Path;

use crate::error::WriteError;

/// Writes `path` by calling `write` with a temporary path beside it, then renaming. On any error
/// (or a panic) the temporary file is removed and an existing file at `path` is left untouched.
///
/// # Errors
/// The folder cannot be created, `write` fails, or the rename fails.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&Path) -> Result<(), WriteError>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    write(temp.path())?;
    temp.persist(path).map_err(|e| WriteError::Io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.bin");
        write_atomic(&path, |p| Ok(std::fs::write(p, b"first")?)).unwrap();
        let err = write_atomic(&path, |p| {
            std::fs::write(p, b"half")?;
            Err(WriteError::Unsupported("disk full".into()))
        });
        assert_eq!(err.unwrap_err().to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary left behind: {names:?}");
    }
}
