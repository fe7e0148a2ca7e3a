//! [`Conv2D`]: Gluon's 2-d convolution layer, with deferred inference of its input
//! channels and an optional fused activation.

use super::input::{check_batch, check_input};
use super::weights::Weights;
use super::{activation_name, Activation, MaxPool2D};
use crate::block::{Block, Geometry};
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::init::Init;
use crate::parameter::Parameter;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::{AutogradError, Var};
use kiln_tensor::{Conv2dParams, Float, Hw, Shape, TensorError};

/// 2-d convolution over NCHW input (Gluon's `nn.Conv2D`).
///
/// ```
/// use kiln_nn::{Activation, Conv2D};
/// // the book's first LeNet layer: 6 channels, 5×5 kernel, sigmoid
/// let conv = Conv2D::<f32>::new(6, 5).activation(Activation::Sigmoid);
/// // options take one number or an (h, w) pair
/// let strided = Conv2D::<f32>::new(1, (3, 5)).padding((0, 1)).strides((3, 4));
/// # let _ = (conv, strided);
/// ```
///
/// # Shapes
/// (N, in_channels, H, W) → (N, channels, H_out, W_out); weight
/// (channels, in_channels / groups, KH, KW), bias (channels).
pub struct Conv2D<T: Float> {
    cell: BlockCell,
    channels: usize,
    kernel: Hw,
    conv: Conv2dParams,
    activation: Option<Activation>,
    in_channels: usize,
    weights: Weights<T>,
}

impl<T: Float> Conv2D<T> {
    /// `channels` output channels with a `kernel_size` window; stride 1, no padding, a
    /// bias initialized to zero, and input channels inferred at the first forward.
    pub fn new(channels: usize, kernel_size: impl Into<Hw>) -> Self {
        let kernel = kernel_size.into();
        Conv2D {
            cell: BlockCell::new(),
            channels,
            kernel,
            conv: Conv2dParams::default(),
            activation: None,
            in_channels: 0,
            weights: Weights::new(),
        }
        .rebuild()
    }

    /// Declares the parameters from the options (they hold no values until initialized).
    fn rebuild(mut self) -> Self {
        let in_per_group = self.in_channels / self.conv.groups.max(1);
        let shape = [self.channels, in_per_group, self.kernel.h, self.kernel.w];
        self.weights.declare(shape, self.channels);
        self
    }

    /// Step between windows (one number or (h, w)).
    pub fn strides(mut self, s: impl Into<Hw>) -> Self {
        self.conv.stride = s.into();
        self
    }

    /// Zero padding on each side (one number or (h, w)).
    pub fn padding(mut self, p: impl Into<Hw>) -> Self {
        self.conv.padding = p.into();
        self
    }

    /// Spacing between kernel taps (one number or (h, w)).
    pub fn dilation(mut self, d: impl Into<Hw>) -> Self {
        self.conv.dilation = d.into();
        self
    }

