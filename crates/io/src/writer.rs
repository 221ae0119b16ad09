//! The output sink: a tensor written long segment after long segment into a temporary file
//! beside its final name, and renamed when complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::atomic::{commit, create_new, temp_beside};
use crate::error::WriteError;
use crate::npy::{descr, npy_header, unicode_scalar_npy, write_values};
use crate::output::{Compression, Dtype, OutputFormat, TensorMeta, check_options};

/// Where the values go.
enum Sink {
    Npy(BufWriter<File>),
    Npz(Box<ZipWriter<BufWriter<File>>>, String),
    #[cfg(feature = "hdf5")]
    H5(crate::h5::H5Sink),
}

/// One output being written (see the module documentation).
pub struct TensorWriter {
    path: PathBuf,
    temp: TempPath,
    sink: Sink,
    shape: [usize; 4],
    written: usize,
    dtype: Dtype,
    sync: bool,
    scratch: Vec<half::f16>,
}

fn npy_error(e: impl std::fmt::Display) -> WriteError {
    WriteError::Npy(e.to_string())
}

impl TensorWriter {
    /// Starts the output `path` of a tensor of `shape`.
    ///
    /// # Errors
    /// Options that do not fit the format, or the file cannot be created.
    pub fn create(
        path: &Path,
        format: OutputFormat,
        meta: &TensorMeta<'_>,
        shape: [usize; 4],
        compression: Compression,
        dtype: Dtype,
        sync: bool,
    ) -> Result<Self, WriteError> {
        check_options(format, compression)?;
        let header = npy_header(descr(dtype), &shape);
        let (sink, temp) = match format {
            OutputFormat::Npy => {
                let (file, temp) = temp_beside(path, create_new)?;
                let mut file = BufWriter::with_capacity(1 << 16, file);
                file.write_all(&header)?;
                (Sink::Npy(file), temp)
            }
            OutputFormat::Npz => {
                let bytes =
                    shape.iter().product::<usize>() * if dtype == Dtype::F16 { 2 } else { 4 };
                let options = match compression {
                    Compression::None | Compression::Lzf => {
                        SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
                    }
                    Compression::Deflate(level) => SimpleFileOptions::default()
                        .compression_method(CompressionMethod::Deflated)
                        .compression_level(Some(i64::from(level))),
                }
                .large_file(bytes > u32::MAX as usize / 2);
                let (file, temp) = temp_beside(path, create_new)?;
                let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, file));
                zip.start_file("mel.npy", options).map_err(npy_error)?;
                zip.write_all(&header)?;
                (Sink::Npz(Box::new(zip), meta.config_json.to_string()), temp)
            }
            #[cfg(feature = "hdf5")]
            OutputFormat::H5 => {
                let (file, temp) = temp_beside(path, crate::h5::create_file)?;
                (Sink::H5(crate::h5::H5Sink::new(file, meta, shape, compression, dtype)?), temp)
            }
            #[cfg(not(feature = "hdf5"))]
            OutputFormat::H5 => unreachable!("check_options refuses h5 without the feature"),
        };
        Ok(TensorWriter {
            path: path.to_path_buf(),
            temp,
            sink,
            shape,
            written: 0,
            dtype,
            sync,
            scratch: Vec::new(),
        })
    }

    /// The final path of the output.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends whole long segments (`values` holds a multiple of one long segment's values).
    ///
    /// # Errors
    /// More values than the shape holds, or the write fails.
    pub fn write(&mut self, values: &[f32]) -> Result<(), WriteError> {
        let per_long = self.shape[1] * self.shape[2] * self.shape[3];
        let n = values.len().checked_div(per_long).unwrap_or(0);
        if n * per_long != values.len() || self.written + n > self.shape[0] {
            return Err(WriteError::Unsupported(format!(
                "{} values do not fit the {} long segments left of {:?}",
                values.len(),
                self.shape[0] - self.written,
                self.shape
            )));
        }
        match &mut self.sink {
            Sink::Npy(file) => write_values(file, values, self.dtype, &mut self.scratch)?,
            Sink::Npz(zip, _) => write_values(zip.as_mut(), values, self.dtype, &mut self.scratch)?,
            #[cfg(feature = "hdf5")]
            Sink::H5(h5) => h5.write(self.written, values)?,
        }
        self.written += n;
        Ok(())
    }

    /// Long segments written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Completes the file and renames it to its final name.
    ///
    /// # Errors
    /// Fewer long segments than the shape holds, or the file cannot be completed.
    pub fn finish(self) -> Result<(), WriteError> {
        if self.written != self.shape[0] {
            return Err(WriteError::Unsupported(format!(
                "only {} of {} long segments were written",
                self.written, self.shape[0]
            )));
        }
        match self.sink {
            Sink::Npy(mut file) => file.flush()?,
            Sink::Npz(mut zip, config) => {
                zip.start_file("config.npy", SimpleFileOptions::default()).map_err(npy_error)?;
                zip.write_all(&unicode_scalar_npy(&config))?;
                zip.finish().map_err(npy_error)?.flush()?;
            }
            #[cfg(feature = "hdf5")]
            Sink::H5(h5) => h5.close()?,
        }
        commit(self.temp, &self.path, self.sync)
    }
}
