//! The GEMM path selector: which kernel multiplies a given product, chosen from its
//! shape, layout, element type and the level, and forceable per thread for the tests.

use super::{MatMut, MatRef};
use crate::float::{DType, Float};
use crate::simd::Level;
use std::cell::Cell;

/// How a product is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmPath {
    /// `matrixmultiply`, which packs both operands first: any type, layout and size (the
    /// portable path).
    Packed,
    /// The vector kernel for few rows of C or a short inner dimension, which keeps a tile
    /// of C in registers for the whole inner loop (f32; α = 1, β ∈ {0, 1}; B and C with
    /// contiguous rows).
    FewRows,
    /// The vector kernel for `A·Bᵀ` with A and B stored row-major (a dense layer's
    /// `x·Wᵀ`) and few rows of C: dot products along the shared dimension, no packing.
    DotRows,
}

/// Up to this many rows of C, or this inner dimension, the few-rows kernels beat
/// `matrixmultiply`.
const SMALL_GEMM_MAX: usize = 32;

thread_local! {
    static FORCED: Cell<Option<GemmPath>> = const { Cell::new(None) };
}

/// Runs `f` with every product it multiplies on this thread taking `path` where that
/// path applies (and [`GemmPath::Packed`] where it does not): how the tests reach every
/// path on the same shapes.
pub fn with_path<R>(path: GemmPath, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<GemmPath>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(path))));
    f()
}

/// The path for `C ← α·A·B + β·C` at `level`.
pub(crate) fn path<T: Float>(
    level: Level,
    alpha: T,
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    beta: T,
    c: &MatMut<'_, T>,
) -> GemmPath {
    let vector = level.is_vector()
        && T::DTYPE == DType::F32
        && alpha == T::ONE
        && (beta == T::ZERO || beta == T::ONE)
        && c.cs == 1;
    // the layouts each kernel reads (any size), and the sizes where it is the fastest
    let (dot_layout, few_layout) = (vector && a.cs == 1 && b.rs == 1, vector && b.cs == 1);
    let dot_rows = dot_layout && c.rows <= SMALL_GEMM_MAX;
    let few_rows = few_layout && (c.rows <= SMALL_GEMM_MAX || a.cols <= SMALL_GEMM_MAX);
    match FORCED.with(Cell::get) {
        Some(GemmPath::DotRows) if dot_layout => GemmPath::DotRows,
        Some(GemmPath::FewRows) if few_layout => GemmPath::FewRows,
        Some(_) => GemmPath::Packed,
        None if dot_rows => GemmPath::DotRows,
        None if few_rows => GemmPath::FewRows,
        None => GemmPath::Packed,
    }
}
