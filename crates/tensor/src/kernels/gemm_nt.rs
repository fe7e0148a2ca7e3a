//! `C ← A·Bᵀ (+ C)` over [`Simd`] (f32) with A and B row-major (B is n × k): dot products
//! vectorised along k, in tiles of a few rows of A × a few rows of B whose sums stay in
//! registers until their lanes are added at the end. The shape of a dense layer's forward
//! pass (`x · Wᵀ`) for small batches; its portable twin is `matrixmultiply`.

use crate::simd::{dispatch, Level, Simd};

/// The sizes of [`gemm_nt`]: A holds m rows of `lda`, B n rows of `ldb` (each ≥ k), C m
/// rows of `ldc` ≥ n.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GemmNt {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
}

/// `C ← A·Bᵀ (+ C)`.
///
/// # Panics
/// If a slice is shorter than its rows.
pub(crate) fn gemm_nt(level: Level, g: &GemmNt, a: &[f32], b: &[f32], c: &mut [f32]) {
    // rows may overlap only where there is one of them
    assert!((g.m <= 1 || g.lda >= g.k) && (g.n <= 1 || g.ldb >= g.k) && (g.m <= 1 || g.ldc >= g.n));
    assert!(g.m == 0 || g.k == 0 || (g.m - 1) * g.lda + g.k <= a.len());
    assert!(g.n == 0 || g.k == 0 || (g.n - 1) * g.ldb + g.k <= b.len());
    assert!(g.m == 0 || g.n == 0 || (g.m - 1) * g.ldc + g.n <= c.len());
    dispatch!(level, gemm_nt_k(g: &GemmNt, a: &[f32], b: &[f32], c: &mut [f32]))
}

#[inline(always)]
fn gemm_nt_k<S: Simd>(s: S, g: &GemmNt, a: &[f32], b: &[f32], c: &mut [f32]) {
    let mut i = 0;
    while i < g.m {
        let rows = (g.m - i).min(4);
        let (a, c) = (&a[i * g.lda..], &mut c[i * g.ldc..]);
        match rows {
            1 => nt_rows::<S, 1>(s, g, a, b, c),
            2 => nt_rows::<S, 2>(s, g, a, b, c),
            3 => nt_rows::<S, 3>(s, g, a, b, c),
            _ => nt_rows::<S, 4>(s, g, a, b, c),
        }
        i += rows;
    }
}

/// As many rows of B as leave the tile's sums, the rows' vectors and A in registers.
const fn widest(mr: usize, registers: usize) -> usize {
    match (mr, registers >= 32) {
        (1, true) => 8,
        (2, true) => 6,
        (_, true) => 4,
        (1, false) => 6,
        (2, false) => 4,
        (3, false) => 3,
        (_, false) => 2,
    }
}

#[inline(always)]
fn nt_rows<S: Simd, const MR: usize>(s: S, g: &GemmNt, a: &[f32], b: &[f32], c: &mut [f32]) {
    let mut j = 0;
    while j < g.n {
        let cols = (g.n - j).min(widest(MR, S::REGISTERS));
        match cols {
            1 => nt_tile::<S, MR, 1>(s, g, a, b, c, j),
            2 => nt_tile::<S, MR, 2>(s, g, a, b, c, j),
            3 => nt_tile::<S, MR, 3>(s, g, a, b, c, j),
            4 => nt_tile::<S, MR, 4>(s, g, a, b, c, j),
            5 => nt_tile::<S, MR, 5>(s, g, a, b, c, j),
            6 => nt_tile::<S, MR, 6>(s, g, a, b, c, j),
            7 => nt_tile::<S, MR, 7>(s, g, a, b, c, j),
            _ => nt_tile::<S, MR, 8>(s, g, a, b, c, j),
        }
        j += cols;
    }
}

#[inline(always)]
fn nt_tile<S: Simd, const MR: usize, const NR: usize>(
    s: S,
    g: &GemmNt,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    j: usize,
) {
    // f32 pointers are 4-byte aligned, so a row's offset into its cache line is a whole
    // number of elements; the tile's rows share it when their stride is whole lines
    let row0 = b.as_ptr().wrapping_add(j * g.ldb);
    let skew = (row0 as usize % 64) / 4;
    let sum = if S::SHIFT_PAIR && (NR == 1 || g.ldb.is_multiple_of(16)) {
        nt_sums_aligned::<S, MR, NR>(s, g, a, row0, skew)
    } else {
        nt_sums::<S, MR, NR>(s, g, a, row0)
    };
    // the tile's sums in (row, column) order, eight at a time side by side, the rest one
    // by one: the same totals either way (see `Simd::reduce_add_8`)
    const { assert!(MR * NR <= 32) };
    let count = MR * NR;
    let mut totals = [0.0f32; 32];
    let mut i = 0;
    while i + 8 <= count {
        let mut group = [s.zero(); 8];
        for (t, v) in group.iter_mut().enumerate() {
            *v = sum[(i + t) / NR][(i + t) % NR];
        }
        let eight = s.reduce_add_8(group);
        totals[i..i + 8].copy_from_slice(&eight);
        i += 8;
    }
    for t in i..count {
        totals[t] = s.reduce_add(sum[t / NR][t % NR]);
    }
    for (t, &total) in totals[..count].iter().enumerate() {
        let out = &mut c[(t / NR) * g.ldc + j + t % NR];
        *out = if g.accumulate { *out + total } else { total };
    }
}

