//! Element-wise binary ops with NumPy broadcasting (add, sub, mul, div, maximum, minimum,
//! prelu) and ops with a scalar. Equal shapes and a scalar operand take a flat fast path; every
//! other case walks the broadcast shape with an inner loop over its last axis.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::layout::broadcast_strides;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::unary::leaky_relu;
use smallvec::SmallVec;

/// The broadcast shape of two operands of `op`, or an error naming both shapes (also when
/// the broadcast shape is one no tensor can have: (2³², 1) with (1, 2³²)).
pub fn broadcast_shapes(op: &'static str, lhs: &Shape, rhs: &Shape) -> Result<Shape> {
    let shape = lhs.broadcast(rhs).ok_or_else(|| TensorError::Broadcast {
        op,
        lhs: lhs.clone(),
        rhs: rhs.clone(),
    })?;
    shape.elements(op)?;
    Ok(shape)
}

/// The shape PReLU's α takes against an input of shape `x`: α of shape (C) or (1) lies
/// along the channel axis (axis 1; axis 0 of a 1-d input, as MXNet's `expand_shape`), so
/// it becomes (1, C, 1, …, 1). Any other α is an error naming both shapes.
pub fn prelu_alpha_shape(x: &Shape, alpha: &Shape) -> Result<Shape> {
    let axis = 1.min(x.rank().saturating_sub(1));
    let channels = x.dims().get(axis).copied();
    let fits = matches!(alpha.dims(), [c] if Some(*c) == channels || *c == 1);
    if x.rank() == 0 || !fits {
        return Err(TensorError::invalid(
            "prelu",
            match channels {
                Some(c) => format!(
                    "alpha has shape {alpha} but the input {x} has {c} channels on axis \
                     {axis}; alpha must have shape [{c}] or [1]"
                ),
                None => format!("the input must have at least one axis, got shape {x}"),
            },
        ));
    }
    let mut dims = vec![1; x.rank()];
    dims[axis] = alpha.dims()[0];
    Ok(dims.into())
}

/// `f(a, b)` element by element over the broadcast shape of `a` and `b`.
fn zip_broadcast<T: Float>(
    op: &'static str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Result<Tensor<T>> {
    if a.shape() == b.shape() {
        let data = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(&x, &y)| f(x, y))
            .collect();
        return Ok(Tensor::from_parts(data, a.shape().clone()));
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    if b.numel() == 1 && shape == *a.shape() {
        let y = b.data()[0];
        return Ok(Tensor::from_parts(
            a.data().iter().map(|&x| f(x, y)).collect(),
            shape,
        ));
    }
    if a.numel() == 1 && shape == *b.shape() {
        let x = a.data()[0];
        return Ok(Tensor::from_parts(
            b.data().iter().map(|&y| f(x, y)).collect(),
            shape,
        ));
    }
    let sa = broadcast_strides(a.shape(), &shape);
    let sb = broadcast_strides(b.shape(), &shape);
    let mut out = Vec::with_capacity(shape.numel());
    if shape.numel() > 0 {
        let rank = shape.rank();
        let last = rank - 1;
        let mut index: SmallVec<[usize; 4]> = SmallVec::from_elem(0, rank);
        let (mut pa, mut pb) = (0isize, 0isize);
        'outer: loop {
            let (mut qa, mut qb) = (pa, pb);
            for _ in 0..shape[last] {
                out.push(f(a.data()[qa as usize], b.data()[qb as usize]));
                qa += sa[last];
                qb += sb[last];
            }
            let mut axis = last;
            loop {
                if axis == 0 {
                    break 'outer;
                }
                axis -= 1;
                index[axis] += 1;
                pa += sa[axis];
                pb += sb[axis];
                if index[axis] < shape[axis] {
                    break;
                }
                pa -= sa[axis] * shape[axis] as isize;
                pb -= sb[axis] * shape[axis] as isize;
                index[axis] = 0;
            }
        }
    }
    Ok(Tensor::from_parts(out, shape))
}

impl<T: Float> Tensor<T> {
    /// `self + rhs` with broadcasting.
    pub fn add(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("add", self, rhs, |a, b| a + b)
    }

    /// `self − rhs` with broadcasting.
    pub fn sub(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("sub", self, rhs, |a, b| a - b)
    }

    /// `self · rhs` element-wise with broadcasting.
    pub fn mul(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("mul", self, rhs, |a, b| a * b)
    }

    /// `self / rhs` element-wise with broadcasting.
    pub fn div(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("div", self, rhs, |a, b| a / b)
    }

    /// The larger of each pair, with broadcasting (NaN if either is NaN, as NumPy).
    pub fn maximum(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("maximum", self, rhs, |a, b| {
            if a.is_nan() || a > b {
                a
            } else {
                b
            }
        })
    }

    /// The smaller of each pair, with broadcasting (NaN if either is NaN, as NumPy).
    pub fn minimum(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        zip_broadcast("minimum", self, rhs, |a, b| {
            if a.is_nan() || a < b {
                a
            } else {
                b
            }
        })
    }

    /// PReLU (MXNet's `LeakyReLU(act_type='prelu')`): x where x > 0, else α_c·x, with α of
    /// shape (C) along the channel axis or (1) for every channel (see
    /// [`prelu_alpha_shape`]).
    ///
    /// # Shapes
    /// x (N, C, …), α (C) or (1) → (N, C, …).
    pub fn prelu(&self, alpha: &Tensor<T>) -> Result<Tensor<T>> {
        let shape = prelu_alpha_shape(self.shape(), alpha.shape())?;
        zip_broadcast("prelu", self, &alpha.reshape(shape)?, leaky_relu)
    }

