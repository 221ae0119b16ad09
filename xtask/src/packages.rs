//! Making sure Debian packages are installed: installed with apt-get when run as root,
//! otherwise named with the exact command to run.

use std::process::Command;

use anyhow::{Result, bail};

fn installed(package: &str) -> Option<bool> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output().ok()?;
    Some(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("install ok installed"),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs whichever of `packages` are missing, or stops with the command that would.
pub fn ensure(packages: &[&str]) -> Result<()> {
    let mut missing = Vec::new();
    for &p in packages {
        match installed(p) {
            Some(true) => {}
            Some(false) => missing.push(p),
            None => {
                eprintln!(
                    "xtask: cannot check system packages here (no dpkg-query); melkit needs {}",
                    packages.join(" ")
                );
                return Ok(());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing system packages: {list}\ninstall them with:\n  sudo apt-get install -y {list}"
        );
    }
    eprintln!("xtask: installing {list}");
    let apt = |args: &[&str]| {
        Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status()
    };
    if !apt(&["update", "-qq"])?.success() {
        bail!("apt-get update failed");
    }
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    if !apt(&args)?.success() {
        bail!("apt-get install {list} failed");
    }
    Ok(())
}
