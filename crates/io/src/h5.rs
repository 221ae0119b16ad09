//! HDF5 output (SPEC §3): dataset `mel` created at its full shape, chunked by whole long
//! segments, optionally shuffled and compressed (deflate or LZF), with the attributes `axes`, `config`, `source`,
//! `sample_rate` and `melkit_version`; written block by block.

use std::path::Path;

use half::f16;
use hdf5::types::VarLenUnicode;
use ndarray::{ArrayView4, s};

use crate::error::WriteError;
use crate::output::{AXES, Compression, Dtype, TensorMeta};

/// Bytes a chunk aims for: a ten-second file in one chunk (fewer chunks, less metadata), small
/// enough for the 1 MiB chunk cache readers have by default.
const CHUNK_BYTES: usize = 512 * 1024;

/// An HDF5 error as a person reads it: a failed system call as its one-line I/O reason (a full
/// disk is "no space left on the device", as with NPY), else the first line of HDF5's stack.
pub(crate) fn h5_error(e: hdf5::Error) -> WriteError {
    h5_reason(&e.to_string())
}

fn h5_reason(stack: &str) -> WriteError {
    let errno = stack.split("errno = ").nth(1).and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<i32>().ok().filter(|&n| n > 0)
    });
    if let Some(errno) = errno {
        return WriteError::Io(std::io::Error::from_raw_os_error(errno));
    }
    let line = stack.lines().next().unwrap_or(stack);
    let line = line.split(", time =").next().unwrap_or(line);
    WriteError::Hdf5(line.trim().to_string())
}

/// A builder for a dataset of `file` chunked as `chunk`, without timestamps (so that the same
/// input gives the same bytes), with the filters of `compression`.
pub(crate) fn dataset_builder<D: hdf5::Dimension>(
    file: &hdf5::File,
    chunk: D,
    compression: Compression,
) -> hdf5::DatasetBuilder {
    let builder = file.new_dataset_builder().chunk(chunk).obj_track_times(false);
    match compression {
        // Unfiltered chunks go straight to the file: the chunk cache would only copy them.
        Compression::None => builder.chunk_cache(0, 0, 1.0),
        Compression::Deflate(level) => builder.shuffle().deflate(level),
        Compression::Lzf => builder.shuffle().lzf(),
    }
}

/// Writes the text attributes `text` (name, value) and `sample_rate` on `mel`.
pub(crate) fn write_attributes(
    mel: &hdf5::Dataset,
    text: &[(&str, &str)],
    sample_rate: u32,
) -> Result<(), WriteError> {
    for (name, value) in text {
        let value: VarLenUnicode =
            value.parse().map_err(|e| WriteError::Hdf5(format!("attribute {name}: {e}")))?;
        mel.new_attr::<VarLenUnicode>()
            .create(*name)
            .and_then(|a| a.write_scalar(&value))
            .map_err(h5_error)?;
    }
    mel.new_attr::<u32>()
        .create("sample_rate")
        .and_then(|a| a.write_scalar(&sample_rate))
        .map_err(h5_error)
}

/// Creates a new HDF5 file, exclusively (never truncating one: ext4 flushes a truncated file to
/// disk when it is closed).
///
/// # Errors
/// The file exists, or the HDF5 library fails.
pub fn create_file(path: &Path) -> std::io::Result<hdf5::File> {
    hdf5::File::create_excl(path).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Chunks of whole long segments, about [`CHUNK_BYTES`] each.
pub fn chunk_shape(shape: [usize; 4], element_bytes: usize) -> [usize; 4] {
    let per_long = (shape[1] * shape[2] * shape[3] * element_bytes).max(1);
    let longs = (CHUNK_BYTES / per_long).clamp(1, shape[0].max(1));
    [longs, shape[1].max(1), shape[2].max(1), shape[3].max(1)]
}

/// An HDF5 file being written: its `mel` dataset exists at full size from the start.
pub struct H5Sink {
    file: hdf5::File,
    mel: hdf5::Dataset,
    shape: [usize; 4],
    dtype: Dtype,
}

impl H5Sink {
    /// Creates the dataset, with every attribute, in a new file.
    ///
    /// # Errors
    /// The HDF5 library fails.
    pub fn new(
        file: hdf5::File,
        meta: &TensorMeta<'_>,
        shape: [usize; 4],
        compression: Compression,
        dtype: Dtype,
    ) -> Result<Self, WriteError> {
        let element_bytes = if dtype == Dtype::F16 { 2 } else { 4 };
        // Every value is written, so HDF5 need not write fill values first.
        let builder = dataset_builder(&file, chunk_shape(shape, element_bytes), compression)
            .fill_time(hdf5::plist::dataset_create::FillTime::Never);
        let mel = match dtype {
            Dtype::F32 => builder.empty::<f32>().shape(shape).create("mel"),
            Dtype::F16 => builder.empty::<f16>().shape(shape).create("mel"),
        }
        .map_err(h5_error)?;
        let text = [
            ("axes", AXES),
            ("config", meta.config_json),
            ("source", meta.source),
            ("melkit_version", meta.melkit_version),
        ];
        write_attributes(&mel, &text, meta.sample_rate)?;
        Ok(H5Sink { file, mel, shape, dtype })
    }

    /// Writes long segments `first..` from `values`.
    ///
    /// # Errors
    /// The HDF5 library fails.
    pub fn write(&mut self, first: usize, values: &[f32]) -> Result<(), WriteError> {
        let [_, a, b, c] = self.shape;
        let n = values.len() / (a * b * c);
        let view = ArrayView4::from_shape([n, a, b, c], values)
            .map_err(|e| WriteError::Hdf5(e.to_string()))?;
        let selection = s![first..first + n, .., .., ..];
        match self.dtype {
            Dtype::F32 => self.mel.write_slice(&view, selection),
            Dtype::F16 => self.mel.write_slice(&view.mapv(f16::from_f32), selection),
        }
        .map_err(h5_error)
    }

    /// Closes the file.
    ///
    /// # Errors
    /// The HDF5 library fails to flush it.
    pub fn close(self) -> Result<(), WriteError> {
        drop(self.mel);
        self.file.close().map_err(h5_error)
    }
}

#[cfg(test)]
mod tests {
    use super::h5_reason;

    #[test]
    fn a_failed_system_call_reads_as_its_reason() {
        let full = "H5Dwrite(): can't write data: file write failed: time = Sat Dec  5 08:00:00 \
                    2026, filename = 'out.h5', file descriptor = 7, errno = 28, error message = \
                    'No space left on device', buf = 0x1, total write size = 1, bytes this sub-write \
                    = 1, bytes actually written = 18446744073709551615, offset = 0";
        assert_eq!(h5_reason(full).to_string(), "no space left on the device");
        let limit =
            "H5Fclose(): file write failed: time = x, errno = 27, error message = 'File too large'";
        assert_eq!(h5_reason(limit).to_string(), "the file size limit was reached");
        let other = "H5Dcreate2(): unable to create dataset\nmore of the stack";
        assert_eq!(h5_reason(other).to_string(), "HDF5: H5Dcreate2(): unable to create dataset");
    }
}
