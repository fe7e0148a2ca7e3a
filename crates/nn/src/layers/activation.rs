//! [`Activation`]: the element-wise non-linearities, usable as a layer of their own
//! (Gluon's `nn.Activation('relu')`) or fused into `Conv2D` and `Dense`.

use crate::block::Block;
use crate::error::Result;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// An activation function, and the layer that applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^−x), the book's LeNet activation.
    Sigmoid,
    /// tanh x.
    Tanh,
    /// ln(1 + e^x).
    SoftRelu,
}

impl Activation {
    /// Applies the function.
    pub fn apply<T: Float>(self, x: &Var<T>) -> Result<Var<T>> {
        Ok(match self {
            Activation::Relu => x.relu()?,
            Activation::Sigmoid => x.sigmoid()?,
            Activation::Tanh => x.tanh()?,
            Activation::SoftRelu => x.softrelu()?,
        })
    }

    /// MXNet's name: `relu`, `sigmoid`, `tanh`, `softrelu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::SoftRelu => "softrelu",
        }
    }

    /// Parses MXNet's name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::SoftRelu,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

impl<T: Float> Block<T> for Activation {
    fn kind(&self) -> &'static str {
        "Activation"
    }

    /// Gluon names activation layers after their function: `relu0`, `sigmoid1`.
    fn prefix(&self) -> &'static str {
        self.as_str()
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.apply(x)
    }
}
