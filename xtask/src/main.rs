//! `cargo xtask`: the project's chores, each making sure first that the system packages it
//! needs are present.
//!
//! - `cargo xtask test [ARGS]`: the whole test suite (`cargo test --workspace ARGS`, with the
//!   emulated CUDA device), then the Python package's (built by maturin into `target/py-venv`).
//! - `cargo xtask example`: melkit on the bundled audio in `examples/audio`.
//! - `cargo xtask bench [--anchors] [--quick]`: the corpus end to end for every backend, the
//!   criterion benches that define the FFT-bound limit, memory, scaling; JSON and Markdown
//!   under `target/bench/`. `--scale [--max N]`: cost per file and memory from 1 k to 1 M
//!   inputs (hard-linked corpora).
//! - `cargo xtask deps`: only install (or name) the system packages.
//! - `cargo xtask gen-examples`: regenerate `examples/audio` (deterministic).
//! - `cargo xtask fuzz [SECONDS]`: fuzz decoding and the pipeline (needs cargo-fuzz).

mod bench;
mod cpu_ab;
mod examples;
mod fuzz;
mod loadtest;
mod nvrtc;
mod packages;
mod python;
mod scale;
mod venv;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// What building melkit with HDF5 needs.
const BUILD_PACKAGES: &[&str] = &["pkg-config", "libhdf5-dev"];
/// What the tests need besides: h5py and numpy to read outputs back as users do, lavapipe
/// (Mesa's Vulkan on the CPU) for the wgpu backend's tests, g++ to run the CUDA kernels on the
/// CPU, and pip to fetch NVRTC (to compile them as the CUDA backend does).
const TEST_PACKAGES: &[&str] = &[
    "python3-h5py",
    "python3-numpy",
    "mesa-vulkan-drivers",
    "libvulkan1",
    "g++",
    "python3-pip",
    "python3-venv",
];

/// Features the test suite turns on beyond the defaults: the emulated CUDA device.
const TEST_FEATURES: &str = "melkit-cli/cuda-emulated";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match command.as_str() {
        "test" => {
            packages::ensure(&[BUILD_PACKAGES, TEST_PACKAGES].concat())?;
            nvrtc::provide(&root)?;
            cargo(
                &[&["test", "--workspace", "--features", TEST_FEATURES][..], &strs(&rest)].concat(),
            )?;
            python::test(&root)
        }
        "example" => {
            packages::ensure(BUILD_PACKAGES)?;
            example(&root)
        }
        "bench" => {
            packages::ensure(&[BUILD_PACKAGES, &["time", "python3-venv", "python3-pip"]].concat())?;
            bench::run(&root, &rest)
        }
        "loadtest" => {
            packages::ensure(BUILD_PACKAGES)?;
            loadtest::run(&root, &rest)
        }
        "deps" => {
            packages::ensure(&[BUILD_PACKAGES, TEST_PACKAGES].concat())?;
            nvrtc::provide(&root)?;
            Ok(())
        }
        "gen-examples" => examples::generate(&root.join("examples/audio")),
        "fuzz" => fuzz::run(&root, &rest),
        other => {
            eprintln!("usage: cargo xtask test|example|bench|loadtest|deps|gen-examples|fuzz");
            bail!("unknown command {other:?}")
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo).args(args).status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn example(root: &Path) -> Result<()> {
    let out = root.join("target/example-output");
    let audio = root.join("examples/audio");
    cargo(&[
        "run",
        "--release",
        "--package",
        "melkit-cli",
        "--",
        "run",
        audio.to_str().context("non-UTF-8 path")?,
        "-o",
        out.to_str().context("non-UTF-8 path")?,
        "--compression",
        "deflate",
    ])?;
    println!("\nThe tensors are in {}; read one in Python with:", out.display());
    println!("  import h5py");
    println!("  mel = h5py.File(\"{}/tones_4096.h5\")[\"mel\"][()]", out.display());
    println!("  print(mel.shape)  # (40, 2, 64, 17)");
    Ok(())
}
