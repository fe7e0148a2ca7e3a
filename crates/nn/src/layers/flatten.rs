//! [`Flatten`]: (N, d1, d2, …) → (N, d1·d2·…).

use crate::block::{Block, Geometry};
use crate::error::Result;
use crate::hooks::BlockCell;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// Keeps the batch axis and flattens the rest (Gluon's `nn.Flatten`).
#[derive(Debug, Default)]
pub struct Flatten {
    cell: BlockCell,
}

impl Flatten {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Float> Block<T> for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn prefix(&self) -> &'static str {
        "flatten"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        Ok(x.flatten()?)
    }

    fn geometry(&self) -> Geometry {
        Geometry::Global
    }

    /// (N, d1, d2, …) → (N, d1·d2·…), as `Var::flatten`.
    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let dims = x.dims();
        let n = dims.first().copied().unwrap_or(1);
        let rest: usize = dims.iter().skip(1).product();
        Some(x.with_shape("flatten", [n, rest]))
    }
}
