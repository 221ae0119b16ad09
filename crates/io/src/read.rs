//! Reading melkit's outputs back (HDF5, NPY, NPZ): the tensor as f32 and the configuration it
//! was computed with, where the file records one.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::npy;

/// A tensor read from an output file.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor {
    /// Its shape (`[long, short, mel, time]` for a per-file output).
    pub shape: Vec<usize>,
    /// Its values, C order, as f32 (f16 outputs widened).
    pub values: Vec<f32>,
    /// The configuration as JSON (HDF5's `config` attribute, NPZ's `config` array).
    pub config: Option<String>,
}

/// Reads the tensor of an `.h5`, `.npy` or `.npz` output.
///
/// # Errors
/// A message naming the file and the reason: missing, not such a file, another element type.
pub fn read_output(path: &Path) -> Result<StoredTensor, crate::error::ReadError> {
    let fail = failure(path);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "npy" => read_npy_reusing(path, Vec::new()),
        "npz" => read_npz(path).map_err(|e| fail(&e)),
        "h5" | "hdf5" => read_h5(path).map_err(|e| fail(&e)),
        _ => Err(fail(&"not an .h5, .npy or .npz file")),
    }
}

/// The error for `path` with a reason.
fn failure(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> crate::error::ReadError + '_ {
    |reason| crate::error::ReadError { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Reads the tensor of an `.npy` output into `values`' allocation (whatever it holds is
/// replaced): reading many outputs of one shape through one buffer neither allocates nor
/// zeroes it again.
///
/// # Errors
/// As [`read_output`].
pub fn read_npy_reusing(
    path: &Path,
    values: Vec<f32>,
) -> Result<StoredTensor, crate::error::ReadError> {
    let fail = failure(path);
    let file = File::open(path).map_err(|e| fail(&e))?;
    let size = file.metadata().map_err(|e| fail(&e))?.len();
    read_npy(&mut BufReader::new(file), Some(size), values).map_err(|e| fail(&e))
}

/// Reads an NPY array from `reader` into `values`' allocation: a source of `size` bytes where
/// that is known (which bounds what a header may claim), else its values as they arrive.
fn read_npy<R: Read>(
    reader: &mut R,
    size: Option<u64>,
    mut values: Vec<f32>,
) -> Result<StoredTensor, String> {
    let header = npy::read_header(reader)
        .map_err(|e| e.to_string())?
        .ok_or("not an NPY file of a C-ordered array")?;
    let n = header.values().ok_or("its header claims a shape too large for any file")?;
    // Only its allocation is kept: both readings replace all it holds with the `n` values. What
    // a file holds past its header bounds what the header may claim.
    let read = match size {
        Some(size) => {
            let data = size.saturating_sub(header.bytes);
            npy::read_values(reader, &header.descr, n, data, &mut values)
        }
        None => npy::read_values_as_they_come(reader, &header.descr, n, &mut values),
    };
    if !read.map_err(|e| e.to_string())? {
        return Err(format!("its values are {}, not float32 or float16", header.descr));
    }
    Ok(StoredTensor { shape: header.shape, values, config: None })
}

fn read_npz(path: &Path) -> Result<StoredTensor, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut tensor = {
        let mut mel = zip.by_name("mel.npy").map_err(|_| "it holds no `mel` array")?;
        // Its values as they really arrive: the entry's declared size is only a claim, and
        // bounding the values by it would let a crafted archive ask for any allocation.
        read_npy(&mut mel, None, Vec::new())?
    };
    if let Ok(mut entry) = zip.by_name("config.npy") {
        let mut bytes = Vec::new();
        // A configuration is a few KiB; the entry's claimed size is not trusted.
        entry.by_ref().take(1 << 20).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        tensor.config = unicode_scalar(&bytes);
    }
    Ok(tensor)
}

/// The text of a 0-d `<U{n}` NPY array.
fn unicode_scalar(bytes: &[u8]) -> Option<String> {
    let mut reader = bytes;
    let header = npy::read_header(&mut reader).ok()??;
    header.descr.starts_with("<U").then_some(())?;
    let text: String = reader
        .chunks_exact(4)
        .filter_map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .take_while(|&c| c != '\0')
        .collect();
    Some(text)
}

#[cfg(feature = "hdf5")]
fn read_h5(path: &Path) -> Result<StoredTensor, String> {
    let file = hdf5::File::open(path).map_err(|e| e.to_string())?;
    let mel = file.dataset("mel").map_err(|_| "it holds no `mel` dataset")?;
    let values: Vec<f32> = mel.read_raw().map_err(|e| e.to_string())?;
    let config = mel
        .attr("config")
        .and_then(|a| a.read_scalar::<hdf5::types::VarLenUnicode>())
        .ok()
        .map(|v| v.as_str().to_string());
    Ok(StoredTensor { shape: mel.shape(), values, config })
}

#[cfg(not(feature = "hdf5"))]
fn read_h5(_: &Path) -> Result<StoredTensor, String> {
    Err("this build of melkit has no HDF5 support".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NPY file whose header claims `shape` but that holds `held` float32 values.
    fn crafted(dir: &Path, shape: &[usize], held: usize) -> std::path::PathBuf {
        let mut bytes = npy::npy_header("<f4", shape);
        bytes.extend(std::iter::repeat_n(0u8, 4 * held));
        let path = dir.join("crafted.npy");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = crafted(dir.path(), &[1000, 1000, 1000, 10880], 6);
        let e = read_output(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot read {}: its header claims 10880000000000 values (43520000000000 bytes) \
                 but it holds only 24 bytes of data",
                path.display()
            )
        );
        let overflow = crafted(dir.path(), &[usize::MAX, 3], 0);
        assert_eq!(
            read_output(&overflow).unwrap_err().to_string(),
            format!(
                "cannot read {}: its header claims a shape too large for any file",
                overflow.display()
            )
        );
        // The same file, holding what it claims, reads back.
        let honest = crafted(dir.path(), &[2, 3], 6);
        assert_eq!(read_output(&honest).unwrap().values, vec![0.0; 6]);
    }

    /// One buffer through outputs of several sizes and both types, larger then smaller then
    /// larger: each read holds exactly its own file's values, none left over from the one before.
    #[test]
    fn a_reused_buffer_holds_each_files_own_values() {
        let dir = tempfile::tempdir().unwrap();
        // f32 values, or f16 where `first` is odd: whole numbers `first + i % 1000`, exact in both.
        let write = |name: &str, shape: &[usize], first: f32| {
            let n: usize = shape.iter().product();
            let half = first.rem_euclid(2.0) == 1.0;
            let mut bytes = npy::npy_header(if half { "<f2" } else { "<f4" }, shape);
            for i in 0..n {
                let v = first + (i % 1000) as f32;
                if half {
                    bytes.extend(half::f16::from_f32(v).to_le_bytes());
                } else {
                    bytes.extend(v.to_le_bytes());
                }
            }
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            (path, (0..n).map(|i| first + (i % 1000) as f32).collect::<Vec<f32>>())
        };
        // b.npy's f16 values span more than one of the conversion's 64 KiB reads (32,768
        // values each).
        let files = [
            write("a.npy", &[2, 5], 2.0),
            write("b.npy", &[3, 12_000], 1.0),
            write("c.npy", &[3], 100.0),
            write("d.npy", &[4, 700], -1021.0),
        ];
        let mut buffer = Vec::new();
        for (path, want) in &files {
            let read = read_npy_reusing(path, buffer).unwrap();
            // Not `assert_eq!`: thousands of values would flood the failure.
            assert!(&read.values == want, "{} read back other values", path.display());
            assert_eq!(read.shape.iter().product::<usize>(), want.len());
            buffer = read.values;
        }
        let missing = dir.path().join("none.npy");
        let e = read_npy_reusing(&missing, buffer).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("cannot read {}: No such file or directory (os error 2)", missing.display())
        );
    }

    /// An NPZ whose `mel.npy` entry declares 4 GB and whose header claims a billion values,
    /// holding 24 bytes: refused by what the entry really holds, before anything is allocated.
    #[test]
    fn an_npz_entry_claiming_more_than_it_holds_is_refused_before_allocating() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted.npz");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mel.npy", stored).unwrap();
        let mut npy = npy::npy_header("<f4", &[1000, 1000, 1000]);
        npy.extend([0u8; 24]);
        zip.write_all(&npy).unwrap();
        zip.finish().unwrap();
        // The declared uncompressed size, in the local header (offset 22) and the central
        // directory's entry (offset 24 from its signature), set to 4 GB less 16.
        let mut bytes = std::fs::read(&path).unwrap();
        let claim = (u32::MAX - 15).to_le_bytes();
        bytes[22..26].copy_from_slice(&claim);
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&claim);
        std::fs::write(&path, bytes).unwrap();
        let e = read_output(&path).unwrap_err().to_string();
        let want = "its header claims 1000000000 values (4000000000 bytes) but it holds only 24 \
                    bytes of data";
        assert_eq!(e, format!("cannot read {}: {want}", path.display()));
    }
}
