//! Every kind of bad input in one corpus beside good files: the run goes on, the summary names
//! each failed file with its reason, the exit code is 1 (not the usage error's 2), and every
//! good file's output is right.

mod common;

use std::fs::File;
use std::path::Path;

use common::*;
use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

/// A WAV file: a `fmt ` chunk as given, then a `data` chunk claiming `claimed` bytes (or the
/// length of `data`) and holding `data`.
fn wav(
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    claimed: Option<u32>,
) -> Vec<u8> {
    let block = channels * bits.div_ceil(8);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&claimed.unwrap_or(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn every_bad_file_fails_alone_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corpus");
    copy_golden("tones_4096_pcm16", &root.join("good/tones.wav"));
    copy_golden("chirp_4096_f32_short", &root.join("good/chirp.wav"));
    let tones = std::fs::read(root.join("good/tones.wav")).unwrap();
    let bad = root.join("bad");
    std::fs::create_dir_all(bad.join("x.wav")).unwrap(); // a folder named like audio
    let samples: Vec<u8> =
        (0..4096u32).flat_map(|i| ((i % 200) as i16 * 50).to_le_bytes()).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.wav", Vec::new()),
        ("header_only.wav", wav(1, 1, 4096, 16, &[], None)),
        ("truncated.wav", tones[..tones.len() / 2].to_vec()),
        ("cut_header.wav", tones[..30].to_vec()),
        ("claims_4_gib.wav", wav(1, 1, 4096, 16, &samples, Some(0xFFFF_FF00))),
        ("random.wav", (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("notes.wav", b"these are my notes, not audio\n".repeat(40)),
        ("nan.wav", wav(3, 1, 4096, 32, &floats(&[0.1, 0.2, f32::NAN, 0.3]), None)),
        ("inf.wav", wav(3, 2, 4096, 32, &floats(&[0.1, 0.2, 0.5, f32::NEG_INFINITY]), None)),
        ("zero_channels.wav", wav(1, 0, 4096, 16, &samples, None)),
        ("zero_rate.wav", wav(1, 1, 0, 16, &samples, None)),
    ];
    for (name, bytes) in &files {
        std::fs::write(bad.join(name), bytes).unwrap();
    }
    // A symbolic link back to an ancestor: a loop the search must not follow forever.
    std::os::unix::fs::symlink(&root, bad.join("loop")).unwrap();
    let unreadable = bad.join("unreadable.wav");
    std::fs::copy(root.join("good/tones.wav"), &unreadable).unwrap();
    set_mode(&unreadable, 0o000);
    let permissions_apply = !is_root() || can_drop_root_powers();
    if !permissions_apply {
        eprintln!(
            "skipping the unreadable-file case: running as root and setpriv cannot drop root's file access"
        );
        std::fs::remove_file(&unreadable).unwrap();
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o777);
    set_mode(dir.path(), 0o755);
    let run = melkit_unprivileged(&[
        "run",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--format",
        "npy",
    ]);
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{}", text(&run.stderr));
    // Each bad file is reported once, by melkit: no decoder's own log line besides.
    let stderr = text(&run.stderr);
    assert!(!stderr.contains("ERROR") && !stderr.contains("probe reach"), "{stderr}");

    let mut expected = vec![
        ("claims_4_gib.wav", "invalid audio: truncated: the WAV header says 4294967040 bytes of samples, the file holds 8192".to_string()),
        ("cut_header.wav", "invalid audio: the WAV header ends early (a truncated or damaged file)".into()),
        ("empty.wav", "invalid audio: the file is empty".into()),
        ("header_only.wav", "invalid audio: the file holds no audio samples".into()),
        ("inf.wav", "invalid audio: sample 1 is -inf: audio with NaN or infinite samples is refused".into()),
        ("nan.wav", "invalid audio: sample 2 is NaN: audio with NaN or infinite samples is refused".into()),
        ("notes.wav", "not a supported audio file: the content is not in an audio format melkit reads".into()),
        ("random.wav", "not a supported audio file: the content is not in an audio format melkit reads".into()),
        ("truncated.wav", format!("invalid audio: truncated: the WAV header says 81920 bytes of samples, the file holds {}", tones.len() / 2 - 44)),
        ("zero_channels.wav", "invalid audio: the header gives 0 channels".into()),
        ("zero_rate.wav", "invalid audio: the header gives a sample rate of 0 Hz".into()),
    ];
    if permissions_apply {
        expected.push(("unreadable.wav", "cannot read the file: permission denied".into()));
    }
    let mut failed = 0;
    for (name, reason) in &expected {
        let line = format!("failed: {}: {reason}", bad.join(name).display());
        assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
        failed += 1;
    }
    let loop_line = format!(
        "failed: {}: symbolic link loop back to {}",
        bad.join("loop").display(),
        root.display()
    );
    assert!(stdout.contains(&loop_line), "missing {loop_line:?} in:\n{stdout}");
    failed += 1;
    assert!(stdout.contains(&format!("2 written, {failed} failed")), "{stdout}");

    for (rel, case) in
        [("good/tones.npy", "tones_4096_pcm16"), ("good/chirp.npy", "chirp_4096_f32_short")]
    {
        let a = Array4::<f32>::read_npy(File::open(out.join(rel)).unwrap()).unwrap();
        let (want, _, tolerance) = golden(case);
        assert_close(rel, a.as_slice().unwrap(), &want, &tolerance);
    }
    assert_eq!(tree(&out), ["good/chirp.npy", "good/tones.npy"]);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_file_that_disappears_after_the_search_fails_alone() {
    use melkit::{BackendKind, Config, OutputFormat, OutputOptions, Pipeline, discover};
    let dir = tempfile::tempdir().unwrap();
    copy_golden("tones_4096_pcm16", &dir.path().join("in/a.wav"));
    copy_golden("tiny_4096_pcm16_full", &dir.path().join("in/gone.wav"));
    let found = discover::discover(&[dir.path().join("in")]);
    assert_eq!(found.files.len(), 2);
    std::fs::remove_file(dir.path().join("in/gone.wav")).unwrap();
    let mut pipeline = Pipeline::new(Config::default(), BackendKind::Cpu).unwrap();
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let out = dir.path().join("out");
    let report = pipeline.process_discovered(found, &out, &options, &()).unwrap();
    assert_eq!(report.files_ok, 1);
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert_eq!(
        failures,
        [format!(
            "{}: cannot read the file: no such file or directory",
            dir.path().join("in/gone.wav").display()
        )]
    );
    assert_eq!(tree(&out), ["a.npy"]);
}
