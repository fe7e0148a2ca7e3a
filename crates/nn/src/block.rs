//! [`Block`]: what every layer and container is (Gluon's `Block`), and [`BlockExt`], the
//! network-level operations every block gets: `initialize`, `collect_params`, `predict`,
//! `summary`, `save_parameters` and `load_parameters`.

use crate::error::{NnError, Result};
use crate::init::Init;
use crate::parameter::Parameter;
use crate::summary::{Summary, Trace};
use kiln_autograd::Var;
use kiln_tensor::rand::{rngs::StdRng, Rng, SeedableRng};
use kiln_tensor::{Float, Hw, Pool2dParams, Shape, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

/// Where a block keeps the name its network gave it (`conv0`, `dense2`, …).
#[derive(Debug, Default)]
pub struct NameCell(RefCell<Option<String>>);

impl NameCell {
    /// The assigned name, if any.
    pub fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    fn set(&self, name: String) {
        *self.0.borrow_mut() = Some(name);
    }
}

/// How a block maps positions of its input to positions of its output, for the receptive
/// field column of [`BlockExt::summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Geometry {
    /// Each output position depends on the same input position (activations).
    Pointwise,
    /// A sliding window (convolution, pooling).
    Window {
        /// Window size.
        kernel: Hw,
        /// Step between windows.
        stride: Hw,
        /// Spacing between taps.
        dilation: Hw,
    },
    /// Every output depends on the whole input (dense layers, flattening).
    Global,
}

/// A layer or a container of layers (Gluon's `Block`).
pub trait Block<T: Float> {
    /// Gluon's class name, e.g. `Conv2D`.
    fn kind(&self) -> &'static str;

    /// The prefix of names the network gives blocks of this kind, e.g. `conv`.
    fn prefix(&self) -> &'static str;

    /// Where the block keeps its assigned name; `None` for blocks whose errors never need it.
    fn name_cell(&self) -> Option<&NameCell> {
        None
    }

    /// The name the network gave the block (`conv0`), or its kind before it has one.
    fn name(&self) -> String {
        self.name_cell()
            .and_then(NameCell::get)
            .unwrap_or_else(|| self.kind().to_string())
    }

    /// Runs the block. Training or predict mode is `x.is_training()`: a value on a
    /// recording tape in training mode trains; a value on no tape predicts.
    fn forward(&self, x: &Var<T>) -> Result<Var<T>>;

    /// The block's own parameters with their local names (`weight`, `bias`), not its
    /// children's.
    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        Vec::new()
    }

    /// Child blocks, in order.
    fn children(&self) -> Vec<&dyn Block<T>> {
        Vec::new()
    }

    /// How outputs depend on input positions.
    fn geometry(&self) -> Geometry {
        Geometry::Pointwise
    }

    /// Multiply-adds of one forward from `input` to `output`.
    fn mult_adds(&self, _input: &Shape, _output: &Shape) -> u64 {
        0
    }

    /// The options of this block if it is a max-pooling layer, so that a container can
    /// run it fused with the convolution before it.
    fn max_pool_params(&self) -> Option<Pool2dParams> {
        None
    }

    /// Runs this block followed by max pooling with `pool` as one op, if the block can
    /// (a convolution can: see `Var::conv2d_max_pool2d`); `pool_layer` is the pooling
    /// layer, named in errors. `None` means "run them one after the other".
    fn forward_then_max_pool(
        &self,
        _x: &Var<T>,
        _pool: &Pool2dParams,
        _pool_layer: &dyn Block<T>,
    ) -> Option<Result<Var<T>>> {
        None
    }

    /// [`Block::forward`] that also records a summary row per layer; containers override
    /// it to recurse into their children.
    fn forward_traced(&self, x: &Var<T>, trace: &mut Trace) -> Result<Var<T>> {
        let y = self.forward(x)?;
        let params = self
            .params()
            .iter()
            .map(|(_, p)| p.shape().numel() as u64)
            .sum();
        let mult_adds = self.mult_adds(x.shape(), y.shape());
        trace.row(
            self.kind(),
            self.prefix(),
            params,
            mult_adds,
            self.geometry(),
            y.shape(),
        );
        Ok(y)
    }
}

/// Gives each block and parameter its network-wide name, in the order Gluon would create
/// them: depth first, counting per prefix (`conv0`, `conv1`, `pool0`, …).
#[derive(Default)]
pub(crate) struct Namer {
    counts: HashMap<&'static str, usize>,
}

impl Namer {
    pub(crate) fn next(&mut self, prefix: &'static str) -> String {
        let n = self.counts.entry(prefix).or_insert(0);
        *n += 1;
        format!("{prefix}{}", *n - 1)
    }
}

fn assign_names<T: Float>(
    block: &dyn Block<T>,
    namer: &mut Namer,
    out: &mut ParameterDict<T>,
    path: &str,
) {
    let name = namer.next(block.prefix());
    if let Some(cell) = block.name_cell() {
        cell.set(name.clone());
    }
    for (local, p) in block.params() {
        p.set_name(format!("{name}_{local}"));
        out.entries.push((format!("{path}{local}"), p));
    }
    for (i, child) in block.children().into_iter().enumerate() {
        assign_names(child, namer, out, &format!("{path}{i}."));
    }
}

/// The parameters of a network in creation order, each under its structural path (`0.weight`,
/// `1.0.bias`: how checkpoints key them, as Gluon's `save_parameters`) and with its Gluon
/// name (`conv0_weight`).
pub struct ParameterDict<T: Float> {
    entries: Vec<(String, Parameter<T>)>,
}

