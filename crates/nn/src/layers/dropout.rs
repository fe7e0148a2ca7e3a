//! [`Dropout`]: Gluon's dropout layer (D2L 4.6, used by AlexNet and VGG in 7.1–7.2).

use crate::block::Block;
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// Dropout (Gluon's `nn.Dropout(rate, axes)`): in training, each element is 0 with
/// probability `rate` and the others are scaled by exactly 1/(1 − rate); in predict mode
/// the identity. The masks come from the tape's counter-based generator keyed by the
/// run's seed, the training step, the sample's index in the batch and the element's, so
/// the same seed gives the same masks on any number of threads or shards and after a
/// resume (see `kiln_autograd::random`).
///
/// # Shapes
/// (N, …) → the same shape.
#[derive(Debug)]
pub struct Dropout {
    cell: BlockCell,
    rate: f64,
    axes: Vec<usize>,
}

impl Dropout {
    /// Drops each element with probability `rate`, in [0, 1) (checked at the first
    /// forward).
    pub fn new(rate: f64) -> Self {
        Dropout {
            cell: BlockCell::new(),
            rate,
            axes: Vec::new(),
        }
    }

    /// Shares the mask along `axes` (Gluon's `axes`): e.g. `[2, 3]` drops whole channels
    /// of an (N, C, H, W) input.
    pub fn axes(mut self, axes: &[usize]) -> Self {
        self.axes = axes.to_vec();
        self
    }

    /// The dropout probability.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

impl<T: Float> Block<T> for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn prefix(&self) -> &'static str {
        "dropout"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        x.dropout(self.rate, &self.axes)
            .map_err(|e| NnError::from(e).in_layer(Block::<T>::name(self)))
    }

    fn describe(&self) -> String {
        format!("Dropout(rate={}, axes={:?})", self.rate, self.axes)
    }

    /// The shape is kept; the options are checked as `Var::dropout` checks them.
    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let problem = if !(0.0..1.0).contains(&self.rate) {
            Some(format!("the rate must be in [0, 1), got {}", self.rate))
        } else if x.shape().rank() == 0 {
            Some("the input is a scalar, not a batch".to_string())
        } else {
            self.axes.iter().find(|&&a| a >= x.shape().rank()).map(|a| {
                format!(
                    "axis {a} is out of range for shape {} (rank {})",
                    x.shape(),
                    x.shape().rank()
                )
            })
        };
        Some(match problem {
            None => Ok(x.clone()),
            Some(m) => Err(NnError::invalid("dropout", m).in_layer(Block::<T>::name(self))),
        })
    }
}
