//! HDF5 output (SPEC §3): dataset `mel`, chunked, optionally deflated, with the attributes
//! `axes`, `config`, `source`, `sample_rate` and `melkit_version`.

use std::path::Path;

use half::f16;
use hdf5::types::VarLenUnicode;
use ndarray::ArrayView4;

use crate::error::WriteError;
use crate::output::{AXES, Compression, Dtype, OutputTensor};

/// Bytes a chunk aims for: large enough to compress well, small enough for HDF5's chunk cache.
const CHUNK_BYTES: usize = 256 * 1024;

fn h5_error(e: hdf5::Error) -> WriteError {
    WriteError::Hdf5(e.to_string())
}

/// Chunks of whole long segments, about [`CHUNK_BYTES`] each.
pub fn chunk_shape(shape: [usize; 4], element_bytes: usize) -> [usize; 4] {
    let per_long = (shape[1] * shape[2] * shape[3] * element_bytes).max(1);
    let longs = (CHUNK_BYTES / per_long).clamp(1, shape[0].max(1));
    [longs, shape[1].max(1), shape[2].max(1), shape[3].max(1)]
}

/// Writes an `.h5` file.
///
/// # Errors
/// The HDF5 library fails to create or write the file.
pub fn write_h5(path: &Path, tensor: &OutputTensor<'_>) -> Result<(), WriteError> {
    let OutputTensor { data, shape, meta, compression, dtype, .. } = *tensor;
    let file = hdf5::File::create(path).map_err(h5_error)?;
    let view = ArrayView4::from_shape(shape, data).map_err(|e| WriteError::Hdf5(e.to_string()))?;
    let element_bytes = if dtype == Dtype::F16 { 2 } else { 4 };
    let mut builder = file.new_dataset_builder().chunk(chunk_shape(shape, element_bytes));
    if let Compression::Deflate(level) = compression {
        builder = builder.shuffle().deflate(level);
    }
    let dataset = match dtype {
        Dtype::F32 => builder.with_data(&view).create("mel"),
        Dtype::F16 => builder.with_data(&view.mapv(f16::from_f32)).create("mel"),
    }
    .map_err(h5_error)?;
    for (name, value) in [
        ("axes", AXES),
        ("config", meta.config_json),
        ("source", meta.source),
        ("melkit_version", meta.melkit_version),
    ] {
        let value: VarLenUnicode =
            value.parse().map_err(|e| WriteError::Hdf5(format!("attribute {name}: {e}")))?;
        dataset
            .new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&value))
            .map_err(h5_error)?;
    }
    dataset
        .new_attr::<u32>()
        .create("sample_rate")
        .and_then(|a| a.write_scalar(&meta.sample_rate))
        .map_err(h5_error)?;
    file.close().map_err(h5_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        let data: Vec<f32> = (0..40 * 2 * 64 * 17).map(|i| (i % 977) as f32 * 0.5).collect();
        let shape = [40, 2, 64, 17];
        let meta = crate::output::TensorMeta {
            source: "in/a.wav",
            config_json: "{}",
            sample_rate: 4096,
            melkit_version: "9.9",
        };
        for (compression, dtype) in [
            (Compression::None, Dtype::F32),
            (Compression::Deflate(4), Dtype::F32),
            (Compression::Deflate(1), Dtype::F16),
        ] {
            write_h5(
                &path,
                &OutputTensor { data: &data, shape, meta, compression, dtype, sync: false },
            )
            .unwrap();
            let file = hdf5::File::open(&path).unwrap();
            let mel = file.dataset("mel").unwrap();
            assert_eq!(mel.shape(), shape);
            assert_eq!(
                mel.chunk(),
                Some(chunk_shape(shape, if dtype == Dtype::F16 { 2 } else { 4 }).to_vec())
            );
            let back: Vec<f32> = match dtype {
                Dtype::F32 => mel.read_raw::<f32>().unwrap(),
                Dtype::F16 => mel.read_raw::<f16>().unwrap().into_iter().map(f16::to_f32).collect(),
            };
            assert_eq!(back, data, "{compression} {dtype:?}");
            let text =
                |n: &str| mel.attr(n).unwrap().read_scalar::<VarLenUnicode>().unwrap().to_string();
            assert_eq!(text("axes"), AXES);
            assert_eq!(text("source"), "in/a.wav");
            assert_eq!(text("melkit_version"), "9.9");
            assert_eq!(mel.attr("sample_rate").unwrap().read_scalar::<u32>().unwrap(), 4096);
        }
    }
}