impl<T: Float> ParameterDict<T> {
    /// (structural path, parameter) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Parameter<T>)> {
        self.entries.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// Number of parameters (tensors, not elements).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for a network without parameters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parameter with this structural path or Gluon name.
    pub fn get(&self, key: &str) -> Option<&Parameter<T>> {
        self.entries
            .iter()
            .find(|(path, p)| path == key || p.name() == key)
            .map(|(_, p)| p)
    }

    /// Total number of elements; an error naming a parameter whose shape is still unknown.
    pub fn count(&self) -> Result<usize> {
        self.entries
            .iter()
            .map(|(_, p)| {
                if p.shape_is_known() {
                    Ok(p.shape().numel())
                } else {
                    Err(NnError::invalid(
                        p.name(),
                        format!("shape {} is not known yet", p.shape()),
                    ))
                }
            })
            .sum()
    }

    /// Elements of the parameters an optimizer trains (not state, `grad_req` not
    /// `null`); an error naming a parameter whose shape is still unknown.
    pub fn count_trainable(&self) -> Result<usize> {
        self.filter(|_, p| p.is_trainable()).count()
    }

    /// The parameters for which `keep(structural path, parameter)` holds, in order (as
    /// Gluon's `collect_params('.*weight')` selects by name).
    ///
    /// ```
    /// use kiln_nn::{BlockExt, Dense, Sequential};
    /// let net = Sequential::<f32>::new().add(Dense::new(4)).add(Dense::new(2));
    /// // Gluon's habit: no weight decay on biases
    /// net.collect_params().filter(|_, p| p.name().ends_with("_bias")).set_wd_mult(0.0);
    /// assert_eq!(net.collect_params().get("dense1_bias").unwrap().wd_mult(), 0.0);
    /// ```
    pub fn filter(&self, mut keep: impl FnMut(&str, &Parameter<T>) -> bool) -> ParameterDict<T> {
        ParameterDict {
            entries: self
                .entries
                .iter()
                .filter(|(path, p)| keep(path, p))
                .cloned()
                .collect(),
        }
    }

    /// Sets every parameter's `grad_req` (Gluon's `collect_params().setattr('grad_req',
    /// …)`): `Null` freezes them, e.g. a pretrained body before fine-tuning its head.
    /// State keeps `Null`.
    pub fn set_grad_req(&self, req: kiln_autograd::GradReq) {
        self.entries.iter().for_each(|(_, p)| p.set_grad_req(req));
    }

    /// Sets every parameter's learning-rate multiplier.
    pub fn set_lr_mult(&self, mult: f64) {
        self.entries.iter().for_each(|(_, p)| p.set_lr_mult(mult));
    }

    /// Sets every parameter's weight-decay multiplier.
    pub fn set_wd_mult(&self, mult: f64) {
        self.entries.iter().for_each(|(_, p)| p.set_wd_mult(mult));
    }

    /// Sets every gradient to zero (Gluon's `zero_grad`), as a run with `grad_req` `add`
    /// does after each step.
    pub fn zero_grad(&self) {
        self.entries.iter().for_each(|(_, p)| p.zero_grad());
    }

    /// The parameters, dropping their paths.
    pub fn into_params(self) -> Vec<Parameter<T>> {
        self.entries.into_iter().map(|(_, p)| p).collect()
    }
}

/// Network-level operations, available on every block.
pub trait BlockExt<T: Float>: Block<T> {
    /// Names every block and parameter, and returns the parameters in order (Gluon's
    /// `collect_params`).
    fn collect_params(&self) -> ParameterDict<T>
    where
        Self: Sized,
    {
        let mut dict = ParameterDict {
            entries: Vec::new(),
        };
        assign_names(self, &mut Namer::default(), &mut dict, "");
        dict
    }

    /// Initializes every parameter that has not been: with its own initializer if it has
    /// one (biases: zeros), else `init`. Each parameter draws from its own generator,
    /// seeded from `seed` in order, so the same seed gives the same network even when
    /// shapes are inferred later (Gluon's deferred initialization).
    fn initialize(&self, init: &Init, seed: u64) -> Result<()>
    where
        Self: Sized,
    {
        self.initialize_with(init, seed, false)
    }

    /// [`BlockExt::initialize`], re-drawing already initialized parameters when
    /// `force_reinit`.
    fn initialize_with(&self, init: &Init, seed: u64, force_reinit: bool) -> Result<()>
    where
        Self: Sized,
    {
        let mut rng = StdRng::seed_from_u64(seed);
        for (_, p) in self.collect_params().iter() {
            p.initialize(init, rng.next_u64(), force_reinit)?;
        }
        Ok(())
    }

    /// Forward in predict mode on a tensor, recording nothing.
    fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>>
    where
        Self: Sized,
    {
        Ok(self.forward(&Var::constant(x.clone()))?.value().clone())
    }

    /// One row per layer for an input of `input_shape`: name, output shape, parameters,
    /// multiply-adds and receptive field. Runs a forward pass on zeros (in predict mode),
    /// so deferred shapes get fixed; the network must be initialized.
    fn summary(&self, input_shape: impl Into<Shape>) -> Result<Summary>
    where
        Self: Sized,
    {
        self.collect_params();
        let input_shape = input_shape.into();
        let mut trace = Trace::new(&input_shape);
        self.forward_traced(&Var::constant(Tensor::zeros(input_shape)), &mut trace)?;
        Ok(trace.finish())
    }

    /// Writes every parameter to `path`, keyed by structural path (see
    /// [`crate::checkpoint`]); atomic: the previous file survives any failure.
    fn save_parameters(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::checkpoint::save_parameters(&self.collect_params(), path.as_ref())
    }

    /// Loads parameters saved by [`BlockExt::save_parameters`]; every name and shape is
    /// checked before any value changes.
    fn load_parameters(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::checkpoint::load_parameters(&self.collect_params(), path.as_ref())
    }
}

impl<T: Float, B: Block<T>> BlockExt<T> for B {}
