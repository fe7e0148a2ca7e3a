//! [`Sequential`]: blocks run one after another (Gluon's `nn.Sequential`); it nests, and
//! runs some neighbouring layers fused (see [`super::fusion`]).

use super::fusion::{self, Child, Step};
use crate::block::Block;
use crate::error::Result;
use crate::hooks::BlockCell;
use crate::shape_pass::{infer, ShapeOnly};
use kiln_autograd::Var;
use kiln_tensor::Float;
use std::cell::RefCell;
use std::ops::Index;
use std::rc::Rc;

/// A stack of blocks, each fed the previous one's output.
///
/// ```
/// use kiln_nn::{Activation::Sigmoid, Conv2D, Dense, MaxPool2D, Sequential};
/// // the book's LeNet
/// let net = Sequential::<f32>::new()
///     .add(Conv2D::new(6, 5).activation(Sigmoid))
///     .add(MaxPool2D::new(2).strides(2))
///     .add(Conv2D::new(16, 5).activation(Sigmoid))
///     .add(MaxPool2D::new(2).strides(2))
///     .add(Dense::new(120).activation(Sigmoid))
///     .add(Dense::new(84).activation(Sigmoid))
///     .add(Dense::new(10));
/// assert_eq!(net.len(), 7);
/// ```
pub struct Sequential<T: Float> {
    cell: BlockCell,
    children: Vec<Box<dyn Child<T>>>,
    /// The fusion plan, made at the first forward after a change.
    plan: RefCell<Option<Rc<[Step]>>>,
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Sequential<T> {
    /// An empty stack.
    pub fn new() -> Self {
        Sequential {
            cell: BlockCell::new(),
            children: Vec::new(),
            plan: RefCell::new(None),
        }
    }

    /// Appends a block (builder style; Gluon's name, hence not `std::ops::Add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, block: impl Block<T> + 'static) -> Self {
        self.push(block);
        self
    }

    /// Appends a block.
    pub fn push(&mut self, block: impl Block<T> + 'static) {
        self.children.push(Box::new(block));
        *self.plan.borrow_mut() = None;
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The blocks in order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Block<T>> {
        self.children.iter().map(|b| &**b as &dyn Block<T>)
    }

    /// The block at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&dyn Block<T>> {
        self.children.get(index).map(|b| &**b as &dyn Block<T>)
    }

    /// The plan, made now if the blocks changed since it was made.
    fn plan(&self) -> Rc<[Step]> {
        let mut plan = self.plan.borrow_mut();
        Rc::clone(plan.get_or_insert_with(|| fusion::plan(&self.children).into()))
    }

    /// Which blocks run fused, as (first, last, the fused op) index ranges of the
    /// children: how the plan can be shown.
    ///
    /// ```
    /// use kiln_nn::{zoo::lenet, Activation};
    /// let net = lenet::<f32>(Activation::Sigmoid);
    /// // each convolution runs fused with the max pooling after it
    /// assert_eq!(net.fused_steps(), [(0, 1, "conv2d+max_pool2d"), (2, 3, "conv2d+max_pool2d")]);
    /// ```
    pub fn fused_steps(&self) -> Vec<(usize, usize, &'static str)> {
        self.plan()
            .iter()
            .filter(|s| s.members().len() > 1)
            .map(|s| (s.members().start, s.members().end - 1, s.describe()))
            .collect()
    }
}

impl<T: Float> Index<usize> for Sequential<T> {
    type Output = dyn Block<T>;

    fn index(&self, index: usize) -> &Self::Output {
        // a child is a block: the trait object upcasts
        &*self.children[index]
    }
}

impl<T: Float> Block<T> for Sequential<T> {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn prefix(&self) -> &'static str {
        "sequential"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    /// Runs the blocks in order, following the fusion plan: a `Conv2D` followed by a
    /// `MaxPool2D` runs as one op (the same result, without the full-size activation map).
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let mut y = x.clone();
        for &step in self.plan().iter() {
            y = fusion::run(step, &self.children, &y)?;
        }
        Ok(y)
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        self.iter().collect()
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        Some(self.iter().try_fold(x.clone(), |y, child| infer(child, &y)))
    }
}
