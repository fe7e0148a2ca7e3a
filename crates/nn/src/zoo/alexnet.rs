//! AlexNet as D2L 7.1 builds it for 224×224 Fashion-MNIST.

use crate::layers::{Activation::Relu, Conv2D, Dense, Dropout, MaxPool2D, Sequential};
use kiln_tensor::Float;

/// AlexNet (D2L 7.1): five convolutions (96 11×11 stride 4; 256 5×5; 384, 384, 256 3×3)
/// with 3×3 stride-2 max pooling after the first, second and fifth, then two dense layers
/// of 4096 with dropout 0.5, and 10 outputs. The book trains it at lr 0.01.
///
/// # Shapes
/// (N, 1, 224, 224) → (N, 10); 46,764,746 parameters.
pub fn alexnet<T: Float>() -> Sequential<T> {
    Sequential::new()
        .add(Conv2D::new(96, 11).strides(4).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Conv2D::new(256, 5).padding(2).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Conv2D::new(384, 3).padding(1).activation(Relu))
        .add(Conv2D::new(384, 3).padding(1).activation(Relu))
        .add(Conv2D::new(256, 3).padding(1).activation(Relu))
        .add(MaxPool2D::new(3).strides(2))
        .add(Dense::new(4096).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(4096).activation(Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(10))
}
