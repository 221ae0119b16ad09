//! One output being written as its blocks arrive. A file in one block is scaled before it gets
//! here; a longer file whose scaling needs the whole file's maximum (`ref = "max"`, `top_db`)
//! goes to a raw scratch file first and is scaled into its output at the end.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use melkit_core::config::Dtype;
use melkit_core::scale::FileScale;
use melkit_io::{Compression, OutputFormat, TensorMeta, TensorWriter, WriteError};
use tempfile::TempPath;

/// Everything needed to create an output, owned.
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
}

impl FileSink {
    /// Starts the output; `deferred` when the values still need the whole file's scaling.
    pub fn create(spec: OutputSpec, deferred: bool) -> Result<Self, WriteError> {
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
        Ok(FileSink { spec, target, f16 })
    }

    /// Appends whole long segments.
    pub fn write(&mut self, values: &[f32]) -> Result<(), WriteError> {
        match &mut self.target {
            Target::Direct(writer) => {
                track_f16(&mut self.f16, values);
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
        let FileSink { spec, target, mut f16 } = self;
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
                    writer.write(part)?;
                    left -= n;
                }
                writer.finish()?;
            }
        }
        Ok(f16.map(|(err, max)| if err == 0.0 { 0.0 } else { err / max }))
    }
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
