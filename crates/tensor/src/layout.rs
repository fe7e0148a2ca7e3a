//! Ops that move elements without computing on them: reshape, permute/transpose, flip,
//! slicing, concatenation, stacking and broadcasting. All strided views go through one
//! gather loop, so there is a single place where strides are walked.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::shape::{Dims, Shape};
use crate::tensor::Tensor;
use smallvec::SmallVec;

/// Copies the strided view (`offset`, `strides`, `shape`) of `src` into a new row-major
/// vector. Strides may be negative (flip) or zero (broadcast).
pub(crate) fn gather<T: Float>(
    src: &[T],
    offset: isize,
    strides: &[isize],
    shape: &[usize],
) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let rank = shape.len();
    if rank == 0 {
        out.push(src[offset as usize]);
        return out;
    }
    let last = rank - 1;
    let (len_last, stride_last) = (shape[last], strides[last]);
    let mut index: SmallVec<[usize; 4]> = SmallVec::from_elem(0, rank);
    let mut base = offset;
    loop {
        let mut p = base;
        for _ in 0..len_last {
            out.push(src[p as usize]);
            p += stride_last;
        }
        // Advance the multi-index over all axes but the last, like an odometer.
        let mut axis = last;
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            base += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            base -= strides[axis] * shape[axis] as isize;
            index[axis] = 0;
        }
    }
}

fn signed(strides: &[usize]) -> SmallVec<[isize; 4]> {
    strides.iter().map(|&s| s as isize).collect()
}

fn check_axis(op: &'static str, axis: usize, shape: &Shape) -> Result<()> {
    if axis >= shape.rank() {
        return Err(TensorError::Axis {
            op,
            axis,
            shape: shape.clone(),
        });
    }
    Ok(())
}

