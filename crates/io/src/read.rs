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
pub fn read_output(path: &Path) -> Result<StoredTensor, String> {
    let fail = |reason: &dyn std::fmt::Display| format!("cannot read {}: {reason}", path.display());
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "npy" => {
            let mut reader = BufReader::new(File::open(path).map_err(|e| fail(&e))?);
            read_npy(&mut reader).map_err(|e| fail(&e))
        }
        "npz" => read_npz(path).map_err(|e| fail(&e)),
        "h5" | "hdf5" => read_h5(path).map_err(|e| fail(&e)),
        _ => Err(fail(&"not an .h5, .npy or .npz file")),
    }
}

fn read_npy<R: Read>(reader: &mut R) -> Result<StoredTensor, String> {
    let header = npy::read_header(reader)
        .map_err(|e| e.to_string())?
        .ok_or("not an NPY file of a C-ordered array")?;
    let n = header.shape.iter().product();
    let mut values = Vec::new();
    if !npy::read_values(reader, &header.descr, n, &mut values).map_err(|e| e.to_string())? {
        return Err(format!("its values are {}, not float32 or float16", header.descr));
    }
    Ok(StoredTensor { shape: header.shape, values, config: None })
}

fn read_npz(path: &Path) -> Result<StoredTensor, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut tensor = {
        let mut mel = zip.by_name("mel.npy").map_err(|_| "it holds no `mel` array")?;
        read_npy(&mut mel)?
    };
    if let Ok(mut entry) = zip.by_name("config.npy") {
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
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
