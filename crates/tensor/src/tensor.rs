//! [`Tensor`]: an n-d array of `f32` or `f64` in contiguous row-major storage, with its
//! constructors and accessors. Ops live in the sibling modules, one family per file.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::shape::{Dims, Shape};
use rand::Rng;
use rand_distr::{Distribution, Normal, StandardUniform};
use std::fmt;

/// An n-d array: a [`Shape`] and its elements in row-major order.
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Float> {
    shape: Shape,
    data: Vec<T>,
}

/// The count of a tensor of `shape` made by `op`, for the constructors that cannot
/// return an error: an impossible shape is a panic naming `op`, the shape and the
/// fallible constructors, as `vec!` panics on a capacity overflow.
fn count_or_panic(op: &'static str, shape: &Shape) -> usize {
    shape.elements(op).unwrap_or_else(|e| {
        panic!("{e} (Tensor::try_zeros, try_full and try_rand_uniform return this as an error)")
    })
}

impl<T: Float> Tensor<T> {
    /// An empty vector with room for the elements of a tensor of `shape`, asked of the
    /// allocator fallibly: an impossible shape, or memory that cannot be had, is an error
    /// naming `op` and the shape, never an abort.
    fn try_buffer(op: &'static str, shape: &Shape) -> Result<Vec<T>> {
        let len = shape.elements(op)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| TensorError::Alloc {
                op,
                shape: shape.clone(),
                bytes: len * std::mem::size_of::<T>(),
            })?;
        Ok(data)
    }

    /// A tensor of the given shape filled with `value`.
    ///
    /// # Panics
    /// If no tensor can have `shape` (see [`Shape::checked_numel`]); [`Tensor::try_full`]
    /// returns that as an error, and also memory that cannot be had.
    pub fn full(shape: impl Into<Shape>, value: T) -> Self {
        Self::full_named("full", shape.into(), value)
    }

    fn full_named(op: &'static str, shape: Shape, value: T) -> Self {
        let len = count_or_panic(op, &shape);
        // a large buffer given back by `recycle` is filled rather than fresh pages faulted in
        let mut data = crate::recycle::with_capacity(len);
        data.resize(len, value);
        Tensor { shape, data }
    }

    /// [`Tensor::full`] for a shape that may be impossible or too large for memory: an
    /// error naming the op and the shape, never a panic or an abort. For shapes that come
    /// from outside (a file, a user's options).
    ///
    /// ```
    /// use kiln_tensor::Tensor;
    /// assert!(Tensor::<f32>::try_full([1 << 32, 1 << 32], 1.0).is_err()); // 2⁶⁴ elements
    /// assert_eq!(Tensor::<f32>::try_full([2], 1.0)?.data(), &[1.0, 1.0]);
    /// # Ok::<(), kiln_tensor::TensorError>(())
    /// ```
    pub fn try_full(shape: impl Into<Shape>, value: T) -> Result<Self> {
        Self::try_named("full", shape.into(), value)
    }

    fn try_named(op: &'static str, shape: Shape, value: T) -> Result<Self> {
        let mut data = Self::try_buffer(op, &shape)?;
        data.resize(data.capacity(), value);
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    /// If no tensor can have `shape`; [`Tensor::try_zeros`] returns an error instead.
    pub fn zeros(shape: impl Into<Shape>) -> Self {
        Self::full_named("zeros", shape.into(), T::ZERO)
    }

    /// [`Tensor::zeros`] for a shape that may be impossible or too large for memory: an
    /// error naming the op and the shape, never a panic or an abort.
    ///
    /// ```
    /// use kiln_tensor::Tensor;
    /// let err = Tensor::<f32>::try_zeros([1 << 32, 1 << 32]).unwrap_err();
    /// assert!(err.to_string().starts_with("zeros: shape [4294967296, 4294967296] has more elements"));
    /// ```
    pub fn try_zeros(shape: impl Into<Shape>) -> Result<Self> {
        Self::try_named("zeros", shape.into(), T::ZERO)
    }

    /// A tensor of ones.
    ///
    /// # Panics
    /// If no tensor can have `shape`; `Tensor::try_full(shape, 1.0)` returns an error
    /// instead.
    pub fn ones(shape: impl Into<Shape>) -> Self {
        Self::full_named("ones", shape.into(), T::ONE)
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Tensor {
            shape: Shape::scalar(),
            data: vec![value],
        }
    }

    /// A tensor from row-major elements; the count must match the shape, and the shape
    /// must be one a tensor can have.
    ///
    /// ```
    /// use kiln_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    /// assert_eq!(x.shape().dims(), &[2, 2]);
    /// assert!(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [2, 2]).is_err());
    /// // 2³² · 2³² wraps to 0 in 64 bits: refused, not taken for an empty tensor
    /// assert!(Tensor::<f32>::from_vec(vec![], [1 << 32, 1 << 32]).is_err());
    /// ```
    pub fn from_vec(data: Vec<T>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        let expected = shape.elements("from_vec")?;
        if data.len() != expected {
            return Err(TensorError::ElementCount {
                op: "from_vec",
                expected,
                got: data.len(),
                shape,
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor from a slice of `f64` values, converted to `T` (handy for tests and the
    /// book's worked examples).
    pub fn from_f64s(values: &[f64], shape: impl Into<Shape>) -> Result<Self> {
        Self::from_vec(values.iter().map(|&v| T::from_f64(v)).collect(), shape)
    }

    /// The 1-d tensor `[0, 1, …, n−1]`, as NumPy's `arange(n)`.
    ///
    /// # Panics
    /// If `n` exceeds [`crate::shape::MAX_NUMEL`].
    pub fn arange(n: usize) -> Self {
        let shape = Shape::from([n]);
        count_or_panic("arange", &shape);
        Tensor {
            shape,
            data: (0..n).map(T::from_usize).collect(),
        }
    }

    /// A tensor of `shape` whose elements, in row-major order, are successive calls of
    /// `draw`; allocated fallibly (see [`Tensor::try_full`]).
    fn try_drawn(op: &'static str, shape: Shape, mut draw: impl FnMut() -> T) -> Result<Self> {
        let mut data = Self::try_buffer(op, &shape)?;
        let len = data.capacity();
        data.extend((0..len).map(|_| draw()));
        Ok(Tensor { shape, data })
    }

    /// Independent samples of Uniform(low, high), drawn in row-major order from `rng`.
    ///
    /// # Panics
    /// If no tensor can have `shape`; [`Tensor::try_rand_uniform`] returns an error
    /// instead.
    pub fn rand_uniform(shape: impl Into<Shape>, low: T, high: T, rng: &mut impl Rng) -> Self {
        let shape = shape.into();
        count_or_panic("rand_uniform", &shape);
        Self::try_rand_uniform(shape, low, high, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Tensor::rand_uniform`] for a shape that may be impossible or too large for
    /// memory (a parameter's, from a user's options): an error naming the op and the
    /// shape, never a panic or an abort. The same draws as `rand_uniform`.
    pub fn try_rand_uniform(
        shape: impl Into<Shape>,
        low: T,
        high: T,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let (low, span) = (low.to_f64(), high.to_f64() - low.to_f64());
        Self::try_drawn("rand_uniform", shape.into(), || {
            let u: f64 = StandardUniform.sample(rng);
            T::from_f64(low + span * u)
        })
    }

    /// Independent samples of Normal(mean, std), drawn in row-major order from `rng`.
    /// A negative or non-finite `std` is an error, and so is a shape that is impossible
    /// or too large for memory.
    pub fn rand_normal(
        shape: impl Into<Shape>,
        mean: T,
        std: T,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let shape = shape.into();
        let bad_std = || {
            TensorError::invalid(
                "rand_normal",
                format!("standard deviation must be finite and ≥ 0, got {std}"),
            )
        };
        if std.is_nan() || std < T::ZERO {
            return Err(bad_std());
        }
        let normal = Normal::new(mean.to_f64(), std.to_f64()).map_err(|_| bad_std())?;
        Self::try_drawn("rand_normal", shape, || T::from_f64(normal.sample(rng)))
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions as a slice (same as `shape().dims()`).
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Dims {
        self.shape.strides()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, writable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, consuming the tensor.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The elements converted to `f64`.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.data.iter().map(|v| v.to_f64()).collect()
    }

    /// The same values in another element type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect(),
        }
    }

    /// The element at a multi-index.
    pub fn get(&self, index: &[usize]) -> Result<T> {
        let offset = self.offset_of("get", index)?;
        Ok(self.data[offset])
    }

    /// Sets the element at a multi-index.
    pub fn set(&mut self, index: &[usize], value: T) -> Result<()> {
        let offset = self.offset_of("set", index)?;
        self.data[offset] = value;
        Ok(())
    }

    fn offset_of(&self, op: &'static str, index: &[usize]) -> Result<usize> {
        if index.len() != self.rank() || index.iter().zip(self.dims()).any(|(&i, &d)| i >= d) {
            return Err(TensorError::invalid(
                op,
                format!("index {index:?} is out of bounds for shape {}", self.shape),
            ));
        }
        Ok(index
            .iter()
            .zip(self.strides().iter())
            .map(|(i, s)| i * s)
            .sum())
    }

    /// The value of a one-element tensor (any rank).
    pub fn item(&self) -> Result<T> {
        if self.data.len() != 1 {
            return Err(TensorError::invalid(
                "item",
                format!("expected one element, the shape is {}", self.shape),
            ));
        }
        Ok(self.data[0])
    }

    /// True when every element is finite (no NaN, no ±∞); vectorised for f32.
    pub fn all_finite(&self) -> bool {
        let level = crate::simd::level();
        if let (true, Some(x)) = (level.is_vector(), crate::kernels::as_f32(&self.data)) {
            return crate::kernels::elementwise::all_finite(level, x);
        }
        self.data.iter().all(|v| v.is_finite())
    }

    /// The multi-index and value of the first NaN or ±∞, if any.
    pub fn first_non_finite(&self) -> Option<(Vec<usize>, T)> {
        if self.all_finite() {
            return None;
        }
        let (i, &v) = self.data.iter().enumerate().find(|(_, v)| !v.is_finite())?;
        let strides = self.strides();
        Some((
            strides
                .iter()
                .zip(self.dims())
                .map(|(s, d)| (i / s) % d)
                .collect(),
            v,
        ))
    }

    /// Replaces the shape without touching the data (internal: the caller guarantees the
    /// element count matches).
    pub(crate) fn with_shape(mut self, shape: Shape) -> Self {
        debug_assert_eq!(
            shape.checked_numel(),
            Some(self.data.len()),
            "with_shape: element count"
        );
        self.shape = shape;
        self
    }

    /// Gives this tensor's memory back to the calling thread, for the next kernel output
    /// of a similar size, instead of to the allocator: for a large temporary that a
    /// training step makes and drops every step. Values are never shared: the next
    /// output overwrites every element. Tensors under 64 KB are simply dropped.
    ///
    /// ```
    /// use kiln_tensor::Tensor;
    /// let dz = Tensor::<f32>::zeros([32, 6, 24, 24]);
    /// dz.recycle(); // the next step's gradient of this size reuses its memory
    /// ```
    pub fn recycle(self) {
        crate::recycle::recycle(self.data);
    }

    /// A tensor from parts the caller guarantees agree (internal fast constructor).
    pub(crate) fn from_parts(data: Vec<T>, shape: Shape) -> Self {
        debug_assert_eq!(
            shape.checked_numel(),
            Some(data.len()),
            "from_parts: element count"
        );
        Tensor { shape, data }
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    /// Shape, element type and up to 64 elements: `Tensor[2, 2] float32 [1.0, 2.0, …]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{} {} [", self.shape, T::DTYPE)?;
        for (i, v) in self.data.iter().take(64).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if self.data.len() > 64 {
            write!(f, ", … ({} more)", self.data.len() - 64)?;
        }
        write!(f, "]")
    }
}

impl<T: Float> fmt::Display for Tensor<T> {
    /// NumPy's layout: nested brackets, one row per line, columns aligned.
    ///
    /// ```
    /// use kiln_tensor::Tensor;
    /// let x = Tensor::<f32>::from_f64s(&[19., 25., 37., 43.], [2, 2]).unwrap();
    /// assert_eq!(x.to_string(), "[[19 25]\n [37 43]]");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<String> = self
            .data
            .iter()
            .map(|v| match f.precision() {
                Some(p) => format!("{v:.p$}"),
                None => format!("{v}"),
            })
            .collect();
        let width = cells.iter().map(|c| c.chars().count()).max().unwrap_or(0);
        write_nested(f, &cells, self.dims(), 0, width)
    }
}

/// Writes `cells` (row-major, of shape `dims`) as nested brackets, indenting inner rows by
/// their depth.
fn write_nested(
    f: &mut fmt::Formatter<'_>,
    cells: &[String],
    dims: &[usize],
    depth: usize,
    width: usize,
) -> fmt::Result {
    let Some((&n, rest)) = dims.split_first() else {
        return write!(f, "{:>width$}", cells.first().map_or("", String::as_str));
    };
    let stride: usize = rest.iter().product();
    write!(f, "[")?;
    for i in 0..n {
        if i > 0 {
            if rest.is_empty() {
                write!(f, " ")?;
            } else {
                write!(
                    f,
                    "{}{:indent$}",
                    "\n".repeat(rest.len()),
                    "",
                    indent = depth + 1
                )?;
            }
        }
        write_nested(
            f,
            &cells[i * stride..(i + 1) * stride],
            rest,
            depth + 1,
            width,
        )?;
    }
    write!(f, "]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn from_vec_checks_count() {
        let err = Tensor::<f32>::from_vec(vec![1.0; 5], [2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "from_vec: shape [2, 3] holds 6 elements but 5 were given"
        );
    }

    #[test]
    fn display_nests_like_numpy() {
        let x = Tensor::<f64>::arange(8).reshape([2, 2, 2]).unwrap();
        assert_eq!(x.to_string(), "[[[0 1]\n  [2 3]]\n\n [[4 5]\n  [6 7]]]");
        assert_eq!(
            format!("{:.1}", Tensor::<f32>::from_f64s(&[1., -0.5], [2]).unwrap()),
            "[ 1.0 -0.5]"
        );
        assert_eq!(Tensor::<f32>::scalar(2.5).to_string(), "2.5");
    }

    #[test]
    fn finds_non_finite_values() {
        let mut x = Tensor::<f32>::zeros([2, 20]);
        assert!(x.all_finite() && x.first_non_finite().is_none());
        x.set(&[1, 17], f32::INFINITY).unwrap();
        assert!(!x.all_finite());
        assert_eq!(x.first_non_finite(), Some((vec![1, 17], f32::INFINITY)));
        x.set(&[0, 3], f32::NAN).unwrap();
        assert_eq!(x.first_non_finite().unwrap().0, vec![0, 3]);
        assert!(!Tensor::<f64>::from_f64s(&[1.0, f64::NEG_INFINITY], [2])
            .unwrap()
            .all_finite());
    }

    #[test]
    fn every_non_finite_value_is_found_at_every_length_position_and_level() {
        for level in crate::simd::Level::supported() {
            crate::simd::with_level(level, every_non_finite_value_is_found).unwrap();
        }
    }

    fn every_non_finite_value_is_found() {
        for len in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130] {
            let mut x = Tensor::<f32>::full([len], f32::MAX);
            assert!(x.all_finite(), "{len}");
            for at in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    x.data_mut()[at] = bad;
                    assert!(!x.all_finite(), "{bad} at {at} of {len}");
                    x.data_mut()[at] = -f32::MAX;
                }
            }
            assert!(x.all_finite(), "{len}");
        }
    }

    #[test]
    fn arange_and_get() {
        let x = Tensor::<f64>::arange(6).reshape([2, 3]).unwrap();
        assert_eq!(x.get(&[1, 2]).unwrap(), 5.0);
        assert!(x.get(&[2, 0]).is_err());
    }

    #[test]
    fn random_tensors_are_seeded() {
        let a = Tensor::<f32>::rand_uniform([100], -1.0, 1.0, &mut StdRng::seed_from_u64(7));
        let b = Tensor::<f32>::rand_uniform([100], -1.0, 1.0, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert!(a.data().iter().all(|&v| (-1.0..1.0).contains(&v)));
        let n =
            Tensor::<f64>::rand_normal([10_000], 2.0, 0.5, &mut StdRng::seed_from_u64(1)).unwrap();
        let mean = n.mean_all();
        assert!((mean - 2.0).abs() < 0.02, "mean {mean}");
        assert!(Tensor::<f64>::rand_normal([1], 0.0, -1.0, &mut StdRng::seed_from_u64(1)).is_err());
    }
}
