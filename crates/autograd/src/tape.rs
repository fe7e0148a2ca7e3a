//! [`Tape`]: the record of a computation. Ops append entries in execution order, so the
//! reverse of the entry list is a topological order and `backward` is one loop over it.
//! Each tape is its own object: two tapes on two threads never interfere.

use crate::error::{AutogradError, Result};
use crate::leaf::Leaf;
use crate::random::{RandomKey, RandomStream};
use crate::var::{NodeId, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Gradients of an op's inputs, in input order; `None` where none was asked for.
pub type Grads<T> = SmallVec<[Option<Tensor<T>>; 3]>;

/// The backward rule of one recorded op: what it saved in the forward pass, and how it
/// turns the gradient of its output into gradients of its inputs.
pub trait Backward<T: Float> {
    /// The op's name, for error messages.
    fn name(&self) -> &'static str;

    /// Gradients for each input given `grad`, the gradient of the output. `needs[i]` is
    /// false for inputs that want no gradient; return `None` there and skip the work.
    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>>;
}

enum Entry<T: Float> {
    Leaf(Leaf<T>),
    Op {
        inputs: SmallVec<[Option<usize>; 3]>,
        backward: Box<dyn Backward<T>>,
        shape: Shape,
    },
}

struct Inner<T: Float> {
    entries: RefCell<Vec<Entry<T>>>,
    /// (leaf id, entry index) of every leaf on the tape, so a leaf used twice is one entry.
    leaves: RefCell<Vec<(usize, usize)>>,
    recording: Cell<bool>,
    training: Cell<bool>,
    /// Increases each time the entries are released; nodes of older generations are stale.
    generation: Cell<u64>,
    /// Where random ops on this tape draw from.
    key: RandomKey,
    /// Random ops run on this tape so far: the next one's stream number.
    random_ops: Cell<u64>,
}

/// A recording of ops for reverse-mode differentiation (the analogue of Gluon's
/// `autograd.record()` scope). Cloning gives another handle to the same tape.
///
/// A new tape records in training mode. Values enter it through [`Tape::leaf`] (they get
/// gradients) and [`Tape::constant`] (they do not); every op on them whose result depends
/// on a leaf appends one entry.
pub struct Tape<T: Float>(Rc<Inner<T>>);

impl<T: Float> Clone for Tape<T> {
    fn clone(&self) -> Self {
        Tape(Rc::clone(&self.0))
    }
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Restores a tape's recording flag when dropped; see [`Tape::pause`].
pub struct PauseGuard<T: Float> {
    tape: Tape<T>,
    was_recording: bool,
}

impl<T: Float> Drop for PauseGuard<T> {
    fn drop(&mut self) {
        self.tape.0.recording.set(self.was_recording);
    }
}

impl<T: Float> Tape<T> {
    /// A recording tape in training mode, whose random ops draw from this thread's next
    /// key under the process-wide seed ([`RandomKey::next`]).
    pub fn new() -> Self {
        Self::with_key(RandomKey::next())
    }

    /// A recording tape in training mode whose random ops (dropout) draw from `key`: how
    /// a training loop makes the draws depend on its seed, step and samples only.
    pub fn with_key(key: RandomKey) -> Self {
        Tape(Rc::new(Inner {
            entries: RefCell::new(Vec::new()),
            leaves: RefCell::new(Vec::new()),
            recording: Cell::new(true),
            training: Cell::new(true),
            generation: Cell::new(0),
            key,
            random_ops: Cell::new(0),
        }))
    }

    /// The key random ops on this tape draw from.
    pub fn key(&self) -> RandomKey {
        self.0.key
    }

    /// The draws of the next random op on this tape (the first op gets stream 0, the
    /// second stream 1, …), so two dropout layers of one forward draw differently.
    pub fn next_random_stream(&self) -> RandomStream {
        let op = self.0.random_ops.get();
        self.0.random_ops.set(op + 1);
        self.0.key.stream(op)
    }

    /// True while ops are being recorded.
    pub fn is_recording(&self) -> bool {
        self.0.recording.get()
    }

    /// Stops recording until the returned guard is dropped (Gluon's `autograd.pause()`).
    pub fn pause(&self) -> PauseGuard<T> {
        let was_recording = self.0.recording.replace(false);
        PauseGuard {
            tape: self.clone(),
            was_recording,
        }
    }

    /// Training mode (Gluon's `autograd.is_training()`): layers that act differently when
    /// training read this through [`Var::is_training`].
    pub fn is_training(&self) -> bool {
        self.0.training.get()
    }

    /// Sets training mode (`false` is predict mode).
    pub fn set_training(&self, training: bool) {
        self.0.training.set(training);
    }

    /// Number of entries recorded since the last release (for memory checks).
    pub fn len(&self) -> usize {
        self.0.entries.borrow().len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry and the tensors they saved; values recorded so far become stale.
    pub fn clear(&self) {
        self.0.entries.borrow_mut().clear();
        self.0.leaves.borrow_mut().clear();
        self.0.generation.set(self.0.generation.get() + 1);
    }

    /// Input data on this tape: carries the tape (so layers find it) but gets no gradient.
    pub fn constant(&self, value: Tensor<T>) -> Var<T> {
        Var::from_parts(Rc::new(value), Some(self.clone()), None)
    }

    /// A leaf on this tape: while recording, backward will deliver its gradient (as its
    /// [`GradReq`](crate::GradReq) says). A leaf added twice is one entry, so both uses add
    /// up. While not recording, or with `GradReq::Null`, it is a constant.
    pub fn leaf(&self, leaf: &Leaf<T>) -> Var<T> {
        let value = leaf.value();
        if !self.is_recording() || leaf.grad_req() == crate::GradReq::Null {
            return Var::from_parts(value, Some(self.clone()), None);
        }
        let id = leaf.id();
        let known = self
            .0
            .leaves
            .borrow()
            .iter()
            .find(|(l, _)| *l == id)
            .map(|&(_, i)| i);
        let index = known.unwrap_or_else(|| {
            let mut entries = self.0.entries.borrow_mut();
            entries.push(Entry::Leaf(leaf.clone()));
            let index = entries.len() - 1;
            self.0.leaves.borrow_mut().push((id, index));
            index
        });
        let node = NodeId {
            index,
            generation: self.0.generation.get(),
        };
        Var::from_parts(value, Some(self.clone()), Some(node))
    }

    pub(crate) fn same(&self, other: &Tape<T>) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn is_current(&self, node: NodeId) -> bool {
        node.generation == self.0.generation.get()
    }

    /// Appends an op entry and returns its node.
    pub(crate) fn push_op(
        &self,
        inputs: SmallVec<[Option<usize>; 3]>,
        backward: Box<dyn Backward<T>>,
        shape: Shape,
    ) -> NodeId {
        let mut entries = self.0.entries.borrow_mut();
        entries.push(Entry::Op {
            inputs,
            backward,
            shape,
        });
        NodeId {
            index: entries.len() - 1,
            generation: self.0.generation.get(),
        }
    }

    /// Walks the tape once in reverse from `node` with gradient `head`, writing the
    /// gradient of every leaf recorded before it, then releases the tape unless `retain`.
    pub(crate) fn backward(&self, node: NodeId, head: Tensor<T>, retain: bool) -> Result<()> {
        if !self.is_current(node) {
            return Err(AutogradError::Released { op: "backward" });
        }
        {
            let entries = self.0.entries.borrow();
            let mut grads: Vec<Option<Tensor<T>>> = Vec::new();
            grads.resize_with(node.index + 1, || None);
            grads[node.index] = Some(head);
            for i in (0..=node.index).rev() {
                match &entries[i] {
                    Entry::Leaf(leaf) => {
                        let shape = leaf.value().shape().clone();
                        let grad = grads[i]
                            .take()
                            .unwrap_or_else(|| Tensor::zeros(shape.clone()));
                        if *grad.shape() != shape {
                            return Err(AutogradError::invalid(
                                "backward",
                                format!(
                                    "internal error: a gradient of shape {} reached a leaf of shape {shape}",
                                    grad.shape()
                                ),
                            ));
                        }
                        leaf.set_grad(grad)?;
                    }
                    Entry::Op {
                        inputs,
                        backward,
                        shape,
                    } => {
                        let Some(grad) = grads[i].take() else {
                            continue;
                        };
                        debug_assert_eq!(
                            grad.shape(),
                            shape,
                            "{}: gradient shape",
                            backward.name()
                        );
                        let needs: SmallVec<[bool; 3]> =
                            inputs.iter().map(Option::is_some).collect();
                        let input_grads = backward.backward(grad, &needs)?;
                        for (input, g) in inputs.iter().zip(input_grads) {
                            if let (Some(j), Some(g)) = (*input, g) {
                                accumulate(&mut grads[j], g, backward.name())?;
                            }
                        }
                    }
                }
            }
        }
        if !retain {
            self.clear();
        }
        Ok(())
    }
}

/// `slot += g`, or `slot = g` when empty: a value used twice gets the sum of both paths.
fn accumulate<T: Float>(
    slot: &mut Option<Tensor<T>>,
    g: Tensor<T>,
    op: &'static str,
) -> Result<()> {
    match slot {
        None => *slot = Some(g),
        Some(acc) => {
            if acc.shape() != g.shape() {
                return Err(AutogradError::invalid(
                    op,
                    format!(
                        "internal error: backward returned a gradient of shape {} for an input of shape {}",
                        g.shape(),
                        acc.shape()
                    ),
                ));
            }
            acc.add_assign(&g)?;
        }
    }
    Ok(())
}

impl<T: Float> std::fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("entries", &self.len())
            .field("recording", &self.is_recording())
            .field("training", &self.is_training())
            .finish()
    }
}
