//! [`Block`]: what every layer and container is (Gluon's `Block`), and [`BlockExt`], the
//! network-level operations every block gets: `initialize`, `collect_params`, `predict`,
//! `summary`, `save_parameters`, `load_parameters` and forward hooks.
//!
//! A user block is a struct holding its child blocks (and a [`BlockCell`], for a name and
//! hooks) whose `forward` runs them through [`call`](crate::hooks::call) and combines their
//! outputs; `children` lists them, so that parameters, checkpoints and summaries reach
//! inside it. See the module docs of [`crate::layers`] for D2L's `Residual` written so.

use crate::architecture::BlockRecord;
use crate::error::{NnError, Result};
use crate::hooks::{BlockCell, ForwardHook, HookHandle};
use crate::init::Init;
use crate::parameter::Parameter;
use crate::shape_pass::ShapeOnly;
use crate::summary::Summary;
use kiln_autograd::Var;
use kiln_tensor::rand::{rngs::StdRng, Rng, SeedableRng};
use kiln_tensor::{Float, Hw, Shape, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

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

/// A layer or a container of layers (Gluon's `Block`): what a user implements to write
/// a block of their own. Only `kind`, `prefix` and `forward` are required.
pub trait Block<T: Float> {
    /// Gluon's class name, e.g. `Conv2D`.
    fn kind(&self) -> &'static str;

    /// The prefix of names the network gives blocks of this kind, e.g. `conv`.
    fn prefix(&self) -> &'static str;

    /// Where the block keeps its assigned name and its forward hooks; `None` for blocks
    /// without one (they are named in summaries all the same, but hold no hooks).
    fn cell(&self) -> Option<&BlockCell> {
        None
    }

    /// The name the network gave the block (`conv0`), or its kind before it has one.
    fn name(&self) -> String {
        self.cell()
            .and_then(BlockCell::get)
            .unwrap_or_else(|| self.kind().to_string())
    }

    /// Runs the block. Training or predict mode is `x.is_training()`: a value on a
    /// recording tape in training mode trains; a value on no tape predicts. Run child
    /// blocks with `child.call(x)`, not `child.forward(x)`, so that their hooks run and a
    /// summary sees them.
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

    /// How outputs depend on input positions (for the receptive fields of a summary; a
    /// block with children is followed through the ops its forward runs instead).
    fn geometry(&self) -> Geometry {
        Geometry::Pointwise
    }

    /// Multiply-adds of one forward from `input` to `output` (a block with children
    /// counts its children's).
    fn mult_adds(&self, _input: &Shape, _output: &Shape) -> u64 {
        0
    }

    /// The output for an input of `x`'s shape, worked out without computing it: how
    /// [`BlockExt::summary`] takes its table without allocating one activation. Check
    /// the input and fix deferred parameter shapes as `forward` would, run child blocks
    /// through [`shape_pass::infer`](crate::shape_pass::infer) (as `forward` runs them
    /// through `call`), and combine their outputs with [`ShapeOnly`]'s methods as
    /// `forward` combines values. `None`, the default, says the block cannot tell: a
    /// summary then runs its `forward` on zeros of the input's shape (allocated
    /// fallibly, so a shape too large is an error; its kernels' outputs are not).
    fn infer_shape(&self, _x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        None
    }

    /// What the block is, for a checkpoint to recognize the network it was saved from:
    /// its kind and the options that change what its forward computes, as
    /// `Kind(option=value, …)`: `Conv2D(channels=6, kernel_size=(5, 5), …,
    /// activation=sigmoid)`. Children describe themselves; shapes inferred at the first forward are left out
    /// (a checkpoint checks parameter shapes on their own). The default is the kind
    /// alone: a user block with options of its own should name them.
    fn describe(&self) -> String {
        self.kind().to_string()
    }
}

/// A boxed block is a block (a network chosen at run time, such as `zoo::by_name`'s).
impl<T: Float, B: Block<T> + ?Sized> Block<T> for Box<B> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn prefix(&self) -> &'static str {
        (**self).prefix()
    }

    fn cell(&self) -> Option<&BlockCell> {
        (**self).cell()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        (**self).forward(x)
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        (**self).params()
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        (**self).children()
    }

    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }

    fn mult_adds(&self, input: &Shape, output: &Shape) -> u64 {
        (**self).mult_adds(input, output)
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        (**self).infer_shape(x)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// A borrowed block is a block, so that `&dyn Block` gets [`BlockExt`]'s operations.
impl<T: Float, B: Block<T> + ?Sized> Block<T> for &B {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn prefix(&self) -> &'static str {
        (**self).prefix()
    }

    fn cell(&self) -> Option<&BlockCell> {
        (**self).cell()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        (**self).forward(x)
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        (**self).params()
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        (**self).children()
    }

    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }

    fn mult_adds(&self, input: &Shape, output: &Shape) -> u64 {
        (**self).mult_adds(input, output)
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        (**self).infer_shape(x)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl<T: Float> dyn Block<T> + '_ {
    /// Runs the block as a network does (Gluon's `block(x)`): `forward`, then its forward
    /// hooks; see [`crate::hooks::call`].
    pub fn call(&self, x: &Var<T>) -> Result<Var<T>> {
        crate::hooks::call(self, x)
    }

    /// Registers a forward hook, as [`BlockExt::register_forward_hook`].
    pub fn register_forward_hook(
        &self,
        hook: impl Fn(&dyn Block<T>, &Var<T>, &Var<T>) + 'static,
    ) -> Result<HookHandle> {
        crate::hooks::register(self, Rc::new(hook) as ForwardHook<T>)
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

/// What identifies a block while it is borrowed (blocks live in their containers' boxes
/// and do not move): its address and its size. The address alone does not: a user block
/// and the child it holds as its first field (a `DenseBlock` and its `Sequential`) can
/// share one, and the child's name then replaced the block's in summaries.
pub(crate) type BlockId = (usize, usize);

/// The [`BlockId`] of `block`.
pub(crate) fn address<T: Float>(block: &dyn Block<T>) -> BlockId {
    (
        block as *const dyn Block<T> as *const () as usize,
        std::mem::size_of_val(block),
    )
}

/// Names every block under `block` and collects its parameters; `names` gets each
/// block's name by [`BlockId`] (for blocks without a [`BlockCell`]).
fn assign_names<T: Float>(
    block: &dyn Block<T>,
    namer: &mut Namer,
    out: &mut ParameterDict<T>,
    names: &mut HashMap<BlockId, String>,
    path: &str,
) {
    let name = namer.next(block.prefix());
    if let Some(cell) = block.cell() {
        cell.set(name.clone());
    }
    names.insert(address(block), name.clone());
    let record = BlockRecord {
        path: path.strip_suffix('.').unwrap_or(path).to_string(),
        description: block.describe(),
    };
    out.blocks.push((record, name.clone()));
    for (local, p) in block.params() {
        p.set_name(format!("{name}_{local}"));
        out.entries.push((format!("{path}{local}"), p));
    }
    for (i, child) in block.children().into_iter().enumerate() {
        assign_names(child, namer, out, names, &format!("{path}{i}."));
    }
}

/// Names every block of the network rooted at `block` and returns its parameters and each
/// block's name by address.
pub(crate) fn name_network<T: Float>(
    block: &dyn Block<T>,
) -> (ParameterDict<T>, HashMap<BlockId, String>) {
    let mut dict = ParameterDict {
        entries: Vec::new(),
        blocks: Vec::new(),
    };
    let mut names = HashMap::new();
    assign_names(block, &mut Namer::default(), &mut dict, &mut names, "");
    (dict, names)
}

/// The parameters of a network in creation order, each under its structural path (`0.weight`,
/// `1.0.bias`: how checkpoints key them, as Gluon's `save_parameters`) and with its Gluon
/// name (`conv0_weight`); and the network's architecture, which checkpoints keep with them.
pub struct ParameterDict<T: Float> {
    entries: Vec<(String, Parameter<T>)>,
    /// Every block of the network, depth first, with its name.
    blocks: Vec<(BlockRecord, String)>,
}

impl<T: Float> ParameterDict<T> {
    /// (structural path, parameter) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Parameter<T>)> {
        self.entries.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// Every block of the network the parameters come from, depth first: its structural
    /// path and [`Block::describe`], as a checkpoint records them.
    ///
    /// ```
    /// use kiln_nn::{zoo::lenet, Activation, BlockExt};
    /// let arch = lenet::<f32>(Activation::Sigmoid).collect_params().architecture();
    /// assert_eq!((arch[0].path.as_str(), arch[0].description.as_str()), ("", "Sequential"));
    /// assert_eq!(
    ///     arch[1].description,
    ///     "Conv2D(channels=6, kernel_size=(5, 5), strides=(1, 1), padding=(0, 0), \
    ///      dilation=(1, 1), groups=1, activation=sigmoid, use_bias=true)"
    /// );
    /// ```
    pub fn architecture(&self) -> Vec<BlockRecord> {
        self.blocks.iter().map(|(r, _)| r.clone()).collect()
    }

    /// The blocks with their names, for the checkpoint's comparison.
    pub(crate) fn blocks(&self) -> &[(BlockRecord, String)] {
        &self.blocks
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

    /// Total number of elements; an error naming a parameter whose shape is still unknown
    /// (or whose declared shape no tensor can have).
    pub fn count(&self) -> Result<usize> {
        self.entries.iter().try_fold(0usize, |total, (_, p)| {
            if !p.shape_is_known() {
                return Err(NnError::invalid(
                    p.name(),
                    format!("shape {} is not known yet", p.shape()),
                ));
            }
            let n = p
                .shape()
                .elements("count")
                .map_err(|e| NnError::from(e).in_layer(p.name()))?;
            total.checked_add(n).ok_or_else(|| {
                NnError::invalid("count", "the parameters hold more than 2⁶⁴ elements")
            })
        })
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
            blocks: self.blocks.clone(),
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
        name_network(self).0
    }

    /// Runs the block as a network does: `forward`, then its forward hooks (Gluon's
    /// `block(x)`); see [`crate::hooks::call`].
    fn call(&self, x: &Var<T>) -> Result<Var<T>>
    where
        Self: Sized,
    {
        crate::hooks::call(self, x)
    }

    /// Registers `hook`, called with the block, its input and its output after each run
    /// of the block (Gluon's `register_forward_hook`); `HookHandle::detach` removes it.
    /// A layer with a hook never runs fused with its neighbours, so the hook sees its own
    /// output. An error if the block keeps no [`BlockCell`].
    ///
    /// ```
    /// use kiln_nn::{zoo::lenet, Activation, Block, BlockExt, Init};
    /// use kiln_tensor::Tensor;
    /// use std::{cell::RefCell, rc::Rc};
    /// let net = lenet::<f32>(Activation::Sigmoid);
    /// net.initialize(&Init::xavier(), 0)?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = Rc::clone(&seen);
    /// // the first convolution runs fused with its pooling layer unless it is hooked
    /// let handle = net[0].register_forward_hook(move |_, _, y| log.borrow_mut().push(y.dims().to_vec()))?;
    /// net.predict(&Tensor::zeros([2, 1, 28, 28]))?;
    /// assert_eq!(*seen.borrow(), [vec![2, 6, 24, 24]]);
    /// handle.detach();
    /// # Ok::<(), kiln_nn::NnError>(())
    /// ```
    fn register_forward_hook(
        &self,
        hook: impl Fn(&dyn Block<T>, &Var<T>, &Var<T>) + 'static,
    ) -> Result<HookHandle>
    where
        Self: Sized,
    {
        crate::hooks::register(self, Rc::new(hook) as ForwardHook<T>)
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
        Ok(self.call(&Var::constant(x.clone()))?.value().clone())
    }

    /// One row per block the network runs for an input of `input_shape` (nested blocks
    /// indented under the block that runs them): name, output shape, parameters,
    /// multiply-adds and receptive field, then the totals (every parameter, and those an
    /// optimizer trains). The shapes are worked out from `input_shape` without computing
    /// anything ([`Block::infer_shape`]), so a summary allocates no activation and an
    /// input too large for memory is an error, not an abort; deferred shapes get fixed.
    /// The network must be initialized. No forward hook runs.
    fn summary(&self, input_shape: impl Into<Shape>) -> Result<Summary>
    where
        Self: Sized,
    {
        crate::summary::summarize(self, &input_shape.into())
    }

    /// Writes every parameter to `path`, keyed by structural path, with the network's
    /// architecture (see [`crate::checkpoint`]); atomic: the previous file survives any
    /// failure.
    fn save_parameters(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::checkpoint::save_parameters(&self.collect_params(), path.as_ref())
    }

    /// Loads parameters saved by [`BlockExt::save_parameters`] from a network of the same
    /// architecture (its blocks' [`Block::describe`]: a sigmoid LeNet's file does not load
    /// into a ReLU LeNet); the architecture, every name and every shape are checked before
    /// any value changes.
    fn load_parameters(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::checkpoint::load_parameters(&self.collect_params(), path.as_ref())
    }
}

impl<T: Float, B: Block<T>> BlockExt<T> for B {}
