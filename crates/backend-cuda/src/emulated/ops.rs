//! The emulated device behind the seam: memory, copies, launches and FFTs queued on streams and
//! run in order when a stream is synchronised.

use std::ffi::c_void;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::{Buffer, Emulated, Fft, Host, Kernels, Op, Stream, library, lock, rfft, zeros};
use crate::device::{ChunkArgs, Device, DeviceError, Elem, Launch, Real, Tables};
use crate::real::check_copy;

impl Emulated {
    /// Queues `op` on `stream`.
    fn queue(stream: &Stream, op: Op) -> Result<(), DeviceError> {
        stream.ops.lock().map_err(|_| DeviceError::new("stream lock poisoned"))?.push(op);
        Ok(())
    }

    /// Checks a launch against the device's limits, counts it and queues `kernel` on
    /// `stream` (or, in its place, the kernel error a fault injects).
    fn queue_launch(
        &self,
        stream: &Stream,
        launch: Launch,
        kernel: impl FnOnce() -> Result<(), DeviceError> + Send + 'static,
    ) -> Result<(), DeviceError> {
        if launch.shared_bytes as usize > self.state.options.shared_memory {
            return Err(DeviceError::new(format!(
                "too many resources requested for launch: {} bytes of shared memory, {} allowed",
                launch.shared_bytes, self.state.options.shared_memory
            )));
        }
        let fault = self.launch()?;
        Self::queue(stream, Box::new(move || fault.map_or_else(kernel, Err)))
    }
}

impl Device for Emulated {
    type Stream = Stream;
    type Buffer<T: Elem> = Buffer<T>;
    type Host<T: Elem> = Host<T>;
    type Fft = Fft;
    type Kernels = Kernels;

    const NAME: &'static str = "cuda-emulated";
    const TIMING_LONGS: usize = 4;

    fn ordinal(&self) -> usize {
        self.ordinal
    }

    fn free_memory(&self) -> Result<usize, DeviceError> {
        let used = self.used.load(std::sync::atomic::Ordering::SeqCst);
        Ok(self.state.options.memory.saturating_sub(used))
    }

    fn shared_memory(&self) -> usize {
        self.state.options.shared_memory
    }

    fn has_fft(&self) -> bool {
        self.state.options.fft
    }

    fn compile(&self, defines: &str) -> Result<Kernels, DeviceError> {
        Ok(Kernels { library: library::load(defines)? })
    }

    fn new_stream(&self) -> Result<Stream, DeviceError> {
        Ok(Stream { ops: Mutex::new(Vec::new()) })
    }

    fn synchronize(&self, stream: &Stream) -> Result<(), DeviceError> {
        let ops = std::mem::take(
            &mut *stream.ops.lock().map_err(|_| DeviceError::new("stream lock poisoned"))?,
        );
        // After a failure the rest of the stream's work is dropped, as the failure is reported.
        ops.into_iter().try_for_each(|op| op())
    }

    fn alloc<T: Elem>(&self, _stream: &Stream, len: usize) -> Result<Buffer<T>, DeviceError> {
        let allocation = self.allocate(len.max(1) * size_of::<T>())?;
        Ok(Buffer { data: zeros(len), len, _allocation: allocation })
    }

    fn upload_table<T: Elem>(
        &self,
        stream: &Stream,
        values: &[T],
    ) -> Result<Buffer<T>, DeviceError> {
        let buffer = self.alloc::<T>(stream, values.len())?;
        lock(&buffer.data)?.copy_from_slice(values);
        Ok(buffer)
    }

    fn len<T: Elem>(buffer: &Buffer<T>) -> usize {
        buffer.len
    }

    fn alloc_host<T: Elem>(&self, len: usize, _read_back: bool) -> Result<Host<T>, DeviceError> {
        Ok(Host { data: zeros(len) })
    }

    fn host_len<T: Elem>(host: &Host<T>) -> usize {
        lock(&host.data).map_or(0, |d| d.len())
    }

    fn write_host<T: Elem>(host: &mut Host<T>, at: usize, values: &[T]) -> Result<(), DeviceError> {
        let mut data = lock(&host.data)?;
        check_copy(values.len(), values.len(), at + values.len(), data.len())?;
        data[at..at + values.len()].copy_from_slice(values);
        Ok(())
    }

    fn read_host<T: Elem>(host: &mut Host<T>, at: usize, out: &mut [T]) -> Result<(), DeviceError> {
        let data = lock(&host.data)?;
        check_copy(out.len(), out.len(), at + out.len(), data.len())?;
        out.copy_from_slice(&data[at..at + out.len()]);
        Ok(())
    }

    fn upload<T: Elem>(
        &self,
        stream: &Stream,
        host: &Host<T>,
        range: Range<usize>,
        device: &mut Buffer<T>,
    ) -> Result<(), DeviceError> {
        check_copy(range.len(), device.len, range.end, Self::host_len(host))?;
        let (from, to) = (host.data.clone(), device.data.clone());
        Self::queue(
            stream,
            Box::new(move || {
                let len = range.len();
                lock(&to)?[..len].copy_from_slice(&lock(&from)?[range]);
                Ok(())
            }),
        )
    }

    fn download<T: Elem>(
        &self,
        stream: &Stream,
        device: &Buffer<T>,
        host: &mut Host<T>,
        range: Range<usize>,
    ) -> Result<(), DeviceError> {
        check_copy(range.len(), device.len, range.end, Self::host_len(host))?;
        let (from, to) = (device.data.clone(), host.data.clone());
        Self::queue(
            stream,
            Box::new(move || {
                let len = range.len();
                lock(&to)?[range].copy_from_slice(&lock(&from)?[..len]);
                Ok(())
            }),
        )
    }