    /// Splits channels into independent groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.conv.groups = g;
        self.rebuild()
    }

    /// Applies an activation to the output.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = Some(a);
        self
    }

    /// With `false`, no bias.
    pub fn use_bias(mut self, on: bool) -> Self {
        self.weights.use_bias = on;
        self.rebuild()
    }

    /// Declares the input channels instead of inferring them.
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self.rebuild()
    }

    /// The weight's own initializer (otherwise `initialize`'s).
    pub fn weight_initializer(mut self, init: Init) -> Self {
        self.weights.weight_init = Some(init);
        self.rebuild()
    }

    /// The bias's initializer (zeros by default).
    pub fn bias_initializer(mut self, init: Init) -> Self {
        self.weights.bias_init = init;
        self.rebuild()
    }

    /// The weight parameter.
    pub fn weight(&self) -> &Parameter<T> {
        self.weights.weight()
    }

    /// The bias parameter, if the layer has one.
    pub fn bias(&self) -> Option<&Parameter<T>> {
        self.weights.bias()
    }

    /// The convolution options.
    pub fn conv_params(&self) -> &Conv2dParams {
        &self.conv
    }

    /// Checks the options, fixes deferred shapes, and returns the weight and bias as
    /// values of `x`'s computation.
    fn prepare(&self, x: &Var<T>) -> Result<(Var<T>, Option<Var<T>>)> {
        check_input("conv2d", x.value())?;
        self.fix_shapes(x.shape())?;
        let (w, b) = self.weights.vars(x.tape())?;
        Ok((w, b))
    }

    /// The part of [`Conv2D::prepare`] an input's shape answers: the options checked and
    /// the deferred input channels taken from `x`.
    fn fix_shapes(&self, x: &Shape) -> Result<()> {
        check_batch("conv2d", x)?;
        if self.channels == 0 || self.kernel.h == 0 || self.kernel.w == 0 {
            return Err(NnError::invalid(
                "conv2d",
                format!(
                    "channels and kernel size must be ≥ 1, got {} channels, kernel {}",
                    self.channels, self.kernel
                ),
            ));
        }
        if !self.weights.weight().shape_is_known() {
            if x.rank() != 4 {
                let msg = format!("input must be 4-d (N, C, H, W), got shape {x}");
                return Err(TensorError::invalid("conv2d", msg).into());
            }
            let c = x[1] / self.conv.groups.max(1);
            self.weights
                .weight()
                .infer_shape(&[self.channels, c, self.kernel.h, self.kernel.w])?;
        }
        Ok(())
    }

    /// The output shape for an input of shape `x` (the shape-only twin of the forward).
    fn output_shape(&self, x: &Shape) -> Result<Shape> {
        self.fix_shapes(x)?;
        let g = self
            .conv
            .geometry("conv2d", x, &self.weights.weight().shape())?;
        Ok(g.out_shape())
    }

    fn forward_unnamed(&self, x: &Var<T>) -> Result<Var<T>> {
        let (w, b) = self.prepare(x)?;
        Ok(x.conv2d_activation(&w, b.as_ref(), &self.conv, self.activation)?)
    }

    /// This convolution then `pool`, as one op (`Var::conv2d_max_pool2d`): what the
    /// fusion planner runs for a `Conv2D` followed by a `MaxPool2D`. Errors name the layer
    /// they come from.
    pub(crate) fn forward_max_pool(&self, x: &Var<T>, pool: &MaxPool2D) -> Result<Var<T>> {
        let run = || -> Result<Var<T>> {
            let (w, b) = self.prepare(x)?;
            Ok(x.conv2d_max_pool2d(
                &w,
                b.as_ref(),
                &self.conv,
                self.activation,
                pool.pool_params(),
            )?)
        };
        run().map_err(|e| {
            let pooling =
                matches!(&e, NnError::Autograd(AutogradError::Tensor(t)) if t.op() == "max_pool2d");
            e.in_layer(if pooling {
                Block::<T>::name(pool)
            } else {
                self.name()
            })
        })
    }
}

impl<T: Float> Block<T> for Conv2D<T> {
    fn kind(&self) -> &'static str {
        "Conv2D"
    }

    fn prefix(&self) -> &'static str {
        "conv"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_unnamed(x).map_err(|e| e.in_layer(self.name()))
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        self.weights.params()
    }

    fn geometry(&self) -> Geometry {
        Geometry::Window {
            kernel: self.kernel,
            stride: self.conv.stride,
            dilation: self.conv.dilation,
        }
    }

    fn mult_adds(&self, input: &Shape, output: &Shape) -> u64 {
        let per_output = (input.get(1).copied().unwrap_or(0) / self.conv.groups.max(1)) as u64;
        [self.kernel.h, self.kernel.w, output.numel()]
            .iter()
            .fold(per_output, |n, &d| n.saturating_mul(d as u64))
    }

    /// Gluon's options, by Gluon's names; the input channels are left out (inferred).
    fn describe(&self) -> String {
        let c = &self.conv;
        format!(
            "Conv2D(channels={}, kernel_size={}, strides={}, padding={}, dilation={}, \
             groups={}, activation={}, use_bias={})",
            self.channels,
            self.kernel,
            c.stride,
            c.padding,
            c.dilation,
            c.groups,
            activation_name(self.activation),
            self.weights.use_bias
        )
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let y = self.output_shape(x.shape());
        Some(
            y.and_then(|y| x.with_shape("conv2d", y))
                .map_err(|e| e.in_layer(self.name())),
        )
    }
}
