//! The few-rows GEMM over [`Simd`] (f32): `C ← A·B (+ C)` for products with few rows of C
//! or a short inner dimension (a convolution's output channels), where each tile of C
//! stays in registers for the whole inner loop and nothing is packed. Its portable twin
//! is `matrixmultiply`, behind [`crate::matmul::gemm`].

use crate::simd::{dispatch, Level, Simd};

/// The operands of [`gemm`]: `C (m × n) ← A (m × k) · B (k × n)`, plus C's old value when
/// `accumulate`. A is addressed by row and column strides (so it may be a transposed
/// view), B and C are row-major with leading dimensions `ldb`, `ldc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gemm {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// A's row stride.
    pub rsa: usize,
    /// A's column stride.
    pub csa: usize,
    /// B's row stride (its columns are contiguous).
    pub ldb: usize,
    /// C's row stride (its columns are contiguous).
    pub ldc: usize,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
}

/// `C ← A·B (+ C)`: each tile keeps rows × one or two vectors of C in registers while it
/// walks k, broadcasting one element of A per row and loading one row of B per vector.
///
/// # Panics
/// If an access would fall outside a slice (the strides must fit).
pub(crate) fn gemm(level: Level, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(g.m == 0 || g.k == 0 || (g.m - 1) * g.rsa + (g.k - 1) * g.csa < a.len());
    assert!(g.k == 0 || g.n == 0 || (g.k - 1) * g.ldb + g.n <= b.len());
    assert!(g.m == 0 || g.n == 0 || (g.m - 1) * g.ldc + g.n <= c.len());
    dispatch!(level, gemm_k(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]))
}

/// Rows of a tile two vectors wide: 8 × 2 sums with 32 registers, 6 × 2 with 16.
const fn wide_rows(registers: usize) -> usize {
    if registers >= 32 {
        8
    } else {
        6
    }
}

#[inline(always)]
fn gemm_k<S: Simd>(s: S, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    // 8 rows × 2 vectors load 2 rows of B and 8 elements of A per 16 FMAs; 16 rows × 1
    // vector load 17, so the wide tile wins whenever there are two vectors of columns
    let tall = if g.n >= 2 * S::LANES {
        wide_rows(S::REGISTERS)
    } else if S::REGISTERS >= 32 {
        16
    } else {
        12
    };
    let mut i = 0;
    while i < g.m {
        let rows = (g.m - i).min(tall);
        let (a, c) = (&a[i * g.rsa..], &mut c[i * g.ldc..]);
        match rows {
            1 => block::<S, 1>(s, g, a, b, c),
            2 => block::<S, 2>(s, g, a, b, c),
            3 => block::<S, 3>(s, g, a, b, c),
            4 => block::<S, 4>(s, g, a, b, c),
            5 => block::<S, 5>(s, g, a, b, c),
            6 => block::<S, 6>(s, g, a, b, c),
            7 => block::<S, 7>(s, g, a, b, c),
            8 => block::<S, 8>(s, g, a, b, c),
            9 => block::<S, 9>(s, g, a, b, c),
            10 => block::<S, 10>(s, g, a, b, c),
            11 => block::<S, 11>(s, g, a, b, c),
            12 => block::<S, 12>(s, g, a, b, c),
            13 => block::<S, 13>(s, g, a, b, c),
            14 => block::<S, 14>(s, g, a, b, c),
            15 => block::<S, 15>(s, g, a, b, c),
            _ => block::<S, 16>(s, g, a, b, c),
        }
        i += rows;
    }
}

/// `MR` rows of C: tiles of two vectors while there are few rows (so that enough sums
/// hide the FMA latency), else one; the last tile is masked.
#[inline(always)]
fn block<S: Simd, const MR: usize>(s: S, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let l = S::LANES;
    let mut j = 0;
    if MR <= wide_rows(S::REGISTERS) {
        while j + 2 * l <= g.n {
            tile::<S, MR, 2, true>(s, g, a, b, c, j);
            j += 2 * l;
        }
    }
    while j + l <= g.n {
        tile::<S, MR, 1, true>(s, g, a, b, c, j);
        j += l;
    }
    if j < g.n {
        tile::<S, MR, 1, false>(s, g, a, b, c, j);
    }
}

/// One tile: `MR` rows × `NC` vectors of C from column `j`; all columns when `FULL`,
/// else the one vector up to n.
#[inline(always)]
fn tile<S: Simd, const MR: usize, const NC: usize, const FULL: bool>(
    s: S,
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    j: usize,
) {
    let l = S::LANES;
    let m = s.mask_first(g.n - j);
    let mut acc = [[s.zero(); NC]; MR];
    let (pa, pb, pc) = (
        a.as_ptr(),
        b.as_ptr().wrapping_add(j),
        c.as_mut_ptr().wrapping_add(j),
    );
    for kk in 0..g.k {
        let mut bv = [s.zero(); NC];
        for (q, v) in bv.iter_mut().enumerate() {
            let p = pb.wrapping_add(kk * g.ldb + q * l);
            // SAFETY: row kk of B, columns j + q·LANES .. within n (by FULL or the mask).
            *v = unsafe {
                if FULL {
                    s.load(p)
                } else {
                    s.load_masked(m, p)
                }
            };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: A[r, kk] is inside A (checked by `gemm`).
            let av = s.splat(unsafe { *pa.add(r * g.rsa + kk * g.csa) });
            for (acc_rq, &bq) in acc_r.iter_mut().zip(&bv) {
                *acc_rq = s.fmadd(av, bq, *acc_rq);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, &v) in acc_r.iter().enumerate() {
            let p = pc.wrapping_add(r * g.ldc + q * l);
            // SAFETY: row r of C, columns within n (by FULL or the mask).
            unsafe {
                if FULL {
                    let v = if g.accumulate { s.add(v, s.load(p)) } else { v };
                    s.store(p, v);
                } else {
                    let v = if g.accumulate {
                        s.add(v, s.load_masked(m, p))
                    } else {
                        v
                    };
                    s.store_masked(p, m, v);
                }
            }
        }
    }
}
