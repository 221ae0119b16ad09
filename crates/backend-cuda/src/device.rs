//! The seam between the CUDA backend's host code and a device: everything the engine asks of a
//! device (memory, page-locked host buffers, streams, asynchronous copies, the three kernels,
//! a batched real FFT) as one trait, implemented by the real device (cudarc: driver, NVRTC,
//! cuFFT) and, behind the `cuda-emulated` feature, by a device emulated on the CPU that runs
//! the same kernel sources. The engine's chunking, rebasing, slots, streams, buffer sizing,
//! out-of-memory halving and spread over devices run unchanged on either.

use std::ops::Range;

use cudarc::cufft::{CudaFft, result::CufftError, sys as fft};
use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};

/// What went wrong on a device; `oom` when it ran out of memory (the engine halves its chunks
/// and starts the batch again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceError {
    /// What happened, in words.
    pub reason: String,
    /// Whether the device ran out of memory.
    pub oom: bool,
}

impl DeviceError {
    /// An error that is not an out-of-memory.
    pub fn new(reason: impl Into<String>) -> Self {
        DeviceError { reason: reason.into(), oom: false }
    }

    /// The device ran out of memory.
    pub fn out_of_memory(reason: impl Into<String>) -> Self {
        DeviceError { reason: reason.into(), oom: true }
    }
}

impl From<CufftError> for DeviceError {
    fn from(e: CufftError) -> Self {
        let oom = e.0 == fft::cufftResult::CUFFT_ALLOC_FAILED;
        DeviceError { reason: format!("cuFFT: {e}"), oom }
    }
}

/// A value the device holds in its buffers.
pub trait Elem: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync + 'static {
    /// Zero (all bits clear).
    const ZERO: Self;
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
}
impl Elem for f64 {
    const ZERO: Self = 0.0;
}
impl Elem for u32 {
    const ZERO: Self = 0;
}
impl Elem for i32 {
    const ZERO: Self = 0;
}
impl Elem for fft::float2 {
    const ZERO: Self = fft::float2 { x: 0.0, y: 0.0 };
}
impl Elem for fft::double2 {
    const ZERO: Self = fft::double2 { x: 0.0, y: 0.0 };
}

/// The real type the kernels compute in: f32, or f64 where the output is in dB (an f32 FFT's
/// error swamps the quiet bins a dB scale shows).
pub trait Real: Elem {
    /// The complex type of the same precision, laid out as cuFFT's.
    type Complex: Elem;
    /// Whether this is f64.
    const DOUBLE: bool;
    /// The batched real-to-complex transform of this precision.
    const TRANSFORM: fft::cufftType;
    /// The nearest value to `x`.
    fn of(x: f64) -> Self;
    /// Runs cuFFT's `plan` from `input` into `output`.
    ///
    /// # Errors
    /// cuFFT's.
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<Self>,
        output: &mut CudaSlice<Self::Complex>,
    ) -> Result<(), CufftError>;
    /// `frames` real FFTs of `n` points of `input` into `output` on the CPU (the emulated
    /// device's cuFFT).
    ///
    /// # Errors
    /// realfft's, in words.
    #[cfg(feature = "cuda-emulated")]
    fn cpu_rfft(
        n: usize,
        frames: usize,
        input: &[Self],
        output: &mut [Self::Complex],
    ) -> Result<(), String>;
}

/// `frames` real FFTs of `n` points on the CPU, each bin written through `store`.
#[cfg(feature = "cuda-emulated")]
fn cpu_rfft<T: realfft::FftNum, C>(
    n: usize,
    frames: usize,
    (input, output): (&[T], &mut [C]),
    store: fn(realfft::num_complex::Complex<T>) -> C,
) -> Result<(), String> {
    let fft = realfft::RealFftPlanner::<T>::new().plan_fft_forward(n);
    let (mut frame, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let bins = n / 2 + 1;
    for f in 0..frames {
        frame.copy_from_slice(&input[f * n..(f + 1) * n]);
        fft.process(&mut frame, &mut spectrum).map_err(|e| e.to_string())?;
        for (o, z) in output[f * bins..(f + 1) * bins].iter_mut().zip(&spectrum) {
            *o = store(*z);
        }
    }
    Ok(())
}

impl Real for f32 {
    type Complex = fft::float2;
    const DOUBLE: bool = false;
    const TRANSFORM: fft::cufftType = fft::cufftType::CUFFT_R2C;
    fn of(x: f64) -> Self {
        x as f32
    }
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<f32>,
        output: &mut CudaSlice<fft::float2>,
    ) -> Result<(), CufftError> {
        plan.exec_r2c(input, output)
    }
    #[cfg(feature = "cuda-emulated")]
    fn cpu_rfft(
        n: usize,
        frames: usize,
        input: &[f32],
        output: &mut [fft::float2],
    ) -> Result<(), String> {
        cpu_rfft(n, frames, (input, output), |z| fft::float2 { x: z.re, y: z.im })
    }
}

