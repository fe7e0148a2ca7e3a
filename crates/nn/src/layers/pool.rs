//! [`MaxPool2D`] and [`AvgPool2D`]: Gluon's pooling layers.

use crate::block::{Block, Geometry};
use crate::hooks::BlockCell;
use crate::error::Result;
use kiln_autograd::Var;
use kiln_tensor::{Float, Hw, Pool2dParams};

/// Max pooling (Gluon's `nn.MaxPool2D`): padding counts as −∞.
///
/// # Shapes
/// (N, C, H, W) → (N, C, H_out, W_out).
pub struct MaxPool2D {
    cell: BlockCell,
    params: Pool2dParams,
}

/// Average pooling (Gluon's `nn.AvgPool2D`): by default padding counts in the divisor.
///
/// # Shapes
/// (N, C, H, W) → (N, C, H_out, W_out).
pub struct AvgPool2D {
    cell: BlockCell,
    params: Pool2dParams,
}

impl MaxPool2D {
    /// A `pool_size` window with stride equal to the window (Gluon's default).
    pub fn new(pool_size: impl Into<Hw>) -> Self {
        MaxPool2D {
            cell: BlockCell::new(),
            params: Pool2dParams::new(pool_size),
        }
    }

    /// Step between windows.
    pub fn strides(mut self, s: impl Into<Hw>) -> Self {
        self.params.stride = s.into();
        self
    }

    /// Padding on each side.
    pub fn padding(mut self, p: impl Into<Hw>) -> Self {
        self.params.padding = p.into();
        self
    }

    /// Rounds the output size up (MXNet's `pooling_convention="full"`).
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.params.ceil_mode = on;
        self
    }

    /// The pooling options.
    pub fn pool_params(&self) -> &Pool2dParams {
        &self.params
    }
}

impl AvgPool2D {
    /// A `pool_size` window with stride equal to the window, counting padding.
    pub fn new(pool_size: impl Into<Hw>) -> Self {
        AvgPool2D {
            cell: BlockCell::new(),
            params: Pool2dParams::new(pool_size),
        }
    }

    /// Step between windows.
    pub fn strides(mut self, s: impl Into<Hw>) -> Self {
        self.params.stride = s.into();
        self
    }

    /// Padding on each side.
    pub fn padding(mut self, p: impl Into<Hw>) -> Self {
        self.params.padding = p.into();
        self
    }

    /// Rounds the output size up; a window hanging past the input averages over its
    /// in-bounds elements.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.params.ceil_mode = on;
        self
    }

    /// Whether padding positions count in the divisor (default true, as Gluon).
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.params.count_include_pad = on;
        self
    }

    /// The pooling options.
    pub fn pool_params(&self) -> &Pool2dParams {
        &self.params
    }
}

fn window(p: &Pool2dParams) -> Geometry {
    Geometry::Window {
        kernel: p.kernel,
        stride: p.stride,
        dilation: Hw::new(1, 1),
    }
}

impl<T: Float> Block<T> for MaxPool2D {
    fn kind(&self) -> &'static str {
        "MaxPool2D"
    }

    fn prefix(&self) -> &'static str {
        "pool"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.max_pool2d(&self.params)
            .map_err(|e| crate::NnError::from(e).in_layer(<Self as Block<T>>::name(self)))
    }

    fn geometry(&self) -> Geometry {
        window(&self.params)
    }

}

impl<T: Float> Block<T> for AvgPool2D {
    fn kind(&self) -> &'static str {
        "AvgPool2D"
    }

    fn prefix(&self) -> &'static str {
        "pool"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.avg_pool2d(&self.params)
            .map_err(|e| crate::NnError::from(e).in_layer(<Self as Block<T>>::name(self)))
    }

    fn geometry(&self) -> Geometry {
        window(&self.params)
    }
}
