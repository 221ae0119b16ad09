//! The CUDA driver, looked at without ever panicking: whether its library is there, which
//! devices it sees (for `melkit info`), and contexts on them.

use std::sync::Arc;

use cudarc::driver::{CudaContext, DriverError};

/// One CUDA device, as `melkit info` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    /// The device's ordinal.
    pub ordinal: usize,
    /// Its name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Its memory, in bytes.
    pub memory: usize,
    /// Its compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// The driver's CUDA version, e.g. "12.8".
    pub driver_version: String,
}

/// Whether the driver library (libcuda) can be loaded: every other call needs it, and cudarc
/// panics on a call into a library it cannot load.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names; calls nothing in it.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::driver::sys::is_culib_present()
    }
}

/// Whether the cuFFT library can be loaded.
pub fn cufft_present() -> bool {
    // SAFETY: as for the driver.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::cufft::sys::is_culib_present()
    }
}

/// Why there is no device to use, or the number of devices.
///
/// # Errors
/// "no CUDA device" with the reason: no driver library, a driver that does not start, or no
/// device.
pub fn device_count() -> Result<usize, String> {
    if !driver_present() {
        return Err("no CUDA device: the CUDA driver library (libcuda) was not found".into());
    }
    cudarc::driver::result::init().map_err(|e| format!("no CUDA device: {}", describe(e)))?;
    match CudaContext::device_count() {
        Ok(n) if n > 0 => Ok(n as usize),
        Ok(_) => Err("no CUDA device: the driver sees none".into()),
        Err(e) => Err(format!("no CUDA device: {}", describe(e))),
    }
}

/// A context on device `ordinal`.
///
/// # Errors
/// The driver's error.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, String> {
    device_count()?;
    CudaContext::new(ordinal).map_err(|e| format!("device {ordinal}: {}", describe(e)))
}

/// The devices the driver sees; an empty list where there is no driver.
pub fn devices() -> Vec<DeviceSummary> {
    let Ok(count) = device_count() else { return Vec::new() };
    let version = driver_version().unwrap_or_else(|| "unknown".into());
    (0..count)
        .filter_map(|ordinal| {
            let ctx = CudaContext::new(ordinal).ok()?;
            Some(DeviceSummary {
                ordinal,
                name: ctx.name().ok()?,
                memory: ctx.total_mem().ok()?,
                compute_capability: ctx.compute_capability().ok()?,
                driver_version: version.clone(),
            })
        })
        .collect()
}

/// The CUDA version the driver supports, e.g. "12.8".
fn driver_version() -> Option<String> {
    let mut version = 0;
    // SAFETY: the driver library is present (checked by the caller) and initialised; the
    // pointer is to a live local.
    #[allow(unsafe_code)]
    let result = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    (result == cudarc::driver::sys::CUresult::CUDA_SUCCESS)
        .then(|| format!("{}.{}", version / 1000, (version % 1000) / 10))
}

/// A driver error in words.
pub fn describe(e: DriverError) -> String {
    match e.error_string() {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => format!("{:?}", e.0),
    }
}

/// Whether a driver error is the device running out of memory.
pub fn out_of_memory(e: &DriverError) -> bool {
    e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY
}
