//! [`clip_global_norm`]: Gluon's `gluon.utils.clip_global_norm`, rescaling all gradients
//! together so that their joint 2-norm is at most a bound.

use crate::block::ParameterDict;
use crate::error::{NnError, Result};
use kiln_tensor::Float;

/// Rescales the gradients of `params` so that their joint 2-norm is at most `max_norm`,
/// and returns the norm they had, as `gluon.utils.clip_global_norm` (MXNet 1.9,
/// `python/mxnet/gluon/utils.py`) computes it in the gradients' type:
///
/// ```text
/// norm  = √(Σ_arrays Σ_i g_i²)
/// scale = min(max_norm / (norm + 1e-8), 1)
/// g     ← g·scale                       for every gradient
/// ```
///
/// So gradients shrink as soon as `norm + 1e-8 > max_norm`, and `max_norm` and `1e-8`
/// enter in the gradients' type. The gradients taken are those of the trainable
/// parameters that have one (Gluon's `[p.grad() for p in params]`); whether each is fresh
/// is left as it was, so call this between the backward and `trainer.step`:
///
/// ```
/// # use kiln_nn::*; use kiln_autograd::Tape; use kiln_tensor::Tensor;
/// let net = Dense::<f64>::new(1).in_units(2).use_bias(false);
/// net.initialize(&Init::Constant(1.0), 0)?;
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::from_f64s(&[3.0, 4.0], [1, 2])?);
/// net.forward(&x)?.sum()?.backward()?;               // gradient (3, 4): norm 5
/// let norm = clip_global_norm(&net.collect_params(), 1.0)?;
/// assert_eq!(norm, 5.0);
/// let g = net.weight().grad().unwrap();
/// assert!((g.data()[0] - 0.6).abs() < 1e-8 && (g.data()[1] - 0.8).abs() < 1e-8);
/// # Ok::<(), NnError>(())
/// ```
///
/// MXNet sums each array with a BLAS `dot` and the arrays with `add_n`; kiln sums each
/// array in order, then the arrays in order, so the last bit of the norm may differ from
/// MXNet's (and does not depend on the number of threads). Where MXNet only warns about
/// a NaN or infinite norm and leaves the results "undefined" (every gradient NaN, or zero
/// when the squares overflow), kiln refuses, naming the first parameter whose gradient
/// is not finite, and changes nothing. A `max_norm` that is not > 0 is refused too.
pub fn clip_global_norm<T: Float>(params: &ParameterDict<T>, max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(NnError::invalid(
            "clip_global_norm",
            format!("max_norm must be > 0, got {max_norm}"),
        ));
    }
    let mut total = T::ZERO;
    let mut with_grad = Vec::new();
    for (_, p) in params.iter() {
        if !p.is_trainable() {
            continue;
        }
        let Some(sum) = p.with_leaf(|leaf| {
            leaf.grad()
                .map(|g| g.data().iter().fold(T::ZERO, |s, &x| s + x * x))
        }) else {
            continue;
        };
        let Some(sum) = sum else { continue };
        if !sum.is_finite() {
            let what = if p.grad().is_some_and(|g| g.all_finite()) {
                "holds values whose squares overflow"
            } else {
                "holds NaN or infinite values"
            };
            return Err(NnError::invalid(
                "clip_global_norm",
                format!(
                    "the gradient of parameter {} {what}; no gradient was changed",
                    p.name()
                ),
            ));
        }
        total += sum;
        with_grad.push(p);
    }
    let norm = total.sqrt();
    if !norm.is_finite() {
        return Err(NnError::invalid(
            "clip_global_norm",
            format!(
                "the squared norm of the gradients overflows {}; no gradient was changed",
                T::DTYPE.name()
            ),
        ));
    }
    let scale = T::from_f64(max_norm) / (norm + T::from_f64(1e-8));
    if scale < T::ONE {
        for p in with_grad {
            p.with_leaf(|leaf| {
                let fresh = leaf.is_fresh();
                if let Some(mut g) = leaf.take_grad() {
                    g.data_mut().iter_mut().for_each(|x| *x *= scale);
                    leaf.set_grad(g)
                        .expect("a trainable leaf takes back its own gradient");
                }
                if !fresh {
                    leaf.mark_stale();
                }
            });
        }
    }
    Ok(norm.to_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockExt, Dense, Init};
    use kiln_tensor::Tensor;

    /// A layer whose one weight row has gradient `xs`.
    fn net_with_grad(xs: &[f64]) -> Dense<f64> {
        let net = Dense::<f64>::new(1).in_units(xs.len()).use_bias(false);
        net.initialize(&Init::Constant(1.0), 0).unwrap();
        let grad = Tensor::from_f64s(xs, [1, xs.len()]).unwrap();
        net.weight().leaf().unwrap().set_grad(grad).unwrap();
        net
    }

    #[test]
    fn small_gradients_are_left_alone_large_ones_scaled() {
        let net = net_with_grad(&[3.0, 4.0]);
        assert_eq!(clip_global_norm(&net.collect_params(), 10.0).unwrap(), 5.0);
        assert_eq!(net.weight().grad().unwrap().data(), &[3.0, 4.0]);
        assert_eq!(clip_global_norm(&net.collect_params(), 2.5).unwrap(), 5.0);
        // scale = 2.5 / (5 + 1e-8)
        let scale = 2.5 / (5.0 + 1e-8);
        assert_eq!(
            net.weight().grad().unwrap().data(),
            &[3.0 * scale, 4.0 * scale]
        );
        assert!(
            net.weight().leaf().unwrap().is_fresh(),
            "still fresh for step"
        );
    }

    #[test]
    fn a_norm_just_below_the_bound_is_still_scaled_as_in_gluon() {
        // norm + 1e-8 > max_norm although norm < max_norm
        let net = net_with_grad(&[3.0, 4.0]);
        clip_global_norm(&net.collect_params(), 5.0 + 0.5e-8).unwrap();
        assert!(net.weight().grad().unwrap().data()[0] < 3.0);
    }

    #[test]
    fn non_finite_gradients_and_bounds_are_refused() {
        let net = net_with_grad(&[f64::NAN, 1.0]);
        let err = clip_global_norm(&net.collect_params(), 1.0).unwrap_err();
        assert!(err.to_string().contains("dense"), "{err}");
        assert!(err.to_string().contains("NaN or infinite"), "{err}");
        let net = net_with_grad(&[1e300, 1e300]);
        let err = clip_global_norm(&net.collect_params(), 1.0).unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
        assert_eq!(net.weight().grad().unwrap().data(), &[1e300, 1e300]);
        for bad in [0.0, -1.0, f64::NAN] {
            let err = clip_global_norm(&net.collect_params(), bad).unwrap_err();
            assert!(err.to_string().contains("max_norm must be > 0"), "{err}");
        }
    }
}
