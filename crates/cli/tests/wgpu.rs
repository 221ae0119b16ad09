//! `--backend wgpu` from the command line: every golden case within the GPU tolerance (on
//! lavapipe in CI), a clear "no GPU adapter" error when Vulkan has no driver, and `auto`
//! choosing the CPU backend over a CPU adapter. Without any adapter the golden part skips with
//! the reason (`MELKIT_REQUIRE_GPU=1` makes that a failure).

mod common;

use common::*;

/// What `melkit info` says of the adapters: `None` when wgpu has none, else whether one of
/// them is a real GPU.
fn adapters() -> Option<bool> {
    let info = text(&melkit(&["info"]).stdout);
    let adapters: Vec<&str> =
        info.lines().filter(|l| l.trim_start().starts_with("wgpu:")).collect();
    if adapters.is_empty() {
        return None;
    }
    Some(adapters.iter().any(|l| !l.contains("(Cpu,")))
}

fn skip_without_adapter() -> bool {
    if adapters().is_some() {
        return false;
    }
    let required = ["MELKIT_REQUIRE_GPU", "MELKIT_REQUIRE_WGPU"]
        .iter()
        .any(|v| std::env::var(v).as_deref() == Ok("1"));
    assert!(!required, "a GPU is required but wgpu sees no adapter");
    eprintln!("skipping: wgpu sees no adapter (install mesa-vulkan-drivers for lavapipe)");
    true
}

#[test]
fn golden_cases_through_the_wgpu_backend() {
    if skip_without_adapter() {
        return;
    }
    golden_cases_on("wgpu");
}

#[test]
fn no_vulkan_driver_is_a_clear_no_gpu_adapter_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let out = dir.path().join("out");
    let run = command()
        .args(["run", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--backend", "wgpu"])
        .env("VK_ICD_FILENAMES", dir.path().join("no-such-driver.json"))
        .env("VK_DRIVER_FILES", dir.path().join("no-such-driver.json"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stdout));
    assert!(
        text(&run.stderr).ends_with("error: backend wgpu is unavailable: no GPU adapter\n"),
        "{}",
        text(&run.stderr)
    );
    assert!(!out.exists());
    // auto falls back to the CPU backend.
    let run = command()
        .args(["run", input.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .env("VK_ICD_FILENAMES", dir.path().join("no-such-driver.json"))
        .env("VK_DRIVER_FILES", dir.path().join("no-such-driver.json"))
        .output()
        .unwrap();
    assert!(run.status.success());
    assert!(text(&run.stdout).contains("on backend cpu"), "{}", text(&run.stdout));
}

#[test]
fn auto_prefers_the_cpu_backend_over_a_cpu_adapter() {
    let Some(real_gpu) = adapters() else {
        eprintln!("skipping: wgpu sees no adapter");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let run = melkit(&["run", input.to_str().unwrap(), "-o", dir.path().to_str().unwrap()]);
    assert!(run.status.success());
    let expected = if real_gpu { "on backend wgpu" } else { "on backend cpu" };
    assert!(text(&run.stdout).contains(expected), "{}", text(&run.stdout));
}

/// An `n_fft` beyond the adapter's workgroup memory goes to the CPU backend with a notice
/// (SPEC §4), never an error, and gives the CPU backend's numbers.
#[test]
fn a_size_the_adapter_cannot_take_goes_to_the_cpu_backend() {
    if skip_without_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let mut outputs = Vec::new();
    for backend in ["wgpu", "cpu"] {
        let out = dir.path().join(backend);
        let run = melkit(&[
            "run",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--backend",
            backend,
            "--n-fft",
            "8192",
            "--format",
            "npy",
        ]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(text(&run.stdout).contains("on backend cpu"), "{}", text(&run.stdout));
        if backend == "wgpu" {
            let stderr = text(&run.stderr);
            let notice = "wgpu cannot take this configuration (n_fft 8192 needs 65536 bytes of \
                          workgroup memory; ";
            assert!(stderr.contains(notice), "{stderr}");
            assert!(stderr.contains("): the CPU backend computes it"), "{stderr}");
        }
        outputs.push(std::fs::read(out.join("tiny_4096_pcm16_full.npy")).unwrap());
    }
    assert!(outputs[0] == outputs[1], "the outputs differ");
}
