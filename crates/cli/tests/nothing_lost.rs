//! Nothing lost: a run killed with SIGKILL leaves no partial file under a final name, and
//! `--resume` then finishes it with outputs identical to an uninterrupted run; the cache writes
//! renamed inputs without computing them; an unwritable output folder or a full disk (a file
//! size limit) gives a clear error, no partial outputs and untouched inputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const CASES: [&str; 3] = ["tones_4096_pcm16", "chirp_4096_f32_short", "stereo_4096_pcm24_long"];

/// `n` inputs cycling through three golden WAVs, in nested folders.
fn corpus(root: &Path, n: usize) {
    for i in 0..n {
        copy_golden(CASES[i % 3], &root.join(format!("d{}/clip_{i:04}.wav", i % 7)));
    }
}

/// Every file of `dir` (but the manifest) with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir).into_iter().map(|rel| (rel.clone(), std::fs::read(dir.join(&rel)).unwrap())).collect()
}

fn run_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_killed_run_leaves_no_partial_output_and_resume_completes_it_identically() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    corpus(&input, 900);
    // The uninterrupted run, for comparison.
    let reference = dir.path().join("reference");
    let run = melkit(&run_args(&input, &reference, &["--workers", "1", "--quiet"]));
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let expected = contents(&reference);
    assert_eq!(expected.len(), 900);

    // Kill a run in the middle.
    let out = dir.path().join("out");
    let mut child = command()
        .args(run_args(&input, &out, &["--workers", "1", "--quiet"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(&mut child, || count_outputs(&out) >= 60);
    let partial = contents(&out);
    assert!(partial.len() >= 60 && partial.len() < 900, "{} outputs", partial.len());
    let by_name: std::collections::HashMap<_, _> = expected.iter().cloned().collect();
    for (rel, bytes) in &partial {
        assert!(!rel.ends_with(".tmp") || name_of(rel).starts_with('.'), "{rel}");
        if !name_of(rel).starts_with('.') {
            assert!(by_name.get(rel) == Some(bytes), "{rel} is not a complete output");
        }
    }
    let done_before = manifest_ok_lines(&out);
    assert!(done_before > 0);

    // Resume: the finished inputs are skipped, the rest done, the result identical.
    let resumed = melkit(&run_args(&input, &out, &["--workers", "1", "--resume"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let stdout = text(&resumed.stdout);
    assert!(
        stdout.contains(&format!("resumed: {done_before} inputs already done were skipped")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{} written, 0 failed", 900 - done_before)), "{stdout}");
    assert!(contents(&out) == expected, "kill + resume differs from an uninterrupted run");

    // Resuming again does nothing; another configuration redoes everything.
    let again = melkit(&run_args(&input, &out, &["--resume"]));
    assert!(text(&again.stdout).contains("0 written, 0 failed"), "{}", text(&again.stdout));
    assert!(text(&again.stdout).contains("resumed: 900 inputs already done were skipped"));
    let other = melkit(&run_args(&input, &out, &["--resume", "--n-mels", "32"]));
    assert!(text(&other.stdout).contains("900 written, 0 failed"), "{}", text(&other.stdout));
}

fn name_of(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn count_outputs(out: &Path) -> usize {
    if !out.exists() {
        return 0;
    }
    tree(out).iter().filter(|r| r.ends_with(".h5") && !name_of(r).starts_with('.')).count()
}

fn manifest_ok_lines(out: &Path) -> usize {
    let text = std::fs::read_to_string(out.join(MANIFEST)).unwrap_or_default();
    text.lines().filter(|l| l.contains("\"status\":\"ok\"")).count()
}

#[test]
fn the_cache_writes_renamed_and_copied_inputs_without_computing_them() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    corpus(&first, 6);
    // The same audio under other names and folders, and one new file.
    for (i, entry) in tree(&first).iter().enumerate() {
        std::fs::copy(first.join(entry), second.join(format!("renamed_{i}.wav")))
            .or_else(|_| {
                std::fs::create_dir_all(&second)?;
                std::fs::copy(first.join(entry), second.join(format!("renamed_{i}.wav")))
            })
            .unwrap();
    }
    copy_golden("bursts_16000_pcm16", &second.join("new.wav"));
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let out1 = dir.path().join("out1");
    let run = melkit(&run_args(&first, &out1, &["--cache", c]));
    assert!(text(&run.stdout).contains("6 written, 0 failed"), "{}", text(&run.stdout));
    assert!(!text(&run.stdout).contains("from the cache"));
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 3, "one entry per distinct content");

    let out2 = dir.path().join("out2");
    let run = melkit(&run_args(&second, &out2, &["--cache", c, "--format", "h5"]));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("7 written, 0 failed"), "{stdout}");
    assert!(stdout.contains("cache: 6 of the outputs written from the cache"), "{stdout}");
    // Byte for byte what computing them gives (each output names its own input).
    let fresh = dir.path().join("fresh");
    assert!(melkit(&run_args(&second, &fresh, &["--quiet"])).status.success());
    assert!(contents(&out2) == contents(&fresh), "outputs from the cache differ");
    // Another configuration does not use those entries.
    let out3 = dir.path().join("out3");
    let run = melkit(&run_args(&second, &out3, &["--cache", c, "--n-mels", "40"]));
    assert!(!text(&run.stdout).contains("from the cache"), "{}", text(&run.stdout));
}

#[test]
fn an_unwritable_output_folder_is_a_clear_error_before_any_work() {
    if is_root() && !can_drop_root_powers() {
        eprintln!("skipping: running as root and setpriv cannot drop root's file access");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    corpus(&input, 3);
    let before = contents(&input);
    let out = dir.path().join("locked");
    std::fs::create_dir(&out).unwrap();
    set_mode(&out, 0o555);
    let run = melkit_unprivileged(&run_args(&input, &out, &[]));
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stdout));
    assert_eq!(
        text(&run.stderr),
        format!("error: cannot write to the output folder {}: permission denied\n", out.display())
    );
    assert!(tree(&out).is_empty());
    assert!(contents(&input) == before, "inputs changed");
}

#[test]
fn a_full_disk_fails_each_file_clearly_and_leaves_no_partial_output() {
    // HDF5 reports the same one-line reason as the NPY writer, not its own error stack.
    for format in ["npy", "h5"] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        corpus(&input, 3);
        copy_golden("tiny_4096_pcm16_full", &input.join("tiny.wav"));
        let before = contents(&input);
        let out = dir.path().join("out");
        // 64 KiB per file: the small output fits, the 10-second ones (348 KB) do not.
        let script = format!(
            "ulimit -f 64; exec '{}' run '{}' -o '{}' --format {format} --sample-length full",
            env!("CARGO_BIN_EXE_melkit"),
            input.display(),
            out.display()
        );
        let run = Command::new("bash").args(["-c", &script]).output().unwrap();
        let stdout = text(&run.stdout);
        assert_eq!(run.status.code(), Some(1), "{stdout}\n{}", text(&run.stderr));
        assert!(stdout.contains("1 written, 3 failed"), "{format}: {stdout}");
        for i in 0..3 {
            let rel = format!("d{i}/clip_{i:04}");
            let line = format!(
                "failed: {}: cannot write {}: the file size limit was reached",
                input.join(format!("{rel}.wav")).display(),
                out.join(format!("{rel}.{format}")).display()
            );
            assert!(stdout.contains(&line), "missing {line:?} in\n{stdout}");
        }
        assert!(!stdout.contains("H5"), "{format}: {stdout}");
        let written: Vec<PathBuf> = tree(&out).into_iter().map(PathBuf::from).collect();
        let tiny = PathBuf::from(format!("tiny.{format}"));
        assert_eq!(written, [tiny], "{format}: partial or temporary files left");
        assert!(contents(&input) == before, "inputs changed");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
