//! The lane path against the pair path alternated batch by batch (`melkit-benches`' `cpu_ab`),
//! for `cargo xtask bench`: criterion times the two paths one after the other, so on a shared
//! machine a change of load between them moves its ratio; the alternated best-of-90 does not.
//! Also the kernel's limits on this CPU (`kernel_limit`), beside the lane path.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cargo;

/// The best wall milliseconds per batch of 32 files on the lane and the pair path, alternated,
/// on every core (rayon's default), with the configuration keys `keys` (`KEY=VALUE`) set.
pub(crate) fn lanes_and_pairs(root: &Path, keys: &[&str]) -> Result<(f64, f64)> {
    cargo(&["build", "--release", "--quiet", "-p", "melkit-benches", "--bin", "cpu_ab"])?;
    let output = Command::new(root.join("target/release/cpu_ab"))
        .args(keys)
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .context("cannot run cpu_ab")?;
    if !output.status.success() {
        bail!("cpu_ab failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// `kernel_limit`'s report (the vector units' peak, the bare transform and the lane path a
/// file, one thread), or `None` where it cannot measure them (no AVX2 and FMA).
pub(crate) fn kernel_limit(root: &Path) -> Result<Option<Value>> {
    cargo(&["build", "--release", "--quiet", "-p", "melkit-benches", "--bin", "kernel_limit"])?;
    let output = Command::new(root.join("target/release/kernel_limit"))
        .arg("--json")
        .output()
        .context("cannot run kernel_limit")?;
    if !output.status.success() {
        eprintln!("bench: kernel_limit skipped: {}", String::from_utf8_lossy(&output.stderr));
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(&output.stdout).context("kernel_limit's report")?))
}

/// `(lanes, pairs)` from cpu_ab's line `... lanes 5.90, pairs 12.80; lanes are 2.17x pairs`.
fn parse(text: &str) -> Result<(f64, f64)> {
    let number = |key: &str| -> Result<f64> {
        let at =
            text.find(key).with_context(|| format!("no {key:?} in cpu_ab's output: {text}"))?;
        let rest = &text[at + key.len()..];
        let end = rest.find([',', ';']).unwrap_or(rest.len());
        rest[..end].trim().parse().with_context(|| format!("{key:?} in cpu_ab's output: {text}"))
    };
    Ok((number("lanes ")?, number("pairs ")?))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_both_paths_times() {
        let line =
            "best wall ms per batch of 32 files: lanes 5.90, pairs 12.80; lanes are 2.17x pairs\n";
        assert_eq!(parse(line).unwrap(), (5.90, 12.80));
        let err = parse("best wall ms per batch of 32 files: Lanes 6.91\n").unwrap_err();
        assert!(err.to_string().starts_with("no \"lanes \" in cpu_ab's output"), "{err}");
    }
}
