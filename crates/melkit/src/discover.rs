//! Finding the inputs: files as given, folders searched recursively for audio, each mapped to
//! its output path (the path relative to its input root, extension replaced).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melkit_io::OutputFormat;

use crate::error::{Error, FileError};

/// Extensions picked up when a folder is searched (a file named explicitly is always taken).
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "mp2", "m4a", "mp4", "aac", "aif", "aiff",
    "aifc", "caf", "mka", "webm",
];

/// One input file and where its output goes, relative to the output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The file, as found.
    pub path: PathBuf,
    /// Its path relative to the input root (the file name alone for a file given directly).
    pub rel: PathBuf,
}

impl InputFile {
    /// The output path for this input under `out_dir` in `format`.
    pub fn output_path(&self, out_dir: &Path, format: OutputFormat) -> PathBuf {
        out_dir.join(self.rel.with_extension(format.extension()))
    }
}

/// What [`discover`] found: the files, and the inputs that could not be searched.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// Every input file, in a stable order (inputs as given, folders sorted by name).
    pub files: Vec<InputFile>,
    /// Inputs that do not exist or could not be read.
    pub failures: Vec<FileError>,
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Lists the input files of `inputs` (files or folders, folders searched recursively,
/// following symbolic links but not looping through them). A file reached twice (given twice,
/// or given and inside a folder given) is listed once, where it was first reached.
pub fn discover(inputs: &[PathBuf]) -> Discovery {
    let mut found = Discovery::default();
    for input in inputs {
        match std::fs::metadata(input) {
            Err(e) => found.failures.push(FileError::new(input, "discover", io_reason(&e))),
            Ok(meta) if meta.is_dir() => walk(input, &mut found),
            Ok(_) => {
                let rel = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
                found.files.push(InputFile { path: input.clone(), rel });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.files.retain(|f| seen.insert(std::fs::canonicalize(&f.path).unwrap_or(f.path.clone())));
    found
}

fn walk(root: &Path, found: &mut Discovery) {
    let walker = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() && is_audio(e.path()) => {
                let rel = e.path().strip_prefix(root).unwrap_or(e.path()).to_path_buf();
                found.files.push(InputFile { path: e.path().to_path_buf(), rel });
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let reason = match (e.loop_ancestor(), e.io_error()) {
                    (Some(a), _) => format!("symbolic link loop back to {}", a.display()),
                    (None, Some(io)) => io_reason(io),
                    (None, None) => e.to_string(),
                };
                found.failures.push(FileError::new(path, "discover", reason));
            }
        }
    }
}

/// A short reason for an I/O error, without the OS error number.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    melkit_io::error::io_reason(e)
}

/// Refuses inputs that would write the same output (`a.wav` and `a.WAV`, or two folders both
/// holding `x.wav`), naming each output and its inputs.
///
/// # Errors
/// [`Error::Collision`] listing every clash.
pub fn check_collisions(
    files: &[InputFile],
    out_dir: &Path,
    format: OutputFormat,
) -> Result<(), Error> {
    let mut outputs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        let key = f.output_path(out_dir, format);
        // Case-insensitive file systems would merge names that differ only in case.
        let key = PathBuf::from(key.to_string_lossy().to_lowercase());
        outputs.entry(key).or_default().push(f.path.clone());
    }
    let clashes: Vec<(PathBuf, Vec<PathBuf>)> = outputs
        .into_iter()
        .filter(|(_, ins)| ins.len() > 1)
        .map(|(_, ins)| {
            let out =
                files.iter().find(|f| f.path == ins[0]).map(|f| f.output_path(out_dir, format));
            (out.unwrap_or_default(), ins)
        })
        .collect();
    if clashes.is_empty() { Ok(()) } else { Err(Error::Collision(clashes)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn folders_are_searched_and_mirrored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        for f in ["b.wav", "a/x.WAV", "a/deep/y.wav", "a/notes.txt"] {
            touch(&root.join(f));
        }
        let found = discover(&[root.clone(), dir.path().join("missing.wav"), root.join("b.wav")]);
        let rels: Vec<_> =
            found.files.iter().map(|f| f.rel.to_string_lossy().into_owned()).collect();
        assert_eq!(rels, ["a/deep/y.wav", "a/x.WAV", "b.wav"]);
        assert_eq!(found.failures.len(), 1);
        assert_eq!(
            found.failures[0].to_string(),
            format!("{}: no such file or directory", dir.path().join("missing.wav").display())
        );
        let out = found.files[1].output_path(Path::new("out"), OutputFormat::H5);
        assert_eq!(out, Path::new("out/a/x.h5"));
    }

    #[test]
    fn collisions_are_named() {
        let files = vec![
            InputFile { path: "d1/a.wav".into(), rel: "a.wav".into() },
            InputFile { path: "d2/a.wav".into(), rel: "a.wav".into() },
            InputFile { path: "d2/b.wav".into(), rel: "b.wav".into() },
        ];
        let e = check_collisions(&files, Path::new("out"), OutputFormat::Npy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 inputs would overwrite each other's outputs:\n  out/a.npy <- d1/a.wav, d2/a.wav"
        );
        assert!(check_collisions(&files[1..], Path::new("out"), OutputFormat::Npy).is_ok());
    }
}
