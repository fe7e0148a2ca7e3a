//! [`Sequential`]: blocks run one after another (Gluon's `nn.Sequential`); it nests.

use crate::block::{Block, NameCell};
use crate::error::Result;
use crate::summary::Trace;
use kiln_autograd::Var;
use kiln_tensor::Float;
use std::ops::Index;

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
    name: NameCell,
    children: Vec<Box<dyn Block<T>>>,
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
            name: NameCell::default(),
            children: Vec::new(),
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
        self.children.iter().map(|b| b.as_ref())
    }

    /// The block at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&dyn Block<T>> {
        self.children.get(index).map(|b| b.as_ref())
    }
}

impl<T: Float> Index<usize> for Sequential<T> {
    type Output = dyn Block<T>;

    fn index(&self, index: usize) -> &Self::Output {
        self.children[index].as_ref()
    }
}

impl<T: Float> Block<T> for Sequential<T> {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn prefix(&self) -> &'static str {
        "sequential"
    }

    fn name_cell(&self) -> Option<&NameCell> {
        Some(&self.name)
    }

    /// Runs the blocks in order. A block followed by a max-pooling layer runs fused with
    /// it when it can (a `Conv2D`): the same result, without the full-size activation map.
    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let mut y = x.clone();
        let mut i = 0;
        while i < self.children.len() {
            let block = &self.children[i];
            if let Some(next) = self.children.get(i + 1) {
                if let Some(pool) = next.max_pool_params() {
                    if let Some(fused) = block.forward_then_max_pool(&y, &pool, next.as_ref()) {
                        y = fused?;
                        i += 2;
                        continue;
                    }
                }
            }
            y = block.forward(&y)?;
            i += 1;
        }
        Ok(y)
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        self.iter().collect()
    }

    fn forward_traced(&self, x: &Var<T>, trace: &mut Trace) -> Result<Var<T>> {
        trace.name(self.prefix());
        let mut y = x.clone();
        for block in &self.children {
            y = block.forward_traced(&y, trace)?;
        }
        Ok(y)
    }
}
