//! Arbitrary bytes as an audio file, through the entry point users call: decoding (every
//! format, detected by content) and `Pipeline::process_file` (resampling, segmentation,
//! compute, scaling). Any outcome but a panic, a hang or a huge allocation is fine: bad input
//! must come back as an error.
#![no_main]

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use melkit::{BackendKind, Config, Pipeline};

/// The extension hint given with the bytes (the content decides; the hint only orders probes).
const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "aiff"];

fn pipeline() -> &'static Mutex<Pipeline> {
    static PIPELINE: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let mut config = Config::default();
        config.set("max_workers", "1").unwrap();
        Mutex::new(Pipeline::new(config, BackendKind::Cpu).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let ext = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];
    let path = std::env::temp_dir().join(format!("melkit-fuzz-{}.{ext}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(bytes).unwrap();
    drop(file);
    if let Ok(mut stream) = melkit_io::AudioStream::open(&path) {
        let mut samples = Vec::new();
        while matches!(stream.read(1 << 14, &mut samples), Ok(n) if n > 0) {
            samples.clear();
        }
    }
    let mut pipeline = pipeline().lock().unwrap();
    let _ = pipeline.process_file(&path);
    let _ = std::fs::remove_file(&path);
});
