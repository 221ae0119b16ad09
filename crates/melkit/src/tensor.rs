//! A computed mel tensor `[long_segment, short_segment, mel_bin, time_frame]`.

use ndarray::ArrayView4;

/// One file's mel tensor, in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct MelTensor {
    data: Vec<f32>,
    shape: [usize; 4],
}

impl MelTensor {
    /// A tensor from its values and shape (`data.len()` must equal the shape's product).
    pub fn new(data: Vec<f32>, shape: [usize; 4]) -> Self {
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "tensor data does not fit its shape"
        );
        MelTensor { data, shape }
    }

    /// `[long_segment, short_segment, mel_bin, time_frame]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The values, in C order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, taken.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// An ndarray view.
    #[allow(clippy::expect_used)] // an invariant of `new`, not a property of any input
    pub fn view(&self) -> ArrayView4<'_, f32> {
        ArrayView4::from_shape(self.shape, &self.data).expect("shape checked at construction")
    }
}
