//! `cargo xtask fuzz [SECONDS]`: runs the `decode_pipeline` fuzz target (cargo-fuzz, libFuzzer)
//! for SECONDS (default 600) from a seed corpus of the bundled audio, the golden WAVs and the
//! format cases; new inputs collect in `fuzz/corpus`, crashes in `fuzz/artifacts`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Extensions in the order of the target's selector byte (`fuzz_targets/decode_pipeline.rs`).
const EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "aiff"];

/// Builds the seeds and runs the fuzzer.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let seconds: u64 = match args.first() {
        Some(s) => s.parse().with_context(|| format!("SECONDS must be a number, not {s:?}"))?,
        None => 600,
    };
    let installed = Command::new("cargo").args(["fuzz", "--version"]).output();
    if !installed.is_ok_and(|o| o.status.success()) {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz`");
    }
    let seeds = root.join("target/fuzz-seeds");
    std::fs::create_dir_all(&seeds)?;
    let mut count = 0;
    for dir in [
        root.join("examples/audio"),
        root.join("../shared/golden"),
        root.join("crates/melkit/tests/data/formats"),
    ] {
        for file in audio_files(&dir) {
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("wav").to_lowercase();
            let selector = EXTENSIONS.iter().position(|e| *e == ext).unwrap_or(0) as u8;
            let mut bytes = vec![selector];
            bytes.extend(std::fs::read(&file)?);
            std::fs::write(seeds.join(format!("seed-{count:03}")), bytes)?;
            count += 1;
        }
    }
    eprintln!("{count} seeds in {}", seeds.display());
    let corpus = root.join("fuzz/corpus/decode_pipeline");
    std::fs::create_dir_all(&corpus)?;
    let status = Command::new("cargo")
        .current_dir(root.join("fuzz"))
        // cargo-fuzz's instrumentation flags are nightly-only; this lets the stable toolchain
        // accept them.
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "decode_pipeline"])
        .arg(&corpus)
        .arg(&seeds)
        .args(["--", &format!("-max_total_time={seconds}"), "-timeout=20", "-rss_limit_mb=1536"])
        .arg("-max_len=300000")
        .status()
        .context("cannot run cargo fuzz")?;
    if !status.success() {
        bail!("the fuzzer found a crash: see fuzz/artifacts/decode_pipeline");
    }
    Ok(())
}

fn audio_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(audio_files(&path));
        } else if path.extension().is_some_and(|e| {
            ["wav", "flac", "mp3", "ogg", "m4a", "aiff", "opus"].contains(&e.to_str().unwrap_or(""))
        }) {
            found.push(path);
        }
    }
    found.sort();
    found
}
