//! [`Flatten`]: (N, d1, d2, …) → (N, d1·d2·…).

use crate::block::{Block, Geometry};
use crate::error::Result;
use crate::hooks::BlockCell;
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
}
