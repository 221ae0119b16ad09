//! CUDA devices emulated on the CPU (`--backend cuda-emulated`, a test and development aid):
//! the backend's host code runs unchanged against them, and their kernels are the very `.cu`
//! sources NVRTC compiles, built by g++ with a small CUDA shim. Device memory is accounted
//! (an allocation beyond it is an out-of-memory error, as on a device); every copy is checked
//! against both buffers; a stream's operations run in order when it is synchronised, never
//! before, so host code that reads results early or reuses a buffer in flight gets wrong
//! numbers here as it would on a GPU. The batched FFT is a CPU FFT (realfft) behind cuFFT's
//! interface. Faults can be injected: an out-of-memory on the k-th allocation or launch, a
//! kernel error on the k-th launch.

mod library;
mod ops;
mod options;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use options::{Emulator, Faults};

use crate::device::{DeviceError, Elem, Real};
use library::KernelLibrary;

/// Shared by the devices of one emulator: its settings and its counters.
struct State {
    options: Emulator,
    allocations: AtomicU64,
    launches: AtomicU64,
}

/// One emulated device.
#[derive(Clone)]
pub struct Emulated {
    ordinal: usize,
    state: Arc<State>,
    /// Bytes allocated on it.
    used: Arc<AtomicUsize>,
}

impl Emulator {
    /// Its devices.
    pub fn start(&self) -> Vec<Emulated> {
        let state = Arc::new(State {
            options: self.clone(),
            allocations: AtomicU64::new(0),
            launches: AtomicU64::new(0),
        });
        (0..self.devices.max(1))
            .map(|ordinal| Emulated { ordinal, state: state.clone(), used: Arc::default() })
            .collect()
    }
}

impl Emulated {
    /// Counts an allocation of `bytes`: an out-of-memory where a fault says so or the device
    /// is full.
    fn allocate(&self, bytes: usize) -> Result<Allocation, DeviceError> {
        let k = self.state.allocations.fetch_add(1, Ordering::SeqCst) + 1;
        if self.state.options.faults.oom_at_allocation == Some(k) {
            return Err(DeviceError::out_of_memory(format!(
                "out of memory (injected at allocation {k})"
            )));
        }
        let limit = self.state.options.memory;
        let used = self.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if used > limit {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(DeviceError::out_of_memory(format!(
                "out of memory: {bytes} bytes asked for, {} of {limit} free",
                limit.saturating_sub(used - bytes)
            )));
        }
        Ok(Allocation { bytes, used: self.used.clone() })
    }

    /// Counts a launch: an out-of-memory or a kernel error where a fault says so (the error is
    /// reported when the stream is synchronised, as a failing kernel's is).
    fn launch(&self) -> Result<Option<DeviceError>, DeviceError> {
        let k = self.state.launches.fetch_add(1, Ordering::SeqCst) + 1;
        let faults = self.state.options.faults;
        if faults.oom_at_launch == Some(k) {
            return Err(DeviceError::out_of_memory(format!(
                "out of memory (injected at launch {k})"
            )));
        }
        Ok((faults.error_at_launch == Some(k)).then(|| {
            DeviceError::new(format!("unspecified launch failure (injected at launch {k})"))
        }))
    }
}

/// Device memory in use, given back when its buffer goes.
struct Allocation {
    bytes: usize,
    used: Arc<AtomicUsize>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Values shared between a buffer and the operations queued on it.
type Shared<T> = Arc<Mutex<Vec<T>>>;

/// Emulated device memory.
pub struct Buffer<T> {
    data: Shared<T>,
    len: usize,
    _allocation: Allocation,
}

/// Emulated page-locked host memory.
pub struct Host<T> {
    data: Shared<T>,
}

/// An operation queued on a stream.
type Op = Box<dyn FnOnce() -> Result<(), DeviceError> + Send>;

/// An emulated stream: operations queued, run in order when it is synchronised.
pub struct Stream {
    ops: Mutex<Vec<Op>>,
}

/// An emulated cuFFT plan.
pub struct Fft {
    n: usize,
    frames: usize,
}

/// The kernels of one configuration, built.
pub struct Kernels {
    library: Arc<KernelLibrary>,
}

fn lock<T>(data: &Shared<T>) -> Result<std::sync::MutexGuard<'_, Vec<T>>, DeviceError> {
    data.lock().map_err(|_| DeviceError::new("emulated buffer lock poisoned"))
}

/// A zeroed vector of `len` values.
fn zeros<T: Elem>(len: usize) -> Shared<T> {
    Arc::new(Mutex::new(vec![T::ZERO; len]))
}

/// `frames` real FFTs of `n` points of `input` into `output`, as cuFFT's R2C (D2Z) computes.
fn rfft<R: Real>(
    n: usize,
    frames: usize,
    input: &[R],
    output: &mut [R::Complex],
) -> Result<(), DeviceError> {
    R::cpu_rfft(n, frames, input, output).map_err(DeviceError::new)
}
