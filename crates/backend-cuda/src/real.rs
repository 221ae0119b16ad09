//! The real device behind the seam: a CUDA context through cudarc, kernels compiled by NVRTC,
//! page-locked host buffers, asynchronous copies and launches, cuFFT plans.

use std::ops::Range;
use std::sync::Arc;

use cudarc::cufft::CudaFft;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DriverError,
    LaunchConfig, PinnedHostSlice, PushKernelArg,
};

use crate::device::{ChunkArgs, Device, DeviceError, Elem, Launch, Real, Tables};
use crate::driver::{describe, out_of_memory};
use crate::kernels;

impl From<DriverError> for DeviceError {
    fn from(e: DriverError) -> Self {
        DeviceError { oom: out_of_memory(&e), reason: describe(e) }
    }
}

/// One CUDA device.
pub struct Cuda {
    ctx: Arc<CudaContext>,
}

impl Cuda {
    /// The first `count` devices of this machine (all of them for 0).
    ///
    /// # Errors
    /// "no CUDA device" with the reason, or a device that does not start.
    pub fn devices(count: usize) -> Result<Vec<Cuda>, String> {
        let seen = crate::driver::device_count()?;
        let used = if count == 0 { seen } else { count.min(seen) };
        (0..used).map(|ordinal| Ok(Cuda { ctx: crate::driver::context(ordinal)? })).collect()
    }
}

/// The three kernels of one configuration.
pub struct CudaKernels {
    fused: CudaFunction,
    framing: CudaFunction,
    mel: CudaFunction,
}

fn config(launch: Launch) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (launch.blocks, 1, 1),
        block_dim: (launch.threads, 1, 1),
        shared_mem_bytes: launch.shared_bytes,
    }
}

impl Device for Cuda {
    type Stream = Arc<CudaStream>;
    type Buffer<T: Elem> = CudaSlice<T>;
    type Host<T: Elem> = PinnedHostSlice<T>;
    type Fft = CudaFft;
    type Kernels = CudaKernels;

    const NAME: &'static str = "cuda";
    const TIMING_LONGS: usize = 256;

    fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    fn free_memory(&self) -> Result<usize, DeviceError> {
        Ok(self.ctx.mem_get_info()?.0)
    }

    fn shared_memory(&self) -> usize {
        48 << 10
    }

    fn has_fft(&self) -> bool {
        crate::driver::cufft_present()
    }

    fn compile(&self, defines: &str) -> Result<CudaKernels, DeviceError> {
        let arch = self.ctx.compute_capability()?;
        let mut functions = Vec::new();
        for (file, name) in [
            (kernels::FUSED, "fused"),
            (kernels::FRAMING, "frame_window"),
            (kernels::MEL, "power_mel"),
        ] {
            let ptx = kernels::compile(&kernels::source(defines, file), arch)
                .map_err(DeviceError::new)?;
            functions.push(self.ctx.load_module(ptx)?.load_function(name)?);
        }
        let [fused, framing, mel]: [CudaFunction; 3] =
            functions.try_into().map_err(|_| DeviceError::new("kernels missing"))?;
        Ok(CudaKernels { fused, framing, mel })
    }

    fn new_stream(&self) -> Result<Arc<CudaStream>, DeviceError> {
        Ok(self.ctx.new_stream()?)
    }

    fn synchronize(&self, stream: &Arc<CudaStream>) -> Result<(), DeviceError> {
        Ok(stream.synchronize()?)
    }

    fn alloc<T: Elem>(
        &self,
        stream: &Arc<CudaStream>,
        len: usize,
    ) -> Result<CudaSlice<T>, DeviceError> {
        // SAFETY: every buffer is written (by a copy or a kernel) before it is read.
        #[allow(unsafe_code)]
        Ok(unsafe { stream.alloc(len.max(1)) }?)
    }

    fn upload_table<T: Elem>(
        &self,
        stream: &Arc<CudaStream>,
        values: &[T],
    ) -> Result<CudaSlice<T>, DeviceError> {
        let buffer = stream.clone_htod(values)?;
        stream.synchronize()?;
        Ok(buffer)
    }

    fn len<T: Elem>(buffer: &CudaSlice<T>) -> usize {
        buffer.len()
    }

    fn alloc_host<T: Elem>(
        &self,
        len: usize,
        read_back: bool,
    ) -> Result<PinnedHostSlice<T>, DeviceError> {
        // Write-combined memory is fast to fill and to upload, slow to read: not for results.
        let flags = if read_back { 0 } else { cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED };
        // SAFETY: the memory is uninitialised, and only ever written before it is read (every
        // `Elem` is valid as any bit pattern of zeros and plain numbers).
        #[allow(unsafe_code)]
        Ok(unsafe { self.ctx.alloc_pinned_with_flags::<T>(len.max(1), flags) }?)
    }

    fn host_len<T: Elem>(host: &PinnedHostSlice<T>) -> usize {
        host.len()
    }

    fn write_host<T: Elem>(
        host: &mut PinnedHostSlice<T>,
        at: usize,
        values: &[T],
    ) -> Result<(), DeviceError> {
        let slice = host.as_mut_slice()?;
        let dest = slice.get_mut(at..at + values.len()).ok_or_else(|| overrun(values.len(), at))?;
        dest.copy_from_slice(values);
        Ok(())
    }

    fn read_host<T: Elem>(
        host: &mut PinnedHostSlice<T>,
        at: usize,
        out: &mut [T],
    ) -> Result<(), DeviceError> {
        let slice = host.as_mut_slice()?;
        out.copy_from_slice(slice.get(at..at + out.len()).ok_or_else(|| overrun(out.len(), at))?);
        Ok(())
    }

