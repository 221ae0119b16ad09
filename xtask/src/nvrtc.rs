//! NVRTC for the CUDA kernels' compile test on a machine with no CUDA toolkit: the
//! nvidia-cuda-nvrtc-cu12 wheel, installed with pip into target/cuda-libs (once), and its
//! library directory put on LD_LIBRARY_PATH for the tests. Where pip or the network is missing
//! the test skips, saying why, unless `MELKIT_REQUIRE_NVRTC=1` (CI), which makes it an error.

use std::path::Path;
use std::process::Command;

/// The wheel holding libnvrtc.so.12.
const WHEEL: &str = "nvidia-cuda-nvrtc-cu12";

/// Installs NVRTC if needed and points this process's children at it; says so when it cannot
/// (an error when `MELKIT_REQUIRE_NVRTC=1`).
pub fn provide(root: &Path) -> anyhow::Result<()> {
    let required = std::env::var("MELKIT_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let target = root.join("target/cuda-libs");
    let lib = target.join("nvidia/cuda_nvrtc/lib");
    if !lib.join("libnvrtc.so.12").exists() {
        eprintln!("$ python3 -m pip install --target {} {WHEEL}", target.display());
        let installed = Command::new("python3")
            .args(crate::venv::PIP_INSTALL)
            .args(["--break-system-packages", "--target"])
            .arg(&target)
            .arg(WHEEL)
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !lib.join("libnvrtc.so.12").exists() {
            if required {
                anyhow::bail!("could not install {WHEEL}, and MELKIT_REQUIRE_NVRTC=1");
            }
            eprintln!("warning: could not install {WHEEL}: the NVRTC compile test will skip");
            return Ok(());
        }
    }
    let path = match std::env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", lib.display()),
        _ => lib.display().to_string(),
    };
    // SAFETY: xtask is single-threaded here; the variable is for the cargo it starts next.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("LD_LIBRARY_PATH", path);
        std::env::set_var("MELKIT_REQUIRE_NVRTC", "1");
    }
    Ok(())
}
