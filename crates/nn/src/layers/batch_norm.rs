//! [`BatchNorm`]: Gluon's batch normalization layer (D2L 7.5), with its running
//! statistics as state parameters that checkpoints keep and no optimizer trains.

use super::input::{check_batch, check_input};
use crate::block::Block;
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::init::Init;
use crate::parameter::Parameter;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::{BatchNormOptions, GradReq, Var};
use kiln_tensor::batch_norm::BatchNormGeometry;
use kiln_tensor::{Float, Shape};

/// Batch normalization (Gluon's `nn.BatchNorm`), after a `Conv2D` on (N, C, H, W) or a
/// `Dense` on (N, C).
///
/// Parameters, in Gluon's order and with its initializers: `gamma` (ones; not trained
/// with `scale(false)`), `beta` (zeros; not trained with `center(false)`),
/// `running_mean` (zeros) and `running_var` (ones), the last two state: saved and loaded
/// with the weights, counted in Gluon's parameter total, never trained.
///
/// As MXNet 1.x computes it (`src/operator/nn/batch_norm.cc`):
/// - **training** (a value on a recording tape in training mode), without
///   `use_global_stats`: each channel is normalized with its batch mean and its
///   **biased** batch variance `Σ (x − mean)² / m` over the m values of the channel;
///   `y = ((x − mean) · invstd) · gamma + beta`, `invstd = 1/√(var + epsilon)`;
/// - the running statistics are updated by the **backward** pass of a training step (as
///   MXNet does, on its native and its oneDNN path alike), not by the forward one:
///   `running_mean ← running_mean · momentum + mean · (1 − momentum)`,
///   `running_var ← running_var · momentum + var · (1 − momentum)` with the biased
///   variance (PyTorch uses the unbiased one), momentum being the weight of the old
///   value (PyTorch's momentum is 1 − Gluon's);
/// - **predict mode** and `use_global_stats`: normalized with the running statistics,
///   which are left alone;
/// - under [`crate::DataParallel`], each shard normalizes with its own statistics (as
///   Gluon on several devices) and the running statistics become the mean over the
///   shards, in shard order, of what each shard's update gives; results depend on the
///   number of shards, never on the number of threads;
/// - training on one value per channel (an (N, C) input with N = 1) is an error: its
///   variance would be 0 and the output beta.
///
/// ```
/// use kiln_nn::{Activation::Sigmoid, BatchNorm, BlockExt, Conv2D, Init, Sequential};
/// // D2L 7.5: BatchNorm between a convolution and its activation
/// let net = Sequential::<f32>::new()
///     .add(Conv2D::new(6, 5))
///     .add(BatchNorm::new())
///     .add(Sigmoid);
/// net.initialize(&Init::xavier(), 0)?;
/// let s = net.summary([1, 1, 28, 28])?;
/// // 4 × 6 BatchNorm values, of which the 12 running statistics are not trained
/// assert_eq!((s.total_params, s.trainable_params), (156 + 24, 156 + 12));
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
///
/// # Shapes
/// (N, C, …) with C on `axis` → the same shape; each parameter (C).
pub struct BatchNorm<T: Float> {
    cell: BlockCell,
    options: BatchNormOptions,
    center: bool,
    scale: bool,
    in_channels: usize,
    gamma: Parameter<T>,
    beta: Parameter<T>,
    running_mean: Parameter<T>,
    running_var: Parameter<T>,
}

impl<T: Float> Default for BatchNorm<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> BatchNorm<T> {
    /// Gluon's defaults: axis 1, momentum 0.9, epsilon 1e-5, center and scale on, batch
    /// statistics in training, input channels inferred at the first forward.
    pub fn new() -> Self {
        BatchNorm {
            cell: BlockCell::new(),
            options: BatchNormOptions::default(),
            center: true,
            scale: true,
            in_channels: 0,
            gamma: Parameter::new("gamma", [0], None),
            beta: Parameter::new("beta", [0], None),
            running_mean: Parameter::state("running_mean", [0], Init::Zero),
            running_var: Parameter::state("running_var", [0], Init::One),
        }
        .rebuild()
    }

    /// Declares the parameters from the options (they hold no values until initialized).
    fn rebuild(mut self) -> Self {
        let c = self.in_channels;
        self.gamma = Parameter::new("gamma", [c], Some(Init::One));
        self.gamma.set_grad_req(match self.scale {
            true => GradReq::Write,
            false => GradReq::Null,
        });
        self.beta = Parameter::new("beta", [c], Some(Init::Zero));
        self.beta.set_grad_req(match self.center {
            true => GradReq::Write,
            false => GradReq::Null,
        });
        self.running_mean = Parameter::state("running_mean", [c], Init::Zero);
        self.running_var = Parameter::state("running_var", [c], Init::One);
        self
    }

