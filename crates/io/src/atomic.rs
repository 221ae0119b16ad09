//! Atomic outputs: written under a temporary name in the destination folder and renamed over
//! the final name only when complete, so a crash never leaves a partial file under that name
//! (and, when flushed to disk first, neither does a power cut).

use std::path::Path;

use crate::error::WriteError;

/// Writes `path` by calling `write` with a temporary path beside it, then renaming; with `sync`
/// the data reaches the disk before the rename. On any error (or a panic) the temporary file is
/// removed and an existing file at `path` is left untouched.
///
/// # Errors
/// The folder cannot be created, `write` fails, or the rename fails.
pub fn write_atomic<F>(path: &Path, sync: bool, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&Path) -> Result<(), WriteError>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Outputs are ordinary files: readable as the umask allows, not private like temporaries.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let temp = builder.tempfile_in(dir)?;
    write(temp.path())?;
    if sync {
        std::fs::File::open(temp.path())?.sync_all()?;
    }
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
        write_atomic(&path, false, |p| Ok(std::fs::write(p, b"first")?)).unwrap();
        let err = write_atomic(&path, false, |p| {
            std::fs::write(p, b"half")?;
            Err(WriteError::Unsupported("disk full".into()))
        });
        assert_eq!(err.unwrap_err().to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary left behind: {names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_permissions_of_an_ordinary_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, false, |p| Ok(std::fs::write(p, b"x")?)).unwrap();
        let ordinary = dir.path().join("ordinary");
        std::fs::write(&ordinary, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&ordinary));
    }
}
