//! [`Shape`]: the dimensions of a tensor, kept inline for up to four axes, with the one
//! checked element count every tensor is made through ([`Shape::checked_numel`]), and
//! [`Hw`], a (height, width) pair that also accepts a single number, as Gluon does.

use crate::error::{Result, TensorError};
use smallvec::SmallVec;
use std::fmt;
use std::ops::Deref;

/// Dimensions or strides, inline for rank ≤ 4 (NCHW) and spilling to the heap beyond.
pub type Dims = SmallVec<[usize; 4]>;

/// The dimensions of a tensor, outermost first. Storage is contiguous row-major, so the
/// strides are a function of the shape ([`Shape::strides`]).
///
/// Any dimensions make a `Shape`, but only a shape whose [`Shape::checked_numel`] is
/// `Some` makes a tensor: every constructor and every op that makes a new shape checks
/// it, so the arithmetic on a tensor's own shape (its count, strides, the products of
/// some of its axes) never overflows.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Dims);

/// The most elements a tensor may have: as many `f64` as one allocation can hold
/// (`isize::MAX` bytes), 2⁶⁰ − 1. The same bound for every element type, so that a shape
/// either can exist or cannot whatever it holds.
pub const MAX_NUMEL: usize = isize::MAX as usize / 8;

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: &[usize]) -> Self {
        Shape(Dims::from_slice(dims))
    }

    /// The shape of a scalar: rank 0, one element.
    pub fn scalar() -> Self {
        Shape(Dims::new())
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements: the product of the dimensions (1 for a scalar). For a shape
    /// no tensor can have (see [`Shape::checked_numel`]) the product saturates at
    /// `usize::MAX`, a length no buffer has, so it never wraps to a small count.
    pub fn numel(&self) -> usize {
        self.0.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    /// Number of elements, or `None` when a tensor of this shape cannot exist: when the
    /// product of its nonzero dimensions exceeds [`MAX_NUMEL`]. A zero dimension makes
    /// the count 0, but the other axes must still fit, so that strides and the products
    /// of some of the axes (flattening, `split_at_axis`) fit too.
    ///
    /// ```
    /// use kiln_tensor::Shape;
    /// assert_eq!(Shape::from([2, 3, 4]).checked_numel(), Some(24));
    /// assert_eq!(Shape::from([1 << 32, 1 << 32]).checked_numel(), None); // 2⁶⁴ wraps to 0
    /// assert_eq!(Shape::from([0, 1 << 40, 1 << 40]).checked_numel(), None);
    /// ```
    pub fn checked_numel(&self) -> Option<usize> {
        let mut nonzero = 1usize;
        for &d in self.0.iter() {
            nonzero = nonzero.checked_mul(d.max(1)).filter(|&n| n <= MAX_NUMEL)?;
        }
        Some(if self.0.contains(&0) { 0 } else { nonzero })
    }

    /// [`Shape::checked_numel`] as a result: the count, or an error naming `op` and the
    /// shape. What every tensor constructor and every op making a new shape calls.
    ///
    /// ```
    /// use kiln_tensor::Shape;
    /// let err = Shape::from([1 << 32, 1 << 32]).elements("zeros").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "zeros: shape [4294967296, 4294967296] has more elements than a tensor can hold \
    ///      (its nonzero dimensions multiply to 18446744073709551616, the limit is \
    ///      1152921504606846975)"
    /// );
    /// ```
    pub fn elements(&self, op: &'static str) -> Result<usize> {
        self.checked_numel().ok_or_else(|| TensorError::TooLarge {
            op,
            shape: self.clone(),
        })
    }

    /// The dimensions as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Row-major strides in elements: the last axis has stride 1. (Saturating, like
    /// [`Shape::numel`], for a shape no tensor can have.)
    pub fn strides(&self) -> Dims {
        let mut strides = Dims::from_elem(0, self.0.len());
        let mut acc = 1usize;
        for (s, &d) in strides.iter_mut().zip(self.0.iter()).rev() {
            *s = acc;
            acc = acc.saturating_mul(d);
        }
        strides
    }

    /// The NumPy broadcast of two shapes (axes aligned from the right; a 1 stretches),
    /// or `None` when some aligned pair differs and neither is 1.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let rank = self.rank().max(other.rank());
        let mut out = Dims::from_elem(0, rank);
        for i in 0..rank {
            let a = dim_from_right(self, rank - 1 - i);
            let b = dim_from_right(other, rank - 1 - i);
            out[i] = match (a, b) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Shape(out))
    }

    /// (outer, len, inner): the product of the axes before `axis`, its length, and the
    /// product of the axes after it. Every single-axis kernel iterates in this form.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let product = |dims: &[usize]| dims.iter().fold(1usize, |n, &d| n.saturating_mul(d));
        let (outer, inner) = (product(&self.0[..axis]), product(&self.0[axis + 1..]));
        (outer, self.0[axis], inner)
    }
}

