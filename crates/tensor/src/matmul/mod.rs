//! Matrix products: [`gemm`] on strided matrix views (a transposed operand is a view with
//! its strides swapped, never a copy) and [`Tensor::matmul`] for 2-d and batched 3-d
//! tensors. [`select`] chooses per product between the vector kernels for few rows and
//! `matrixmultiply`.

pub mod select;

use select::GemmPath;

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A read-only matrix view: `rows × cols` elements of a slice at row stride `rs` and
/// column stride `cs` (both in elements, non-negative).
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T: Float> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A matrix with explicit strides.
    ///
    /// # Panics
    /// If an addressed element lies outside `data` (a bug in the caller, not bad input).
    pub fn strided(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.len(),
            "MatRef: a {rows}×{cols} view with strides ({rs}, {cs}) overruns {} elements",
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose: the same memory with rows and columns (and their strides) swapped.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// A writable matrix view, as [`MatRef`].
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T: Float> MatMut<'a, T> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A matrix with explicit strides.
    ///
    /// # Panics
    /// If an addressed element lies outside `data`.
    pub fn strided(data: &'a mut [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.len(),
            "MatMut: a {rows}×{cols} view with strides ({rs}, {cs}) overruns {} elements",
            data.len()
        );
        MatMut {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

/// One past the largest offset a strided view addresses (0 for an empty view).
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// `C ← α·A·B + β·C` with A `m × k`, B `k × n`, C `m × n`. With β = 0, C's previous
/// contents are ignored (even NaN).
///
/// # Panics
/// If the dimensions do not chain (a bug in the caller; [`Tensor::matmul`] validates).
pub fn gemm<T: Float>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    gemm_at(crate::simd::level(), alpha, a, b, beta, c)
}

/// [`gemm`] at a given level (the caller's, read once on its thread): how kernels that
/// run on the thread pool multiply.
pub(crate) fn gemm_at<T: Float>(
    level: crate::simd::Level,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: {}×{} · {}×{} does not fit {}×{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // Large products split over fixed blocks of rows of C: each element is computed the
    // same way whichever thread does it, so the result does not depend on the threads.
    if c.rows >= 2 * ROWS_PER_TASK
        && c.cs == 1
        && c.rs >= c.cols
        && crate::parallel::worth_splitting(c.rows * c.cols * a.cols)
    {
        use rayon::prelude::*;
        let (rs, cols) = (c.rs, c.cols);
        let tail = c.rows - (c.rows - 1) / ROWS_PER_TASK * ROWS_PER_TASK;
        let used = (c.rows - 1) * rs + cols;
        c.data[..used]
            .par_chunks_mut(ROWS_PER_TASK * rs)
            .enumerate()
            .for_each(|(t, chunk)| {
                let r0 = t * ROWS_PER_TASK;
                let rows = if r0 + ROWS_PER_TASK >= a.rows {
                    tail
                } else {
                    ROWS_PER_TASK
                };
                let a_rows = MatRef {
                    data: &a.data[r0 * a.rs..],
                    rows,
                    ..a
                };
                gemm_serial(
                    level,
                    alpha,
                    a_rows,
                    b,
                    beta,
                    MatMut::strided(chunk, rows, cols, rs, 1),
                );
            });
        return;
    }
    gemm_serial(level, alpha, a, b, beta, c);
}

/// Rows of C per task when a product is split across threads: large enough that packing
/// B once per task stays cheap (LeNet's dense layers at batch 256 split in two).
const ROWS_PER_TASK: usize = 128;

/// [`gemm`] on the calling thread, by the path [`select::path`] chooses.
fn gemm_serial<T: Float>(
    level: crate::simd::Level,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    use crate::kernels::{as_f32, as_f32_mut, gemm::Gemm, gemm_nt::GemmNt};
    let accumulate = beta == T::ONE;
    match select::path(level, alpha, &a, &b, beta, &c) {
        GemmPath::DotRows => {
            let (fa, fb) = (as_f32(a.data).expect("f32"), as_f32(b.data).expect("f32"));
            let g = GemmNt {
                m: c.rows,
                n: c.cols,
                k: a.cols,
                lda: a.rs,
                ldb: b.cs,
                ldc: c.rs,
                accumulate,
            };
            // A (m × k, rows of stride rs) · Bᵀ where B is n × k row-major with stride cs
            crate::kernels::gemm_nt::gemm_nt(level, &g, fa, fb, as_f32_mut(c.data).expect("f32"));
        }
        GemmPath::FewRows => {
            let (fa, fb) = (as_f32(a.data).expect("f32"), as_f32(b.data).expect("f32"));
            let g = Gemm {
                m: c.rows,
                n: c.cols,
                k: a.cols,
                rsa: a.rs,
                csa: a.cs,
                ldb: b.rs,
                ldc: c.rs,
                accumulate,
            };
            crate::kernels::gemm::gemm(level, &g, fa, fb, as_f32_mut(c.data).expect("f32"));
        }
        // SAFETY: the constructors checked that every strided element lies inside its
        // slice, and `c` is a unique borrow, so it cannot overlap `a` or `b`.
        GemmPath::Packed => unsafe {
            T::gemm_raw(
                a.rows,
                a.cols,
                b.cols,
                alpha,
                a.data.as_ptr(),
                a.rs as isize,
                a.cs as isize,
                b.data.as_ptr(),
                b.rs as isize,
                b.cs as isize,
                beta,
                c.data.as_mut_ptr(),
                c.rs as isize,
                c.cs as isize,
            )
        },
    }
}

impl<T: Float> Tensor<T> {
    /// Matrix product: `(m, k) · (k, n) → (m, n)`, or batched `(b, m, k) · (b, k, n) →
    /// (b, m, n)`.
    pub fn matmul(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        self.matmul_t(false, rhs, false)
    }

    /// Matrix product with either operand read transposed (its last two axes swapped)
    /// through strides: `op(a) · op(b)`.
    pub fn matmul_t(&self, trans_a: bool, rhs: &Tensor<T>, trans_b: bool) -> Result<Tensor<T>> {
        let mismatch = |why: &str| {
            TensorError::invalid(
                "matmul",
                format!(
                    "{why}: {}{} × {}{}",
                    self.shape(),
                    if trans_a { "ᵀ" } else { "" },
                    rhs.shape(),
                    if trans_b { "ᵀ" } else { "" }
                ),
            )
        };
        let rank = self.rank();
        if !(rank == 2 || rank == 3) || rhs.rank() != rank {
            return Err(mismatch("operands must both be 2-d or both 3-d"));
        }
        let batch = if rank == 3 { self.dims()[0] } else { 1 };
        if rank == 3 && rhs.dims()[0] != batch {
            return Err(mismatch("batch sizes differ"));
        }
        let (ar, ac) = (self.dims()[rank - 2], self.dims()[rank - 1]);
        let (br, bc) = (rhs.dims()[rank - 2], rhs.dims()[rank - 1]);
        let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(mismatch(&format!("inner dimensions differ ({k} ≠ {k2})")));
        }
        // (m, k) · (k, n) can be far larger than both operands: a size check, not a wrap
        Shape::from([batch, m, n]).elements("matmul")?;
        let mut out = vec![T::ZERO; batch * m * n];
        for i in 0..batch {
            let a = MatRef::new(&self.data()[i * ar * ac..(i + 1) * ar * ac], ar, ac);
            let b = MatRef::new(&rhs.data()[i * br * bc..(i + 1) * br * bc], br, bc);
            let a = if trans_a { a.t() } else { a };
            let b = if trans_b { b.t() } else { b };
            let c = MatMut::new(&mut out[i * m * n..(i + 1) * m * n], m, n);
            gemm(T::ONE, a, b, T::ZERO, c);
        }
        let shape = if rank == 3 {
            Shape::from([batch, m, n])
        } else {
            Shape::from([m, n])
        };
        Ok(Tensor::from_parts(out, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
        let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a.data()[i * k + p] * b.data()[p * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn matmul_matches_loops_with_and_without_transposes() {
        let a = Tensor::<f64>::arange(6).reshape([2, 3]).unwrap();
        let b = Tensor::<f64>::arange(12).reshape([3, 4]).unwrap();
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.data(), naive(&a, &b).as_slice());
        // aᵀ stored, read transposed through strides
        let at = a.transpose(0, 1).unwrap();
        let bt = b.transpose(0, 1).unwrap();
        assert_eq!(at.matmul_t(true, &b, false).unwrap(), c);
        assert_eq!(a.matmul_t(false, &bt, true).unwrap(), c);
        assert_eq!(at.matmul_t(true, &bt, true).unwrap(), c);
    }

    #[test]
    fn large_products_split_across_threads_match_loops() {
        // 300 rows: blocks of 128, 128 and 44 when the pool has several threads
        let a = Tensor::<f64>::arange(300 * 70)
            .reshape([300, 70])
            .unwrap()
            .div_scalar(1000.0);
        let b = Tensor::<f64>::arange(70 * 50)
            .reshape([70, 50])
            .unwrap()
            .div_scalar(100.0);
        let c = a.matmul(&b).unwrap();
        let expect = naive(&a, &b);
        for (x, y) in c.data().iter().zip(&expect) {
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn batched_matmul() {
        let a = Tensor::<f32>::arange(12).reshape([2, 2, 3]).unwrap();
        let b = Tensor::<f32>::ones([2, 3, 1]);
        assert_eq!(a.matmul(&b).unwrap().data(), &[3., 12., 21., 30.]);
    }

    #[test]
    fn inner_dimension_mismatch_is_an_error() {
        let err = Tensor::<f32>::zeros([2, 3])
            .matmul(&Tensor::zeros([4, 5]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "matmul: inner dimensions differ (3 ≠ 4): [2, 3] × [4, 5]"
        );
        assert!(Tensor::<f32>::zeros([2, 3])
            .matmul(&Tensor::zeros([2, 3, 1]))
            .is_err());
    }
}
