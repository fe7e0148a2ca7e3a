//! VGG as D2L 7.2 builds it: blocks of 3×3 convolutions each ended by max pooling.

use crate::layers::{Activation::Relu, Conv2D, Dense, Dropout, MaxPool2D, Sequential};
use kiln_tensor::Float;

/// VGG-11's architecture: (convolutions, channels) per block.
pub const VGG11_ARCH: [(usize, usize); 5] = [(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)];

/// One VGG block (D2L 7.2): `num_convs` 3×3 convolutions of `num_channels` with padding 1
/// and ReLU, then 2×2 max pooling with stride 2.
///
/// # Shapes
/// (N, C, H, W) → (N, num_channels, H/2, W/2).
pub fn vgg_block<T: Float>(num_convs: usize, num_channels: usize) -> Sequential<T> {
    let mut blk = Sequential::new();
    for _ in 0..num_convs {
        blk.push(Conv2D::new(num_channels, 3).padding(1).activation(Relu));
    }
    blk.add(MaxPool2D::new(2).strides(2))
}

/// VGG with the blocks of `conv_arch` ((convolutions, channels) each), then two dense
/// layers of 4096 with dropout 0.5 and 10 outputs (D2L 7.2's `vgg(conv_arch)`).
pub fn vgg<T: Float>(conv_arch: &[(usize, usize)]) -> Sequential<T> {
    vgg_with(conv_arch, 4096)
}

/// [`vgg`] with hidden dense layers of `dense_units` instead of 4096: with a narrow
/// `conv_arch`, a VGG small enough to gradient-check.
///
/// ```
/// use kiln_nn::{zoo::vgg_with, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // VGG-11's blocks with 2 to 16 channels; five halvings take 32×32 to 1×1
/// let net = vgg_with::<f32>(&[(1, 2), (1, 4), (2, 8), (2, 16), (2, 16)], 32);
/// net.initialize(&Init::xavier(), 0)?;
/// assert_eq!(net.predict(&Tensor::zeros([2, 1, 32, 32]))?.dims(), &[2, 10]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn vgg_with<T: Float>(conv_arch: &[(usize, usize)], dense_units: usize) -> Sequential<T> {
    let mut net = Sequential::new();
    for &(num_convs, num_channels) in conv_arch {
        net.push(vgg_block(num_convs, num_channels));
    }
    net.add(Dense::new(dense_units).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(dense_units).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(10))
}

/// The VGG-11 the book trains: [`VGG11_ARCH`] with every channel count divided by 4
/// (`ratio = 4`), at lr 0.05.
///
/// # Shapes
/// (N, 1, 224, 224) → (N, 10); 43,093,322 parameters.
pub fn vgg11_small<T: Float>() -> Sequential<T> {
    let small: Vec<(usize, usize)> = VGG11_ARCH.iter().map(|&(n, c)| (n, c / 4)).collect();
    vgg(&small)
}