/// The dimension `k` places from the right, 1 past the left end (broadcast alignment).
fn dim_from_right(shape: &Shape, k: usize) -> usize {
    if k < shape.rank() {
        shape.0[shape.rank() - 1 - k]
    } else {
        1
    }
}

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::new(&dims)
    }
}

impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(dims: &[usize; N]) -> Self {
        Shape::new(dims)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape::new(&dims)
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl From<Dims> for Shape {
    fn from(dims: Dims) -> Self {
        Shape(dims)
    }
}

/// A (height, width) pair. Converts from one number (used for both) or from a tuple,
/// so every option that Gluon lets be "int or tuple" takes `impl Into<Hw>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Hw {
    /// Height (rows).
    pub h: usize,
    /// Width (columns).
    pub w: usize,
}

impl Hw {
    /// A pair from height and width.
    pub const fn new(h: usize, w: usize) -> Self {
        Hw { h, w }
    }
}

impl From<usize> for Hw {
    fn from(v: usize) -> Self {
        Hw { h: v, w: v }
    }
}

impl From<(usize, usize)> for Hw {
    fn from((h, w): (usize, usize)) -> Self {
        Hw { h, w }
    }
}

impl fmt::Display for Hw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.h, self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(&Shape::from([2, 3, 4]).strides()[..], &[12, 4, 1]);
        assert_eq!(Shape::scalar().numel(), 1);
    }

    #[test]
    fn counts_that_overflow_are_refused_never_wrapped() {
        // 6 · 2⁶³ · 5 · 5 wraps to 0 in 64-bit arithmetic: a checkpoint record of this
        // shape with no data passed for a tensor of 0 elements
        let wraps = Shape::from([6, 1 << 63, 5, 5]);
        assert_eq!(wraps.checked_numel(), None);
        assert_eq!(wraps.numel(), usize::MAX);
        assert_eq!(wraps.strides()[0], usize::MAX);
        assert_eq!(Shape::from([0, 1 << 62, 1 << 62]).checked_numel(), None);
        assert_eq!(Shape::from([0, 1 << 30, 1 << 29]).checked_numel(), Some(0));
        assert_eq!(Shape::from([MAX_NUMEL]).checked_numel(), Some(MAX_NUMEL));
        assert_eq!(Shape::from([MAX_NUMEL, 2]).checked_numel(), None);
        assert_eq!(Shape::from([MAX_NUMEL + 1]).checked_numel(), None);
        assert_eq!(Shape::scalar().checked_numel(), Some(1));
        let err = wraps.elements("from_vec").unwrap_err();
        assert_eq!(err.op(), "from_vec");
        assert!(
            err.to_string().contains("[6, 9223372036854775808, 5, 5]"),
            "{err}"
        );
    }

    #[test]
    fn broadcast_follows_numpy() {
        let a = Shape::from([8, 1, 6, 1]);
        let b = Shape::from([7, 1, 5]);
        assert_eq!(a.broadcast(&b), Some(Shape::from([8, 7, 6, 5])));
        assert_eq!(Shape::from([3]).broadcast(&Shape::from([4])), None);
        assert_eq!(Shape::scalar().broadcast(&b), Some(b));
    }

    #[test]
    fn display_lists_dims() {
        assert_eq!(Shape::from([1, 3, 8, 8]).to_string(), "[1, 3, 8, 8]");
        assert_eq!(Hw::from(3), Hw::new(3, 3));
    }
}
