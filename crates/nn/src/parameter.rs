//! [`Parameter`]: a named weight or bias with Gluon's life cycle: declared with a shape that
//! may still have unknown (0) dimensions, initialized (perhaps deferred until the first
//! forward fixes its shape), then trained through the [`Leaf`] it holds; or a piece of
//! state that the forward pass writes (BatchNorm's running statistics), saved and loaded
//! with the weights but never trained.

use crate::error::{NnError, Result};
use crate::init::Init;
use kiln_autograd::{GradReq, Leaf, Tape, Var};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::{Float, Shape, Tensor};
use std::cell::{Cell, Ref, RefCell};
use std::rc::Rc;

enum State<T: Float> {
    /// `initialize` has not been called.
    Uninitialized,
    /// `initialize` was called but the shape is not known yet (Gluon's deferred init).
    Deferred { init: Init, seed: u64 },
    /// Has values.
    Ready(Leaf<T>),
}

struct Inner<T: Float> {
    local: &'static str,
    name: RefCell<String>,
    /// Declared shape; 0 marks a dimension inferred at the first forward.
    shape: RefCell<Shape>,
    /// The parameter's own initializer (Gluon's `weight_initializer`), which wins over
    /// the one given to `initialize`.
    own_init: Option<Init>,
    state: RefCell<State<T>>,
    /// What a backward does with the gradient; always `Null` for state.
    grad_req: Cell<GradReq>,
    /// Written by the forward pass, not trained (Gluon's `differentiable=False`).
    is_state: bool,
    /// Multipliers of the optimizer's learning rate and weight decay for this parameter.
    lr_mult: Cell<f64>,
    wd_mult: Cell<f64>,
}

/// A weight or bias of a block. Cloning gives another handle to the same parameter, as the
/// trainer and the block share it.
pub struct Parameter<T: Float>(Rc<Inner<T>>);

impl<T: Float> Clone for Parameter<T> {
    fn clone(&self) -> Self {
        Parameter(Rc::clone(&self.0))
    }
}

impl<T: Float> Parameter<T> {
    /// A parameter called `local` within its block (`"weight"`, `"bias"`), of `shape`
    /// (0 for a dimension not known yet), with its own initializer if any.
    pub fn new(local: &'static str, shape: impl Into<Shape>, own_init: Option<Init>) -> Self {
        Self::make(local, shape.into(), own_init, false)
    }

    /// A piece of state called `local` that the forward pass writes and checkpoints keep,
    /// but that gets no gradient and no optimizer step (Gluon's parameters with
    /// `grad_req='null', differentiable=False`, such as BatchNorm's `running_mean`).
    pub fn state(local: &'static str, shape: impl Into<Shape>, init: Init) -> Self {
        Self::make(local, shape.into(), Some(init), true)
    }

    fn make(local: &'static str, shape: Shape, own_init: Option<Init>, is_state: bool) -> Self {
        Parameter(Rc::new(Inner {
            local,
            name: RefCell::new(local.to_string()),
            shape: RefCell::new(shape),
            own_init,
            state: RefCell::new(State::Uninitialized),
            grad_req: Cell::new(if is_state {
                GradReq::Null
            } else {
                GradReq::Write
            }),
            is_state,
            lr_mult: Cell::new(1.0),
            wd_mult: Cell::new(1.0),
        }))
    }

    /// True for state written by the forward pass (see [`Parameter::state`]).
    pub fn is_state(&self) -> bool {
        self.0.is_state
    }

    /// True when an optimizer updates it: not state, and its `grad_req` is not `Null`.
    pub fn is_trainable(&self) -> bool {
        self.grad_req() != GradReq::Null
    }

    /// What a backward does with the gradient (Gluon's `grad_req`).
    pub fn grad_req(&self) -> GradReq {
        self.0.grad_req.get()
    }

    /// Sets what a backward does with the gradient: `Write` (the default), `Add`
    /// (gradients accumulate over backward passes until `zero_grad`) or `Null` (frozen:
    /// no gradient, and the trainer skips it). State stays `Null`, as in Gluon.
    pub fn set_grad_req(&self, req: GradReq) {
        let req = if self.0.is_state { GradReq::Null } else { req };
        self.0.grad_req.set(req);
        self.with_leaf(|leaf| leaf.set_grad_req(req));
    }

    /// The multiplier of the optimizer's learning rate for this parameter (Gluon's
    /// `lr_mult`, default 1).
    pub fn lr_mult(&self) -> f64 {
        self.0.lr_mult.get()
    }

    /// Sets the learning-rate multiplier.
    pub fn set_lr_mult(&self, mult: f64) {
        self.0.lr_mult.set(mult);
    }

