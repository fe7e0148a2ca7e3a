//! [`Concatenate`]: children run on the same input, their outputs joined along an axis
//! (Gluon's `contrib.nn.HybridConcatenate`): the parallel paths of an Inception block
//! (D2L 7.4) need no code of their own.

use crate::block::Block;
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::shape_pass::{infer, ShapeOnly};
use kiln_autograd::Var;
use kiln_tensor::Float;

/// Runs every child on the input and concatenates their outputs along `axis` (default 1,
/// the channel axis of NCHW; Gluon's `HybridConcatenate` defaults to −1, the last axis).
///
/// ```
/// use kiln_nn::{BlockExt, Concatenate, Conv2D, Init, MaxPool2D, Sequential};
/// use kiln_tensor::Tensor;
/// // two paths of an Inception block: 1×1 convolutions, and 3×3 max pooling then 1×1
/// let block = Concatenate::<f32>::new()
///     .add(Conv2D::new(4, 1))
///     .add(Sequential::new().add(MaxPool2D::new(3).strides(1).padding(1)).add(Conv2D::new(2, 1)));
/// block.initialize(&Init::xavier(), 0)?;
/// assert_eq!(block.predict(&Tensor::zeros([1, 3, 8, 8]))?.dims(), &[1, 6, 8, 8]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
///
/// # Shapes
/// Every child maps the input to outputs that agree on all axes but `axis` → their
/// concatenation along `axis`.
pub struct Concatenate<T: Float> {
    cell: BlockCell,
    axis: usize,
    children: Vec<Box<dyn Block<T>>>,
}

impl<T: Float> Default for Concatenate<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Concatenate<T> {
    /// No children yet, joining on axis 1.
    pub fn new() -> Self {
        Concatenate {
            cell: BlockCell::new(),
            axis: 1,
            children: Vec::new(),
        }
    }

    /// Joins the outputs on `axis` instead.
    pub fn axis(mut self, axis: usize) -> Self {
        self.axis = axis;
        self
    }

    /// Adds a path (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, block: impl Block<T> + 'static) -> Self {
        self.push(block);
        self
    }

    /// Adds a path.
    pub fn push(&mut self, block: impl Block<T> + 'static) {
        self.children.push(Box::new(block));
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True with no paths.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl<T: Float> Block<T> for Concatenate<T> {
    fn kind(&self) -> &'static str {
        "Concatenate"
    }

    fn prefix(&self) -> &'static str {
        "concatenate"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        if self.children.is_empty() {
            return Err(NnError::invalid(self.name(), "has no paths to run"));
        }
        let outputs = self
            .children
            .iter()
            .map(|c| c.call(x))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Var<T>> = outputs.iter().collect();
        Var::concat(&refs, self.axis).map_err(|e| NnError::from(e).in_layer(self.name()))
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        self.children.iter().map(|c| c.as_ref()).collect()
    }

    fn describe(&self) -> String {
        format!("Concatenate(axis={})", self.axis)
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        if self.children.is_empty() {
            return Some(Err(NnError::invalid(self.name(), "has no paths to run")));
        }
        let run = || -> Result<ShapeOnly> {
            let outputs = self
                .children
                .iter()
                .map(|c| infer(c.as_ref(), x))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&ShapeOnly> = outputs.iter().collect();
            ShapeOnly::concat(&refs, self.axis).map_err(|e| e.in_layer(self.name()))
        };
        Some(run())
    }
}
