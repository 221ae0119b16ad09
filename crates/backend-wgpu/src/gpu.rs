//! The device side: one adapter and device, the kernel's pipeline and constant tables created
//! once, and two slots of batch buffers (signal, segment starts, output, readback) reused from
//! batch to batch, so one chunk's readback overlaps the next chunk's compute.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wgpu::BufferUsages as U;

use crate::tables::{Tables, Transform, shader_source};

/// Errors the device reported outside a call (kept, then returned by the next compute).
type Pending = Arc<Mutex<Option<String>>>;

/// A summary of one adapter, for `melkit info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The device's name.
    pub name: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Vulkan, Metal, DX12, GL.
    pub backend: String,
    /// The driver and its version.
    pub driver: String,
    /// Whether it is a CPU adapter (lavapipe, WARP, SwiftShader).
    pub is_cpu: bool,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            device_type: format!("{:?}", info.device_type),
            backend: format!("{:?}", info.backend),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            is_cpu: is_cpu(info),
        }
    }
}

/// Whether an adapter is a CPU one (lavapipe, WARP, SwiftShader).
fn is_cpu(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        flags: wgpu::InstanceFlags::empty(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter wgpu sees on this machine.
pub fn adapters() -> Vec<AdapterSummary> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .map(|a| AdapterSummary::of(&a.get_info()))
        .collect()
}

/// Buffers of one batch chunk in flight.
struct Slot {
    signal: wgpu::Buffer,
    starts: wgpu::Buffer,
    params: wgpu::Buffer,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// The submission and the output values it will read back, while in flight.
    pending: Option<(wgpu::SubmissionIndex, usize)>,
}

/// The constant buffers, bound into every slot's bind group.
struct Constants {
    frame_index: wgpu::Buffer,
    window: wgpu::Buffer,
    twiddles: wgpu::Buffer,
    mel_spans: wgpu::Buffer,
    mel_weights: wgpu::Buffer,
}

/// Sizes of a slot's buffers in bytes: signal, starts, output.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Capacity {
    signal: u64,
    starts: u64,
    out: u64,
}

/// The device, the kernel and the buffers.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    constants: Constants,
    slots: [Option<Slot>; 2],
    capacity: [Capacity; 2],
    summary: AdapterSummary,
    limits: wgpu::Limits,
    errors: Pending,
}

/// Host time spent on a chunk, per step.
pub use melkit_core::backend::DeviceTimes as Times;

/// Why the device could not be used.
pub type GpuError = String;

/// Why a device was not opened for a configuration.
#[derive(Debug)]
pub enum Refusal {
    /// The adapter cannot take it (an `n_fft` beyond its workgroup memory): the work goes to
    /// the CPU backend.
    TooLarge(String),
    /// The adapter could not be used.
    Failed(GpuError),
}

impl From<GpuError> for Refusal {
    fn from(e: GpuError) -> Self {
        Refusal::Failed(e)
    }
}

fn storage(device: &wgpu::Device, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).max(16),
        usage: U::STORAGE | U::COPY_DST,
        mapped_at_creation: false,
    })
}

impl Gpu {
    /// Opens the best adapter (discrete, then integrated, then any other, CPU adapters last,
    /// and only when `allow_cpu`) and prepares the kernel for these tables. `Ok(None)`: there
    /// is no adapter to use.
    pub fn new(tables: &Tables, n_fft: usize, allow_cpu: bool) -> Result<Option<Self>, Refusal> {
        Self::with_source(tables, n_fft, allow_cpu, shader_source(n_fft, tables.db))
    }