impl<T: Float> Tensor<T> {
    /// The same elements under a new shape with the same element count.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor<T>> {
        self.clone().into_reshape(shape)
    }

    /// [`Tensor::reshape`] without copying the elements.
    pub fn into_reshape(self, shape: impl Into<Shape>) -> Result<Tensor<T>> {
        let shape = shape.into();
        let expected = shape.elements("reshape")?;
        if expected != self.numel() {
            return Err(TensorError::ElementCount {
                op: "reshape",
                expected,
                got: self.numel(),
                shape,
            });
        }
        Ok(self.with_shape(shape))
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]` (NumPy's `transpose(axes)`).
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor<T>> {
        let rank = self.rank();
        let mut seen = SmallVec::<[bool; 4]>::from_elem(false, rank);
        let valid = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(TensorError::invalid(
                "permute",
                format!(
                    "{axes:?} is not a permutation of the axes of shape {}",
                    self.shape()
                ),
            ));
        }
        let in_strides = self.strides();
        let shape: Dims = axes.iter().map(|&a| self.dims()[a]).collect();
        let strides: SmallVec<[isize; 4]> = axes.iter().map(|&a| in_strides[a] as isize).collect();
        let data = gather(self.data(), 0, &strides, &shape);
        Ok(Tensor::from_parts(data, shape.into()))
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor<T>> {
        check_axis("transpose", a, self.shape())?;
        check_axis("transpose", b, self.shape())?;
        let mut axes: Dims = (0..self.rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Reverses the order of elements along each of `axes` (used for true convolution,
    /// which flips the kernel up-down and left-right).
    pub fn flip(&self, axes: &[usize]) -> Result<Tensor<T>> {
        let mut strides = signed(&self.strides());
        let mut offset = 0isize;
        for &axis in axes {
            check_axis("flip", axis, self.shape())?;
            let len = self.dims()[axis];
            if len > 0 {
                offset += (len as isize - 1) * strides[axis];
            }
            strides[axis] = -strides[axis];
        }
        let data = gather(self.data(), offset, &strides, self.dims());
        Ok(Tensor::from_parts(data, self.shape().clone()))
    }

    /// Elements `start..end` along `axis` (MXNet's `slice_axis`).
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Result<Tensor<T>> {
        check_axis("slice_axis", axis, self.shape())?;
        if start > end || end > self.dims()[axis] {
            return Err(TensorError::invalid(
                "slice_axis",
                format!(
                    "range {start}..{end} is out of bounds for axis {axis} of shape {}",
                    self.shape()
                ),
            ));
        }
        let (outer, len, inner) = self.shape().split_at_axis(axis);
        let mut data = Vec::with_capacity(outer * (end - start) * inner);
        for o in 0..outer {
            let base = o * len * inner;
            data.extend_from_slice(&self.data()[base + start * inner..base + end * inner]);
        }
        let mut shape: Dims = self.dims().into();
        shape[axis] = end - start;
        Ok(Tensor::from_parts(data, shape.into()))
    }

    /// Joins tensors along an existing axis; all other dimensions must agree (the shape
    /// rule is [`concat_shape`]).
    pub fn concat(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let shapes: SmallVec<[&Shape; 4]> = tensors.iter().map(|t| t.shape()).collect();
        let shape = concat_shape(&shapes, axis)?;
        let (outer, total, inner) = shape.split_at_axis(axis);
        let mut data = Vec::with_capacity(outer * total * inner);
        for o in 0..outer {
            for t in tensors {
                let chunk = t.dims()[axis] * inner;
                data.extend_from_slice(&t.data()[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Joins tensors of one shape along a new axis inserted at `axis`.
    pub fn stack(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("stack", "no tensors to stack"))?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(TensorError::invalid(
                "stack",
                format!("shapes {} and {} differ", first.shape(), t.shape()),
            ));
        }
        let expanded = tensors
            .iter()
            .map(|t| t.expand_dims(axis))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor<T>> = expanded.iter().collect();
        Tensor::concat(&refs, axis).map_err(|e| match e {
            TensorError::Axis { axis, shape, .. } => TensorError::Axis {
                op: "stack",
                axis,
                shape,
            },
            other => other,
        })
    }

    /// Inserts an axis of length 1 at `axis` (0 ≤ axis ≤ rank).
    pub fn expand_dims(&self, axis: usize) -> Result<Tensor<T>> {
        if axis > self.rank() {
            return Err(TensorError::Axis {
                op: "expand_dims",
                axis,
                shape: self.shape().clone(),
            });
        }
        let mut shape: Dims = self.dims().into();
        shape.insert(axis, 1);
        self.reshape(Shape::from(shape))
    }

    /// Repeats the elements to `shape` by NumPy broadcasting.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor<T>> {
        let shape = shape.into();
        shape.elements("broadcast_to")?;
        if self.shape().broadcast(&shape).as_ref() != Some(&shape) {
            return Err(TensorError::Broadcast {
                op: "broadcast_to",
                lhs: self.shape().clone(),
                rhs: shape,
            });
        }
        let strides = broadcast_strides(self.shape(), &shape);
        let data = gather(self.data(), 0, &strides, &shape);
        Ok(Tensor::from_parts(data, shape))
    }
}

/// The shape [`Tensor::concat`] gives for inputs of `shapes` joined along `axis`: theirs,
/// with the lengths along `axis` added; an error naming `concat` when there are none, the
/// axis is out of range, the shapes differ outside it, or the sum makes a shape no tensor
/// can have.
pub fn concat_shape(shapes: &[&Shape], axis: usize) -> Result<Shape> {
    let first = shapes
        .first()
        .ok_or_else(|| TensorError::invalid("concat", "no tensors to join"))?;
    check_axis("concat", axis, first)?;
    let same_rest = |s: &Shape| {
        s.rank() == first.rank() && (0..first.rank()).all(|i| i == axis || s[i] == first[i])
    };
    if !shapes.iter().all(|s| same_rest(s)) {
        let shapes: Vec<String> = shapes.iter().map(|s| s.to_string()).collect();
        return Err(TensorError::invalid(
            "concat",
            format!(
                "shapes {} must agree outside axis {axis}",
                shapes.join(", ")
            ),
        ));
    }
    let mut dims: Dims = first.dims().into();
    // the joined axis, checked: lengths that add up past the limit are an error
    dims[axis] = shapes
        .iter()
        .try_fold(0usize, |n, s| n.checked_add(s[axis]))
        .unwrap_or(usize::MAX);
    let shape = Shape::from(dims);
    shape.elements("concat")?;
    Ok(shape)
}

/// The strides that read a tensor of shape `from` as if it had the broadcast shape `to`:
/// row-major strides, 0 on every stretched or missing axis.
pub(crate) fn broadcast_strides(from: &Shape, to: &Shape) -> SmallVec<[isize; 4]> {
    let own = from.strides();
    let lead = to.rank() - from.rank();
    (0..to.rank())
        .map(|i| {
            if i < lead || from.dims()[i - lead] == 1 {
                0
            } else {
                own[i - lead] as isize
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_f64s(values, shape).unwrap()
    }

    #[test]
    fn permute_matches_numpy() {
        // np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1)[1] == [[1, 5, 9], [13, 17, 21]]
        let x = Tensor::<f64>::arange(24).reshape([2, 3, 4]).unwrap();
        let y = x.permute(&[2, 0, 1]).unwrap();
        assert_eq!(y.dims(), &[4, 2, 3]);
        assert_eq!(&y.data()[6..12], &[1.0, 5.0, 9.0, 13.0, 17.0, 21.0]);
        assert!(x.permute(&[0, 0, 1]).is_err());
        assert_eq!(x.transpose(0, 2).unwrap(), x.permute(&[2, 1, 0]).unwrap());
    }

    #[test]
    fn flip_reverses_chosen_axes() {
        let k = t(&[0., 1., 2., 3.], &[2, 2]);
        assert_eq!(k.flip(&[0, 1]).unwrap().data(), &[3., 2., 1., 0.]);
        assert_eq!(k.flip(&[1]).unwrap().data(), &[1., 0., 3., 2.]);
        assert!(k.flip(&[2]).is_err());
    }

    #[test]
    fn slice_concat_stack_round_trip() {
        let x = Tensor::<f64>::arange(12).reshape([3, 4]).unwrap();
        let a = x.slice_axis(1, 0, 1).unwrap();
        let b = x.slice_axis(1, 1, 4).unwrap();
        assert_eq!(a.data(), &[0., 4., 8.]);
        assert_eq!(Tensor::concat(&[&a, &b], 1).unwrap(), x);
        let s = Tensor::stack(&[&a, &a], 0).unwrap();
        assert_eq!(s.dims(), &[2, 3, 1]);
        let err = Tensor::concat(&[&a, &b, &x.slice_axis(0, 0, 2).unwrap()], 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "concat: shapes [3, 1], [3, 3], [2, 4] must agree outside axis 1"
        );
        assert!(x.slice_axis(1, 2, 5).is_err());
    }

    #[test]
    fn reshape_refuses_other_sizes() {
        let err = Tensor::<f32>::zeros([2, 3]).reshape([4, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reshape: shape [4, 2] holds 8 elements but 6 were given"
        );
    }

    #[test]
    fn new_shapes_that_overflow_are_errors() {
        // 2³² · 2³² wraps to 0: an empty tensor took that shape before
        let empty = Tensor::<f32>::zeros([0]);
        let err = empty.reshape([1 << 32, 1 << 32]).unwrap_err();
        assert!(
            matches!(err, TensorError::TooLarge { op: "reshape", .. }),
            "{err}"
        );
        let one = Tensor::<f32>::zeros([1, 1]);
        let err = one.broadcast_to([1 << 32, 1 << 32]).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::TooLarge {
                    op: "broadcast_to",
                    ..
                }
            ),
            "{err}"
        );
        // three empty tensors whose joined axis passes the limit
        let wide = Tensor::<f32>::zeros([0, 1 << 59]);
        let err = Tensor::concat(&[&wide, &wide, &wide], 1).unwrap_err();
        assert!(
            matches!(err, TensorError::TooLarge { op: "concat", .. }),
            "{err}"
        );
        // and lengths whose sum overflows 64 bits
        let widest = Tensor::<f32>::zeros([0, crate::shape::MAX_NUMEL]);
        let err = Tensor::concat(&[&widest; 17], 1).unwrap_err();
        assert!(
            matches!(err, TensorError::TooLarge { op: "concat", .. }),
            "{err}"
        );
    }

    #[test]
    fn broadcast_to_repeats() {
        let x = t(&[1., 2.], &[2, 1]);
        assert_eq!(
            x.broadcast_to([2, 3]).unwrap().data(),
            &[1., 1., 1., 2., 2., 2.]
        );
        assert!(x.broadcast_to([3, 3]).is_err());
    }
}
