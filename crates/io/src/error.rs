//! The errors of reading audio and writing outputs (the caller adds the path).

/// Why an audio file could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be opened or read.
    #[error("cannot read the file: {}", io_reason(.0))]
    Io(#[from] std::io::Error),
    /// The content is not audio in a format melkit reads.
    #[error("not a supported audio file: {0}")]
    Format(String),
    /// The format is known but this encoding of it is not supported.
    #[error("unsupported encoding: {0}")]
    Unsupported(String),
    /// The audio's header or data make no sense.
    #[error("invalid audio: {0}")]
    Invalid(String),
    /// Resampling failed.
    #[error("resampling from {from} Hz to {to} Hz failed: {reason}")]
    Resample {
        /// The file's rate.
        from: u32,
        /// The target rate.
        to: u32,
        /// The resampler's message.
        reason: String,
    },
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file-system error.
    #[error("{}", io_reason(.0))]
    Io(#[from] std::io::Error),
    /// The HDF5 library failed.
    #[error("HDF5: {0}")]
    Hdf5(String),
    /// The NPY/NPZ encoder failed.
    #[error("NPY: {0}")]
    Npy(String),
    /// An output option that does not fit the format.
    #[error("{0}")]
    Unsupported(String),
}

/// Why an output file could not be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {}: {reason}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why: missing, not such a file, another element type, a header claiming more than the
    /// file holds.
    pub reason: String,
}

/// A short reason for an I/O error: the common ones in words, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no such file or directory".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::IsADirectory => "it is a directory".into(),
        ErrorKind::StorageFull => "no space left on the device".into(),
        ErrorKind::FileTooLarge => "the file size limit was reached".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::UnexpectedEof => "the file ends early".into(),
        _ => e.to_string(),
    }
}
