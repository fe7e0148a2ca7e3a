//! Network in Network as D2L 7.3 builds it: blocks of one convolution and two 1×1 ones,
//! and global average pooling instead of dense layers.

use super::Narrow;
use crate::error::Result;
use crate::layers::{
    Activation::Relu, Conv2D, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, Sequential,
};
use kiln_tensor::Float;

/// One NiN block (D2L 7.3): a `kernel_size` convolution of `num_channels` with `strides`
/// and `padding`, then two 1×1 convolutions, each with ReLU.
pub fn nin_block<T: Float>(
    num_channels: usize,
    kernel_size: usize,
    strides: usize,
    padding: usize,
) -> Sequential<T> {
    Sequential::new()
        .add(
            Conv2D::new(num_channels, kernel_size)
                .strides(strides)
                .padding(padding)
                .activation(Relu),
        )
        .add(Conv2D::new(num_channels, 1).activation(Relu))
        .add(Conv2D::new(num_channels, 1).activation(Relu))
}

/// NiN (D2L 7.3): NiN blocks of 96, 256 and 384 channels with 3×3 stride-2 max pooling,
/// dropout 0.5, a last block of 10 channels, global average pooling and flattening. The
/// book trains it at lr 0.1.
///
/// # Shapes
/// (N, 1, 224, 224) → (N, 10); 1,992,166 parameters.
pub fn nin<T: Float>() -> Sequential<T> {
    build(Narrow::BOOK)
}

/// [`nin`] with the first three blocks' channels divided by `ratio` (rounded down, at
/// least 1; the last block keeps its 10, one per class): `nin_narrow(1)` is `nin()`. An
/// error for a ratio of 0. As for AlexNet, 67×67 is the smallest input.
pub fn nin_narrow<T: Float>(ratio: usize) -> Result<Sequential<T>> {
    Ok(build(Narrow::new("nin_narrow", ratio)?))
}

fn build<T: Float>(n: Narrow) -> Sequential<T> {
    Sequential::new()
        .add(nin_block(n.of(96), 11, 4, 0))
        .add(MaxPool2D::new(3).strides(2))
        .add(nin_block(n.of(256), 5, 1, 2))
        .add(MaxPool2D::new(3).strides(2))
        .add(nin_block(n.of(384), 3, 1, 1))
        .add(MaxPool2D::new(3).strides(2))
        .add(Dropout::new(0.5))
        .add(nin_block(10, 3, 1, 1))
        .add(GlobalAvgPool2D::new())
        .add(Flatten::new())
}
