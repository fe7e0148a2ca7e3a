//! The fully connected op (MXNet's `FullyConnected`): `y = x · Wᵀ + b`, with W stored
//! (units, in_units) as Gluon stores it.

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::matmul::{gemm, MatMut, MatRef};
use kiln_tensor::{Activation, Float, Shape, Tensor};
use smallvec::{smallvec, SmallVec};
use std::rc::Rc;

/// y = f(z), z = x · Wᵀ + b, f an optional activation. dz = dy ⊙ f′ (from the saved y);
/// dx = dz · W; dW = dzᵀ · x; db = Σ_n dz.
struct Dense<T: Float> {
    x: Rc<Tensor<T>>,
    w: Rc<Tensor<T>>,
    /// The activation and the output it produced.
    activation: Option<(Activation, Rc<Tensor<T>>)>,
}

impl<T: Float> Backward<T> for Dense<T> {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn backward(&self, mut grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        if let Some((act, y)) = &self.activation {
            act.backward_in_place(grad.data_mut(), y.data());
        }
        let (units, n) = (self.w.dims()[0], self.x.dims()[0]);
        let in_units = self.w.dims()[1];
        // x is read as (n × in), whatever its rank
        let x = MatRef::new(self.x.data(), n, in_units);
        let dy = MatRef::new(grad.data(), n, units);
        // dx (n × in) = dy (n × units) · W (units × in), in x's shape
        let gx = if needs[0] {
            let mut gx = Tensor::zeros(self.x.shape().clone());
            let w = MatRef::new(self.w.data(), units, in_units);
            gemm(
                T::ONE,
                dy,
                w,
                T::ZERO,
                MatMut::new(gx.data_mut(), n, in_units),
            );
            Some(gx)
        } else {
            None
        };
        // dW (units × in) = dyᵀ (units × n) · x (n × in)
        let gw = if needs[1] {
            let mut gw = Tensor::zeros([units, in_units]);
            gemm(
                T::ONE,
                dy.t(),
                x,
                T::ZERO,
                MatMut::new(gw.data_mut(), units, in_units),
            );
            Some(gw)
        } else {
            None
        };
        let mut grads: Grads<T> = smallvec![gx, gw];
        if needs.len() == 3 {
            grads.push(if needs[2] {
                Some(grad.sum(&[0], false)?)
            } else {
                None
            });
        }
        Ok(grads)
    }
}

impl<T: Float> Var<T> {
    /// Fully connected: `x · Wᵀ + b`.
    ///
    /// # Shapes
    /// x (N, in_units), weight (units, in_units), bias (units) → (N, units). An x of
    /// higher rank is read as (N, product of the other axes), as Gluon's `Dense(flatten=True)`
    /// reads it, without a copy; its gradient comes back in its own shape.
    pub fn dense(&self, weight: &Var<T>, bias: Option<&Var<T>>) -> Result<Var<T>> {
        self.dense_activation(weight, bias, None)
    }

