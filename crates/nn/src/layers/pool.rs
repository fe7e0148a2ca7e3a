//! [`MaxPool2D`] and [`AvgPool2D`], and their global forms [`GlobalMaxPool2D`] and
//! [`GlobalAvgPool2D`]: Gluon's pooling layers.

use crate::block::{Block, Geometry};
use crate::error::NnError;
use crate::error::Result;
use crate::hooks::BlockCell;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::{Float, Hw, Pool2dParams, Shape};

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

/// The shape-only pass of a pooling layer named `name`: the output shape `op` gives, or
/// its error.
fn pooled(name: String, op: &'static str, p: &Pool2dParams, x: &ShapeOnly) -> Result<ShapeOnly> {
    let y = p.geometry(op, x.shape()).map_err(NnError::from);
    y.and_then(|g| x.with_shape(op, g.out_shape()))
        .map_err(|e| e.in_layer(name))
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

    fn describe(&self) -> String {
        let p = &self.params;
        format!(
            "MaxPool2D(pool_size={}, strides={}, padding={}, ceil_mode={})",
            p.kernel, p.stride, p.padding, p.ceil_mode
        )
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let name = <Self as Block<T>>::name(self);
        Some(pooled(name, "max_pool2d", &self.params, x))
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

    fn describe(&self) -> String {
        let p = &self.params;
        format!(
            "AvgPool2D(pool_size={}, strides={}, padding={}, ceil_mode={}, \
             count_include_pad={})",
            p.kernel, p.stride, p.padding, p.ceil_mode, p.count_include_pad
        )
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let name = <Self as Block<T>>::name(self);
        Some(pooled(name, "avg_pool2d", &self.params, x))
    }
}

/// Max over each whole channel (Gluon's `nn.GlobalMaxPool2D`): the window is the input.
///
/// # Shapes
/// (N, C, H, W) → (N, C, 1, 1).
#[derive(Debug, Default)]
pub struct GlobalMaxPool2D {
    cell: BlockCell,
}

/// Mean over each whole channel (Gluon's `nn.GlobalAvgPool2D`, D2L 7.3's NiN head and
/// 7.6's ResNet): the window is the input.
///
/// # Shapes
/// (N, C, H, W) → (N, C, 1, 1).
#[derive(Debug, Default)]
pub struct GlobalAvgPool2D {
    cell: BlockCell,
}

impl GlobalMaxPool2D {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl GlobalAvgPool2D {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The pooling of a whole (H, W) plane of a 4-d input of shape `x`, or an error naming
/// `op`.
fn whole_plane(op: &str, x: &Shape) -> Result<Pool2dParams> {
    match x.dims() {
        &[_, _, h, w] if h > 0 && w > 0 => Ok(Pool2dParams::new((h, w))),
        _ => Err(NnError::invalid(
            op,
            format!("input must be 4-d (N, C, H, W) with H, W ≥ 1, got shape {x}"),
        )),
    }
}

impl<T: Float> Block<T> for GlobalMaxPool2D {
    fn kind(&self) -> &'static str {
        "GlobalMaxPool2D"
    }

    fn prefix(&self) -> &'static str {
        "pool"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let name = || <Self as Block<T>>::name(self);
        let p = whole_plane("global_max_pool2d", x.shape()).map_err(|e| e.in_layer(name()))?;
        x.max_pool2d(&p)
            .map_err(|e| NnError::from(e).in_layer(name()))
    }

    fn geometry(&self) -> Geometry {
        Geometry::Global
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let name = <Self as Block<T>>::name(self);
        let p = whole_plane("global_max_pool2d", x.shape()).map_err(|e| e.in_layer(name.clone()));
        Some(p.and_then(|p| pooled(name, "max_pool2d", &p, x)))
    }
}

impl<T: Float> Block<T> for GlobalAvgPool2D {
    fn kind(&self) -> &'static str {
        "GlobalAvgPool2D"
    }

    fn prefix(&self) -> &'static str {
        "pool"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let name = || <Self as Block<T>>::name(self);
        let p = whole_plane("global_avg_pool2d", x.shape()).map_err(|e| e.in_layer(name()))?;
        x.avg_pool2d(&p)
            .map_err(|e| NnError::from(e).in_layer(name()))
    }

    fn geometry(&self) -> Geometry {
        Geometry::Global
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let name = <Self as Block<T>>::name(self);
        let p = whole_plane("global_avg_pool2d", x.shape()).map_err(|e| e.in_layer(name.clone()));
        Some(p.and_then(|p| pooled(name, "avg_pool2d", &p, x)))
    }
}
