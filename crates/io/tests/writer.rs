//! The output sink: HDF5, NPY and NPZ written in blocks of long segments read back exactly,
//! with their attributes; outputs appear only when complete; nothing is left behind.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use half::f16;
use melkit_io::{Compression, Dtype, OutputFormat, TensorMeta, TensorWriter};
use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

const META: TensorMeta<'static> = TensorMeta {
    source: "in/a.wav",
    config_json: "{\"n_mels\":64}",
    sample_rate: 4096,
    melkit_version: "9.9",
};
const SHAPE: [usize; 4] = [40, 2, 64, 17];

fn tensor() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>()).map(|i| (i % 977) as f32 * 0.5 - 100.0).collect()
}

/// Writes the tensor in blocks of 1, 7 and the rest long segments.
fn write(path: &Path, format: OutputFormat, compression: Compression, dtype: Dtype) -> Vec<f32> {
    let data = tensor();
    let per = SHAPE[1] * SHAPE[2] * SHAPE[3];
    let mut w =
        TensorWriter::create(path, format, &META, SHAPE, compression, dtype, false).unwrap();
    for (a, b) in [(0, 1), (1, 8), (8, 40)] {
        w.write(&data[a * per..b * per]).unwrap();
    }
    assert_eq!(w.written(), 40);
    w.finish().unwrap();
    match dtype {
        Dtype::F32 => data,
        Dtype::F16 => data.iter().map(|&x| f16::from_f32(x).to_f32()).collect(),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn npy_in_blocks_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let want = write(&path, OutputFormat::Npy, Compression::None, Dtype::F32);
    let back = Array4::<f32>::read_npy(File::open(&path).unwrap()).unwrap();
    assert_eq!(back.shape(), SHAPE);
    assert_eq!(back.as_slice().unwrap(), &want[..]);
    // f16: '<f2' with the same header length rule.
    let want = write(&path, OutputFormat::Npy, Compression::None, Dtype::F16);
    let bytes = std::fs::read(&path).unwrap();
    let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(std::str::from_utf8(&bytes[10..header_len]).unwrap().contains("'descr': '<f2'"));
    let values: Vec<f32> = bytes[header_len..]
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    assert_eq!(values, want);
    assert_eq!(files_in(dir.path()), ["x.npy"]);
}

#[test]
fn npz_holds_mel_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npz");
    for compression in [Compression::None, Compression::Deflate(6)] {
        let want = write(&path, OutputFormat::Npz, compression, Dtype::F32);
        let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let mel = Array4::<f32>::read_npy(zip.by_name("mel.npy").unwrap()).unwrap();
        assert_eq!(mel.as_slice().unwrap(), &want[..]);
        let mut config = Vec::new();
        zip.by_name("config.npy").unwrap().read_to_end(&mut config).unwrap();
        let header_len = 10 + u16::from_le_bytes([config[8], config[9]]) as usize;
        let text: String = config[header_len..]
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap())
            .collect();
        assert_eq!(text, META.config_json);
    }
}

#[test]
fn h5_in_blocks_reads_back_with_attributes() {
    use hdf5::types::VarLenUnicode;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.h5");
    for (compression, dtype) in [
        (Compression::None, Dtype::F32),
        (Compression::Deflate(4), Dtype::F32),
        (Compression::Deflate(1), Dtype::F16),
        (Compression::Lzf, Dtype::F32),
    ] {
        let want = write(&path, OutputFormat::H5, compression, dtype);
        let file = hdf5::File::open(&path).unwrap();
        let mel = file.dataset("mel").unwrap();
        assert_eq!(mel.shape(), SHAPE);
        // Chunks of whole long segments, up to 512 KiB: all 40 of a ten-second file.
        let longs = 40;
        assert_eq!(mel.chunk(), Some(vec![longs, 2, 64, 17]));
        let back: Vec<f32> = match dtype {
            Dtype::F32 => mel.read_raw::<f32>().unwrap(),
            Dtype::F16 => mel.read_raw::<f16>().unwrap().into_iter().map(f16::to_f32).collect(),
        };
        assert_eq!(back, want, "{compression} {dtype:?}");
        let text =
            |n: &str| mel.attr(n).unwrap().read_scalar::<VarLenUnicode>().unwrap().to_string();
        assert_eq!(text("axes"), "long_segment,short_segment,mel_bin,time_frame");
        assert_eq!(text("source"), "in/a.wav");
        assert_eq!(text("config"), META.config_json);
        assert_eq!(text("melkit_version"), "9.9");
        assert_eq!(mel.attr("sample_rate").unwrap().read_scalar::<u32>().unwrap(), 4096);
    }
}

#[test]
fn an_unfinished_output_never_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    for format in [OutputFormat::Npy, OutputFormat::Npz, OutputFormat::H5] {
        let path = dir.path().join(format!("x.{format}"));
        write(&path, format, Compression::None, Dtype::F32);
        let old = std::fs::read(&path).unwrap();
        let per = SHAPE[1] * SHAPE[2] * SHAPE[3];
        // Dropped half way (a failure elsewhere): nothing changes.
        let mut w =
            TensorWriter::create(&path, format, &META, SHAPE, Compression::None, Dtype::F32, false)
                .unwrap();
        w.write(&vec![1.0; 3 * per]).unwrap();
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), old);
        // Finished too early: an error, and nothing changes.
        let mut w =
            TensorWriter::create(&path, format, &META, SHAPE, Compression::None, Dtype::F32, true)
                .unwrap();
        w.write(&vec![1.0; 3 * per]).unwrap();
        assert_eq!(w.finish().unwrap_err().to_string(), "only 3 of 40 long segments were written");
        assert_eq!(std::fs::read(&path).unwrap(), old);
        // Too much: refused.
        let mut w =
            TensorWriter::create(&path, format, &META, SHAPE, Compression::None, Dtype::F32, false)
                .unwrap();
        let e = w.write(&vec![1.0; 41 * per]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} values do not fit the 40 long segments left of [40, 2, 64, 17]", 41 * per)
        );
    }
    assert_eq!(files_in(dir.path()), ["x.h5", "x.npy", "x.npz"], "temporary files left behind");
}

#[cfg(unix)]
#[test]
fn outputs_get_the_permissions_of_an_ordinary_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    write(&path, OutputFormat::Npy, Compression::None, Dtype::F32);
    let ordinary = dir.path().join("ordinary");
    std::fs::write(&ordinary, b"x").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), mode(&ordinary));
}
