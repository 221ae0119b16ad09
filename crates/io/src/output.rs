//! Output formats and options, and the one entry point that writes a tensor atomically.

use std::fmt;
use std::path::Path;

pub use melkit_core::config::Dtype;

use crate::error::WriteError;
use crate::writer::TensorWriter;

/// The axes of every tensor melkit writes.
pub const AXES: &str = "long_segment,short_segment,mel_bin,time_frame";

/// A file format for outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// One HDF5 file per input, dataset `mel` with its attributes.
    H5,
    /// One `.npy` file per input.
    Npy,
    /// One `.npz` file per input, holding `mel` and `config`.
    Npz,
}

impl OutputFormat {
    /// Every format, as `--format` names them.
    pub const NAMES: &'static [&'static str] = &["h5", "npy", "npz"];

    /// Parses a format name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "h5" | "hdf5" => Some(OutputFormat::H5),
            "npy" => Some(OutputFormat::Npy),
            "npz" => Some(OutputFormat::Npz),
            _ => None,
        }
    }

    /// The file extension of outputs in this format.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::H5 => "h5",
            OutputFormat::Npy => "npy",
            OutputFormat::Npz => "npz",
        }
    }

    /// Whether this build can write the format.
    pub fn available(self) -> bool {
        self != OutputFormat::H5 || cfg!(feature = "hdf5")
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// Compression of the output data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is.
    None,
    /// Deflate (gzip) at a level from 1 to 9; HDF5 shuffles bytes first.
    Deflate(u8),
    /// LZF (HDF5 only; h5py reads it natively): fast, lighter compression; bytes shuffled first.
    Lzf,
}

impl Compression {
    /// The deflate level used when none is given.
    pub const DEFAULT_DEFLATE_LEVEL: u8 = 4;

    /// Parses `none`, `deflate`, `deflate:LEVEL` (also spelled `gzip`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l.parse::<u8>().ok().filter(|l| (1..=9).contains(l))?)),
            None => (s.as_str(), None),
        };
        match name {
            "none" if level.is_none() => Some(Compression::None),
            "deflate" | "gzip" => {
                Some(Compression::Deflate(level.unwrap_or(Self::DEFAULT_DEFLATE_LEVEL)))
            }
            "lzf" if level.is_none() => Some(Compression::Lzf),
            _ => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Deflate(level) => write!(f, "deflate:{level}"),
            Compression::Lzf => f.write_str("lzf"),
        }
    }
}

/// The version of the HDF5 library in use, when HDF5 output is compiled in.
pub fn hdf5_version() -> Option<String> {
    #[cfg(feature = "hdf5")]
    {
        let (major, minor, release) = hdf5::library_version();
        Some(format!("{major}.{minor}.{release}"))
    }
    #[cfg(not(feature = "hdf5"))]
    None
}

/// What an output records besides the tensor.
#[derive(Clone, Copy, Debug)]
pub struct TensorMeta<'a> {
    /// The input file.
    pub source: &'a str,
    /// The whole configuration as JSON.
    pub config_json: &'a str,
    /// The tensor's sample rate.
    pub sample_rate: u32,
    /// The melkit version that wrote it.
    pub melkit_version: &'a str,
}

/// A tensor to write (`data` in C order with `shape`), what it records, and how it is stored.
#[derive(Clone, Copy, Debug)]
pub struct OutputTensor<'a> {
    /// The values, in C order.
    pub data: &'a [f32],
    /// `[long_segment, short_segment, mel_bin, time_frame]`.
    pub shape: [usize; 4],
    /// What the output records besides the tensor.
    pub meta: TensorMeta<'a>,
    /// The compression (HDF5 and NPZ).
    pub compression: Compression,
    /// The element type on disk.
    pub dtype: Dtype,
    /// Flush the file to disk before it takes its final name (survives a power cut).
    pub sync: bool,
}

/// Checks that `compression` and `format` go together and that the format is compiled in.
///
/// # Errors
/// [`WriteError::Unsupported`] saying what does not fit.
pub fn check_options(format: OutputFormat, compression: Compression) -> Result<(), WriteError> {
    if !format.available() {
        return Err(WriteError::Unsupported(format!(
            "format {format} is not compiled into this build (enable the `hdf5` feature)"
        )));
    }
    if format == OutputFormat::Npz && compression == Compression::Lzf {
        return Err(WriteError::Unsupported(
            "compression lzf is for --format h5 (NPZ files take none or deflate)".into(),
        ));
    }
    if format == OutputFormat::Npy && compression != Compression::None {
        return Err(WriteError::Unsupported(format!(
            "compression {compression} needs --format h5 or npz (NPY files are not compressed)"
        )));
    }
    Ok(())
}

/// Writes one tensor to `path`, atomically.
///
/// # Errors
/// Options that do not fit the format, or a failure to write.
pub fn write_tensor(
    path: &Path,
    format: OutputFormat,
    tensor: &OutputTensor<'_>,
) -> Result<(), WriteError> {
    if tensor.shape.iter().product::<usize>() != tensor.data.len() {
        return Err(WriteError::Unsupported(format!(
            "shape {:?} does not hold {} values",
            tensor.shape,
            tensor.data.len()
        )));
    }
    let mut writer = TensorWriter::create(
        path,
        format,
        &tensor.meta,
        tensor.shape,
        tensor.compression,
        tensor.dtype,
        tensor.sync,
    )?;
    writer.write(tensor.data)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names() {
        assert_eq!(Compression::parse("none"), Some(Compression::None));
        assert_eq!(Compression::parse("deflate"), Some(Compression::Deflate(4)));
        assert_eq!(Compression::parse("gzip:9"), Some(Compression::Deflate(9)));
        assert_eq!(Compression::parse("deflate:0"), None);
        assert_eq!(Compression::parse("zstd"), None);
        assert_eq!(Compression::Deflate(6).to_string(), "deflate:6");
        assert_eq!(Compression::parse("lzf"), Some(Compression::Lzf));
        assert_eq!(Compression::parse("lzf:3"), None);
        let e = check_options(OutputFormat::Npz, Compression::Lzf).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compression lzf is for --format h5 (NPZ files take none or deflate)"
        );
    }

    #[test]
    fn npy_refuses_compression() {
        let e = check_options(OutputFormat::Npy, Compression::Deflate(4)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compression deflate:4 needs --format h5 or npz (NPY files are not compressed)"
        );
    }
}
