//! [`Leaf`]: a tensor that asks for a gradient (Gluon's `attach_grad`), and that outlives
//! any one tape. Parameters of the nn layer are leaves; `backward` writes their gradient,
//! adds to it, or computes none, as the leaf's [`GradReq`] says.
//!
//! Both the value and the gradient are read as `Rc<Tensor>` snapshots ([`Leaf::value`],
//! [`Leaf::grad`]; `Parameter::data` and `Parameter::grad` alike): cheap, and never a
//! borrow that a later step or backward could collide with. Writes replace the tensor, or
//! change it in place only where no snapshot still holds it.

use kiln_tensor::{Float, Tensor};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What a backward does with a leaf's gradient (Gluon's `grad_req`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GradReq {
    /// Each backward replaces the gradient (Gluon's `'write'`, the default).
    #[default]
    Write,
    /// Each backward adds to the gradient, which accumulates until
    /// [`Leaf::zero_grad`] (Gluon's `'add'`): several batches summed before one step.
    Add,
    /// No gradient is computed or stored: on a tape the leaf is a constant (Gluon's
    /// `'null'`, for frozen weights and for state such as BatchNorm's running statistics).
    Null,
}

impl GradReq {
    /// Gluon's name: `write`, `add` or `null`.
    pub fn as_str(self) -> &'static str {
        match self {
            GradReq::Write => "write",
            GradReq::Add => "add",
            GradReq::Null => "null",
        }
    }
}

struct Inner<T: Float> {
    value: RefCell<Rc<Tensor<T>>>,
    grad: RefCell<Option<Rc<Tensor<T>>>>,
    fresh: Cell<bool>,
    req: Cell<GradReq>,
}

/// A value with a gradient buffer. Cloning a `Leaf` clones the handle: both clones see the
/// same value and gradient.
///
/// ```
/// use kiln_autograd::{Leaf, Tape};
/// use kiln_tensor::Tensor;
/// let x = Leaf::new(Tensor::<f64>::arange(4));     // x.attach_grad()
/// let tape = Tape::new();                           // autograd.record()
/// let y = tape.leaf(&x).square()?.sum()?;           // y = Σ x²
/// y.backward()?;
/// assert_eq!(x.grad().unwrap().data(), &[0.0, 2.0, 4.0, 6.0]); // dy/dx = 2x
/// # Ok::<(), kiln_autograd::AutogradError>(())
/// ```
pub struct Leaf<T: Float>(Rc<Inner<T>>);

impl<T: Float> Clone for Leaf<T> {
    fn clone(&self) -> Self {
        Leaf(Rc::clone(&self.0))
    }
}

impl<T: Float> Leaf<T> {
    /// A leaf holding `value`, with no gradient yet.
    pub fn new(value: Tensor<T>) -> Self {
        Leaf(Rc::new(Inner {
            value: RefCell::new(Rc::new(value)),
            grad: RefCell::new(None),
            fresh: Cell::new(false),
            req: Cell::new(GradReq::Write),
        }))
    }

    /// What a backward does with this leaf's gradient.
    pub fn grad_req(&self) -> GradReq {
        self.0.req.get()
    }

    /// Sets what a backward does with the gradient. Switching to [`GradReq::Null`] drops
    /// the gradient held.
    pub fn set_grad_req(&self, req: GradReq) {
        self.0.req.set(req);
        if req == GradReq::Null {
            *self.0.grad.borrow_mut() = None;
            self.0.fresh.set(false);
        }
    }

    /// The current value (a shared handle: cheap, and unaffected by later updates).
    pub fn value(&self) -> Rc<Tensor<T>> {
        Rc::clone(&self.0.value.borrow())
    }

    /// Replaces the value.
    pub fn set_value(&self, value: Tensor<T>) {
        *self.0.value.borrow_mut() = Rc::new(value);
    }

    /// Changes the value in place (copying it first only if a graph still holds it).
    pub fn update(&self, f: impl FnOnce(&mut Tensor<T>)) {
        f(Rc::make_mut(&mut self.0.value.borrow_mut()));
    }

    /// Changes the value in place with read access to the gradient, if there is one:
    /// the shape of an optimizer step.
    pub fn update_with_grad<R>(
        &self,
        f: impl FnOnce(&mut Tensor<T>, Option<&Tensor<T>>) -> R,
    ) -> R {
        let grad = self.0.grad.borrow();
        f(
            Rc::make_mut(&mut self.0.value.borrow_mut()),
            grad.as_deref(),
        )
    }

    /// The gradient written by the last backward that reached this leaf, if any (a
    /// shared handle, like [`Leaf::value`]: cheap, and unaffected by later backwards).
    pub fn grad(&self) -> Option<Rc<Tensor<T>>> {
        self.0.grad.borrow().clone()
    }

    /// Takes the gradient out, leaving none, and marks it consumed: how a gradient
    /// computed on one thread is handed to another without a copy (a copy only if a
    /// handle from [`Leaf::grad`] still holds it).
    pub fn take_grad(&self) -> Option<Tensor<T>> {
        self.0.fresh.set(false);
        let grad = self.0.grad.borrow_mut().take()?;
        Some(Rc::try_unwrap(grad).unwrap_or_else(|held| (*held).clone()))
    }

    /// Sets the gradient to zero (keeping its shape), as Gluon's `zero_grad`.
    pub fn zero_grad(&self) {
        if let Some(g) = self.0.grad.borrow_mut().as_mut() {
            Rc::make_mut(g).data_mut().fill(T::ZERO);
        }
    }

    /// True when a backward wrote the gradient since the last [`Leaf::mark_stale`].
    pub fn is_fresh(&self) -> bool {
        self.0.fresh.get()
    }

    /// Marks the gradient as consumed (an optimizer step does this).
    pub fn mark_stale(&self) {
        self.0.fresh.set(false);
    }

    /// Delivers a gradient as a backward does, following [`Leaf::grad_req`]: `Write`
    /// replaces the gradient, `Add` adds to it (or starts it), `Null` ignores it. The
    /// gradient is then fresh. This is also how a gradient computed elsewhere, such as the
    /// sum of the gradients that replicas of a network computed on other threads, reaches
    /// the optimizer. An error if `Add` meets a gradient of another shape.
    pub fn set_grad(&self, grad: Tensor<T>) -> crate::Result<()> {
        let mut held = self.0.grad.borrow_mut();
        match (self.0.req.get(), held.as_mut()) {
            (GradReq::Null, _) => return Ok(()),
            (GradReq::Add, Some(sum)) => {
                if sum.shape() != grad.shape() {
                    return Err(crate::AutogradError::invalid(
                        "backward",
                        format!(
                            "grad_req 'add': a gradient of shape {} cannot be added to one of shape {}",
                            grad.shape(),
                            sum.shape()
                        ),
                    ));
                }
                Rc::make_mut(sum).add_assign(&grad)?;
            }
            _ => *held = Some(Rc::new(grad)),
        }
        self.0.fresh.set(true);
        Ok(())
    }

    /// An address that identifies this leaf (equal for clones of one handle).
    pub(crate) fn id(&self) -> usize {
        Rc::as_ptr(&self.0) as *const () as usize
    }
}

impl<T: Float> std::fmt::Debug for Leaf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("value", &self.value())
            .field("fresh", &self.is_fresh())
            .field("grad_req", &self.grad_req())
            .finish()
    }
}
