//! The streaming search of the inputs: each folder read once, its audio files and subfolders
//! sorted by name and visited in that order (so the order is deterministic), holding only the
//! names of the folders on the current path; never the whole list.
//!
//! A file is listed once, where it is first reached:
//! - a folder given after one that contains it adds nothing, and a folder given before one that
//!   contains it is not searched again inside the later one;
//! - a file given by name is skipped when an earlier input already reached it;
//! - a symbolic link is followed when its target lies outside every folder given (a link to a
//!   file or folder inside them is skipped: the target is reached directly), and a link back to
//!   a folder on its own path is reported as a loop.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{InputFile, Listed, is_audio};
use crate::error::FileError;

/// A file system object: device and inode.
type Id = (u64, u64);

fn id_of(meta: &std::fs::Metadata) -> Id {
    (meta.dev(), meta.ino())
}

/// What an entry of a folder is, from the folder listing alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
}

/// A folder on the current path, with its entries still to visit (reversed: popped from the end).
struct Frame {
    dir: PathBuf,
    rel: PathBuf,
    id: Id,
    entries: Vec<(OsString, Kind, u64)>,
}

/// The walk over a list of inputs (see the module documentation).
pub struct Walk<'a> {
    inputs: &'a [PathBuf],
    next_input: usize,
    /// The canonical form of every folder given.
    roots: Vec<PathBuf>,
    /// Folders and files given and already searched.
    done_roots: Vec<(PathBuf, Id)>,
    given_files: HashSet<Id>,
    /// Targets of the links followed so far.
    linked: HashSet<Id>,
    stack: Vec<Frame>,
    index: u64,
}

impl<'a> Walk<'a> {
    /// A walk over `inputs`.
    pub fn new(inputs: &'a [PathBuf]) -> Self {
        let roots = inputs
            .iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        Walk {
            inputs,
            next_input: 0,
            roots,
            done_roots: Vec::new(),
            given_files: HashSet::new(),
            linked: HashSet::new(),
            stack: Vec::new(),
            index: 0,
        }
    }

    fn file(&mut self, path: PathBuf, rel: PathBuf) -> Listed {
        let index = self.index;
        self.index += 1;
        Listed { index, result: Ok(InputFile { path, rel }) }
    }

    fn failure(&self, path: &Path, cause: impl Into<crate::error::Cause>) -> Listed {
        Listed { index: self.index, result: Err(FileError::new(path, "discover", cause)) }
    }

    /// Whether `canonical` lies inside a folder already searched.
    fn inside_done_root(&self, canonical: &Path) -> bool {
        self.done_roots.iter().any(|(root, _)| canonical.starts_with(root))
    }

    /// Starts the next input given; returns what it lists at once (a file or a failure).
    fn start_input(&mut self, input: &Path) -> Option<Listed> {
        let meta = match std::fs::metadata(input) {
            Ok(meta) => meta,
            Err(e) => return Some(self.failure(input, &e)),
        };
        let canonical = std::fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf());
        if self.inside_done_root(&canonical) {
            return None;
        }
        if !meta.is_dir() {
            if !self.given_files.insert(id_of(&meta)) {
                return None;
            }
            let rel = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
            return Some(self.file(input.to_path_buf(), rel));
        }
        self.done_roots.push((canonical, id_of(&meta)));
        self.push_dir(input.to_path_buf(), PathBuf::new(), id_of(&meta))
    }

    /// Reads a folder onto the stack (or lists why it cannot be read).
    fn push_dir(&mut self, dir: PathBuf, rel: PathBuf, id: Id) -> Option<Listed> {
        let reader = match std::fs::read_dir(&dir) {
            Ok(reader) => reader,
            Err(e) => return Some(self.failure(&dir, &e)),
        };
        let mut entries = Vec::new();
        for entry in reader {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(self.failure(&dir, &e)),
            };
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(t) if t.is_symlink() => Kind::Link,
                Ok(t) if t.is_file() => Kind::File,
                _ => continue,
            };
            let name = entry.file_name();
            if kind == Kind::File && !is_audio(Path::new(&name)) {
                continue;
            }
            entries.push((name, kind, entry.ino()));
        }
        // Visited from the end: sorted by name, last first.
        entries.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        entries.shrink_to_fit();
        self.stack.push(Frame { dir, rel, id, entries });
        None
    }

    /// The next entry of the folder on top of the stack, turned into a listing or a folder.
    fn step(&mut self) -> Option<Listed> {
        let frame = self.stack.last_mut()?;
        let Some((name, kind, ino)) = frame.entries.pop() else {
            self.stack.pop();
            return None;
        };
        let (path, rel, dev) = (frame.dir.join(&name), frame.rel.join(&name), frame.id.0);
        match kind {
            Kind::File => {
                if !self.given_files.is_empty() && self.given_files.contains(&(dev, ino)) {
                    return None;
                }
                Some(self.file(path, rel))
            }
            Kind::Dir => {
                let meta = match std::fs::metadata(&path) {
                    Ok(meta) => meta,
                    Err(e) => return Some(self.failure(&path, &e)),
                };
                let id = id_of(&meta);
                if self.done_roots.iter().any(|(_, root)| *root == id) {
                    return None; // a folder given earlier, already searched
                }
                self.push_dir(path, rel, id)
            }
            Kind::Link => self.follow(path, rel),
        }
    }

    fn follow(&mut self, path: PathBuf, rel: PathBuf) -> Option<Listed> {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => return Some(self.failure(&path, &e)),
        };
        let id = id_of(&meta);
        if meta.is_dir() {
            if let Some(ancestor) = self.stack.iter().find(|f| f.id == id) {
                let reason = format!("symbolic link loop back to {}", ancestor.dir.display());
                return Some(self.failure(&path, reason));
            }
        } else if !meta.is_file() || !is_audio(&path) {
            return None;
        }
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.roots.iter().any(|root| canonical.starts_with(root)) || !self.linked.insert(id) {
            return None; // reached directly, or through another link
        }
        if meta.is_dir() { self.push_dir(path, rel, id) } else { Some(self.file(path, rel)) }
    }
}

impl Iterator for Walk<'_> {
    type Item = Listed;

    fn next(&mut self) -> Option<Listed> {
        loop {
            if self.stack.is_empty() {
                let input = self.inputs.get(self.next_input)?;
                self.next_input += 1;
                if let Some(listed) = self.start_input(input) {
                    return Some(listed);
                }
            } else if let Some(listed) = self.step() {
                return Some(listed);
            }
        }
    }
}
