//! melkit-io: decoding audio to mono f32, resampling, and writing tensors to HDF5, NPY and NPZ,
//! every output written under a temporary name and renamed when complete.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod atomic;
mod codec;
pub mod decode;
pub mod error;
#[cfg(feature = "hdf5")]
pub mod h5;
mod mp4;
pub mod npy;
pub mod output;
pub mod read;
pub mod resample;
#[cfg(feature = "hdf5")]
pub mod stacked;
pub mod writer;

pub use decode::{Audio, AudioStream, decode_file};
pub use error::{DecodeError, ReadError, WriteError};
pub use output::{Compression, Dtype, OutputFormat, OutputTensor, TensorMeta, write_tensor};
pub use resample::{StreamResampler, resample, resampled_len};
pub use writer::TensorWriter;
