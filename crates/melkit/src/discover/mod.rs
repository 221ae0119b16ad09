//! Finding the inputs: files as given, folders searched recursively for audio, each mapped to
//! its output path (the path relative to its input root, extension replaced).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use melkit_io::OutputFormat;

use crate::error::{Error, FileError};

pub mod walk;

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

/// One thing the search listed: a file with its position among the files of the whole run, or
/// an input that could not be searched (with the position the next file would have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Position among the run's files.
    pub index: u64,
    /// The file, or why it could not be listed.
    pub result: Result<InputFile, FileError>,
}

/// Where a run's inputs come from: listed afresh, in the same order, each time it is asked
/// (a run lists them twice: once to count them and check their outputs, once to process them).
pub trait InputSource: Sync {
    /// The inputs, in order.
    fn list(&self) -> Box<dyn Iterator<Item = Listed> + '_>;
}

/// Input files and folders, searched as they are listed (see [`walk`]): memory does not grow
/// with the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The inputs as given: files and folders.
    pub paths: Vec<PathBuf>,
}

impl Inputs {
    /// The inputs `paths`.
    pub fn new(paths: &[PathBuf]) -> Self {
        Inputs { paths: paths.to_vec() }
    }
}

impl InputSource for Inputs {
    fn list(&self) -> Box<dyn Iterator<Item = Listed> + '_> {
        Box::new(walk::Walk::new(&self.paths))
    }
}

impl InputSource for Discovery {
    fn list(&self) -> Box<dyn Iterator<Item = Listed> + '_> {
        let failures = self.failures.iter().map(|f| Listed { index: 0, result: Err(f.clone()) });
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| Listed { index: i as u64, result: Ok(f.clone()) });
        Box::new(failures.chain(files))
    }
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Lists the input files of `inputs` (files or folders, folders searched recursively,
/// following symbolic links but not looping through them) into memory; see [`walk`] for which
/// of several ways to reach a file counts. Runs over large corpora list them as they go
/// ([`Inputs`]) instead.
pub fn discover(inputs: &[PathBuf]) -> Discovery {
    let mut found = Discovery::default();
    for listed in walk::Walk::new(inputs) {
        match listed.result {
            Ok(file) => found.files.push(file),
            Err(e) => found.failures.push(e),
        }
    }
    found
}

/// What [`survey`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Files listed.
    pub files: u64,
    /// Inputs that could not be searched.
    pub failures: u64,
    /// Files of the shard asked about (all of them without one).
    pub mine: u64,
}

/// The key two outputs clash on: the output path relative to the output folder, without its
/// extension, in lower case (case-insensitive file systems merge names that differ in case).
fn clash_key(file: &InputFile) -> u64 {
    let key = file.rel.with_extension("").to_string_lossy().to_lowercase();
    crate::keys::key64(key.as_bytes())
}

/// Counts what `source` lists and refuses inputs that would write the same output, holding one
/// 8-byte key per file (the names of a clash are found by listing again).
///
/// # Errors
/// [`Error::Collision`] listing every clash.
pub fn survey(
    source: &dyn InputSource,
    out_dir: &Path,
    format: OutputFormat,
    shard: Option<crate::shard::Shard>,
) -> Result<Survey, Error> {
    let mut survey = Survey::default();
    let mut keys = std::collections::HashSet::new();
    let mut clashing = std::collections::HashSet::new();
    for listed in source.list() {
        match listed.result {
            Ok(file) => {
                survey.files += 1;
                if shard.is_none_or(|s| crate::shard::shard_of(&file.rel, s.count) == s.index) {
                    survey.mine += 1;
                }
                let key = clash_key(&file);
                if !keys.insert(key) {
                    clashing.insert(key);
                }
            }
            Err(_) => survey.failures += 1,
        }
    }
    drop(keys);
    if clashing.is_empty() {
        return Ok(survey);
    }
    let files: Vec<InputFile> = source
        .list()
        .filter_map(|l| l.result.ok())
        .filter(|f| clashing.contains(&clash_key(f)))
        .collect();
    check_collisions(&files, out_dir, format)?;
    Ok(survey)
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
