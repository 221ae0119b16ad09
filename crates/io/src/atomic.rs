//! Atomic outputs: written under a temporary name in the destination folder and renamed over
//! the final name only when complete, so a crash never leaves a partial file under that name
//! (and, when flushed to disk first, neither does a power cut).

use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::WriteError;

/// A new temporary file beside `path` (its folder created if needed), named `.NAME.XXXX.tmp`,
/// with the permissions of an ordinary new file. It is deleted if dropped before
/// [`commit`](commit) renames it.
///
/// # Errors
/// The folder cannot be created or written.
pub fn temp_beside(path: &Path) -> Result<NamedTempFile, WriteError> {
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
    Ok(builder.tempfile_in(dir)?)
}

/// Renames a complete temporary file over `path`; with `sync` its data reaches the disk first.
///
/// # Errors
/// The flush or the rename fails (the temporary file is then removed).
pub fn commit(temp: NamedTempFile, path: &Path, sync: bool) -> Result<(), WriteError> {
    if sync {
        std::fs::File::open(temp.path())?.sync_all()?;
    }
    temp.persist(path).map_err(|e| WriteError::Io(e.error))?;
    Ok(())
}
