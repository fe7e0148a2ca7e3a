//! Sums and means over axes with Kahan-compensated accumulation in the element type, as
//! MXNet 1.x's CPU reductions compute them (`sum`, `mean`, and Gluon's final
//! `mean(loss, axis=batch_axis, exclude=True)` of every loss).
//!
//! MXNet's `seq_reduce_assign` (src/operator/tensor/broadcast_reduce-inl.h) folds, for each
//! output element, the reduced elements in row-major order with `mshadow::red::sum`'s
//! residual form (src/operator/mshadow_op.h): `y = x − r; t = s + y; r = (t − s) − y;
//! s = t`, from `s = r = 0`. A mean is that sum divided by the count
//! (`ReduceAxesComputeImpl`: `out /= scalar(count)`), and its backward divides the
//! broadcast gradient by the count (`ReduceAxesBackwardUseInOutImpl`).

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::{smallvec, SmallVec};

/// y = Σ_axes x, or that sum / count for a mean. d y / d x = 1 (sum) or 1 / count (mean):
/// dx is dy repeated along the reduced axes, divided by the count for a mean.
struct CompensatedSum {
    x_shape: Shape,
    /// The shape of y with the reduced axes kept as length 1.
    kept: Shape,
    /// The number of elements averaged, for a mean.
    count: Option<usize>,
}

impl<T: Float> Backward<T> for CompensatedSum {
    fn name(&self) -> &'static str {
        match self.count {
            Some(_) => "mean_compensated",
            None => "sum_compensated",
        }
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let mut dx = grad
            .into_reshape(self.kept.clone())?
            .broadcast_to(self.x_shape.clone())?;
        if let Some(count) = self.count {
            let count = T::from_usize(count);
            dx.data_mut().iter_mut().for_each(|g| *g /= count);
        }
        Ok(smallvec![Some(dx)])
    }
}

/// The Kahan-compensated sums of `x` over `reduced` (a flag per axis), one per element of
/// the shape with those axes kept as length 1, each folding its elements in row-major
/// order.
fn kahan_sums<T: Float>(x: &Tensor<T>, reduced: &[bool], kept: &Shape) -> Tensor<T> {
    let dims = x.dims();
    let kept_strides = kept.strides();
    // where one step along each input axis moves in the output (0 along a reduced axis)
    let out_step: SmallVec<[usize; 4]> = (0..dims.len())
        .map(|a| if reduced[a] { 0 } else { kept_strides[a] })
        .collect();
    let n_out = kept.numel();
    let (mut sum, mut residual) = (vec![T::ZERO; n_out], vec![T::ZERO; n_out]);
    let mut coord: SmallVec<[usize; 4]> = smallvec![0; dims.len()];
    let mut at = 0;
    for &v in x.data() {
        // mshadow::red::sum::Reduce(dst, src, residual)
        let (s, r) = (sum[at], residual[at]);
        let y = v - r;
        let t = s + y;
        residual[at] = (t - s) - y;
        sum[at] = t;
        // the next input element in row-major order: an odometer over the axes
        for a in (0..dims.len()).rev() {
            coord[a] += 1;
            at += out_step[a];
            if coord[a] < dims[a] {
                break;
            }
            at -= out_step[a] * dims[a];
            coord[a] = 0;
        }
    }
    Tensor::from_vec(sum, kept.clone()).expect("one sum per element of the kept shape")
}

/// Validates `axes` of `x` for `op`: the per-axis reduced flags and the kept shape.
fn plan(op: &'static str, x: &Tensor<impl Float>, axes: &[usize]) -> Result<(Vec<bool>, Shape)> {
    let mut reduced = vec![false; x.rank()];
    for &a in axes {
        if a >= x.rank() {
            return Err(AutogradError::invalid(
                op,
                format!("axis {a} is out of range for shape {}", x.shape()),
            ));
        }
        if std::mem::replace(&mut reduced[a], true) {
            return Err(AutogradError::invalid(
                op,
                format!("axis {a} is given twice (shape {})", x.shape()),
            ));
        }
    }
    let kept: Vec<usize> = x
        .dims()
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    Ok((reduced, kept.into()))
}

