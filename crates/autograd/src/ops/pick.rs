//! Picking one element along an axis per lane, by index (MXNet's `pick`): how Gluon's
//! `SoftmaxCrossEntropyLoss` reads the log-probability of each label.

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y[o, i] = x[o, index[o, i], i] in the (outer, len, inner) view of the axis.
/// d y[o, i] / d x[o, j, i] = [j = index[o, i]]: dx is zero except dy at each picked place.
struct Pick {
    x_shape: Shape,
    axis: usize,
    index: Vec<usize>,
}

impl<T: Float> Backward<T> for Pick {
    fn name(&self) -> &'static str {
        "pick"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let (_, len, inner) = self.x_shape.split_at_axis(self.axis);
        let mut dx = Tensor::zeros(self.x_shape.clone());
        let out = dx.data_mut();
        for (lane, (&j, &g)) in self.index.iter().zip(grad.data()).enumerate() {
            let (o, i) = (lane / inner, lane % inner);
            out[(o * len + j) * inner + i] = g;
        }
        Ok(smallvec![Some(dx)])
    }
}

impl<T: Float> Var<T> {
    /// The element at `index` along `axis` of every lane: `index` holds one entry per
    /// element of the shape without `axis`, in row-major order. The axis is kept as
    /// length 1 when `keepdims`. Unlike MXNet's `pick` (whose default mode clips), an
    /// index out of range is an error.
    ///
    /// # Shapes
    /// x (…, C, …) with C at `axis`, `index` numel(x) / C values in 0..C → x's shape
    /// without `axis` (or with it as 1 when `keepdims`).
    pub fn pick(&self, axis: usize, index: &[usize], keepdims: bool) -> Result<Var<T>> {
        let op = "pick";
        let x = self.value();
        if axis >= x.rank() {
            return Err(AutogradError::invalid(
                op,
                format!("axis {axis} is out of range for shape {}", x.shape()),
            ));
        }
        let (outer, len, inner) = x.shape().split_at_axis(axis);
        if index.len() != outer * inner {
            return Err(AutogradError::invalid(
                op,
                format!(
                    "{} indices for the {} lanes along axis {axis} of shape {}",
                    index.len(),
                    outer * inner,
                    x.shape()
                ),
            ));
        }
        if let Some((lane, &bad)) = index.iter().enumerate().find(|(_, &j)| j >= len) {
            return Err(AutogradError::invalid(
                op,
                format!(
                    "index {bad} of lane {lane} is out of range for axis {axis} of length {len} (shape {})",
                    x.shape()
                ),
            ));
        }
        let picked: Vec<T> = index
            .iter()
            .enumerate()
            .map(|(lane, &j)| x.data()[((lane / inner) * len + j) * inner + lane % inner])
            .collect();
        let mut dims = x.dims().to_vec();
        if keepdims {
            dims[axis] = 1;
        } else {
            dims.remove(axis);
        }
        let value = Tensor::from_vec(picked, dims)?;
        Var::record(op, &[self], value, |_| Pick {
            x_shape: x.shape().clone(),
            axis,
            index: index.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Var;
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_pick_each_axis() {
        let a = leaf(&[2, 3, 4], 1);
        // axis 1: 2 · 4 lanes with indices in 0..3
        assert_grads(&[&a], |t| {
            t.leaf(&a).pick(1, &[0, 2, 1, 1, 2, 0, 0, 1], false)
        });
        assert_grads(&[&a], |t| t.leaf(&a).pick(2, &[3, 0, 1, 2, 2, 3], true));
        assert_grads(&[&a], |t| t.leaf(&a).pick(0, &[1; 12], false));
    }

    #[test]
    fn picks_by_lane_and_refuses_bad_indices() {
        // [[0, 1, 2], [3, 4, 5]] picked along axis 1 at [2, 0] → [2, 3]; along axis 0 at
        // [1, 0, 1] → [3, 1, 5]
        let x = Var::constant(Tensor::<f64>::arange(6).reshape([2, 3]).unwrap());
        let p = x.pick(1, &[2, 0], true).unwrap();
        assert_eq!((p.dims(), p.value().data()), (&[2, 1][..], &[2.0, 3.0][..]));
        let p = x.pick(0, &[1, 0, 1], false).unwrap();
        assert_eq!(p.value().data(), &[3.0, 1.0, 5.0]);
        let err = x.pick(1, &[2, 3], false).unwrap_err().to_string();
        assert_eq!(
            err,
            "pick: index 3 of lane 1 is out of range for axis 1 of length 3 (shape [2, 3])"
        );
        assert!(x.pick(1, &[0], false).is_err());
        assert!(x.pick(2, &[0, 0], false).is_err());
    }
}