    /// The channel axis (default 1).
    pub fn axis(mut self, axis: usize) -> Self {
        self.options.axis = axis;
        self
    }

    /// The weight of the old running value in each update (default 0.9).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.options.momentum = momentum;
        self
    }

    /// Added to the variance before the square root (default 1e-5).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.options.eps = epsilon;
        self
    }

    /// With `false`, no learned shift: beta stays 0 and is not trained.
    pub fn center(mut self, on: bool) -> Self {
        self.center = on;
        self.rebuild()
    }

    /// With `false`, no learned scale: gamma is taken as 1 and not trained (MXNet's
    /// `fix_gamma`).
    pub fn scale(mut self, on: bool) -> Self {
        self.scale = on;
        self.options.fix_gamma = !on;
        self.rebuild()
    }

    /// With `true`, normalizes with the running statistics in training too, and never
    /// updates them (for fine-tuning with frozen statistics).
    pub fn use_global_stats(mut self, on: bool) -> Self {
        self.options.use_global_stats = on;
        self
    }

    /// Declares the number of channels instead of inferring it.
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self.rebuild()
    }

    /// The scale parameter.
    pub fn gamma(&self) -> &Parameter<T> {
        &self.gamma
    }

    /// The shift parameter.
    pub fn beta(&self) -> &Parameter<T> {
        &self.beta
    }

    /// The running mean (state).
    pub fn running_mean(&self) -> &Parameter<T> {
        &self.running_mean
    }

    /// The running variance (state).
    pub fn running_var(&self) -> &Parameter<T> {
        &self.running_var
    }

    /// The options the op runs with.
    pub fn options(&self) -> &BatchNormOptions {
        &self.options
    }

    /// Fixes the deferred channel count from an input of shape `x`.
    fn fix_shapes(&self, x: &Shape) -> Result<()> {
        check_batch("batch_norm", x)?;
        let axis = self.options.axis;
        let Some(&c) = x.dims().get(axis) else {
            return Err(NnError::invalid(
                "batch_norm",
                format!("axis {axis} is out of range for input {x}"),
            ));
        };
        for p in self.params_in_order() {
            if !p.shape_is_known() {
                p.infer_shape(&[c])?;
            }
        }
        Ok(())
    }

    /// The shape-only twin of the forward in predict mode: the shapes checked as the op
    /// checks them, the input's shape kept.
    fn check_shapes(&self, x: &Shape) -> Result<()> {
        self.fix_shapes(x)?;
        let shapes = self.params_in_order().map(|p| (p.local_name(), p.shape()));
        let named: Vec<(&str, &Shape)> = shapes.iter().map(|(n, s)| (*n, s)).collect();
        BatchNormGeometry::new(x, self.options.axis, &named)?;
        Ok(())
    }

    fn forward_unnamed(&self, x: &Var<T>) -> Result<Var<T>> {
        check_input("batch_norm", x.value())?;
        self.fix_shapes(x.shape())?;
        let (gamma, beta) = (self.gamma.var(x.tape())?, self.beta.var(x.tape())?);
        let (mean, var) = (self.running_mean.leaf()?, self.running_var.leaf()?);
        Ok(x.batch_norm(&gamma, &beta, &mean, &var, &self.options)?)
    }

    fn params_in_order(&self) -> [&Parameter<T>; 4] {
        [
            &self.gamma,
            &self.beta,
            &self.running_mean,
            &self.running_var,
        ]
    }
}

impl<T: Float> Block<T> for BatchNorm<T> {
    fn kind(&self) -> &'static str {
        "BatchNorm"
    }

    fn prefix(&self) -> &'static str {
        "batchnorm"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_unnamed(x).map_err(|e| e.in_layer(self.name()))
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        self.params_in_order()
            .into_iter()
            .map(|p| (p.local_name(), p.clone()))
            .collect()
    }

    /// Gluon's options, by Gluon's names; the channels are left out (inferred).
    fn describe(&self) -> String {
        let o = &self.options;
        format!(
            "BatchNorm(axis={}, momentum={}, epsilon={}, center={}, scale={}, \
             use_global_stats={})",
            o.axis, o.momentum, o.eps, self.center, self.scale, o.use_global_stats
        )
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let checked = self.check_shapes(x.shape());
        Some(
            checked
                .map(|()| x.clone())
                .map_err(|e| e.in_layer(self.name())),
        )
    }
}
