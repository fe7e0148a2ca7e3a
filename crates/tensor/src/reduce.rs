//! Reductions: sum, mean, max and argmax over all elements or chosen axes, with NumPy's
//! `keepdims`; and [`Tensor::sum_to_shape`], which undoes a broadcast (the backward of
//! every broadcasting op). Several axes are reduced one at a time, last axis first.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::shape::{Dims, Shape};
use crate::tensor::Tensor;

/// Reduces one axis: `out[o, i] = fold(init, in[o, 0..len, i])` in the (outer, len, inner)
/// view; the axis is kept with length 1.
fn reduce_axis<T: Float>(
    x: &Tensor<T>,
    axis: usize,
    init: T,
    fold: impl Fn(T, T) -> T,
) -> Tensor<T> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let mut out = vec![init; outer * inner];
    for o in 0..outer {
        let acc = &mut out[o * inner..(o + 1) * inner];
        for j in 0..len {
            let row = &x.data()[(o * len + j) * inner..(o * len + j + 1) * inner];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = fold(*a, v);
            }
        }
    }
    let mut shape: Dims = x.dims().into();
    shape[axis] = 1;
    Tensor::from_parts(out, shape.into())
}

/// Checks axes are in range and distinct; returns them sorted, largest first.
fn sorted_axes(op: &'static str, shape: &Shape, axes: &[usize]) -> Result<Dims> {
    let mut sorted: Dims = axes.into();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    for (i, &axis) in sorted.iter().enumerate() {
        if axis >= shape.rank() {
            return Err(TensorError::Axis {
                op,
                axis,
                shape: shape.clone(),
            });
        }
        if i > 0 && sorted[i - 1] == axis {
            return Err(TensorError::invalid(
                op,
                format!("axis {axis} is given twice"),
            ));
        }
    }
    Ok(sorted)
}

fn drop_axes(shape: &Shape, axes: &[usize]) -> Shape {
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect::<Dims>()
        .into()
}

/// Folds `axes` one at a time with `fold`, then drops them unless `keepdims`.
fn reduce_axes<T: Float>(
    op: &'static str,
    x: &Tensor<T>,
    axes: &[usize],
    keepdims: bool,
    init: T,
    fold: impl Fn(T, T) -> T + Copy,
) -> Result<Tensor<T>> {
    let sorted = sorted_axes(op, x.shape(), axes)?;
    let mut out = x.clone();
    for &axis in &sorted {
        out = reduce_axis(&out, axis, init, fold);
    }
    if !keepdims {
        let shape = drop_axes(x.shape(), &sorted);
        out = out.with_shape(shape);
    }
    Ok(out)
}

/// NumPy's max: NaN wins, otherwise the larger.
#[inline(always)]
fn nan_max<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || a >= b {
        a
    } else {
        b
    }
}

impl<T: Float> Tensor<T> {
    /// Sum of all elements (0 for an empty tensor).
    pub fn sum_all(&self) -> T {
        self.data().iter().copied().sum()
    }

    /// Mean of all elements (NaN for an empty tensor).
    pub fn mean_all(&self) -> T {
        self.sum_all() / T::from_usize(self.numel())
    }

    /// Largest element (NaN if any is NaN); an error for an empty tensor.
    pub fn max_all(&self) -> Result<T> {
        let (&first, rest) = self
            .data()
            .split_first()
            .ok_or_else(|| TensorError::invalid("max", "the tensor is empty"))?;
        Ok(rest.iter().fold(first, |a, &b| nan_max(a, b)))
    }

    /// Flat index of the first largest element; an error for an empty tensor.
    pub fn argmax_all(&self) -> Result<usize> {
        if self.numel() == 0 {
            return Err(TensorError::invalid("argmax", "the tensor is empty"));
        }
        let mut best = 0;
        for (i, &v) in self.data().iter().enumerate() {
            let b = self.data()[best];
            if (v.is_nan() && !b.is_nan()) || v > b {
                best = i;
            }
        }
        Ok(best)
    }

    /// Sum over `axes`; the reduced axes are kept with length 1 when `keepdims`.
    pub fn sum(&self, axes: &[usize], keepdims: bool) -> Result<Tensor<T>> {
        reduce_axes("sum", self, axes, keepdims, T::ZERO, |a, b| a + b)
    }

