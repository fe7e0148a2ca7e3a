//! The book's LeNet (D2L 6.6) and LeNet with batch normalization (D2L 7.5).

use crate::layers::{Activation, BatchNorm, Conv2D, Dense, MaxPool2D, Sequential};
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

/// LeNet with batch normalization, the concise version of D2L 7.5: a `BatchNorm` after
/// each convolution and dense layer but the last, before its sigmoid (Gluon's BatchNorm:
/// momentum 0.9, epsilon 1e-5). The book trains it at lr 1.0, batch 256.
///
/// # Shapes
/// (N, 1, 28, 28) → (N, 10); 45,330 parameters in Gluon's count (904 of them BatchNorm's,
/// 452 running statistics).
pub fn bn_lenet<T: Float>() -> Sequential<T> {
    Sequential::new()
        .add(Conv2D::new(6, 5))
        .add(BatchNorm::new())
        .add(Activation::Sigmoid)
        .add(MaxPool2D::new(2).strides(2))
        .add(Conv2D::new(16, 5))
        .add(BatchNorm::new())
        .add(Activation::Sigmoid)
        .add(MaxPool2D::new(2).strides(2))
        .add(Dense::new(120))
        .add(BatchNorm::new())
        .add(Activation::Sigmoid)
        .add(Dense::new(84))
        .add(BatchNorm::new())
        .add(Activation::Sigmoid)
        .add(Dense::new(10))
}
