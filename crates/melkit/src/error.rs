//! The errors of the facade: what stops a run before it starts, and why one file failed.

use std::path::PathBuf;

use melkit_core::{BackendError, ConfigError};
use melkit_io::WriteError;

/// An error that stops a run (or a call) as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The backend cannot start.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Two or more inputs would be written to the same output.
    #[error("{} inputs would overwrite each other's outputs:\n{}", .0.iter().map(|(_, i)| i.len()).sum::<usize>(), format_collisions(.0))]
    Collision(Vec<(PathBuf, Vec<PathBuf>)>),
    /// The output options do not fit together.
    #[error("{0}")]
    Output(#[from] WriteError),
    /// A single file failed (from [`Pipeline::process_file`](crate::Pipeline::process_file)).
    #[error(transparent)]
    File(#[from] FileError),
    /// The output folder cannot be written (nothing was done).
    #[error("cannot write to the output folder {}: {reason}", path.display())]
    OutputDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Options that cannot work together (nothing was done).
    #[error("{0}")]
    Usage(String),
    /// The worker threads could not be started.
    #[error("cannot start {workers} worker threads: {reason}")]
    Threads {
        /// Threads asked for.
        workers: usize,
        /// The system's answer.
        reason: String,
    },
}

/// Whose an error is: what a command line turns into its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's: a bad configuration, options that do not fit, colliding outputs.
    Usage,
    /// The machine's: a backend that cannot start here, an output folder that cannot be
    /// written, no threads.
    Unavailable,
    /// One file failed (a single-file call).
    File,
}

impl Error {
    /// Whose error it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_)
            | Error::Collision(_)
            | Error::Output(_)
            | Error::Usage(_)
            | Error::Backend(BackendError::Config(_)) => ErrorKind::Usage,
            Error::Backend(_) | Error::OutputDir { .. } | Error::Threads { .. } => {
                ErrorKind::Unavailable
            }
            Error::File(_) => ErrorKind::File,
        }
    }
}

fn format_collisions(collisions: &[(PathBuf, Vec<PathBuf>)]) -> String {
    collisions
        .iter()
        .map(|(out, ins)| {
            let ins: Vec<String> = ins.iter().map(|p| p.display().to_string()).collect();
            format!("  {} <- {}", out.display(), ins.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What kind of failure a file met: what a caller acts on (a Python binding maps `NotFound` to
/// `FileNotFoundError`, a service `InvalidAudio` to 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileErrorKind {
    /// The input does not exist.
    NotFound,
    /// The input, or the output's folder, may not be read or written.
    PermissionDenied,
    /// The input could not be read (another I/O error).
    Read,
    /// The content is not audio melkit reads, or audio whose header or data make no sense.
    InvalidAudio,
    /// Audio in a format or encoding melkit does not support.
    UnsupportedAudio,
    /// Resampling failed.
    Resample,
    /// The backend failed (or broke its contract).
    Compute,
    /// The output could not be written: the disk is full or the file size limit reached.
    NoSpace,
    /// The output could not be written (another reason).
    Write,
}

/// A reason and its kind, from the typed errors of decoding, writing and the backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// Its kind, when the error tells it.
    pub kind: Option<FileErrorKind>,
    /// The reason as a person reads it.
    pub reason: String,
}

fn io_kind(e: &std::io::Error) -> FileErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => FileErrorKind::NotFound,
        K::PermissionDenied => FileErrorKind::PermissionDenied,
        _ => FileErrorKind::Read,
    }
}

impl From<&melkit_io::DecodeError> for Cause {
    fn from(e: &melkit_io::DecodeError) -> Self {
        use melkit_io::DecodeError as D;
        let kind = match e {
            D::Io(io) => io_kind(io),
            D::Format(_) | D::Invalid(_) => FileErrorKind::InvalidAudio,
            D::Unsupported(_) => FileErrorKind::UnsupportedAudio,
            D::Resample { .. } => FileErrorKind::Resample,
        };
        Cause { kind: Some(kind), reason: e.to_string() }
    }
}

impl From<melkit_io::DecodeError> for Cause {
    fn from(e: melkit_io::DecodeError) -> Self {
        Cause::from(&e)
    }
}

impl From<&std::io::Error> for Cause {
    fn from(e: &std::io::Error) -> Self {
        Cause { kind: Some(io_kind(e)), reason: melkit_io::error::io_reason(e) }
    }
}

impl From<&WriteError> for Cause {
    fn from(e: &WriteError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            WriteError::Io(io) if matches!(io.kind(), K::StorageFull | K::FileTooLarge) => {
                FileErrorKind::NoSpace
            }
            WriteError::Io(io) if io.kind() == K::PermissionDenied => {
                FileErrorKind::PermissionDenied
            }
            _ => FileErrorKind::Write,
        };
        Cause { kind: Some(kind), reason: e.to_string() }
    }
}

