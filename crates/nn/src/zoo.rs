//! Ready-made networks (Gluon's `model_zoo`): the book's LeNet.

use crate::layers::{Activation, Conv2D, Dense, MaxPool2D, Sequential};
use kiln_tensor::Float;

/// LeNet-5 as D2L 6.6 builds it for 28×28 Fashion-MNIST: two 5×5 convolutions (6 and 16
/// channels, no padding) each followed by 2×2 max pooling, then dense layers of 120, 84
/// and 10 units. The book uses `Activation::Sigmoid`; `Relu` is the modern variant.
///
/// # Shapes
/// (N, 1, 28, 28) → (N, 10); 44,426 parameters.
pub fn lenet<T: Float>(activation: Activation) -> Sequential<T> {
    Sequential::new()
        .add(Conv2D::new(6, 5).activation(activation))
        .add(MaxPool2D::new(2).strides(2))
        .add(Conv2D::new(16, 5).activation(activation))
        .add(MaxPool2D::new(2).strides(2))
        .add(Dense::new(120).activation(activation))
        .add(Dense::new(84).activation(activation))
        .add(Dense::new(10))
}
