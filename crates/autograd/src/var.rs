//! [`Var`]: a value in a computation: its tensor, the tape it belongs to (if any) and its
//! entry on that tape (if it depends on a leaf). Ops are methods of `Var`, one file each
//! under `ops/`; [`Var::record`] is how every one of them joins the tape.

use crate::error::{AutogradError, Result};
use crate::tape::{Backward, Tape};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::SmallVec;
use std::rc::Rc;

/// An entry on a tape, valid for one generation of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeId {
    pub(crate) index: usize,
    pub(crate) generation: u64,
}

/// A value in a computation. Cheap to clone (the tensor is shared).
///
/// A `Var` made with [`Var::constant`] belongs to no tape: ops on it compute and record
/// nothing, and layers run in predict mode. Values from [`Tape::constant`] and
/// [`Tape::leaf`] carry their tape, so parameters that meet them join it.
#[derive(Clone)]
pub struct Var<T: Float> {
    value: Rc<Tensor<T>>,
    tape: Option<Tape<T>>,
    node: Option<NodeId>,
}

impl<T: Float> Var<T> {
    /// A value on no tape: nothing about it is recorded.
    pub fn constant(value: Tensor<T>) -> Self {
        Var {
            value: Rc::new(value),
            tape: None,
            node: None,
        }
    }

    /// A value on no tape that shares an existing tensor (no copy).
    pub fn from_rc(value: Rc<Tensor<T>>) -> Self {
        Var {
            value,
            tape: None,
            node: None,
        }
    }

    pub(crate) fn from_parts(
        value: Rc<Tensor<T>>,
        tape: Option<Tape<T>>,
        node: Option<NodeId>,
    ) -> Self {
        Var { value, tape, node }
    }

    /// The tensor.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The tensor as a shared handle (for saving in a backward rule without copying).
    pub fn value_rc(&self) -> &Rc<Tensor<T>> {
        &self.value
    }

    /// The shape of the tensor.
    pub fn shape(&self) -> &Shape {
        self.value.shape()
    }

    /// The dimensions of the tensor.
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }

    /// An identity of the value's tensor (its address): equal for clones of one value and
    /// for values that share a tensor. What [`crate::observe`] reports.
    pub fn id(&self) -> usize {
        Rc::as_ptr(&self.value) as *const () as usize
    }

    /// The tape this value belongs to, if any.
    pub fn tape(&self) -> Option<&Tape<T>> {
        self.tape.as_ref()
    }

    /// Training mode of this value's tape; `false` (predict mode) for a value on no tape.
    pub fn is_training(&self) -> bool {
        self.tape.as_ref().is_some_and(Tape::is_training)
    }

    /// True when the value depends on a leaf through recorded ops (so gradients flow).
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// The same value cut from the graph: no gradient flows through it.
    pub fn detach(&self) -> Var<T> {
        Var {
            value: Rc::clone(&self.value),
            tape: self.tape.clone(),
            node: None,
        }
    }

    /// Backward from a one-element value: writes d self / d leaf into every leaf recorded
    /// before it, then releases the tape.
    pub fn backward(&self) -> Result<()> {
        self.backward_with(None, false)
    }

    /// Backward with an explicit head gradient (required when the value has more than one
    /// element, Gluon's `head_grads`) and optionally keeping the tape for another walk.
    pub fn backward_with(&self, head: Option<&Tensor<T>>, retain_graph: bool) -> Result<()> {
        let Some(tape) = &self.tape else {
            return Err(AutogradError::NoTape);
        };
        let Some(node) = self.node else {
            return Err(AutogradError::NotRecorded);
        };
        let head = match head {
            None if self.value.numel() == 1 => Tensor::ones(self.shape().clone()),
            Some(h) if h.shape() == self.shape() => h.clone(),
            _ => {
                return Err(AutogradError::HeadGradient {
                    value: self.shape().clone(),
                    head: head.map(|h| h.shape().clone()),
                })
            }
        };
        tape.backward(node, head, retain_graph)
    }

    /// True when an op on `inputs` will be recorded: some input depends on a leaf and its
    /// tape is recording. An op may then skip what only its backward rule needs.
    pub fn will_record(inputs: &[&Var<T>]) -> bool {
        inputs
            .iter()
            .any(|v| v.node.is_some() && v.tape.as_ref().is_some_and(Tape::is_recording))
    }

    /// Records an op: `value` is its result, computed from `inputs`; `make_backward` builds
    /// its backward rule from the shared result and is called only if recording.
    ///
    /// The result belongs to the inputs' tape. It gets an entry when that tape is
    /// recording and some input depends on a leaf; otherwise nothing is recorded. Inputs
    /// from two tapes, or from a graph already released, are an error.
    pub fn record<B: Backward<T> + 'static>(
        op: &'static str,
        inputs: &[&Var<T>],
        value: Tensor<T>,
        make_backward: impl FnOnce(&Rc<Tensor<T>>) -> B,
    ) -> Result<Var<T>> {
        let mut tape: Option<&Tape<T>> = None;
        for input in inputs {
            if let Some(t) = &input.tape {
                match tape {
                    Some(seen) if !seen.same(t) => return Err(AutogradError::MixedTapes { op }),
                    _ => tape = Some(t),
                }
                if let Some(node) = input.node {
                    if !t.is_current(node) {
                        return Err(AutogradError::Released { op });
                    }
                }
            }
        }
        let value = Rc::new(value);
        let node = match tape {
            // the inputs share this tape (checked above)
            Some(t) if Var::will_record(inputs) => {
                let ids: SmallVec<[Option<usize>; 3]> =
                    inputs.iter().map(|v| v.node.map(|n| n.index)).collect();
                let backward = Box::new(make_backward(&value));
                Some(t.push_op(ids, backward, value.shape().clone()))
            }
            _ => None,
        };
        let out = Var {
            value,
            tape: tape.cloned(),
            node,
        };
        if crate::observe::active() {
            let ids: SmallVec<[usize; 3]> = inputs.iter().map(|v| v.id()).collect();
            crate::observe::notify(op, &ids, out.id());
        }
        Ok(out)
    }
}

impl<T: Float> std::fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("value", &self.value)
            .field("requires_grad", &self.requires_grad())
            .finish()
    }
}