/// The lane sums of a tile, reading rows of B by unaligned loads.
#[inline(always)]
fn nt_sums<S: Simd, const MR: usize, const NR: usize>(
    s: S,
    g: &GemmNt,
    a: &[f32],
    row0: *const f32,
) -> [[S::V; NR]; MR] {
    let l = S::LANES;
    let mut sum = [[s.zero(); NR]; MR];
    let mut step = {
        #[inline(always)]
        |p: usize, full: bool| {
            let m = s.mask_first(g.k - p);
            let mut bv = [s.zero(); NR];
            for (q, v) in bv.iter_mut().enumerate() {
                let ptr = row0.wrapping_add(q * g.ldb + p);
                // SAFETY: row q of the tile, lanes limited to k.
                *v = unsafe {
                    if full {
                        s.load(ptr)
                    } else {
                        s.load_masked(m, ptr)
                    }
                };
            }
            for (r, sum_r) in sum.iter_mut().enumerate() {
                let ptr = a.as_ptr().wrapping_add(r * g.lda + p);
                // SAFETY: row r of A, lanes limited to k.
                let av = unsafe {
                    if full {
                        s.load(ptr)
                    } else {
                        s.load_masked(m, ptr)
                    }
                };
                for (acc, &v) in sum_r.iter_mut().zip(&bv) {
                    *acc = s.fmadd(av, v, *acc);
                }
            }
        }
    };
    let mut p = 0;
    while p + l <= g.k {
        step(p, true);
        p += l;
    }
    if p < g.k {
        step(p, false);
    }
    sum
}

/// [`nt_sums`] for rows that all start `skew` elements into a cache line: each row is
/// read by 64-byte-aligned loads, and every vector is shifted into place from two of
/// them ([`Simd::shift_pair`]), so its lanes, hence the sums, are exactly those of an
/// unaligned load. The allocator places a weight matrix 16 or 32 bytes into a line, and
/// unaligned loads then split every line they stream from L2 (reading LeNet's 120 × 256
/// dense weight at batch 1 with AVX-512: 1.62 µs → 1.11 µs). Only for 16-lane vectors,
/// whose loads are whole lines.
#[inline(always)]
fn nt_sums_aligned<S: Simd, const MR: usize, const NR: usize>(
    s: S,
    g: &GemmNt,
    a: &[f32],
    row0: *const f32,
    skew: usize,
) -> [[S::V; NR]; MR] {
    let l = S::LANES;
    debug_assert_eq!(l, 16);
    let mut sum = [[s.zero(); NR]; MR];
    let base = row0.wrapping_sub(skew);
    // elements [skew, end) from each row's base are the row
    let end = skew + g.k;
    // lane l takes element skew + l of (this chunk, the next)
    let shift = s.ramp_i(skew as i32, 1);
    let mut prev = [s.zero(); NR];
    for (q, v) in prev.iter_mut().enumerate() {
        // SAFETY: aligned; the mask keeps the lanes inside row q.
        *v = unsafe {
            s.load_aligned_masked(
                s.mask_range(skew as isize, end as isize),
                base.wrapping_add(q * g.ldb),
            )
        };
    }
    let mut p = 0;
    // whole chunks: the next one lies inside the row
    while p + 2 * l <= end {
        let mut bv = [s.zero(); NR];
        for (q, (v, prev)) in bv.iter_mut().zip(&mut prev).enumerate() {
            // SAFETY: aligned, inside row q by the loop bound.
            let next = unsafe { s.load_aligned(base.wrapping_add(q * g.ldb + p + l)) };
            *v = s.shift_pair(*prev, shift, next);
            *prev = next;
        }
        for (r, sum_r) in sum.iter_mut().enumerate() {
            // SAFETY: row r of A; p + LANES ≤ k by the loop bound.
            let av = unsafe { s.load(a.as_ptr().add(r * g.lda + p)) };
            for (acc, &v) in sum_r.iter_mut().zip(&bv) {
                *acc = s.fmadd(av, v, *acc);
            }
        }
        p += l;
    }
    // at most two more vectors, with masks
    while p < g.k {
        let q_end = p + l;
        let next_mask = s.mask_range(0, end as isize - q_end as isize);
        let mut bv = [s.zero(); NR];
        for (q, (v, prev)) in bv.iter_mut().zip(&mut prev).enumerate() {
            // SAFETY: aligned; the mask keeps the lanes inside row q (an empty one reads
            // nothing).
            let next =
                unsafe { s.load_aligned_masked(next_mask, base.wrapping_add(q * g.ldb + q_end)) };
            *v = s.shift_pair(*prev, shift, next);
            *prev = next;
        }
        let m = s.mask_first(g.k - p);
        for (r, sum_r) in sum.iter_mut().enumerate() {
            // SAFETY: row r of A, lanes limited to k.
            let av = unsafe { s.load_masked(m, a.as_ptr().add(r * g.lda + p)) };
            for (acc, &v) in sum_r.iter_mut().zip(&bv) {
                *acc = s.fmadd(av, v, *acc);
            }
        }
        p += l;
    }
    sum
}