    /// The multiplier of the optimizer's weight decay for this parameter (Gluon's
    /// `wd_mult`, default 1; biases and BatchNorm's beta and gamma commonly get 0).
    pub fn wd_mult(&self) -> f64 {
        self.0.wd_mult.get()
    }

    /// Sets the weight-decay multiplier.
    pub fn set_wd_mult(&self, mult: f64) {
        self.0.wd_mult.set(mult);
    }

    /// Sets the gradient to zero, keeping its shape (Gluon's `zero_grad`); nothing for a
    /// parameter without a gradient.
    pub fn zero_grad(&self) {
        self.with_leaf(Leaf::zero_grad);
    }

    /// A new leaf holding `value`, with this parameter's `grad_req`.
    fn new_leaf(&self, value: Tensor<T>) -> Leaf<T> {
        let leaf = Leaf::new(value);
        leaf.set_grad_req(self.grad_req());
        leaf
    }

    /// The name within the block: `weight` or `bias`.
    pub fn local_name(&self) -> &'static str {
        self.0.local
    }

    /// The network-wide name Gluon would give it, e.g. `conv0_weight` (set when the
    /// network is initialized or its parameters collected).
    pub fn name(&self) -> String {
        self.0.name.borrow().clone()
    }

    pub(crate) fn set_name(&self, name: String) {
        *self.0.name.borrow_mut() = name;
    }

    /// The shape, with 0 for dimensions still unknown.
    pub fn shape(&self) -> Shape {
        self.0.shape.borrow().clone()
    }

    /// True when every dimension is known.
    pub fn shape_is_known(&self) -> bool {
        !self.0.shape.borrow().contains(&0)
    }

    /// True once the parameter has values.
    pub fn is_initialized(&self) -> bool {
        matches!(*self.0.state.borrow(), State::Ready(_))
    }

    /// Initializes with the parameter's own initializer, else `default`, drawing from a
    /// generator seeded with `seed`. If the shape is not known yet, the draw waits for the
    /// first forward (and still uses `seed`, so the result does not depend on when that
    /// happens). Already initialized parameters are left alone unless `force_reinit`.
    pub fn initialize(&self, default: &Init, seed: u64, force_reinit: bool) -> Result<()> {
        if self.is_initialized() && !force_reinit {
            return Ok(());
        }
        let init = self.0.own_init.unwrap_or(*default);
        *self.0.state.borrow_mut() = State::Deferred { init, seed };
        if self.shape_is_known() {
            self.finish_init()?;
        }
        Ok(())
    }

    /// Fills in unknown dimensions from `shape` (known ones must agree) and, if
    /// initialization was deferred, draws the values now.
    pub fn infer_shape(&self, shape: &[usize]) -> Result<()> {
        let declared = self.shape();
        let agrees = declared.rank() == shape.len()
            && declared.iter().zip(shape).all(|(&d, &s)| d == 0 || d == s);
        if !agrees || shape.contains(&0) {
            return Err(NnError::invalid(
                self.name(),
                format!(
                    "inferred shape {} does not fit the declared shape {declared}",
                    Shape::new(shape)
                ),
            ));
        }
        Shape::new(shape)
            .elements("infer_shape")
            .map_err(|e| NnError::from(e).in_layer(self.name()))?;
        *self.0.shape.borrow_mut() = Shape::new(shape);
        if matches!(*self.0.state.borrow(), State::Deferred { .. }) {
            self.finish_init()?;
        }
        Ok(())
    }

    fn finish_init(&self) -> Result<()> {
        let State::Deferred { init, seed } = *self.0.state.borrow() else {
            return Ok(());
        };
        let value = init
            .sample(&self.shape(), &mut StdRng::seed_from_u64(seed))
            .map_err(|e| e.in_layer(self.name()))?;
        *self.0.state.borrow_mut() = State::Ready(self.new_leaf(value));
        Ok(())
    }

    /// Ok once `initialize` was called, even if the values wait for the shape; else the
    /// error [`Parameter::leaf`] gives.
    pub(crate) fn check_initialize_called(&self) -> Result<()> {
        match &*self.0.state.borrow() {
            State::Uninitialized => Err(self.not_initialized()),
            _ => Ok(()),
        }
    }

    fn not_initialized(&self) -> NnError {
        NnError::invalid(
            self.name(),
            "is not initialized: call initialize() on the network before the first forward",
        )
    }

    /// The leaf holding the values and gradient; an error naming the parameter if it has
    /// none yet.
    pub fn leaf(&self) -> Result<Leaf<T>> {
        match &*self.0.state.borrow() {
            State::Ready(leaf) => Ok(leaf.clone()),
            State::Uninitialized => Err(self.not_initialized()),
            State::Deferred { .. } => Err(NnError::invalid(
                self.name(),
                format!(
                    "initialization waits for its shape {}: run a forward pass first",
                    self.shape()
                ),
            )),
        }
    }

    /// The parameter as a value of a computation: on `tape` (gradients flow into it) or,
    /// with no tape, as a constant.
    pub fn var(&self, tape: Option<&Tape<T>>) -> Result<Var<T>> {
        let leaf = self.leaf()?;
        Ok(match tape {
            Some(t) => t.leaf(&leaf),
            None => Var::from_rc(leaf.value()),
        })
    }

    /// The current values.
    pub fn data(&self) -> Result<Rc<Tensor<T>>> {
        Ok(self.leaf()?.value())
    }

    /// Replaces the values; the shape must match the declared one (unknown dimensions
    /// are taken from `value`). Initializes the parameter if it was not.
    pub fn set_data(&self, value: Tensor<T>) -> Result<()> {
        if value.shape() != &self.shape() {
            self.infer_shape(value.dims())?;
        }
        let ready = match &*self.0.state.borrow() {
            State::Ready(leaf) => Some(leaf.clone()),
            _ => None,
        };
        match ready {
            Some(leaf) => leaf.set_value(value),
            None => *self.0.state.borrow_mut() = State::Ready(self.new_leaf(value)),
        }
        Ok(())
    }

    /// The gradient written by the last backward, if any: a shared handle, as
    /// [`Parameter::data`] returns the values (cheap, and unaffected by later steps).
    pub fn grad(&self) -> Option<Rc<Tensor<T>>> {
        self.with_leaf(Leaf::grad).flatten()
    }

    /// The gradient if a backward wrote it since the last step, taken out of the
    /// parameter without a copy (how a replica hands its gradient over); `None`
    /// otherwise. Either way the parameter is left with no fresh gradient.
    pub(crate) fn take_fresh_grad(&self) -> Option<Tensor<T>> {
        self.with_leaf(|leaf| {
            if leaf.is_fresh() {
                leaf.take_grad()
            } else {
                None
            }
        })
        .flatten()
    }

    /// Borrows the parameter's state to read its leaf without cloning the handle.
    pub(crate) fn with_leaf<R>(&self, f: impl FnOnce(&Leaf<T>) -> R) -> Option<R> {
        let state: Ref<'_, State<T>> = self.0.state.borrow();
        match &*state {
            State::Ready(leaf) => Some(f(leaf)),
            _ => None,
        }
    }
}

