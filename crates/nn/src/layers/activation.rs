//! [`Activation`] as a layer of its own (Gluon's `nn.Activation('relu')`); `Conv2D` and
//! `Dense` fuse it into their op instead.

use crate::block::Block;
use crate::error::Result;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::Float;

pub use kiln_tensor::Activation;

/// The name of an optional fused activation, for [`Block::describe`]: `none` or MXNet's.
pub(crate) fn activation_name(a: Option<Activation>) -> &'static str {
    a.map_or("none", Activation::as_str)
}

/// Applies an activation to a value of a computation.
pub(crate) fn apply<T: Float>(a: Activation, x: &Var<T>) -> Result<Var<T>> {
    Ok(match a {
        Activation::Relu => x.relu()?,
        Activation::Sigmoid => x.sigmoid()?,
        Activation::Tanh => x.tanh()?,
        Activation::SoftRelu => x.softrelu()?,
        Activation::Softsign => x.softsign()?,
    })
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
        apply(*self, x)
    }

    /// `Activation(relu)`, as Gluon prints it.
    fn describe(&self) -> String {
        format!("Activation({})", self.as_str())
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        Some(Ok(x.clone()))
    }
}
