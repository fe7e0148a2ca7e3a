//! Gluon's regression losses on targets of pred's size: `L1Loss`, `L2Loss` and
//! `HuberLoss` (smoothed L1).

use super::{
    abs, apply_weighting, batch_mean, check_pred, targets_like, weight_and_batch_axis, Loss,
};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// The mean absolute error per sample (Gluon's `L1Loss`), as MXNet 1.9 computes it:
/// `ℓ = |label − pred| · weight` (when a weight is given), averaged over every axis but
/// `batch_axis`.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct L1Loss {
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`L1Loss`](struct@L1Loss) in its default configuration, as a value: `L1Loss.forward(&pred, &label)`.
#[allow(non_upper_case_globals)]
pub const L1Loss: L1Loss = L1Loss::new();

weight_and_batch_axis!(L1Loss);

impl L1Loss {
    /// The loss with Gluon's defaults (no weight, batch axis 0).
    pub const fn new() -> Self {
        L1Loss {
            weight: None,
            batch_axis: 0,
        }
    }

    /// Per-sample losses; `label` is a tensor of targets.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for L1Loss {
    fn name(&self) -> &'static str {
        "L1Loss"
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let batch_axis = check_pred("L1Loss", pred, self.batch_axis)?;
        let label = targets_like("L1Loss", pred, labels)?;
        let loss = abs(&label.sub(pred)?)?;
        batch_mean(apply_weighting(loss, self.weight)?, batch_axis)
    }
}

/// Half the squared error per sample (Gluon's `L2Loss`), as MXNet 1.9 computes it:
/// `ℓ = (label − pred)² · (weight / 2)` (weight 1 by default; the half is folded into the
/// weight in f64 and then rounded, as Gluon's `self._weight / 2`), averaged over every
/// axis but `batch_axis`.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct L2Loss {
    weight: f64,
    batch_axis: isize,
}

/// [`L2Loss`](struct@L2Loss) in its default configuration, as a value (it was a unit struct):
/// `L2Loss.forward(&pred, &label)`.
#[allow(non_upper_case_globals)]
pub const L2Loss: L2Loss = L2Loss::new();

weight_and_batch_axis!(L2Loss);

impl L2Loss {
    /// The loss with Gluon's defaults (weight 1, batch axis 0).
    pub const fn new() -> Self {
        L2Loss {
            weight: 1.0,
            batch_axis: 0,
        }
    }

    /// Per-sample losses; `label` is a tensor or value of targets.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for L2Loss {
    fn name(&self) -> &'static str {
        "L2Loss"
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let batch_axis = check_pred("L2Loss", pred, self.batch_axis)?;
        let label = targets_like("L2Loss", pred, labels)?;
        let loss = label.sub(pred)?.square()?;
        batch_mean(apply_weighting(loss, Some(self.weight / 2.0))?, batch_axis)
    }
}

/// The smoothed L1 loss per sample (Gluon's `HuberLoss`), as MXNet 1.9 computes it, with
/// d = |label − pred|:
///
/// ```text
/// ℓ = d − ρ/2          if d > ρ
///     (1 / 2ρ) · d²    otherwise
/// ```
///
/// (ρ/2 and 1/(2ρ) are computed in f64, then rounded, as Gluon's `0.5 * self._rho` and
/// `0.5 / self._rho`), times `weight` when one is given, averaged over every axis but
/// `batch_axis`. `rho` defaults to 1 and must be positive and finite.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HuberLoss {
    rho: f64,
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`HuberLoss`](struct@HuberLoss) in its default configuration (ρ = 1), as a value.
#[allow(non_upper_case_globals)]
pub const HuberLoss: HuberLoss = HuberLoss::new();

weight_and_batch_axis!(HuberLoss);

impl HuberLoss {
    /// The loss with Gluon's defaults (ρ = 1, no weight, batch axis 0).
    pub const fn new() -> Self {
        HuberLoss {
            rho: 1.0,
            weight: None,
            batch_axis: 0,
        }
    }

    /// The threshold ρ between the quadratic and the linear part (default 1).
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Per-sample losses; `label` is a tensor of targets.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for HuberLoss {
    fn name(&self) -> &'static str {
        "HuberLoss"
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        if !(self.rho > 0.0 && self.rho.is_finite()) {
            return Err(NnError::invalid(
                "HuberLoss",
                format!("rho must be positive and finite, got {}", self.rho),
            ));
        }
        let batch_axis = check_pred("HuberLoss", pred, self.batch_axis)?;
        let label = targets_like("HuberLoss", pred, labels)?;
        let d = abs(&label.sub(pred)?)?;
        // F.where(d > rho, d − ρ/2, (0.5/ρ)·d²) as a blend with a constant 0/1 mask: each
        // branch is multiplied by its mask before anything can overflow, so the branch
        // not taken adds an exact 0 (0 · ∞ never happens for finite d)
        let rho = T::from_f64(self.rho);
        let linear_mask = d.value().map(|v| if v > rho { T::ONE } else { T::ZERO });
        let quadratic_mask = linear_mask.rsub_scalar(T::ONE);
        let linear = d
            .sub_scalar(T::from_f64(0.5 * self.rho))?
            .mul(&Var::constant(linear_mask))?;
        let quadratic = d
            .mul(&Var::constant(quadratic_mask))?
            .square()?
            .mul_scalar(T::from_f64(0.5 / self.rho))?;
        let loss = linear.add(&quadratic)?;
        batch_mean(apply_weighting(loss, self.weight)?, batch_axis)
    }
}
