//! [`Identity`]: the block that returns its input (Gluon's `contrib.nn.Identity`), e.g.
//! the shortcut branch of a residual block that needs no 1×1 convolution.

use crate::block::Block;
use crate::error::Result;
use crate::hooks::BlockCell;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// Returns its input unchanged.
///
/// # Shapes
/// Any shape → the same shape.
#[derive(Debug, Default)]
pub struct Identity {
    cell: BlockCell,
}

impl Identity {
    /// The block.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Float> Block<T> for Identity {
    fn kind(&self) -> &'static str {
        "Identity"
    }

    fn prefix(&self) -> &'static str {
        "identity"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.clone())
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        Some(Ok(x.clone()))
    }
}
