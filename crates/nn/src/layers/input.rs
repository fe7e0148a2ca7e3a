//! The checks a layer with parameters makes on its input before using it: a batch that is
//! not empty, of finite values. A NaN let through would silently turn every weight NaN.

use crate::error::{NnError, Result};
use kiln_tensor::{Float, Shape, Tensor};

/// An error naming `op` if `x` is an empty batch or holds a NaN or ±∞.
pub(crate) fn check_input<T: Float>(op: &'static str, x: &Tensor<T>) -> Result<()> {
    check_batch(op, x.shape())?;
    if let Some((index, value)) = x.first_non_finite() {
        return Err(NnError::NonFinite {
            op,
            index,
            value: value.to_f64(),
            shape: x.shape().clone(),
        });
    }
    Ok(())
}

/// The part of [`check_input`] a shape can answer: an error naming `op` if an input of
/// shape `x` is a scalar or an empty batch.
pub(crate) fn check_batch(op: &'static str, x: &Shape) -> Result<()> {
    match x.dims().first() {
        None => Err(NnError::invalid(op, "the input is a scalar, not a batch")),
        Some(0) => Err(NnError::invalid(
            op,
            format!("empty batch (input shape {x})"),
        )),
        _ => Ok(()),
    }
}