impl<T: Float> std::fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parameter {} (shape {}", self.name(), self.shape())?;
        if self.is_state() {
            write!(f, ", state")?;
        } else if self.grad_req() != GradReq::Write {
            write!(f, ", grad_req {}", self.grad_req().as_str())?;
        }
        if !self.is_initialized() {
            write!(f, ", not initialized")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_initialization_waits_for_the_shape() {
        let p = Parameter::<f32>::new("weight", [6, 0, 5, 5], None);
        assert!(p.leaf().is_err());
        p.initialize(&Init::default(), 7, false).unwrap();
        assert!(!p.is_initialized());
        p.infer_shape(&[6, 3, 5, 5]).unwrap();
        assert!(p.is_initialized());
        assert_eq!(p.data().unwrap().dims(), &[6, 3, 5, 5]);
        // the same seed gives the same values whenever the shape arrives
        let q = Parameter::<f32>::new("weight", [6, 3, 5, 5], None);
        q.initialize(&Init::default(), 7, false).unwrap();
        assert_eq!(*p.data().unwrap(), *q.data().unwrap());
        assert!(p.infer_shape(&[6, 2, 5, 5]).is_err());
    }

    #[test]
    fn own_initializer_wins_and_reinit_needs_force() {
        let b = Parameter::<f64>::new("bias", [3], Some(Init::Zero));
        b.initialize(&Init::One, 0, false).unwrap();
        assert_eq!(b.data().unwrap().data(), &[0.0; 3]);
        b.set_data(Tensor::ones([3])).unwrap();
        b.initialize(&Init::One, 0, false).unwrap();
        assert_eq!(
            b.data().unwrap().data(),
            &[1.0; 3],
            "not re-initialized without force"
        );
        b.initialize(&Init::One, 0, true).unwrap();
        assert_eq!(b.data().unwrap().data(), &[0.0; 3]);
        assert!(b.set_data(Tensor::ones([4])).is_err());
    }

    #[test]
    fn uninitialized_error_names_the_parameter() {
        let p = Parameter::<f32>::new("weight", [2, 2], None);
        p.set_name("dense0_weight".into());
        let err = p.var(None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dense0_weight: is not initialized: call initialize() on the network before the first forward"
        );
    }
}