impl From<&BackendError> for Cause {
    fn from(e: &BackendError) -> Self {
        Cause { kind: Some(FileErrorKind::Compute), reason: e.to_string() }
    }
}

impl From<String> for Cause {
    fn from(reason: String) -> Self {
        Cause { kind: None, reason }
    }
}

impl From<&str> for Cause {
    fn from(reason: &str) -> Self {
        Cause { kind: None, reason: reason.to_string() }
    }
}

/// Why one input file produced no output. The run goes on with the other files.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct FileError {
    /// The input file.
    pub path: PathBuf,
    /// The stage that failed (`discover`, `decode`, `resample`, `compute`, `write`).
    pub stage: &'static str,
    /// What went wrong.
    pub reason: String,
    /// What kind of failure it is.
    pub kind: FileErrorKind,
}

impl FileError {
    /// An error of `path` in `stage`; its kind is the cause's, else the stage's.
    pub fn new(path: impl Into<PathBuf>, stage: &'static str, cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        let kind = cause.kind.unwrap_or(match stage {
            "discover" => FileErrorKind::Read,
            "decode" => FileErrorKind::InvalidAudio,
            "resample" => FileErrorKind::Resample,
            "write" => FileErrorKind::Write,
            _ => FileErrorKind::Compute,
        });
        FileError { path: path.into(), stage, reason: cause.reason, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melkit_io::DecodeError;

    #[test]
    fn a_file_error_keeps_the_kind_of_its_cause() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = FileError::new("a.wav", "decode", DecodeError::Io(missing));
        assert_eq!(
            (e.kind, e.to_string().as_str()),
            (FileErrorKind::NotFound, "a.wav: cannot read the file: no such file or directory")
        );
        let e = FileError::new("a.wav", "decode", DecodeError::Invalid("x".into()));
        assert_eq!(e.kind, FileErrorKind::InvalidAudio);
        let e = FileError::new("a.wav", "decode", DecodeError::Unsupported("x".into()));
        assert_eq!(e.kind, FileErrorKind::UnsupportedAudio);
        let full = WriteError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull));
        let e = FileError::new("a.wav", "write", &full);
        assert_eq!(
            (e.kind, e.reason.as_str()),
            (FileErrorKind::NoSpace, "no space left on the device")
        );
        let e = FileError::new("a.wav", "compute", "the device fell over");
        assert_eq!(e.kind, FileErrorKind::Compute);
    }

    #[test]
    fn a_run_error_says_whose_it_is() {
        assert_eq!(Error::Usage("x".into()).kind(), ErrorKind::Usage);
        let unavailable = BackendError::Unavailable { backend: "cuda", reason: "none".into() };
        assert_eq!(Error::Backend(unavailable).kind(), ErrorKind::Unavailable);
        let dir = Error::OutputDir { path: "out".into(), reason: "read-only".into() };
        assert_eq!(dir.kind(), ErrorKind::Unavailable);
    }
}
