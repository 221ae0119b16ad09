//! Helpers of the cluster tests: a corpus with bad files, and a stacked file read back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::copy_golden;

pub const CASES: [&str; 3] = ["tones_4096_pcm16", "chirp_4096_f32_short", "bursts_16000_pcm16"];

/// `n` copies of three golden inputs in seven folders, and three bad files.
pub fn corpus(root: &Path, n: usize) {
    for i in 0..n {
        copy_golden(CASES[i % 3], &root.join(format!("d{}/clip_{i:04}.wav", i % 7)));
    }
    for d in ["d0", "d1", "d3"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("d0/empty.wav"), b"").unwrap();
    std::fs::write(root.join("d1/not_audio.wav"), b"this is text, not audio").unwrap();
    let good = std::fs::read(root.join("d2/clip_0002.wav")).unwrap();
    std::fs::write(root.join("d3/truncated.wav"), &good[..60]).unwrap();
}

/// A temporary folder holding [`corpus`] in `in/`.
pub fn temp_corpus(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    corpus(&input, n);
    (dir, input)
}

pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The datasets of a stacked file: mel values, sources, indices, and the configuration.
pub fn stacked(path: &Path) -> (Vec<f32>, Vec<usize>, Vec<String>, Vec<u64>, String) {
    let file = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mel = file.dataset("mel").unwrap();
    let sources: Vec<hdf5::types::VarLenUnicode> =
        file.dataset("source").unwrap().read_raw().unwrap();
    let config: hdf5::types::VarLenUnicode = mel.attr("config").unwrap().read_scalar().unwrap();
    (
        mel.read_raw().unwrap(),
        mel.shape(),
        sources.iter().map(|s| s.to_string()).collect(),
        file.dataset("index").unwrap().read_raw().unwrap(),
        config.to_string(),
    )
}