    /// `f(a, b)` element-wise for two tensors of the same shape (no broadcasting); the
    /// building block of backward rules.
    pub fn zip_map(
        &self,
        rhs: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T,
    ) -> Result<Tensor<T>> {
        if self.shape() != rhs.shape() {
            return Err(TensorError::invalid(
                op,
                format!("shapes {} and {} must be equal", self.shape(), rhs.shape()),
            ));
        }
        Ok(Tensor::from_parts(
            self.data()
                .iter()
                .zip(rhs.data())
                .map(|(&a, &b)| f(a, b))
                .collect(),
            self.shape().clone(),
        ))
    }

    /// `f(x)` for every element.
    pub fn map(&self, f: impl Fn(T) -> T) -> Tensor<T> {
        Tensor::from_parts(
            self.data().iter().map(|&x| f(x)).collect(),
            self.shape().clone(),
        )
    }

    /// `self += rhs` in place; `rhs` must broadcast to `self`'s shape.
    pub fn add_assign(&mut self, rhs: &Tensor<T>) -> Result<()> {
        if self.shape() == rhs.shape() {
            for (a, &b) in self.data_mut().iter_mut().zip(rhs.data()) {
                *a += b;
            }
            return Ok(());
        }
        if broadcast_shapes("add_assign", self.shape(), rhs.shape())? != *self.shape() {
            return Err(TensorError::Broadcast {
                op: "add_assign",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        *self = self.add(rhs)?;
        Ok(())
    }

    /// `self + s`.
    pub fn add_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| x + s)
    }

    /// `self − s`.
    pub fn sub_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| x - s)
    }

    /// `s − self`.
    pub fn rsub_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| s - x)
    }

    /// `self · s`.
    pub fn mul_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| x * s)
    }

    /// `self / s`.
    pub fn div_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| x / s)
    }

    /// `s / self`.
    pub fn rdiv_scalar(&self, s: T) -> Tensor<T> {
        self.map(|x| s / x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_f64s(values, shape).unwrap()
    }

    #[test]
    fn broadcast_both_directions() {
        // (2, 1) + (3,) -> (2, 3): [[10, 20, 30], [11, 21, 31]] + ... as NumPy
        let col = t(&[0., 1.], &[2, 1]);
        let row = t(&[10., 20., 30.], &[3]);
        let s = col.add(&row).unwrap();
        assert_eq!(s.dims(), &[2, 3]);
        assert_eq!(s.data(), &[10., 20., 30., 11., 21., 31.]);
        assert_eq!(
            row.sub(&col).unwrap().data(),
            &[10., 20., 30., 9., 19., 29.]
        );
    }

    #[test]
    fn broadcast_middle_axis() {
        let x = Tensor::<f64>::arange(12).reshape([2, 3, 2]).unwrap();
        let y = t(&[1., 10.], &[2, 1, 1]);
        let z = x.mul(&y).unwrap();
        assert_eq!(&z.data()[4..8], &[4., 5., 60., 70.]);
    }

    #[test]
    fn mismatch_names_both_shapes() {
        let err = Tensor::<f32>::zeros([2, 3])
            .add(&Tensor::zeros([4]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: shapes [2, 3] and [4] do not broadcast together"
        );
    }

    #[test]
    fn prelu_broadcasts_alpha_along_axis_1() {
        // x (2, 2, 2): channel 0 uses α 0.5, channel 1 uses α 0.25; x > 0 passes, 0 → α·0
        let x = t(&[-2., 4., 0., -8., -1., 1., -4., 2.], &[2, 2, 2]);
        let y = x.prelu(&t(&[0.5, 0.25], &[2])).unwrap();
        assert_eq!(y.data(), &[-1., 4., 0., -2., -0.5, 1., -1., 2.]);
        // one α for every channel; a 1-d input takes α along axis 0
        let y = x.prelu(&t(&[0.5], &[1])).unwrap();
        assert_eq!(y.data(), &[-1., 4., 0., -4., -0.5, 1., -2., 2.]);
        let v = t(&[-2., 2.], &[2]);
        assert_eq!(v.prelu(&t(&[0.5, 0.25], &[2])).unwrap().data(), &[-1., 2.]);
        let err = x.prelu(&t(&[0.1, 0.2, 0.3], &[3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prelu: alpha has shape [3] but the input [2, 2, 2] has 2 channels on axis 1; \
             alpha must have shape [2] or [1]"
        );
        assert!(x.prelu(&t(&[0.1, 0.2], &[1, 2])).is_err());
        assert!(Tensor::scalar(1.0).prelu(&t(&[0.1], &[1])).is_err());
    }

    #[test]
    fn maximum_and_scalars() {
        let a = t(&[1., 5., -2.], &[3]);
        let b = t(&[3., 2., -1.], &[3]);
        assert_eq!(a.maximum(&b).unwrap().data(), &[3., 5., -1.]);
        assert_eq!(a.minimum(&b).unwrap().data(), &[1., 2., -2.]);
        assert_eq!(a.rsub_scalar(1.0).data(), &[0., -4., 3.]);
        assert_eq!(a.div_scalar(2.0).data(), &[0.5, 2.5, -1.0]);
        let mut c = a.clone();
        c.add_assign(&t(&[1.], &[1])).unwrap();
        assert_eq!(c.data(), &[2., 6., -1.]);
        assert!(t(&[1.], &[1]).add_assign(&a).is_err());
    }
}
