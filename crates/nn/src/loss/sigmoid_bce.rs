//! Gluon's `SigmoidBinaryCrossEntropyLoss` (alias `SigmoidBCELoss`): binary cross-entropy
//! from logits (stable for any logit) or from probabilities, with an optional weight of
//! the positive class.

use super::{
    abs, apply_weighting, batch_mean, check_labels, check_pred, targets_like,
    weight_and_batch_axis, Loss,
};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::{Float, Tensor};

const WHO: &str = "SigmoidBinaryCrossEntropyLoss";

/// Binary cross-entropy per sample (Gluon's `SigmoidBinaryCrossEntropyLoss`), with labels
/// z in [0, 1], as MXNet 1.9's `hybrid_forward` computes it. From logits x (the default):
///
/// ```text
/// ℓ = relu(x) − x·z + softrelu(−|x|)                           without pos_weight
/// ℓ = x − x·z + (1 + (pos_weight − 1)·z) · (softrelu(−|x|) + relu(−x))   with it
/// ```
///
/// (softrelu(v) = ln(1 + e^v); both are −z ln σ(x) − (1 − z) ln(1 − σ(x)) rearranged so
/// that no exponent is positive, finite for any finite logit). With `from_sigmoid(true)`
/// pred holds probabilities p, and with ε = 1e-12:
///
/// ```text
/// ℓ = −(ln(p + ε)·z + ln(1 − p + ε)·(1 − z))                   without pos_weight
/// ℓ = −(ln(p + ε)·z·pos_weight + ln(1 − p + ε)·(1 − z))        with it
/// ```
///
/// Then ℓ · weight (when given), averaged over every axis but `batch_axis`. At x = 0
/// exactly the gradient is MXNet's −z (relu' and |·|' are 0 there), not σ(0) − z.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N); `pos_weight`
/// broadcasts to pred's shape (e.g. (1, C) for pred (N, C)).
#[derive(Clone, Debug, PartialEq)]
pub struct SigmoidBinaryCrossEntropyLoss {
    from_sigmoid: bool,
    pos_weight: Option<Tensor<f64>>,
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`SigmoidBinaryCrossEntropyLoss`](struct@SigmoidBinaryCrossEntropyLoss) in its default configuration, as a value.
#[allow(non_upper_case_globals)]
pub const SigmoidBinaryCrossEntropyLoss: SigmoidBinaryCrossEntropyLoss =
    SigmoidBinaryCrossEntropyLoss::new();

/// Gluon's alias of [`SigmoidBinaryCrossEntropyLoss`](struct@SigmoidBinaryCrossEntropyLoss).
pub type SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss;

weight_and_batch_axis!(SigmoidBinaryCrossEntropyLoss);

impl SigmoidBinaryCrossEntropyLoss {
    /// The loss with Gluon's defaults (from logits, no pos_weight, no weight, batch axis 0).
    pub const fn new() -> Self {
        SigmoidBinaryCrossEntropyLoss {
            from_sigmoid: false,
            pos_weight: None,
            weight: None,
            batch_axis: 0,
        }
    }

    /// Whether pred holds probabilities (the output of a sigmoid) rather than logits
    /// (default false; logits are the stable choice).
    pub fn from_sigmoid(mut self, from_sigmoid: bool) -> Self {
        self.from_sigmoid = from_sigmoid;
        self
    }

    /// Gluon's `pos_weight` (an input of its forward, an option here): the weight of the
    /// positive term, broadcast to pred's shape; above 1 it favours recall. Rounded to
    /// the element type.
    pub fn pos_weight(mut self, pos_weight: Tensor<f64>) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    /// Per-sample losses; `label` is a tensor of targets in [0, 1].
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }

    /// pos_weight in `T`, checked to broadcast to pred's shape.
    fn pos_weight_for<T: Float>(&self, pred: &Var<T>) -> Result<Option<Tensor<T>>> {
        let Some(w) = &self.pos_weight else {
            return Ok(None);
        };
        if w.shape().broadcast(pred.shape()).as_ref() != Some(pred.shape()) {
            return Err(NnError::invalid(
                WHO,
                format!(
                    "pos_weight of shape {} does not broadcast to the prediction's shape {}",
                    w.shape(),
                    pred.shape()
                ),
            ));
        }
        Ok(Some(w.cast()))
    }
}

impl<T: Float> Loss<T> for SigmoidBinaryCrossEntropyLoss {
    fn name(&self) -> &'static str {
        WHO
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let batch_axis = check_pred(WHO, pred, self.batch_axis)?;
        let z = targets_like(WHO, pred, labels)?;
        check_labels(WHO, z.value(), "in [0, 1]", |v| (0.0..=1.0).contains(&v))?;
        let pos_weight = self.pos_weight_for(pred)?;
        let x = pred;
        let loss = if !self.from_sigmoid {
            let softrelu_neg_abs = abs(x)?.neg()?.softrelu()?;
            match pos_weight {
                // relu(x) − x·z + softrelu(−|x|)
                None => x.relu()?.sub(&x.mul(&z)?)?.add(&softrelu_neg_abs)?,
                // x − x·z + (1 + (pos_weight − 1)·z) · (softrelu(−|x|) + relu(−x))
                Some(w) => {
                    let log_weight = w.sub_scalar(T::ONE).mul(z.value())?.add_scalar(T::ONE);
                    let log_sigmoid_neg = softrelu_neg_abs.add(&x.neg()?.relu()?)?;
                    x.sub(&x.mul(&z)?)?
                        .add(&log_sigmoid_neg.mul(&Var::constant(log_weight))?)?
                }
            }
        } else {
            let eps = T::from_f64(1e-12);
            let log_p = x.add_scalar(eps)?.log()?;
            let log_1mp = x.rsub_scalar(T::ONE)?.add_scalar(eps)?.log()?;
            let one_minus_z = Var::constant(z.value().rsub_scalar(T::ONE));
            let positive = match pos_weight {
                None => log_p.mul(&z)?,
                Some(w) => log_p.mul(&z)?.mul(&Var::constant(w))?,
            };
            positive.add(&log_1mp.mul(&one_minus_z)?)?.neg()?
        };
        batch_mean(apply_weighting(loss, self.weight)?, batch_axis)
    }
}
