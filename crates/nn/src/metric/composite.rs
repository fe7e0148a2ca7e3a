//! Gluon's `CompositeEvalMetric`: several metrics updated with the same batches.

use super::{EvalMetric, Metric, MetricUpdate};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{DType, Float, Tensor};
use std::any::Any;

/// Several metrics fed the same batches, in order (Gluon's `mx.metric.CompositeEvalMetric`,
/// named `composite`). Its [`Metric::name_values`] lists every child's pairs in order
/// (Gluon's `get_name_value`); [`Metric::get`] is the first child's value (NaN with
/// none), since a composite has no one value of its own.
///
/// ```
/// use kiln_nn::metric::{Accuracy, CompositeEvalMetric, CrossEntropy};
/// use kiln_nn::{LabelsRef, Metric, MetricUpdate};
/// use kiln_tensor::Tensor;
/// let mut metrics = CompositeEvalMetric::new().add(Accuracy::new()).add(CrossEntropy::new());
/// let probs = Tensor::<f32>::from_f64s(&[0.25, 0.75, 0.5, 0.5], [2, 2])?;
/// metrics.update(LabelsRef::Classes(&[1, 1]), &probs)?;
/// let names: Vec<String> = metrics.name_values().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["accuracy", "cross-entropy"]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
#[derive(Default)]
pub struct CompositeEvalMetric {
    metrics: Vec<Box<dyn EvalMetric>>,
}

impl std::fmt::Debug for CompositeEvalMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositeEvalMetric")
            .field("name_values", &self.name_values())
            .finish()
    }
}

impl CompositeEvalMetric {
    /// A composite of no metric.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a child metric, updated after the ones before it (Gluon's name, as
    /// `Sequential::add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, metric: impl EvalMetric + 'static) -> Self {
        self.push(metric);
        self
    }

    /// Adds a child metric in place (Gluon's `add`).
    pub fn push(&mut self, metric: impl EvalMetric + 'static) {
        self.metrics.push(Box::new(metric));
    }

    /// The child at `index` (Gluon's `get_metric`).
    pub fn get_metric(&self, index: usize) -> Option<&dyn EvalMetric> {
        self.metrics.get(index).map(|m| &**m)
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// True with no child.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

impl Metric for CompositeEvalMetric {
    fn name(&self) -> String {
        "composite".to_string()
    }

    fn get(&self) -> f64 {
        self.metrics.first().map_or(f64::NAN, |m| m.get())
    }

    fn reset(&mut self) {
        self.metrics.iter_mut().for_each(|m| m.reset());
    }

    fn name_values(&self) -> Vec<(String, f64)> {
        self.metrics.iter().flat_map(|m| m.name_values()).collect()
    }
}

/// `t` as a tensor of `U`, which `T::DTYPE` says it is.
fn same_type<T: Float, U: Float>(t: &Tensor<T>) -> Result<&Tensor<U>> {
    (t as &dyn Any).downcast_ref::<Tensor<U>>().ok_or_else(|| {
        NnError::invalid(
            "composite",
            format!(
                "internal: a {} tensor is not of type {}",
                T::DTYPE,
                U::DTYPE
            ),
        )
    })
}

/// `labels` as labels of `U`, which `T::DTYPE` says they are.
fn same_labels<'a, T: Float, U: Float>(labels: LabelsRef<'a, T>) -> Result<LabelsRef<'a, U>> {
    Ok(match labels {
        LabelsRef::Classes(c) => LabelsRef::Classes(c),
        LabelsRef::Targets(t) => LabelsRef::Targets(same_type::<T, U>(t)?),
    })
}

impl<T: Float> MetricUpdate<T> for CompositeEvalMetric {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        for metric in &mut self.metrics {
            match T::DTYPE {
                DType::F32 => MetricUpdate::<f32>::update(
                    &mut **metric,
                    same_labels::<T, f32>(labels)?,
                    same_type::<T, f32>(preds)?,
                )?,
                DType::F64 => MetricUpdate::<f64>::update(
                    &mut **metric,
                    same_labels::<T, f64>(labels)?,
                    same_type::<T, f64>(preds)?,
                )?,
            }
        }
        Ok(())
    }
}