    /// As [`new`](Self::new), with the kernel's WGSL source given (for diagnostics).
    pub fn with_source(
        tables: &Tables,
        n_fft: usize,
        allow_cpu: bool,
        source: String,
    ) -> Result<Option<Self>, Refusal> {
        let instance = instance();
        let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        adapters.sort_by_key(|a| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        });
        let best = adapters.into_iter().next();
        let Some(adapter) = best.filter(|a| allow_cpu || !is_cpu(&a.get_info())) else {
            return Ok(None);
        };
        let summary = AdapterSummary::of(&adapter.get_info());
        let limits = adapter.limits();
        let needed = Transform::for_size(n_fft).workgroup_bytes(n_fft, tables.db) as u64;
        if needed > u64::from(limits.max_compute_workgroup_storage_size) {
            return Err(Refusal::TooLarge(format!(
                "n_fft {n_fft} needs {needed} bytes of workgroup memory; {} has {}",
                summary.name, limits.max_compute_workgroup_storage_size
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("melkit"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..wgpu::DeviceDescriptor::default()
        }))
        .map_err(|e| format!("{}: {e}", summary.name))?;
        let errors: Pending = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("melkit kernel"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("melkit kernel"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let constants = Constants {
            frame_index: storage(&device, "frame index", bytemuck::cast_slice(&tables.frame_index)),
            window: storage(&device, "window", bytemuck::cast_slice(&tables.window)),
            twiddles: storage(&device, "twiddles", bytemuck::cast_slice(&tables.twiddles)),
            mel_spans: storage(&device, "mel spans", bytemuck::cast_slice(&tables.mel_spans)),
            mel_weights: storage(&device, "mel weights", bytemuck::cast_slice(&tables.mel_weights)),
        };
        for (buffer, bytes) in [
            (&constants.frame_index, bytemuck::cast_slice::<i32, u8>(&tables.frame_index)),
            (&constants.window, bytemuck::cast_slice(&tables.window)),
            (&constants.twiddles, bytemuck::cast_slice(&tables.twiddles)),
            (&constants.mel_spans, bytemuck::cast_slice(&tables.mel_spans)),
            (&constants.mel_weights, bytemuck::cast_slice(&tables.mel_weights)),
        ] {
            queue.write_buffer(buffer, 0, bytes);
        }
        let gpu = Gpu {
            device,
            queue,
            pipeline,
            constants,
            slots: [None, None],
            capacity: [Capacity { signal: 0, starts: 0, out: 0 }; 2],
            summary,
            limits,
            errors,
        };
        gpu.check()?;
        Ok(Some(gpu))
    }

    /// The adapter in use.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The largest buffer one binding may hold, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Workgroups a dispatch may have along x.
    pub fn max_groups_x(&self) -> u32 {
        self.limits.max_compute_workgroups_per_dimension
    }

    /// An error the device reported since the last check.
    fn check(&self) -> Result<(), GpuError> {
        match self.errors.lock().ok().and_then(|mut e| e.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Starts one chunk in slot `slot`: `signal` (its segments start at `starts`), `params`
    /// (the shader's `Params`), `groups` workgroups in x and y, `out_values` results.
    pub fn submit(
        &mut self,
        slot: usize,
        chunk: (&[f32], &[u32], &[u8]),
        groups: (u32, u32),
        out_values: usize,
        times: &mut Times,
    ) -> Result<(), GpuError> {
        let (signal, starts, params) = chunk;
        let started = Instant::now();
        let need = Capacity {
            signal: (signal.len() as u64 * 4).max(16),
            starts: (starts.len() as u64 * 4).max(16),
            out: (out_values as u64 * 4).max(16),
        };
        let have = self.capacity[slot];
        if self.slots[slot].is_none()
            || need.signal > have.signal
            || need.starts > have.starts
            || need.out > have.out
        {
            let grown = Capacity {
                signal: need.signal.max(have.signal),
                starts: need.starts.max(have.starts),
                out: need.out.max(have.out),
            };
            self.slots[slot] = Some(self.new_slot(grown));
            self.capacity[slot] = grown;
        }
        let Some(s) = self.slots[slot].as_mut() else { return Err("no slot".into()) };
        self.queue.write_buffer(&s.signal, 0, bytemuck::cast_slice(signal));
        self.queue.write_buffer(&s.starts, 0, bytemuck::cast_slice(starts));
        self.queue.write_buffer(&s.params, 0, params);
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("melkit"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        }
        encoder.copy_buffer_to_buffer(&s.out, 0, &s.staging, 0, out_values as u64 * 4);
        let index = self.queue.submit([encoder.finish()]);
        s.pending = Some((index, out_values));
        times.upload += started.elapsed();
        self.check()
    }

    /// Waits for slot `slot`'s chunk and copies its results into `out`.
    pub fn finish(
        &mut self,
        slot: usize,
        out: &mut [f32],
        times: &mut Times,
    ) -> Result<(), GpuError> {
        let Some(s) = self.slots[slot].as_mut() else { return Ok(()) };
        let Some((index, values)) = s.pending.take() else { return Ok(()) };
        let started = Instant::now();
        let slice = s.staging.slice(..values as u64 * 4);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        times.kernel += started.elapsed();
        let started = Instant::now();
        {
            let view = slice.get_mapped_range().map_err(|e| e.to_string())?;
            out[..values].copy_from_slice(bytemuck::cast_slice(&view[..values * 4]));
        }
        s.staging.unmap();
        times.download += started.elapsed();
        self.check()
    }

    /// Bytes of every buffer allocated on the device: the constants and both slots.
    pub fn memory(&self) -> u64 {
        let k = &self.constants;
        let constants: u64 = [&k.frame_index, &k.window, &k.twiddles, &k.mel_spans, &k.mel_weights]
            .iter()
            .map(|b| b.size())
            .sum();
        let slots: u64 = self
            .slots
            .iter()
            .flatten()
            .map(|s| {
                s.signal.size()
                    + s.starts.size()
                    + s.params.size()
                    + s.out.size()
                    + s.staging.size()
            })
            .sum();
        constants + slots
    }

    fn new_slot(&self, c: Capacity) -> Slot {
        let buffer = |label, size, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let signal = buffer("signal", c.signal, U::STORAGE | U::COPY_DST);
        let starts = buffer("long starts", c.starts, U::STORAGE | U::COPY_DST);
        let params = buffer("params", 64, U::UNIFORM | U::COPY_DST);
        let out = buffer("mel", c.out, U::STORAGE | U::COPY_SRC);
        let staging = buffer("readback", c.out, U::MAP_READ | U::COPY_DST);
        let k = &self.constants;
        let entries: Vec<wgpu::BindGroupEntry<'_>> = [
            &params,
            &signal,
            &starts,
            &k.frame_index,
            &k.window,
            &k.twiddles,
            &k.mel_spans,
            &k.mel_weights,
            &out,
        ]
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
        .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("melkit"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Slot { signal, starts, params, out, staging, bind_group, pending: None }
    }
}
