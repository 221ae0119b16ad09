//! One output being written as its blocks arrive. A file in one block is scaled before it gets
//! here; a longer file whose scaling needs the whole file's maximum (`ref = "max"`, `top_db`)
//! goes to a raw scratch file first and is scaled into its output at the end. With a cache, the
//! final values also go to the file's cache entry; a file found in the cache is restored from it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use melkit_core::config::Dtype;
use melkit_core::scale::FileScale;
use melkit_io::{Compression, OutputFormat, TensorMeta, TensorWriter, WriteError};
use tempfile::TempPath;

use crate::cache::CachedTensor;

/// Everything needed to create an output, owned.
#[derive(Clone)]
pub(super) struct OutputSpec {
    pub path: PathBuf,
    pub format: OutputFormat,
    pub source: String,
    pub config_json: String,
    pub sample_rate: u32,
    pub shape: [usize; 4],
    pub compression: Compression,
    pub dtype: Dtype,
    pub sync: bool,
}

impl OutputSpec {
    fn writer(&self) -> Result<TensorWriter, WriteError> {
        let meta = TensorMeta {
            source: &self.source,
            config_json: &self.config_json,
            sample_rate: self.sample_rate,
            melkit_version: crate::VERSION,
        };
        TensorWriter::create(
            &self.path,
            self.format,
            &meta,
            self.shape,
            self.compression,
            self.dtype,
            self.sync,
        )
    }
}

/// Where a file's values go.
enum Target {
    Direct(TensorWriter),
    Deferred { scratch: BufWriter<File>, temp: TempPath, max: f32 },
}

/// An output in progress.
pub(super) struct FileSink {
    spec: OutputSpec,
    target: Target,
    /// With f16 output: the largest rounding error and the largest magnitude seen.
    f16: Option<(f64, f64)>,
    /// The cache entry being written beside the output.
    cache: Option<TensorWriter>,
}

impl FileSink {
    /// Starts the output; `deferred` when the values still need the whole file's scaling;
    /// `cache_entry` to keep the values in the cache too.
    pub fn create(
        spec: OutputSpec,
        deferred: bool,
        cache_entry: Option<&Path>,
    ) -> Result<Self, WriteError> {
        let target = if deferred {
            let (file, temp) = melkit_io::atomic::temp_beside(
                &spec.path.with_extension("raw"),
                melkit_io::atomic::create_new,
            )?;
            Target::Deferred {
                scratch: BufWriter::with_capacity(1 << 16, file),
                temp,
                max: f32::NEG_INFINITY,
            }
        } else {
            Target::Direct(spec.writer()?)
        };
        let f16 = (spec.dtype == Dtype::F16).then_some((0.0, 0.0));
        let cache = cache_entry.and_then(|entry| {
            let cached = OutputSpec {
                path: entry.to_path_buf(),
                format: OutputFormat::Npy,
                compression: Compression::None,
                dtype: Dtype::F32,
                sync: false,
                ..spec.clone()
            };
            cached.writer().map_err(|e| cache_warning(entry, &e)).ok()
        });
        Ok(FileSink { spec, target, f16, cache })
    }

    /// Appends whole long segments.
    pub fn write(&mut self, values: &[f32]) -> Result<(), WriteError> {
        match &mut self.target {
            Target::Direct(writer) => {
                track_f16(&mut self.f16, values);
                tee(&mut self.cache, values);
                writer.write(values)
            }
            Target::Deferred { scratch, max, .. } => {
                *max = values.iter().copied().fold(*max, f32::max);
                scratch.write_all(bytemuck::cast_slice(values))?;
                Ok(())
            }
        }
    }

    /// Completes the output; returns the f16 rounding error relative to the file's maximum.
    pub fn finish(self, file_scale: FileScale) -> Result<Option<f64>, WriteError> {
        let FileSink { spec, target, mut f16, mut cache } = self;
        match target {
            Target::Direct(writer) => writer.finish()?,
            Target::Deferred { scratch, temp, max } => {
                drop(scratch.into_inner().map_err(|e| WriteError::Io(e.into_error()))?);
                let mut writer = spec.writer()?;
                let per_long = spec.shape[1] * spec.shape[2] * spec.shape[3];
                let mut reader = BufReader::new(File::open(&temp)?);
                let mut values = vec![0f32; per_long * 64];
                let mut left = spec.shape[0];
                while left > 0 {
                    let n = left.min(64);
                    let part = &mut values[..n * per_long];
                    reader.read_exact(bytemuck::cast_slice_mut(part))?;
                    file_scale.apply_with_max(part, max);
                    track_f16(&mut f16, part);
                    tee(&mut cache, part);
                    writer.write(part)?;
                    left -= n;
                }
                writer.finish()?;
            }
        }
        if let Some(writer) = cache {
            let entry = writer.path().to_path_buf();
            if let Err(e) = writer.finish() {
                cache_warning(&entry, &e);
            }
        }
        Ok(f16.map(|(err, max)| if err == 0.0 { 0.0 } else { err / max }))
    }
}

/// Appends values to the cache entry, giving the entry up (with a warning) if that fails.
fn tee(cache: &mut Option<TensorWriter>, values: &[f32]) {
    if let Some(writer) = cache
        && let Err(e) = writer.write(values)
    {
        cache_warning(writer.path(), &e);
        *cache = None;
    }
}

fn cache_warning(entry: &Path, e: &WriteError) {
    tracing::warn!("cache entry {} not kept: {e}", entry.display());
}

/// Writes the output of `spec` from the cache entry `entry` instead of computing it; returns
/// its long segments. The shape of `spec` gives the segment layout; the entry gives the count.
pub(super) fn restore(mut spec: OutputSpec, entry: &Path) -> Result<usize, WriteError> {
    let mut cached = CachedTensor::open(entry)?;
    if cached.shape[1..] != spec.shape[1..] {
        return Err(WriteError::Npy(format!("{} has another segment layout", entry.display())));
    }
    spec.shape = cached.shape;
    let mut writer = spec.writer()?;
    let mut values = Vec::new();
    let mut left = cached.shape[0];
    while left > 0 {
        let n = left.min(64);
        cached.read_longs(n, &mut values)?;
        writer.write(&values)?;
        left -= n;
    }
    writer.finish()?;
    Ok(cached.shape[0])
}

fn track_f16(f16: &mut Option<(f64, f64)>, values: &[f32]) {
    if let Some((err, max)) = f16 {
        for &v in values {
            let rounded = f64::from(half::f16::from_f32(v).to_f32());
            *err = err.max((rounded - f64::from(v)).abs());
            *max = max.max(f64::from(v).abs());
        }
    }
}
