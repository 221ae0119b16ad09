//! `--backend cuda` from the command line: a clear "no CUDA device" error where there is none
//! (CI), `auto` then choosing another backend, and `melkit info` listing CUDA's state. On a
//! machine with a CUDA device, every golden case through the CLI within the GPU tolerance.

mod common;

use common::*;

fn cuda_present() -> bool {
    let info = text(&melkit(&["info"]).stdout);
    let line = info.lines().find(|l| l.trim_start().starts_with("cuda ")).unwrap_or_default();
    line.ends_with("ready")
}

#[test]
fn without_a_device_cuda_is_a_clear_error_and_auto_goes_on() {
    if cuda_present() {
        eprintln!("skipping: this machine has a CUDA device");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let out = dir.path().join("out");
    let run = command()
        .args(["run", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--backend", "cuda"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stdout));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("error: backend cuda is unavailable: no CUDA device: "), "{stderr}");
    assert!(!out.exists());
    let run = command()
        .args(["run", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--format", "npy"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let info = text(&melkit(&["info"]).stdout);
    assert!(info.contains("  cuda       unavailable: no CUDA device: "), "{info}");
}

#[test]
fn every_golden_case_through_the_cli_on_cuda() {
    if !cuda_present() {
        let required = ["MELKIT_REQUIRE_GPU", "MELKIT_REQUIRE_CUDA"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| v == "1"));
        assert!(!required, "a CUDA device is required but none is ready");
        eprintln!("skipping: no CUDA device");
        return;
    }
    golden_cases_on("cuda");
}
