//! Every input the fuzzer (`cargo xtask fuzz`) ever crashed, replayed through the same entry
//! point as `fuzz/fuzz_targets/decode_pipeline.rs`: each must now give a result or an error,
//! never a panic. A file's first byte picks the extension hint, the rest is the file.

use std::path::PathBuf;

use melkit::{BackendKind, Config, Pipeline};

const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "aiff"];

#[test]
fn every_crash_the_fuzzer_found_is_now_an_error_or_a_result() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("crash-")))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fuzz regressions in {}", dir.display());
    let mut config = Config::default();
    config.set("max_workers", "1").unwrap();
    let mut pipeline = Pipeline::new(config, BackendKind::Cpu).unwrap();
    let temp = tempfile::tempdir().unwrap();
    for case in &cases {
        let data = std::fs::read(case).unwrap();
        let Some((&selector, bytes)) = data.split_first() else { continue };
        let ext = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];
        let path = temp.path().join(format!("input.{ext}"));
        std::fs::write(&path, bytes).unwrap();
        if let Ok(mut stream) = melkit_io::AudioStream::open(&path) {
            let mut samples = Vec::new();
            while matches!(stream.read(1 << 14, &mut samples), Ok(n) if n > 0) {
                samples.clear();
            }
        }
        let outcome = pipeline.process_file(&path);
        eprintln!(
            "{}: {}",
            case.display(),
            match &outcome {
                Ok((t, _)) => format!("{:?}", t.shape()),
                Err(e) => e.to_string(),
            }
        );
    }
}
