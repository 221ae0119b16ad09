//! The emulated device's "NVRTC": one configuration's kernel sources, with the CUDA shim and the
//! entry points, built by g++ into a shared library and loaded; cached per process and on disk
//! (by a hash of the source and the compiler's flags) so that each configuration is built once.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use libloading::Library;

use crate::device::DeviceError;
use crate::kernels;

const SHIM: &str = include_str!("shim.h");
const ENTRY: &str = include_str!("entry.cpp");
const FLAGS: &[&str] =
    &["-std=c++20", "-O2", "-pthread", "-shared", "-fPIC", "-fvisibility=hidden", "-w"];

/// `melkit_fused`'s signature.
pub(crate) type FusedFn = unsafe extern "C" fn(
    u32,
    u32,
    u32,
    *const f32,
    *const u32,
    *const i32,
    *const c_void,
    *const c_void,
    *const u32,
    *const c_void,
    *mut f32,
    u32,
) -> *const c_char;
/// `melkit_frame_window`'s signature.
pub(crate) type FramingFn = unsafe extern "C" fn(
    u32,
    u32,
    *const f32,
    *const u32,
    *const i32,
    *const c_void,
    *mut c_void,
    u32,
) -> *const c_char;
/// `melkit_power_mel`'s signature.
pub(crate) type PowerMelFn = unsafe extern "C" fn(
    u32,
    u32,
    *const c_void,
    *const u32,
    *const c_void,
    *mut f32,
    u32,
) -> *const c_char;

/// One configuration's kernels, loaded.
pub(crate) struct KernelLibrary {
    /// Keeps the code the pointers point into.
    _library: Library,
    pub fused: FusedFn,
    pub framing: FramingFn,
    pub power_mel: PowerMelFn,
}

/// The kernels for `defines`, built if need be.
pub(crate) fn load(defines: &str) -> Result<Arc<KernelLibrary>, DeviceError> {
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<KernelLibrary>>>> = OnceLock::new();
    let source = format!(
        "{SHIM}{defines}{}{}{}{}{ENTRY}",
        kernels::COMMON,
        kernels::FRAMING,
        kernels::MEL,
        kernels::FUSED
    );
    let key = blake3::hash(format!("{}\n{source}", FLAGS.join(" ")).as_bytes()).to_hex();
    let loaded = LOADED.get_or_init(Mutex::default);
    let mut loaded = loaded.lock().map_err(|_| DeviceError::new("emulator lock poisoned"))?;
    if let Some(library) = loaded.get(key.as_str()) {
        return Ok(library.clone());
    }
    let path = build(&source, key.as_str())?;
    let library = open(&path)?;
    loaded.insert(key.to_string(), library.clone());
    Ok(library)
}

/// Where built libraries are kept: `MELKIT_CUDA_EMULATED_CACHE`, else the user's own cache
/// (`$XDG_CACHE_HOME` or `~/.cache`, `melkit/cuda-emulated`), never a folder others can write
/// to (a library found there is loaded and run).
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MELKIT_CUDA_EMULATED_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"));
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or(home)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("melkit-{}", std::process::id())))
        .join("melkit/cuda-emulated")
}

/// The library for `source`, built by g++ unless the cache has it.
fn build(source: &str, key: &str) -> Result<PathBuf, DeviceError> {
    let dir = cache_dir();
    let target = dir.join(format!("{key}.so"));
    if target.is_file() {
        return Ok(target);
    }
    let io = |e: std::io::Error| DeviceError::new(format!("{}: {e}", dir.display()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io)?;
    }
    // Built under a name of this process's own, then renamed: concurrent builds never see a
    // half-written library.
    let pid = std::process::id();
    let src = dir.join(format!("{key}.{pid}.cpp"));
    let part = dir.join(format!("{key}.{pid}.so"));
    std::fs::write(&src, source).map_err(io)?;
    let built = Command::new("g++").args(FLAGS).arg("-o").arg(&part).arg(&src).output();
    let _ = std::fs::remove_file(&src);
    let built = built.map_err(|e| DeviceError::new(format!("g++ not found: {e}")))?;
    if !built.status.success() {
        let _ = std::fs::remove_file(&part);
        let log = String::from_utf8_lossy(&built.stderr);
        return Err(DeviceError::new(format!("g++ failed to build the kernels: {log}")));
    }
    std::fs::rename(&part, &target).map_err(io)?;
    Ok(target)
}

fn open(path: &PathBuf) -> Result<Arc<KernelLibrary>, DeviceError> {
    let error = |e: libloading::Error| DeviceError::new(format!("{}: {e}", path.display()));
    // SAFETY: the library is one this module built from melkit's own sources; loading it runs
    // no code of anyone else's, and its entry points have the signatures declared above.
    #[allow(unsafe_code)]
    unsafe {
        let library = Library::new(path).map_err(error)?;
        let fused = *library.get::<FusedFn>(b"melkit_fused\0").map_err(error)?;
        let framing = *library.get::<FramingFn>(b"melkit_frame_window\0").map_err(error)?;
        let power_mel = *library.get::<PowerMelFn>(b"melkit_power_mel\0").map_err(error)?;
        Ok(Arc::new(KernelLibrary { _library: library, fused, framing, power_mel }))
    }
}

/// A launch's outcome: null, or the entry point's reason for refusing it.
pub(crate) fn outcome(result: *const c_char) -> Result<(), DeviceError> {
    if result.is_null() {
        return Ok(());
    }
    // SAFETY: the entry points return null or a pointer to a static C string.
    #[allow(unsafe_code)]
    let reason = unsafe { CStr::from_ptr(result) }.to_string_lossy().into_owned();
    Err(DeviceError::new(reason))
}
