//! Metrics: [`Accuracy`], the fraction of samples whose highest score is the label.

use crate::error::{NnError, Result};
use kiln_tensor::{Float, Tensor};

/// Running accuracy over batches (Gluon's `mx.metric.Accuracy`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Accuracy {
    /// Samples predicted correctly so far.
    pub correct: usize,
    /// Samples seen so far.
    pub total: usize,
}

impl Accuracy {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a batch: `scores` (N, C), `labels` N class indices.
    pub fn update<T: Float>(&mut self, scores: &Tensor<T>, labels: &[usize]) -> Result<()> {
        self.correct += correct_count(scores, labels)?;
        self.total += labels.len();
        Ok(())
    }

    /// correct / total (NaN before any update).
    pub fn get(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }
}

/// How many rows of `scores` (N, C) have their first maximum at the label.
pub fn correct_count<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> Result<usize> {
    if scores.rank() != 2 || scores.dims()[0] != labels.len() {
        return Err(NnError::invalid(
            "accuracy",
            format!(
                "scores of shape {} do not match {} labels",
                scores.shape(),
                labels.len()
            ),
        ));
    }
    let predicted = scores.argmax(1, false)?;
    Ok(predicted
        .data()
        .iter()
        .zip(labels)
        .filter(|(p, &l)| p.to_f64() as usize == l)
        .count())
}

/// The accuracy of one batch.
pub fn accuracy<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> Result<f64> {
    Ok(correct_count(scores, labels)? as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_maximum() {
        let s = Tensor::<f32>::from_f64s(&[0.1, 0.9, 0.5, 0.5, 2.0, 1.0], [3, 2]).unwrap();
        assert_eq!(correct_count(&s, &[1, 0, 0]).unwrap(), 3);
        let mut acc = Accuracy::new();
        acc.update(&s, &[0, 1, 0]).unwrap();
        assert_eq!((acc.correct, acc.total), (1, 3));
        assert!(acc.update(&s, &[0]).is_err());
    }
}
