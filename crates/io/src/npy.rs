//! NPY and NPZ outputs (readable by `numpy.load`), through ndarray-npy.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use half::f16;
use ndarray::ArrayView4;
use ndarray_npy::{WritableElement, WriteDataError, WriteNpyExt};
use py_literal::Value as PyValue;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::WriteError;
use crate::output::{Compression, Dtype, OutputTensor};

/// A half-precision value as NPY stores it (`<f2`).
#[derive(Clone, Copy, Debug)]
struct Half(f16);

impl WritableElement for Half {
    fn type_descriptor() -> PyValue {
        PyValue::String("<f2".into())
    }

    fn write<W: Write>(&self, mut writer: W) -> Result<(), WriteDataError> {
        writer.write_all(&self.0.to_le_bytes())?;
        Ok(())
    }

    fn write_slice<W: Write>(slice: &[Self], mut writer: W) -> Result<(), WriteDataError> {
        let bytes: Vec<u8> = slice.iter().flat_map(|h| h.0.to_le_bytes()).collect();
        writer.write_all(&bytes)?;
        Ok(())
    }
}

fn npy_error(e: impl std::fmt::Display) -> WriteError {
    WriteError::Npy(e.to_string())
}

/// Writes the tensor as NPY to any writer.
fn encode<W: Write>(writer: W, tensor: &OutputTensor<'_>) -> Result<(), WriteError> {
    let view = ArrayView4::from_shape(tensor.shape, tensor.data).map_err(npy_error)?;
    match tensor.dtype {
        Dtype::F32 => view.write_npy(writer).map_err(npy_error),
        Dtype::F16 => view.mapv(|x| Half(f16::from_f32(x))).write_npy(writer).map_err(npy_error),
    }
}

/// Writes a `.npy` file.
///
/// # Errors
/// The file cannot be written.
pub fn write_npy(path: &Path, tensor: &OutputTensor<'_>) -> Result<(), WriteError> {
    let mut writer = BufWriter::new(File::create(path)?);
    encode(&mut writer, tensor)?;
    writer.flush()?;
    Ok(())
}

/// Writes a `.npz` file with `mel` and `config` (the configuration as a 0-d unicode array).
///
/// # Errors
/// The file cannot be written.
pub fn write_npz(path: &Path, tensor: &OutputTensor<'_>) -> Result<(), WriteError> {
    let options = match tensor.compression {
        Compression::None => {
            SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
        }
        Compression::Deflate(level) => SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(i64::from(level))),
    }
    .large_file(tensor.data.len() * 4 > u32::MAX as usize / 2);
    let mut zip = ZipWriter::new(BufWriter::new(File::create(path)?));
    zip.start_file("mel.npy", options).map_err(npy_error)?;
    encode(&mut zip, tensor)?;
    zip.start_file("config.npy", options).map_err(npy_error)?;
    zip.write_all(&unicode_scalar_npy(tensor.meta.config_json))?;
    zip.finish().map_err(npy_error)?.flush()?;
    Ok(())
}

/// A 0-d NPY array of dtype `<U{n}` holding `text` (what `numpy.save(f, numpy.array(text))`
/// writes).
pub fn unicode_scalar_npy(text: &str) -> Vec<u8> {
    let chars = text.chars().count().max(1);
    let mut header = format!("{{'descr': '<U{chars}', 'fortran_order': False, 'shape': (), }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    let mut count = 0;
    for c in text.chars() {
        out.extend_from_slice(&u32::from(c).to_le_bytes());
        count += 1;
    }
    out.resize(out.len() + 4 * (chars - count), 0);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use ndarray::{Array4, ArrayD};
    use ndarray_npy::ReadNpyExt;

    use super::*;
    use crate::output::TensorMeta;

    const META: TensorMeta<'static> = TensorMeta {
        source: "a.wav",
        config_json: "{\"n_mels\":2}",
        sample_rate: 4096,
        melkit_version: "0",
    };

    fn tensor_of(
        data: &[f32],
        shape: [usize; 4],
        compression: Compression,
        dtype: Dtype,
    ) -> OutputTensor<'_> {
        OutputTensor { data, shape, meta: META, compression, dtype, sync: false }
    }

    fn tensor() -> (Vec<f32>, [usize; 4]) {
        ((0..2 * 3 * 2 * 5).map(|i| i as f32 * 0.25 - 3.0).collect(), [2, 3, 2, 5])
    }

    #[test]
    fn npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let (data, shape) = tensor();
        write_npy(&path, &tensor_of(&data, shape, Compression::None, Dtype::F32)).unwrap();
        let back = Array4::<f32>::read_npy(File::open(&path).unwrap()).unwrap();
        assert_eq!(back.shape(), &shape);
        assert_eq!(back.as_slice().unwrap(), &data[..]);
    }

    #[test]
    fn npy_half_has_the_f2_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let (data, shape) = tensor();
        write_npy(&path, &tensor_of(&data, shape, Compression::None, Dtype::F16)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<f2'"), "{header}");
        assert_eq!(bytes.len(), 10 + header_len + 2 * data.len());
        let last = f16::from_le_bytes([bytes[bytes.len() - 2], bytes[bytes.len() - 1]]);
        assert_eq!(last.to_f32(), data[data.len() - 1]);
    }

    #[test]
    fn npz_holds_mel_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        let (data, shape) = tensor();
        write_npz(&path, &tensor_of(&data, shape, Compression::Deflate(4), Dtype::F32)).unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let mel = Array4::<f32>::read_npy(zip.by_name("mel.npy").unwrap()).unwrap();
        assert_eq!(mel.as_slice().unwrap(), &data[..]);
        let mut config = Vec::new();
        zip.by_name("config.npy").unwrap().read_to_end(&mut config).unwrap();
        assert_eq!(config, unicode_scalar_npy(META.config_json));
        assert!(ArrayD::<f32>::read_npy(&config[..]).is_err(), "config is text, not numbers");
    }

    #[test]
    fn unicode_header_is_aligned() {
        let npy = unicode_scalar_npy("héllo");
        let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(npy.len(), 10 + header_len + 4 * 5);
        assert_eq!(&npy[10 + header_len + 4..10 + header_len + 8], &[0xE9, 0, 0, 0]);
    }
}