fn reduce<T: Float>(x: &Var<T>, axes: &[usize], keepdims: bool, mean: bool) -> Result<Var<T>> {
    let op = if mean {
        "mean_compensated"
    } else {
        "sum_compensated"
    };
    let (reduced, kept) = plan(op, x.value(), axes)?;
    let count: usize = x
        .dims()
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .map(|(&d, _)| d)
        .product();
    if mean && count == 0 {
        return Err(AutogradError::invalid(
            op,
            format!("cannot average over an empty axis of shape {}", x.shape()),
        ));
    }
    let mut value = kahan_sums(x.value(), &reduced, &kept);
    if mean {
        let c = T::from_usize(count);
        value.data_mut().iter_mut().for_each(|v| *v /= c);
    }
    if !keepdims {
        let dropped: Vec<usize> = x
            .dims()
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .collect();
        value = value.into_reshape(dropped)?;
    }
    Var::record(op, &[x], value, |_| CompensatedSum {
        x_shape: x.shape().clone(),
        kept,
        count: mean.then_some(count),
    })
}

impl<T: Float> Var<T> {
    /// Sum over `axes` with Kahan-compensated accumulation, as MXNet's `sum`; the reduced
    /// axes are kept as length 1 when `keepdims`.
    ///
    /// # Shapes
    /// Any shape → the shape without `axes` (or with them as 1 when `keepdims`).
    pub fn sum_compensated(&self, axes: &[usize], keepdims: bool) -> Result<Var<T>> {
        reduce(self, axes, keepdims, false)
    }

    /// Mean over `axes` as MXNet's `mean`: the compensated sum divided by the count (a
    /// division, not a multiplication by its reciprocal). An error if the axes hold no
    /// element.
    ///
    /// # Shapes
    /// Any shape → the shape without `axes` (or with them as 1 when `keepdims`).
    pub fn mean_compensated(&self, axes: &[usize], keepdims: bool) -> Result<Var<T>> {
        reduce(self, axes, keepdims, true)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Var;
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_sum_and_mean_compensated() {
        let a = leaf(&[2, 3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).sum_compensated(&[0, 2], false));
        assert_grads(&[&a], |t| t.leaf(&a).sum_compensated(&[1], true));
        assert_grads(&[&a], |t| t.leaf(&a).mean_compensated(&[1, 2], false));
        assert_grads(&[&a], |t| t.leaf(&a).mean_compensated(&[], false));
    }

    #[test]
    fn sums_in_row_major_order_per_output() {
        // np.arange(24).reshape(2, 3, 4).sum(axis=(0, 2)) == [60, 92, 124]
        let x = Var::constant(Tensor::<f64>::arange(24).reshape([2, 3, 4]).unwrap());
        let s = x.sum_compensated(&[2, 0], false).unwrap();
        assert_eq!(s.dims(), &[3]);
        assert_eq!(s.value().data(), &[60., 92., 124.]);
        // mean over axis 1 of [[0, 1, 2, 3], …]: (0 + 4 + 8) / 3 = 4, …
        let m = x.mean_compensated(&[1], true).unwrap();
        assert_eq!(m.dims(), &[2, 1, 4]);
        assert_eq!(&m.value().data()[..4], &[4., 5., 6., 7.]);
        assert!(x.sum_compensated(&[3], false).is_err());
        assert!(x.sum_compensated(&[1, 1], false).is_err());
        let empty = Var::constant(Tensor::<f64>::zeros([2, 0]));
        assert!(empty.mean_compensated(&[1], false).is_err());
        assert_eq!(
            empty.sum_compensated(&[1], false).unwrap().value().data(),
            &[0., 0.]
        );
    }

    #[test]
    fn compensation_recovers_what_a_plain_sum_loses() {
        // f32: 1 followed by ten 1e-8. A plain left fold stays at 1, since each 1e-8 is
        // below half an ulp of 1 (5.96e-8); Kahan carries the lost part in the residual
        // until it counts: the sum becomes 1.00000012, the f32 next above 1.
        let mut v = vec![1e-8f32; 11];
        v[0] = 1.0;
        let x = Var::constant(Tensor::from_vec(v.clone(), [11]).unwrap());
        let kahan = x.sum_compensated(&[0], false).unwrap().value().data()[0];
        let plain = x.sum_axes(&[0], false).unwrap().value().data()[0];
        assert_eq!(plain, 1.0);
        assert_eq!(kahan, 1.000_000_1);
    }

    #[test]
    fn the_mean_divides_by_the_count() {
        // in f32, 9 / 10 = 0.89999998 (the f32 nearest 0.9), while 9 · f32(1/10) =
        // 0.90000004, one ulp above: MXNet divides
        let mut v = vec![0.0f32; 10];
        v[0] = 9.0;
        let x = Var::constant(Tensor::from_vec(v, [10]).unwrap());
        let divided = x.mean_compensated(&[0], false).unwrap().value().data()[0];
        let scaled = x.mean_axes(&[0], false).unwrap().value().data()[0];
        assert_eq!(divided, 0.9f32);
        assert_eq!(scaled, 0.900_000_04f32);
    }
}