impl Real for f64 {
    type Complex = fft::double2;
    const DOUBLE: bool = true;
    const TRANSFORM: fft::cufftType = fft::cufftType::CUFFT_D2Z;
    fn of(x: f64) -> Self {
        x
    }
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<f64>,
        output: &mut CudaSlice<fft::double2>,
    ) -> Result<(), CufftError> {
        plan.exec_d2z(input, output)
    }
    #[cfg(feature = "cuda-emulated")]
    fn cpu_rfft(
        n: usize,
        frames: usize,
        input: &[f64],
        output: &mut [fft::double2],
    ) -> Result<(), String> {
        cpu_rfft(n, frames, (input, output), |z| fft::double2 { x: z.re, y: z.im })
    }
}

/// A kernel launch's grid: blocks, threads per block, dynamic shared memory in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Blocks in x.
    pub blocks: u32,
    /// Threads per block.
    pub threads: u32,
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

impl Launch {
    /// One thread per item, `threads` to a block, no shared memory.
    pub fn per_item(items: usize, threads: u32) -> Self {
        Launch {
            blocks: (items as u64).div_ceil(u64::from(threads)) as u32,
            threads,
            shared_bytes: 0,
        }
    }
}

/// The constant tables of one configuration, on a device.
pub struct Tables<D: Device, R: Real> {
    /// The framing table (`n_frames × n_fft`, −1 for padding).
    pub frame_index: D::Buffer<i32>,
    /// The window.
    pub window: D::Buffer<R>,
    /// `e^{−2πik/N}` as (re, im) pairs.
    pub twiddles: D::Buffer<R>,
    /// Per mel bin: first FFT bin, count, offset into the weights.
    pub mel_spans: D::Buffer<u32>,
    /// The filters' non-zero weights.
    pub mel_weights: D::Buffer<R>,
}

/// What one chunk's kernels read and write on the device.
pub struct ChunkArgs<'a, D: Device> {
    /// The chunk's signal.
    pub signal: &'a D::Buffer<f32>,
    /// Its long segments' starts, relative to the signal's first sample.
    pub starts: &'a D::Buffer<u32>,
    /// Frames to compute.
    pub frames: u32,
}