    fn fused<R: Real>(
        &self,
        stream: &Stream,
        kernels: &Kernels,
        launch: Launch,
        (t, chunk): (&Tables<Self, R>, ChunkArgs<'_, Self>),
        out: &mut Buffer<f32>,
    ) -> Result<(), DeviceError> {
        let library = kernels.library.clone();
        let (signal, starts) = (chunk.signal.data.clone(), chunk.starts.data.clone());
        let (index, window, twiddles) =
            (t.frame_index.data.clone(), t.window.data.clone(), t.twiddles.data.clone());
        let (spans, weights, out) =
            (t.mel_spans.data.clone(), t.mel_weights.data.clone(), out.data.clone());
        let frames = chunk.frames;
        self.queue_launch(stream, launch, move || {
            let (signal, starts, index) = (lock(&signal)?, lock(&starts)?, lock(&index)?);
            let (window, twiddles) = (lock(&window)?, lock(&twiddles)?);
            let (spans, weights, mut out) = (lock(&spans)?, lock(&weights)?, lock(&out)?);
            // SAFETY: the pointers are to live vectors locked for the call; the engine
            // checked every size against what the kernel reads and writes for `frames`.
            #[allow(unsafe_code)]
            library::outcome(unsafe {
                (library.fused)(
                    launch.blocks,
                    launch.threads,
                    launch.shared_bytes,
                    signal.as_ptr(),
                    starts.as_ptr(),
                    index.as_ptr(),
                    window.as_ptr().cast::<c_void>(),
                    twiddles.as_ptr().cast::<c_void>(),
                    spans.as_ptr(),
                    weights.as_ptr().cast::<c_void>(),
                    out.as_mut_ptr(),
                    frames,
                )
            })
        })
    }

    fn framing<R: Real>(
        &self,
        stream: &Stream,
        kernels: &Kernels,
        launch: Launch,
        (t, chunk): (&Tables<Self, R>, ChunkArgs<'_, Self>),
        frames: &mut Buffer<R>,
    ) -> Result<(), DeviceError> {
        let library = kernels.library.clone();
        let (signal, starts) = (chunk.signal.data.clone(), chunk.starts.data.clone());
        let (index, window, framed) =
            (t.frame_index.data.clone(), t.window.data.clone(), frames.data.clone());
        let total = chunk.frames;
        self.queue_launch(stream, launch, move || {
            let (signal, starts, index) = (lock(&signal)?, lock(&starts)?, lock(&index)?);
            let (window, mut framed) = (lock(&window)?, lock(&framed)?);
            // SAFETY: as for `fused`.
            #[allow(unsafe_code)]
            library::outcome(unsafe {
                (library.framing)(
                    launch.blocks,
                    launch.threads,
                    signal.as_ptr(),
                    starts.as_ptr(),
                    index.as_ptr(),
                    window.as_ptr().cast::<c_void>(),
                    framed.as_mut_ptr().cast::<c_void>(),
                    total,
                )
            })
        })
    }

    fn power_mel<R: Real>(
        &self,
        stream: &Stream,
        kernels: &Kernels,
        launch: Launch,
        (t, spectra, total): (&Tables<Self, R>, &Buffer<R::Complex>, u32),
        out: &mut Buffer<f32>,
    ) -> Result<(), DeviceError> {
        let library = kernels.library.clone();
        let (spectra, spans) = (spectra.data.clone(), t.mel_spans.data.clone());
        let (weights, out) = (t.mel_weights.data.clone(), out.data.clone());
        self.queue_launch(stream, launch, move || {
            let (spectra, spans, weights) = (lock(&spectra)?, lock(&spans)?, lock(&weights)?);
            let mut out = lock(&out)?;
            // SAFETY: as for `fused`.
            #[allow(unsafe_code)]
            library::outcome(unsafe {
                (library.power_mel)(
                    launch.blocks,
                    launch.threads,
                    spectra.as_ptr().cast::<c_void>(),
                    spans.as_ptr(),
                    weights.as_ptr().cast::<c_void>(),
                    out.as_mut_ptr(),
                    total,
                )
            })
        })
    }

    fn fft_plan<R: Real>(
        &self,
        _stream: &Stream,
        n: usize,
        frames: usize,
    ) -> Result<Fft, DeviceError> {
        if !self.state.options.fft {
            return Err(DeviceError::new("cuFFT is not there"));
        }
        Ok(Fft { n, frames })
    }

    fn fft<R: Real>(
        &self,
        stream: &Stream,
        plan: &Fft,
        input: &Buffer<R>,
        output: &mut Buffer<R::Complex>,
    ) -> Result<(), DeviceError> {
        let (n, frames) = (plan.n, plan.frames);
        let bins = n / 2 + 1;
        if input.len < frames * n || output.len < frames * bins {
            return Err(DeviceError::new(format!(
                "cuFFT: {frames} transforms of {n} points do not fit buffers of {} and {}",
                input.len, output.len
            )));
        }
        let (input, output): (Arc<Mutex<Vec<R>>>, _) = (input.data.clone(), output.data.clone());
        Self::queue(
            stream,
            Box::new(move || rfft::<R>(n, frames, &lock(&input)?, &mut lock(&output)?)),
        )
    }
}