    /// [`Var::dense`] followed by an activation, as one op.
    ///
    /// # Shapes
    /// As [`Var::dense`].
    pub fn dense_activation(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        activation: Option<Activation>,
    ) -> Result<Var<T>> {
        let (x, w) = (self.value(), weight.value());
        let n = x.dims().first().copied().unwrap_or(0);
        let in_units: usize = x.dims().iter().skip(1).product();
        if x.rank() < 2 || w.rank() != 2 || in_units != w.dims()[1] {
            let read_as = if x.rank() > 2 {
                format!(" (read as [{n}, {in_units}])")
            } else {
                String::new()
            };
            return Err(AutogradError::invalid(
                "dense",
                format!(
                    "input {}{read_as} does not fit weight {} (expected input (N, {}))",
                    x.shape(),
                    w.shape(),
                    w.dims().get(1).copied().unwrap_or(0)
                ),
            ));
        }
        let units = w.dims()[0];
        // y (n × units) = x (n × in) · Wᵀ, which can be far larger than x and W
        let y_shape = Shape::from([n, units]);
        y_shape.elements("dense")?;
        let mut y = Tensor::zeros(y_shape);
        gemm(
            T::ONE,
            MatRef::new(x.data(), n, in_units),
            MatRef::new(w.data(), units, in_units).t(),
            T::ZERO,
            MatMut::new(y.data_mut(), n, units),
        );
        if let Some(b) = bias {
            if b.dims() != [w.dims()[0]] {
                return Err(AutogradError::invalid(
                    "dense",
                    format!("bias has shape {}, expected [{}]", b.shape(), w.dims()[0]),
                ));
            }
            for row in y.data_mut().chunks_mut(units) {
                row.iter_mut()
                    .zip(b.value().data())
                    .for_each(|(v, &bv)| *v += bv);
            }
        }
        if let Some(a) = activation {
            a.apply_in_place(y.data_mut());
        }
        let mut inputs: SmallVec<[&Var<T>; 3]> = smallvec![self, weight];
        inputs.extend(bias);
        Var::record("dense", &inputs, y, |y| Dense {
            x: Rc::clone(self.value_rc()),
            w: Rc::clone(weight.value_rc()),
            activation: activation.map(|a| (a, Rc::clone(y))),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Tape;
    use kiln_tensor::Activation;

    #[test]
    fn gradcheck_dense_with_and_without_bias() {
        let (x, w, b) = (leaf(&[5, 4], 1), leaf(&[3, 4], 2), leaf(&[3], 3));
        let all = [&x, &w, &b];
        assert_grads(&all, |t| t.leaf(&x).dense(&t.leaf(&w), Some(&t.leaf(&b))));
        assert_grads(&all[..2], |t| t.leaf(&x).dense(&t.leaf(&w), None));
    }

    #[test]
    fn gradcheck_dense_fused_activations() {
        let (x, w, b) = (leaf(&[4, 3], 6), leaf(&[5, 3], 7), leaf(&[5], 8));
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::SoftRelu] {
            assert_grads(&[&x, &w, &b], |t| {
                t.leaf(&x)
                    .dense_activation(&t.leaf(&w), Some(&t.leaf(&b)), Some(act))
            });
        }
    }

    #[test]
    fn dense_equals_matmul_with_transposed_weight() {
        let (x, w) = (leaf(&[2, 3], 4), leaf(&[4, 3], 5));
        let t = Tape::new();
        let y = t.leaf(&x).dense(&t.leaf(&w), None).unwrap();
        let expect = x
            .value()
            .matmul(&w.value().transpose(0, 1).unwrap())
            .unwrap();
        assert_eq!(y.value(), &expect);
    }

    /// A 4-d input is read as (N, C·H·W): the same values and weight gradients as after
    /// an explicit flatten, and the input's gradient in its own shape.
    #[test]
    fn dense_reads_higher_rank_input_as_flattened() {
        let (x, w, b) = (leaf(&[2, 3, 2, 2], 9), leaf(&[5, 12], 10), leaf(&[5], 11));
        assert_grads(&[&x, &w, &b], |t| {
            t.leaf(&x)
                .dense_activation(&t.leaf(&w), Some(&t.leaf(&b)), Some(Activation::Sigmoid))
        });
        let run = |flatten: bool| {
            let t = Tape::new();
            let xv = t.leaf(&x);
            let xv = if flatten { xv.flatten().unwrap() } else { xv };
            let y = xv
                .dense_activation(&t.leaf(&w), Some(&t.leaf(&b)), Some(Activation::Tanh))
                .unwrap();
            let out = y.value().clone();
            y.sum().unwrap().backward().unwrap();
            (out, x.grad().unwrap().clone(), w.grad().unwrap().clone())
        };
        let (direct, flattened) = (run(false), run(true));
        assert_eq!(direct.0, flattened.0);
        assert_eq!(direct.1.shape().dims(), &[2, 3, 2, 2]);
        assert_eq!(direct.1.data(), flattened.1.data());
        assert_eq!(direct.2, flattened.2);
    }

    #[test]
    fn dense_names_mismatched_shapes() {
        let t = Tape::<f64>::new();
        let err = t
            .leaf(&leaf(&[2, 256], 1))
            .dense(&t.leaf(&leaf(&[120, 400], 2)), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dense: input [2, 256] does not fit weight [120, 400] (expected input (N, 400))"
        );
    }
}
