//! The Python the benchmarks need, in a virtual environment under `target/bench-venv` (made and
//! filled with pip on first use): numpy and soundfile for the corpus generator; librosa, soxr,
//! torch and torchaudio as well for the anchors (`--anchors`); and any other venv the tasks need.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// `python -m pip install`, quiet, with no cache (a wheel cached is a wheel stored twice: CI's
/// disk once ran out installing torch).
pub const PIP_INSTALL: &[&str] =
    &["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"];

/// The venv's python, with the packages the corpus (and with `anchors`, the anchors) need.
pub fn python(root: &Path, anchors: bool) -> Result<PathBuf> {
    let mut packages = vec!["numpy", "soundfile"];
    if anchors {
        packages.extend(["librosa", "soxr", "torch", "torchaudio"]);
    }
    with_packages(&root.join("target/bench-venv"), &packages)
}

/// The python of the venv at `venv` (made on first use), with `packages` installed.
pub fn with_packages(venv: &Path, packages: &[&str]) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("$ python3 -m venv {}", venv.display());
        if !Command::new("python3").arg("-m").arg("venv").arg(venv).status()?.success() {
            bail!("python3 -m venv failed (Debian: apt-get install python3-venv)");
        }
    }
    let imports = packages.iter().map(|p| p.replace('-', "_")).collect::<Vec<_>>().join(", ");
    let present = Command::new(&python)
        .args(["-c", &format!("import {imports}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("$ {} -m pip install {}", python.display(), packages.join(" "));
        let status = Command::new(&python).args(PIP_INSTALL).args(packages).status()?;
        if !status.success() {
            bail!("pip install {} failed", packages.join(" "));
        }
    }
    Ok(python)
}