    /// Mean over `axes`; an error if one of them is empty.
    pub fn mean(&self, axes: &[usize], keepdims: bool) -> Result<Tensor<T>> {
        let sum = reduce_axes("mean", self, axes, keepdims, T::ZERO, |a, b| a + b)?;
        let count: usize = axes.iter().map(|&a| self.dims()[a]).product();
        if count == 0 {
            return Err(TensorError::invalid(
                "mean",
                format!(
                    "cannot average over an empty axis of shape {}",
                    self.shape()
                ),
            ));
        }
        Ok(sum.div_scalar(T::from_usize(count)))
    }

    /// Maximum over `axes`; an error if one of them is empty.
    pub fn max(&self, axes: &[usize], keepdims: bool) -> Result<Tensor<T>> {
        if axes.iter().any(|&a| self.dims().get(a) == Some(&0)) {
            return Err(TensorError::invalid(
                "max",
                format!(
                    "cannot take the maximum of an empty axis of shape {}",
                    self.shape()
                ),
            ));
        }
        reduce_axes("max", self, axes, keepdims, T::NEG_INFINITY, nan_max)
    }

    /// Index of the first maximum along `axis`, as a value of `T` (as MXNet's `argmax`).
    pub fn argmax(&self, axis: usize, keepdims: bool) -> Result<Tensor<T>> {
        if axis >= self.rank() {
            return Err(TensorError::Axis {
                op: "argmax",
                axis,
                shape: self.shape().clone(),
            });
        }
        let (outer, len, inner) = self.shape().split_at_axis(axis);
        if len == 0 {
            return Err(TensorError::invalid(
                "argmax",
                format!("axis {axis} of shape {} is empty", self.shape()),
            ));
        }
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| self.data()[(o * len + j) * inner + i];
                let mut best = 0;
                for j in 1..len {
                    let (v, b) = (at(j), at(best));
                    if (v.is_nan() && !b.is_nan()) || v > b {
                        best = j;
                    }
                }
                out.push(T::from_usize(best));
            }
        }
        let mut shape: Dims = self.dims().into();
        if keepdims {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        Ok(Tensor::from_parts(out, shape.into()))
    }

    /// Sums away the axes along which `shape` was broadcast to `self.shape()`, so the
    /// result has `shape`: the gradient of a broadcast.
    pub fn sum_to_shape(&self, shape: &Shape) -> Result<Tensor<T>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        if shape.broadcast(self.shape()).as_ref() != Some(self.shape()) {
            return Err(TensorError::Broadcast {
                op: "sum_to_shape",
                lhs: self.shape().clone(),
                rhs: shape.clone(),
            });
        }
        let lead = self.rank() - shape.rank();
        let axes: Dims = (0..self.rank())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && self.dims()[i] != 1))
            .collect();
        let summed = self.sum(&axes, true)?;
        Ok(summed.with_shape(shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_means_over_axes() {
        // np.arange(24).reshape(2,3,4).sum(axis=(0,2)) == [60, 92, 124]
        let x = Tensor::<f64>::arange(24).reshape([2, 3, 4]).unwrap();
        let s = x.sum(&[0, 2], false).unwrap();
        assert_eq!(s.dims(), &[3]);
        assert_eq!(s.data(), &[60., 92., 124.]);
        assert_eq!(x.sum(&[2, 0], true).unwrap().dims(), &[1, 3, 1]);
        assert_eq!(x.mean(&[1], false).unwrap().data()[0], 4.0);
        assert_eq!(x.sum_all(), 276.0);
        assert!(x.sum(&[1, 1], false).is_err());
        assert!(x.sum(&[3], false).is_err());
    }

    #[test]
    fn max_and_argmax() {
        let x = Tensor::<f32>::from_f64s(&[1., 7., 7., 0., 9., 2.], [2, 3]).unwrap();
        assert_eq!(x.max(&[1], false).unwrap().data(), &[7., 9.]);
        assert_eq!(x.argmax(1, false).unwrap().data(), &[1., 1.]);
        assert_eq!(x.argmax(0, true).unwrap().dims(), &[1, 3]);
        assert_eq!(x.max_all().unwrap(), 9.0);
        assert_eq!(x.argmax_all().unwrap(), 4);
        assert!(Tensor::<f32>::zeros([0]).max_all().is_err());
    }

    #[test]
    fn sum_to_shape_undoes_broadcast() {
        let g = Tensor::<f64>::ones([2, 3, 4]);
        let b = g.sum_to_shape(&Shape::from([3, 1])).unwrap();
        assert_eq!(b.dims(), &[3, 1]);
        assert_eq!(b.data(), &[8., 8., 8.]);
        assert!(g.sum_to_shape(&Shape::from([2, 1])).is_err());
    }
}
