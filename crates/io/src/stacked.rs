//! Stacked HDF5 (SPEC §3): one file for a whole run, dataset `mel` `[N, long, short, mel, time]`
//! extendable along N with one chunk per input file, `source` `[N]` (each row's input) and
//! `index` `[N]` (each row's position in the run's input list, so that shards merge back into
//! one order), written row by row so memory holds one file at a time.

use std::path::Path;

use half::f16;
use hdf5::types::VarLenUnicode;
use ndarray::{ArrayView1, ArrayView5, s};

use crate::error::WriteError;
use crate::h5::{dataset_builder, h5_error, write_attributes};
use crate::output::{Compression, Dtype};

/// The axes of a stacked `mel` dataset.
pub const STACKED_AXES: &str = "file,long_segment,short_segment,mel_bin,time_frame";

/// What a stacked file records beside its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackedMeta {
    /// The configuration as JSON.
    pub config_json: String,
    /// The sample rate, in Hz.
    pub sample_rate: u32,
    /// melkit's version.
    pub melkit_version: String,
}

/// A stacked file being written.
pub struct StackedWriter {
    file: hdf5::File,
    mel: hdf5::Dataset,
    source: hdf5::Dataset,
    index: hdf5::Dataset,
    shape: [usize; 4],
    dtype: Dtype,
    rows: usize,
}

impl StackedWriter {
    /// Creates the file (which must not exist) for rows of `shape` `[long, short, mel, time]`.
    ///
    /// # Errors
    /// The file exists or the HDF5 library fails.
    pub fn create(
        path: &Path,
        meta: &StackedMeta,
        shape: [usize; 4],
        compression: Compression,
        dtype: Dtype,
    ) -> Result<Self, WriteError> {
        let file = crate::h5::create_file(path)?;
        let [l, sh, m, t] = shape;
        let chunk = [1, l.max(1), sh.max(1), m.max(1), t.max(1)];
        let builder = dataset_builder(&file, chunk, compression);
        let extents = (0.., l, sh, m, t);
        let mel = match dtype {
            Dtype::F32 => builder.empty::<f32>().shape(extents).create("mel"),
            Dtype::F16 => builder.empty::<f16>().shape(extents).create("mel"),
        }
        .map_err(h5_error)?;
        let rows = || file.new_dataset_builder().chunk(1024).obj_track_times(false);
        let source =
            rows().empty::<VarLenUnicode>().shape(0..).create("source").map_err(h5_error)?;
        let index = rows().empty::<u64>().shape(0..).create("index").map_err(h5_error)?;
        let text = [
            ("axes", STACKED_AXES),
            ("config", meta.config_json.as_str()),
            ("melkit_version", meta.melkit_version.as_str()),
        ];
        write_attributes(&mel, &text, meta.sample_rate)?;
        Ok(StackedWriter { file, mel, source, index, shape, dtype, rows: 0 })
    }

    /// Appends one input's tensor (`long × short × mel × time` values).
    ///
    /// # Errors
    /// Values of another shape, or the HDF5 library fails.
    pub fn push(&mut self, index: u64, source: &str, values: &[f32]) -> Result<(), WriteError> {
        let [l, sh, m, t] = self.shape;
        let view = ArrayView5::from_shape([1, l, sh, m, t], values).map_err(|_| {
            WriteError::Hdf5(format!("{source}: its tensor is not [{l}, {sh}, {m}, {t}]"))
        })?;
        let n = self.rows;
        self.mel.resize((n + 1, l, sh, m, t)).map_err(h5_error)?;
        match self.dtype {
            Dtype::F32 => self.mel.write_slice(&view, s![n..n + 1, .., .., .., ..]),
            Dtype::F16 => {
                self.mel.write_slice(&view.mapv(f16::from_f32), s![n..n + 1, .., .., .., ..])
            }
        }
        .map_err(h5_error)?;
        let name: VarLenUnicode =
            source.parse().map_err(|e| WriteError::Hdf5(format!("source {source}: {e}")))?;
        self.source.resize(n + 1).map_err(h5_error)?;
        self.source.write_slice(ArrayView1::from(&[name][..]), s![n..n + 1]).map_err(h5_error)?;
        self.index.resize(n + 1).map_err(h5_error)?;
        self.index.write_slice(ArrayView1::from(&[index][..]), s![n..n + 1]).map_err(h5_error)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Closes the file.
    ///
    /// # Errors
    /// The HDF5 library fails to flush it.
    pub fn close(self) -> Result<(), WriteError> {
        drop((self.mel, self.source, self.index));
        self.file.close().map_err(h5_error)
    }
}

/// A stacked file opened for reading row by row.
pub struct StackedReader {
    mel: hdf5::Dataset,
    /// Each row's input.
    pub sources: Vec<String>,
    /// Each row's position in its run's input list.
    pub indices: Vec<u64>,
    /// `[long, short, mel, time]` of a row.
    pub shape: [usize; 4],
    /// The configuration attribute.
    pub config_json: String,
    /// The sample-rate attribute.
    pub sample_rate: u32,
    /// The element type stored.
    pub dtype: Dtype,
}

impl StackedReader {
    /// Opens a stacked file.
    ///
    /// # Errors
    /// Not a stacked file written by melkit, or the HDF5 library fails.
    pub fn open(path: &Path) -> Result<Self, WriteError> {
        let bad = |what: &str| {
            WriteError::Hdf5(format!("{} is not a stacked melkit file: {what}", path.display()))
        };
        let file = hdf5::File::open(path).map_err(h5_error)?;
        let mel = file.dataset("mel").map_err(|_| bad("no `mel` dataset"))?;
        let shape: [usize; 5] = mel.shape().try_into().map_err(|_| bad("`mel` is not 5-D"))?;
        let sources: Vec<VarLenUnicode> = file
            .dataset("source")
            .and_then(|d| d.read_raw())
            .map_err(|_| bad("no `source` dataset"))?;
        let indices: Vec<u64> = file
            .dataset("index")
            .and_then(|d| d.read_raw())
            .map_err(|_| bad("no `index` dataset"))?;
        if sources.len() != shape[0] || indices.len() != shape[0] {
            return Err(bad("`mel`, `source` and `index` differ in length"));
        }
        let attr = |name: &str| {
            mel.attr(name).and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|v| v.to_string())
        };
        let dtype =
            if mel.dtype().map_err(h5_error)?.size() == 2 { Dtype::F16 } else { Dtype::F32 };
        Ok(StackedReader {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            indices,
            shape: [shape[1], shape[2], shape[3], shape[4]],
            config_json: attr("config").map_err(|_| bad("no `config` attribute"))?,
            sample_rate: mel.attr("sample_rate").and_then(|a| a.read_scalar()).unwrap_or(0),
            dtype,
            mel,
        })
    }

    /// The values of row `i`, as f32.
    ///
    /// # Errors
    /// The HDF5 library fails.
    pub fn row(&self, i: usize) -> Result<Vec<f32>, WriteError> {
        let a: ndarray::ArrayD<f32> =
            self.mel.read_slice(s![i..i + 1, .., .., .., ..]).map_err(h5_error)?;
        Ok(a.into_raw_vec_and_offset().0)
    }
}
