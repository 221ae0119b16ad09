//! The Python package's tests: `pip install ./crates/python` (maturin builds the wheel) into a
//! venv under `target/py-venv` with pytest, numpy, h5py, torch and mypy, then pytest on
//! `crates/python/tests` (with `MELKIT_BIN`, the CLI `cargo test` built, for stacked files).

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

/// Builds and installs the package, and runs its tests.
pub fn test(root: &Path) -> Result<()> {
    let python = crate::venv::with_packages(
        &root.join("target/py-venv"),
        &["pytest", "numpy", "h5py", "torch", "mypy"],
    )?;
    let run = |args: &[&str]| -> Result<()> {
        eprintln!("$ {} {}", python.display(), args.join(" "));
        let bin = root.join("target/debug/melkit");
        let status =
            Command::new(&python).args(args).current_dir(root).env("MELKIT_BIN", bin).status()?;
        if !status.success() {
            bail!("{} failed", args.join(" "));
        }
        Ok(())
    };
    run(&[crate::venv::PIP_INSTALL, &["--force-reinstall", "--no-deps", "./crates/python"]]
        .concat())?;
    run(&["-m", "pytest", "-q", "crates/python/tests"])
}