/// A CUDA device, real or emulated: what the engine needs of it. Every operation on a stream
/// is asynchronous (it may run any time before the stream is synchronised), in stream order.
pub trait Device: Sized + Send + 'static {
    /// A stream of operations.
    type Stream: Send;
    /// Device memory holding `T`s.
    type Buffer<T: Elem>: Send;
    /// Page-locked host memory holding `T`s.
    type Host<T: Elem>: Send;
    /// A batched real FFT plan.
    type Fft: Send;
    /// The three kernels, compiled for one configuration.
    type Kernels: Send;

    /// The backend's name on this device (`cuda`, `cuda-emulated`).
    const NAME: &'static str;
    /// Long segments in the batch that times the two FFT paths against each other.
    const TIMING_LONGS: usize;

    /// The device's ordinal.
    fn ordinal(&self) -> usize;
    /// Free device memory, in bytes.
    fn free_memory(&self) -> Result<usize, DeviceError>;
    /// Dynamic shared memory a block may have, in bytes.
    fn shared_memory(&self) -> usize;
    /// Whether the batched FFT (cuFFT) is there.
    fn has_fft(&self) -> bool;
    /// The kernels compiled with `defines` (the configuration's constants) prepended.
    fn compile(&self, defines: &str) -> Result<Self::Kernels, DeviceError>;

    /// A new stream.
    fn new_stream(&self) -> Result<Self::Stream, DeviceError>;
    /// Waits for every operation queued on `stream`.
    fn synchronize(&self, stream: &Self::Stream) -> Result<(), DeviceError>;

    /// `len` values of device memory, uninitialised (written before they are read).
    fn alloc<T: Elem>(
        &self,
        stream: &Self::Stream,
        len: usize,
    ) -> Result<Self::Buffer<T>, DeviceError>;
    /// Device memory holding `values`, copied before this returns.
    fn upload_table<T: Elem>(
        &self,
        stream: &Self::Stream,
        values: &[T],
    ) -> Result<Self::Buffer<T>, DeviceError>;
    /// Values a device buffer holds.
    fn len<T: Elem>(buffer: &Self::Buffer<T>) -> usize;

    /// `len` values of page-locked host memory; `read_back` where the host reads it (results).
    fn alloc_host<T: Elem>(
        &self,
        len: usize,
        read_back: bool,
    ) -> Result<Self::Host<T>, DeviceError>;
    /// Values a host buffer holds.
    fn host_len<T: Elem>(host: &Self::Host<T>) -> usize;
    /// Writes `values` into `host` from index `at` (no copy of it may be in flight).
    fn write_host<T: Elem>(
        host: &mut Self::Host<T>,
        at: usize,
        values: &[T],
    ) -> Result<(), DeviceError>;
    /// Reads `out.len()` values of `host` from index `at` (its stream synchronised).
    fn read_host<T: Elem>(
        host: &mut Self::Host<T>,
        at: usize,
        out: &mut [T],
    ) -> Result<(), DeviceError>;

    /// Copies `host[range]` to the start of `device`, in `stream`.
    fn upload<T: Elem>(
        &self,
        stream: &Self::Stream,
        host: &Self::Host<T>,
        range: Range<usize>,
        device: &mut Self::Buffer<T>,
    ) -> Result<(), DeviceError>;
    /// Copies the first `range.len()` values of `device` to `host[range]`, in `stream`.
    fn download<T: Elem>(
        &self,
        stream: &Self::Stream,
        device: &Self::Buffer<T>,
        host: &mut Self::Host<T>,
        range: Range<usize>,
    ) -> Result<(), DeviceError>;

    /// Launches the fused kernel (`fused.cu`) on a chunk.
    fn fused<R: Real>(
        &self,
        stream: &Self::Stream,
        kernels: &Self::Kernels,
        launch: Launch,
        args: (&Tables<Self, R>, ChunkArgs<'_, Self>),
        out: &mut Self::Buffer<f32>,
    ) -> Result<(), DeviceError>;
    /// Launches the framing kernel (`framing.cu`) on a chunk.
    fn framing<R: Real>(
        &self,
        stream: &Self::Stream,
        kernels: &Self::Kernels,
        launch: Launch,
        args: (&Tables<Self, R>, ChunkArgs<'_, Self>),
        frames: &mut Self::Buffer<R>,
    ) -> Result<(), DeviceError>;
    /// Launches the power + mel kernel (`mel.cu`) on `args`: the tables, the spectra and the
    /// number of frames.
    fn power_mel<R: Real>(
        &self,
        stream: &Self::Stream,
        kernels: &Self::Kernels,
        launch: Launch,
        args: (&Tables<Self, R>, &Self::Buffer<R::Complex>, u32),
        out: &mut Self::Buffer<f32>,
    ) -> Result<(), DeviceError>;

    /// A plan for `frames` real FFTs of `n` points, in `stream`.
    fn fft_plan<R: Real>(
        &self,
        stream: &Self::Stream,
        n: usize,
        frames: usize,
    ) -> Result<Self::Fft, DeviceError>;
    /// Runs `plan` from `input` (`frames × n`) into `output` (`frames × (n/2 + 1)`).
    fn fft<R: Real>(
        &self,
        stream: &Self::Stream,
        plan: &Self::Fft,
        input: &Self::Buffer<R>,
        output: &mut Self::Buffer<R::Complex>,
    ) -> Result<(), DeviceError>;
}
