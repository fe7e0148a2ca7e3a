//! [`Labels`]: what a batch is trained towards: one class index per sample, or a tensor
//! of targets (one-hot or probability rows, regression values, ±1 for a hinge loss);
//! [`LabelsRef`] is the borrowed form that losses and metrics read.

use crate::error::{NnError, Result};
use kiln_autograd::Var;
use kiln_tensor::{Float, Tensor};

/// The labels of a batch, owned (as a data loader yields them).
#[derive(Clone, Debug, PartialEq)]
pub enum Labels<T: Float> {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// A tensor of targets whose first axis is the batch.
    Targets(Tensor<T>),
}

/// The labels of a batch, borrowed: what losses and metrics take. Converts from a slice
/// or vector of class indices, a tensor or value of targets, or owned [`Labels`].
///
/// Labels are data: no gradient flows into them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelsRef<'a, T: Float> {
    /// One class index per sample.
    Classes(&'a [usize]),
    /// A tensor of targets whose first axis is the batch.
    Targets(&'a Tensor<T>),
}

impl<T: Float> Labels<T> {
    /// The borrowed form.
    pub fn as_ref(&self) -> LabelsRef<'_, T> {
        match self {
            Labels::Classes(c) => LabelsRef::Classes(c),
            Labels::Targets(t) => LabelsRef::Targets(t),
        }
    }

    /// The number of samples labelled.
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// True when no sample is labelled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class indices, if these are classes.
    pub fn classes(&self) -> Option<&[usize]> {
        self.as_ref().classes()
    }
}

impl<'a, T: Float> LabelsRef<'a, T> {
    /// The number of samples labelled: the class count, or the targets' first axis.
    pub fn len(&self) -> usize {
        match self {
            LabelsRef::Classes(c) => c.len(),
            LabelsRef::Targets(t) => t.dims().first().copied().unwrap_or(0),
        }
    }

    /// True when no sample is labelled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class indices, if these are classes.
    pub fn classes(&self) -> Option<&'a [usize]> {
        match self {
            LabelsRef::Classes(c) => Some(c),
            LabelsRef::Targets(_) => None,
        }
    }

    /// The targets, if these are targets.
    pub fn targets(&self) -> Option<&'a Tensor<T>> {
        match self {
            LabelsRef::Classes(_) => None,
            LabelsRef::Targets(t) => Some(t),
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Labels<T> {
        match self {
            LabelsRef::Classes(c) => Labels::Classes(c.to_vec()),
            LabelsRef::Targets(t) => Labels::Targets((*t).clone()),
        }
    }

    /// The labels of samples `start..end` (a shard of the batch).
    pub fn slice(&self, start: usize, end: usize) -> Result<Labels<T>> {
        let n = self.len();
        if start > end || end > n {
            return Err(NnError::invalid(
                "labels",
                format!("samples {start}..{end} are not within the {n} labels"),
            ));
        }
        Ok(match self {
            LabelsRef::Classes(c) => Labels::Classes(c[start..end].to_vec()),
            LabelsRef::Targets(t) => Labels::Targets(t.slice_axis(0, start, end)?),
        })
    }

    /// The class indices for a loss or metric named `who` that needs classes below
    /// `classes`: an error naming `who` if these are targets or an index is out of range.
    pub fn expect_classes(&self, who: &str, classes: usize) -> Result<&'a [usize]> {
        let c = self.classes().ok_or_else(|| {
            NnError::invalid(
                who,
                "needs one class index per sample, got a tensor of targets",
            )
        })?;
        if let Some((i, &l)) = c.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(NnError::invalid(
                who,
                format!("label {l} of sample {i} is not a class (the scores have {classes})"),
            ));
        }
        Ok(c)
    }

    /// The targets as a value for a loss named `who`: an error if these are classes.
    pub fn expect_targets(&self, who: &str) -> Result<Var<T>> {
        let t = self.targets().ok_or_else(|| {
            NnError::invalid(
                who,
                "needs a tensor of targets, got class indices (use one-hot targets, or a loss for classes)",
            )
        })?;
        Ok(Var::constant(t.clone()))
    }
}

impl<'a, T: Float> From<&'a [usize]> for LabelsRef<'a, T> {
    fn from(c: &'a [usize]) -> Self {
        LabelsRef::Classes(c)
    }
}

impl<'a, T: Float> From<&'a Vec<usize>> for LabelsRef<'a, T> {
    fn from(c: &'a Vec<usize>) -> Self {
        LabelsRef::Classes(c)
    }
}

impl<'a, T: Float, const N: usize> From<&'a [usize; N]> for LabelsRef<'a, T> {
    fn from(c: &'a [usize; N]) -> Self {
        LabelsRef::Classes(c)
    }
}

impl<'a, T: Float> From<&'a Tensor<T>> for LabelsRef<'a, T> {
    fn from(t: &'a Tensor<T>) -> Self {
        LabelsRef::Targets(t)
    }
}

impl<'a, T: Float> From<&'a Var<T>> for LabelsRef<'a, T> {
    fn from(v: &'a Var<T>) -> Self {
        LabelsRef::Targets(v.value())
    }
}

impl<'a, T: Float> From<&'a Labels<T>> for LabelsRef<'a, T> {
    fn from(l: &'a Labels<T>) -> Self {
        l.as_ref()
    }
}

impl<T: Float> From<Vec<usize>> for Labels<T> {
    fn from(c: Vec<usize>) -> Self {
        Labels::Classes(c)
    }
}

impl<T: Float> From<Tensor<T>> for Labels<T> {
    fn from(t: Tensor<T>) -> Self {
        Labels::Targets(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_checks() {
        let classes = vec![0usize, 3, 1];
        let l: LabelsRef<'_, f32> = (&classes).into();
        assert_eq!(l.len(), 3);
        assert_eq!(l.slice(1, 3).unwrap(), Labels::Classes(vec![3, 1]));
        assert!(l.slice(2, 4).is_err());
        assert!(l.expect_classes("loss", 4).is_ok());
        let err = l.expect_classes("loss", 3).unwrap_err().to_string();
        assert_eq!(
            err,
            "loss: label 3 of sample 1 is not a class (the scores have 3)"
        );
        let t = Tensor::<f32>::arange(6).reshape([3, 2]).unwrap();
        let targets = LabelsRef::from(&t);
        assert_eq!(targets.len(), 3);
        assert_eq!(
            targets.slice(2, 3).unwrap(),
            Labels::Targets(Tensor::from_f64s(&[4.0, 5.0], [1, 2]).unwrap())
        );
        assert!(targets.expect_classes("loss", 10).is_err());
        assert!(l.expect_targets("L2Loss").is_err());
    }
}
