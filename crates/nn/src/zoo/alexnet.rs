//! AlexNet as D2L 7.1 builds it for 224×224 Fashion-MNIST.

use super::Narrow;
use crate::error::Result;
use crate::layers::{Activation::Relu, Conv2D, Dense, Dropout, MaxPool2D, Sequential};
use kiln_tensor::Float;

/// AlexNet (D2L 7.1): five convolutions (96 11×11 stride 4; 256 5×5; 384, 384, 256 3×3)
/// with 3×3 stride-2 max pooling after the first, second and fifth, then two dense layers
/// of 4096 with dropout 0.5, and 10 outputs. The book trains it at lr 0.01.
///
/// # Shapes
/// (N, 1, 224, 224) → (N, 10); 46,764,746 parameters.
pub fn alexnet<T: Float>() -> Sequential<T> {
    build(Narrow::BOOK)
}

/// [`alexnet`] with every convolution's channels and both hidden dense layers' units
/// divided by `ratio` (rounded down, at least 1; the 10 outputs kept): the same layers, so
/// `alexnet_narrow(1)` is `alexnet()`. An error for a ratio of 0.
///
/// ```
/// use kiln_nn::{zoo::alexnet_narrow, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // ratio 32: 3, 8, 12, 12 and 8 channels, dense layers of 128; 67×67 is the smallest
/// // input that leaves a 1×1 map after the last pooling
/// let net = alexnet_narrow::<f32>(32)?;
/// net.initialize(&Init::xavier(), 0)?;
/// assert_eq!(net.predict(&Tensor::zeros([2, 1, 67, 67]))?.dims(), &[2, 10]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn alexnet_narrow<T: Float>(ratio: usize) -> Result<Sequential<T>> {
    Ok(build(Narrow::new("alexnet_narrow", ratio)?))
}

fn build<T: Float>(n: Narrow) -> Sequential<T> {
    Sequential::new()
        .add(Conv2D::new(n.of(96), 11).strides(4).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Conv2D::new(n.of(256), 5).padding(2).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Conv2D::new(n.of(384), 3).padding(1).activation(Relu))
        .add(Conv2D::new(n.of(384), 3).padding(1).activation(Relu))
        .add(Conv2D::new(n.of(256), 3).padding(1).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Dense::new(n.of(4096)).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(n.of(4096)).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(10))
}