    fn upload<T: Elem>(
        &self,
        stream: &Arc<CudaStream>,
        host: &PinnedHostSlice<T>,
        range: Range<usize>,
        device: &mut CudaSlice<T>,
    ) -> Result<(), DeviceError> {
        check_copy(range.len(), device.len(), range.end, host.len())?;
        let (ptr, _record) = device.device_ptr_mut(stream);
        // SAFETY: the range lies in `host` and fits `device` (checked above); `host` is
        // page-locked memory of the slot, neither written nor freed before the slot's stream
        // is synchronised.
        #[allow(unsafe_code)]
        unsafe {
            cudarc::driver::result::memcpy_htod_async(
                ptr,
                &host.as_slice()?[range],
                stream.cu_stream(),
            )?;
        }
        Ok(())
    }

    fn download<T: Elem>(
        &self,
        stream: &Arc<CudaStream>,
        device: &CudaSlice<T>,
        host: &mut PinnedHostSlice<T>,
        range: Range<usize>,
    ) -> Result<(), DeviceError> {
        check_copy(range.len(), device.len(), range.end, host.len())?;
        let (ptr, _record) = device.device_ptr(stream);
        // SAFETY: as for `upload`; the host memory is read only after the stream is synchronised.
        #[allow(unsafe_code)]
        unsafe {
            let dst = &mut host.as_mut_slice()?[range];
            cudarc::driver::result::memcpy_dtoh_async(dst, ptr, stream.cu_stream())?;
        }
        Ok(())
    }

    fn fused<R: Real>(
        &self,
        stream: &Arc<CudaStream>,
        kernels: &CudaKernels,
        launch: Launch,
        (t, chunk): (&Tables<Self, R>, ChunkArgs<'_, Self>),
        out: &mut CudaSlice<f32>,
    ) -> Result<(), DeviceError> {
        let mut builder = stream.launch_builder(&kernels.fused);
        builder
            .arg(chunk.signal)
            .arg(chunk.starts)
            .arg(&t.frame_index)
            .arg(&t.window)
            .arg(&t.twiddles)
            .arg(&t.mel_spans)
            .arg(&t.mel_weights)
            .arg(out)
            .arg(&chunk.frames);
        // SAFETY: the arguments match `fused` in fused.cu; the engine checked that every buffer
        // holds what the launch reads or writes for `frames` frames.
        #[allow(unsafe_code)]
        unsafe { builder.launch(config(launch)) }?;
        Ok(())
    }

    fn framing<R: Real>(
        &self,
        stream: &Arc<CudaStream>,
        kernels: &CudaKernels,
        launch: Launch,
        (t, chunk): (&Tables<Self, R>, ChunkArgs<'_, Self>),
        frames: &mut CudaSlice<R>,
    ) -> Result<(), DeviceError> {
        let mut builder = stream.launch_builder(&kernels.framing);
        builder
            .arg(chunk.signal)
            .arg(chunk.starts)
            .arg(&t.frame_index)
            .arg(&t.window)
            .arg(frames)
            .arg(&chunk.frames);
        // SAFETY: the arguments match `frame_window` in framing.cu; sizes checked by the engine.
        #[allow(unsafe_code)]
        unsafe { builder.launch(config(launch)) }?;
        Ok(())
    }

    fn power_mel<R: Real>(
        &self,
        stream: &Arc<CudaStream>,
        kernels: &CudaKernels,
        launch: Launch,
        (t, spectra, total): (&Tables<Self, R>, &CudaSlice<R::Complex>, u32),
        out: &mut CudaSlice<f32>,
    ) -> Result<(), DeviceError> {
        let mut builder = stream.launch_builder(&kernels.mel);
        builder.arg(spectra).arg(&t.mel_spans).arg(&t.mel_weights).arg(out).arg(&total);
        // SAFETY: the arguments match `power_mel` in mel.cu; sizes checked by the engine.
        #[allow(unsafe_code)]
        unsafe { builder.launch(config(launch)) }?;
        Ok(())
    }

    fn fft_plan<R: Real>(
        &self,
        stream: &Arc<CudaStream>,
        n: usize,
        frames: usize,
    ) -> Result<CudaFft, DeviceError> {
        let bins = (n / 2 + 1) as i32;
        let n = n as i32;
        Ok(CudaFft::plan_many(
            &[n],
            None,
            1,
            n,
            None,
            1,
            bins,
            R::TRANSFORM,
            frames as i32,
            stream.clone(),
        )?)
    }

    fn fft<R: Real>(
        &self,
        _stream: &Arc<CudaStream>,
        plan: &CudaFft,
        input: &CudaSlice<R>,
        output: &mut CudaSlice<R::Complex>,
    ) -> Result<(), DeviceError> {
        Ok(R::execute(plan, input, output)?)
    }
}

fn overrun(len: usize, at: usize) -> DeviceError {
    DeviceError::new(format!("host buffer overrun: {len} values at {at}"))
}

/// A copy of `len` values into or out of a device buffer of `device` values, from a host
/// buffer of `host` values up to `end`: an error (never a silent overrun) when it does not fit.
pub(crate) fn check_copy(
    len: usize,
    device: usize,
    end: usize,
    host: usize,
) -> Result<(), DeviceError> {
    if len > device || end > host {
        return Err(DeviceError::new(format!(
            "a copy of {len} values does not fit (device buffer {device}, host buffer {host}, \
             up to {end})"
        )));
    }
    Ok(())
}
