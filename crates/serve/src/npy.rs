//! The NPY answer without a copy of the tensor: a 64-byte-aligned NPY 1.0 header (`<f4`, C
//! order) and the tensor's own buffer as the body's two chunks, written to the socket together.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Frame, SizeHint};
use melkit::MelTensor;

/// The NPY header of a little-endian f32 array of `shape`.
fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&u16::try_from(total - 10).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// A tensor's values as bytes (little-endian, as the header says).
struct Values(Vec<f32>);

impl AsRef<[u8]> for Values {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// The body: the header, then the values.
pub(crate) struct NpyBody {
    chunks: [Option<Bytes>; 2],
}

impl NpyBody {
    /// `tensor` as an NPY file.
    pub fn new(tensor: MelTensor) -> Self {
        let header = Bytes::from(header(&tensor.shape()));
        let values = if cfg!(target_endian = "little") {
            Bytes::from_owner(Values(tensor.into_data()))
        } else {
            Bytes::from(tensor.data().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
        };
        NpyBody { chunks: [Some(header), Some(values)] }
    }
}

impl http_body::Body for NpyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.iter_mut().find_map(Option::take);
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.iter().all(Option::is_none)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.chunks.iter().flatten().map(|b| b.len() as u64).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_aligned_and_readable_with_the_values() {
        let tensor =
            MelTensor::new((0..2 * 3 * 4 * 5).map(|v| v as f32 * 0.5).collect(), [2, 3, 4, 5]);
        let mut bytes = header(&tensor.shape());
        assert_eq!(bytes.len() % 64, 0);
        bytes.extend(tensor.data().iter().flat_map(|v| v.to_le_bytes()));
        let read: ndarray::ArrayD<f32> =
            ndarray_npy::ReadNpyExt::read_npy(bytes.as_slice()).unwrap();
        assert_eq!(read.shape(), [2, 3, 4, 5]);
        assert_eq!(read.iter().copied().collect::<Vec<_>>(), tensor.data());
    }
}
