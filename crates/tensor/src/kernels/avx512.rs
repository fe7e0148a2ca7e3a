//! AVX-512 kernels (f32): a GEMM for matrices with few rows (a convolution's output
//! channels), e^x and the logistic function. Callers check [`super::avx512()`] first.

use super::exp::{EXP_MAX, EXP_POLY, LN2_HI, LN2_LO};
use std::arch::x86_64::*;

/// Lanes per vector.
const L: usize = 16;

/// The mask of the first `n` lanes (all lanes for n ≥ 16).
#[inline]
pub(crate) fn lanes(n: usize) -> __mmask16 {
    if n >= L {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn exp16(x: __m512) -> __m512 {
    // max/min return their second operand when either is NaN: x goes second, so a NaN
    // passes the clamp and comes out NaN
    let x = _mm512_min_ps(
        _mm512_set1_ps(EXP_MAX),
        _mm512_max_ps(_mm512_set1_ps(-EXP_MAX), x),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let mut p = _mm512_set1_ps(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let y = _mm512_add_ps(
        _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
        _mm512_set1_ps(1.0),
    );
    _mm512_scalef_ps(y, n)
}

#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn sigmoid16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let d = _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)));
    // 1 / d without a division (vdivps issues once per 16 cycles and bounded the
    // convolution epilogues): the 14-bit reciprocal estimate and one Newton step,
    // r ← r + r·(1 − d·r), which squares its error to below 2⁻²⁴ relative
    let r = _mm512_rcp14_ps(d);
    _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, one), r)
}

/// `dst[i] = 1 / (1 + e^−src[i])`.
///
/// # Safety
/// The CPU must support AVX-512F; `dst` must be as long as `src`.
#[target_feature(enable = "avx512f")]
pub unsafe fn sigmoid(src: &[f32], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    for i in (0..src.len()).step_by(L) {
        let m = lanes(src.len() - i);
        // SAFETY: the mask limits the access to the slices' bounds.
        unsafe {
            let x = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), m, sigmoid16(x));
        }
    }
}

/// `x[i] = 1 / (1 + e^−x[i])`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn sigmoid_in_place(x: &mut [f32]) {
    for i in (0..x.len()).step_by(L) {
        let m = lanes(x.len() - i);
        // SAFETY: the mask limits the access to the slice's bounds.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm512_mask_storeu_ps(p, m, sigmoid16(_mm512_maskz_loadu_ps(m, p)));
        }
    }
}

/// `dst[i] = e^src[i]`.
///
/// # Safety
/// The CPU must support AVX-512F; `dst` must be as long as `src`.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp(src: &[f32], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    for i in (0..src.len()).step_by(L) {
        let m = lanes(src.len() - i);
        // SAFETY: the mask limits the access to the slices' bounds.
        unsafe {
            let x = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), m, exp16(x));
        }
    }
}

/// The operands of [`gemm`]: `C (m × n) ← A (m × k) · B (k × n)`, plus C's old value when
/// `accumulate`. A is addressed by row and column strides (so it may be a transposed
/// view), B and C are row-major with leading dimensions `ldb`, `ldc`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
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

/// `C ← A·B (+ C)`, tuned for few rows: each tile keeps up to 16 rows × 32 columns of C in
/// registers while it walks k, broadcasting one element of A per row and loading one row
/// of B per step.
///
/// # Safety
/// The CPU must support AVX-512F, and the strides must keep every access of A, B and C
/// inside the slices.
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    debug_assert!(g.m == 0 || g.k == 0 || (g.m - 1) * g.rsa + (g.k - 1) * g.csa < a.len());
    debug_assert!(g.k == 0 || g.n == 0 || (g.k - 1) * g.ldb + g.n <= b.len());
    debug_assert!(g.m == 0 || g.n == 0 || (g.m - 1) * g.ldc + g.n <= c.len());
    // 8 rows × 32 columns load 2 rows of B and 8 elements of A per 16 FMAs; 16 rows ×
    // 16 columns load 17, so the wide tile wins whenever there are 32 columns
    let tall = if g.n >= 2 * L { 8 } else { 16 };
    let mut i = 0;
    while i < g.m {
        let rows = (g.m - i).min(tall);
        let (a, c) = (&a[i * g.rsa..], &mut c[i * g.ldc..]);
        // SAFETY: forwarded; `rows` matches the block's const parameter.
        unsafe {
            match rows {
                1 => block::<1>(g, a, b, c),
                2 => block::<2>(g, a, b, c),
                3 => block::<3>(g, a, b, c),
                4 => block::<4>(g, a, b, c),
                5 => block::<5>(g, a, b, c),
                6 => block::<6>(g, a, b, c),
                7 => block::<7>(g, a, b, c),
                8 => block::<8>(g, a, b, c),
                9 => block::<9>(g, a, b, c),
                10 => block::<10>(g, a, b, c),
                11 => block::<11>(g, a, b, c),
                12 => block::<12>(g, a, b, c),
                13 => block::<13>(g, a, b, c),
                14 => block::<14>(g, a, b, c),
                15 => block::<15>(g, a, b, c),
                _ => block::<16>(g, a, b, c),
            }
        }
        i += rows;
    }
}

/// `MR` rows of C: tiles of 32 columns while there are few rows (so at least 8
/// accumulators hide the FMA latency), else 16; the last tile is masked.
#[target_feature(enable = "avx512f")]
unsafe fn block<const MR: usize>(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let mut j = 0;
    if MR <= 8 {
        while j + 2 * L <= g.n {
            // SAFETY: forwarded; the tile lies within n.
            unsafe { tile::<MR, 2>(g, a, b, c, j, [0xffff, 0xffff]) };
            j += 2 * L;
        }
    }
    while j < g.n {
        // SAFETY: forwarded; the mask stops at n.
        unsafe { tile::<MR, 1>(g, a, b, c, j, [lanes(g.n - j), 0]) };
        j += L;
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const MR: usize, const NC: usize>(
    g: &Gemm,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    j: usize,
    masks: [__mmask16; 2],
) {
    let mut acc = [[_mm512_setzero_ps(); NC]; MR];
    let (pa, pb, pc) = (
        a.as_ptr(),
        b.as_ptr().wrapping_add(j),
        c.as_mut_ptr().wrapping_add(j),
    );
    for kk in 0..g.k {
        let mut bv = [_mm512_setzero_ps(); NC];
        for (v, (q, &m)) in bv.iter_mut().zip((0..NC).zip(&masks)) {
            // SAFETY: row kk of B, columns j + 16q .. within n by the mask.
            *v = unsafe { _mm512_maskz_loadu_ps(m, pb.add(kk * g.ldb + q * L)) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: A[r, kk] is inside A by the caller's contract.
            let av = _mm512_set1_ps(unsafe { *pa.add(r * g.rsa + kk * g.csa) });
            for (acc_rq, &bq) in acc_r.iter_mut().zip(&bv) {
                *acc_rq = _mm512_fmadd_ps(av, bq, *acc_rq);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, (&v, &m)) in acc_r.iter().zip(&masks).enumerate() {
            // SAFETY: row r of C, columns within n by the mask.
            unsafe {
                let p = pc.add(r * g.ldc + q * L);
                let v = if g.accumulate {
                    _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p))
                } else {
                    v
                };
                _mm512_mask_storeu_ps(p, m, v);
            }
        }
    }
}

/// The lanes `lo..hi` of a 16-lane chunk (clamped to 0..16).
#[inline]
fn lane_range(lo: isize, hi: isize) -> __mmask16 {
    let (lo, hi) = (lo.clamp(0, 16) as u32, hi.clamp(0, 16) as u32);
    if hi <= lo {
        0
    } else {
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
    }
}

/// `dst[i] = src[i + offset]` where `i + offset` lies inside `src`, else 0: one row of an
/// im2col matrix for a stride-1 convolution (the zeros are the padding).
#[target_feature(enable = "avx512f")]
#[inline]
fn copy_shifted(dst: &mut [f32], src: &[f32], offset: isize) {
    let (n, len) = (dst.len() as isize, src.len() as isize);
    let (lo, hi) = ((-offset).max(0), (len - offset).min(n));
    for i in (0..n).step_by(L) {
        let valid = lane_range(lo - i, hi - i);
        // SAFETY: loads touch only lanes in `valid`, which index inside `src`; stores are
        // limited to dst's length.
        unsafe {
            let v = _mm512_maskz_loadu_ps(valid, src.as_ptr().wrapping_offset(i + offset));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().offset(i), lanes((n - i) as usize), v);
        }
    }
}

/// `dst[i + offset] += src[i]` where `i + offset` lies inside `dst`: the adjoint of
/// [`copy_shifted`], one row of col2im.
#[target_feature(enable = "avx512f")]
#[inline]
fn add_shifted(dst: &mut [f32], src: &[f32], offset: isize) {
    let (n, len) = (src.len() as isize, dst.len() as isize);
    let (lo, hi) = ((-offset).max(0), (len - offset).min(n));
    for i in (0..n).step_by(L) {
        let valid = lane_range(lo - i, hi - i);
        // SAFETY: every access is limited to lanes in `valid`, inside both slices.
        unsafe {
            let p = dst.as_mut_ptr().wrapping_offset(i + offset);
            let sum = _mm512_add_ps(
                _mm512_maskz_loadu_ps(valid, p),
                _mm512_maskz_loadu_ps(valid, src.as_ptr().offset(i)),
            );
            _mm512_mask_storeu_ps(p, valid, sum);
        }
    }
}

/// The sizes a stride-1, dilation-1 lowering needs: input (c, h, w), kernel (kh, kw),
/// padding (ph, pw), output (h_out, w_out).
#[derive(Clone, Copy, Debug)]
pub struct Lowering {
    /// Channels (of one group).
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Padding, rows.
    pub ph: usize,
    /// Padding, columns.
    pub pw: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

/// `dst[j] = x_c[padded_row − ph, j + shift − pw]` of one channel `x_c` (h × w), 0 where
/// that falls in the padding: a run of an im2col column or im2row row.
#[target_feature(enable = "avx512f")]
#[inline]
fn copy_padded_row(dst: &mut [f32], x_c: &[f32], s: &Lowering, padded_row: usize, shift: usize) {
    let ih = padded_row as isize - s.ph as isize;
    if ih < 0 || ih >= s.h as isize {
        dst.fill(0.0);
    } else {
        let ih = ih as usize;
        copy_shifted(
            dst,
            &x_c[ih * s.w..(ih + 1) * s.w],
            shift as isize - s.pw as isize,
        );
    }
}

/// im2col for stride 1, dilation 1: `cols` (c·kh·kw × h_out·w_out) from `x` (c × h × w).
///
/// # Safety
/// The CPU must support AVX-512F; the slices must have the sizes above.
#[target_feature(enable = "avx512f")]
pub unsafe fn im2col_s1(x: &[f32], s: &Lowering, cols: &mut [f32]) {
    let plane = s.h_out * s.w_out;
    let mut rows = cols.chunks_exact_mut(plane);
    for x_c in x.chunks_exact(s.h * s.w).take(s.c) {
        for p in 0..s.kh {
            for q in 0..s.kw {
                let Some(dst) = rows.next() else { return };
                for (oh, out_row) in dst.chunks_exact_mut(s.w_out).enumerate() {
                    copy_padded_row(out_row, x_c, s, oh + p, q);
                }
            }
        }
    }
}

/// The transpose of [`im2col_s1`]: `rows` (h_out·w_out × c·kh·kw), one row per output
/// position holding its receptive field (the layout the weight gradient multiplies by).
///
/// # Safety
/// As [`im2col_s1`].
#[target_feature(enable = "avx512f")]
pub unsafe fn im2row_s1(x: &[f32], s: &Lowering, rows: &mut [f32]) {
    let k = s.c * s.kh * s.kw;
    for (n, row) in rows.chunks_exact_mut(k).enumerate().take(s.h_out * s.w_out) {
        let (oh, ow) = (n / s.w_out, n % s.w_out);
        let mut taps = row.chunks_exact_mut(s.kw);
        for x_c in x.chunks_exact(s.h * s.w).take(s.c) {
            for p in 0..s.kh {
                let Some(dst) = taps.next() else { return };
                copy_padded_row(dst, x_c, s, oh + p, ow);
            }
        }
    }
}

/// col2im for stride 1, dilation 1: adds `cols` back onto `dx` (c × h × w).
///
/// # Safety
/// As [`im2col_s1`].
#[target_feature(enable = "avx512f")]
pub unsafe fn col2im_s1(cols: &[f32], s: &Lowering, dx: &mut [f32]) {
    let plane = s.h_out * s.w_out;
    if s.ph == 0 && s.pw == 0 && s.w <= L {
        // Gather instead of scatter: each input row's gradient is summed in a register from
        // the column rows that read it, then stored once. (Adding into memory row by row
        // makes each masked load wait on the overlapping masked store before it.)
        // lanes q..q + w_out of an input row come from a column row shifted by q
        let masks: [__mmask16; L] =
            std::array::from_fn(|q| (lanes(q + s.w_out) & !lanes(q)) as __mmask16);
        for (c, dx_c) in dx.chunks_exact_mut(s.h * s.w).take(s.c).enumerate() {
            for (i, dx_row) in dx_c.chunks_exact_mut(s.w).enumerate() {
                // two running sums, so that each add waits on the one before it only half
                // as often
                let (mut even, mut odd) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                for p in (i + 1).saturating_sub(s.h_out)..s.kh.min(i + 1) {
                    // column row (c, p, q) read at output row i − p, shifted left by q
                    let base = cols
                        .as_ptr()
                        .wrapping_add((c * s.kh + p) * s.kw * plane + (i - p) * s.w_out);
                    let load = |q: usize| {
                        // SAFETY: the mask limits the load to the w_out values of the row.
                        unsafe {
                            _mm512_maskz_loadu_ps(
                                masks[q],
                                base.wrapping_add(q * plane).wrapping_sub(q),
                            )
                        }
                    };
                    let mut q = 0;
                    while q + 1 < s.kw {
                        even = _mm512_add_ps(even, load(q));
                        odd = _mm512_add_ps(odd, load(q + 1));
                        q += 2;
                    }
                    if q < s.kw {
                        even = _mm512_add_ps(even, load(q));
                    }
                }
                let acc = _mm512_add_ps(even, odd);
                // SAFETY: w ≤ 16 values of the row.
                unsafe {
                    _mm512_mask_storeu_ps(
                        dx_row.as_mut_ptr(),
                        lanes(s.w),
                        _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes(s.w), dx_row.as_ptr())),
                    )
                };
            }
        }
        return;
    }
    let mut rows = cols.chunks_exact(plane);
    for dx_c in dx.chunks_exact_mut(s.h * s.w).take(s.c) {
        for p in 0..s.kh {
            for q in 0..s.kw {
                let Some(src) = rows.next() else { return };
                for (oh, col_row) in src.chunks_exact(s.w_out).enumerate() {
                    let ih = (oh + p) as isize - s.ph as isize;
                    if ih >= 0 && ih < s.h as isize {
                        let ih = ih as usize;
                        add_shifted(
                            &mut dx_c[ih * s.w..(ih + 1) * s.w],
                            col_row,
                            q as isize - s.pw as isize,
                        );
                    }
                }
            }
        }
    }
}

/// `C (m × n) ← A (m × k) · Bᵀ (+ C)` where A and B are row-major with contiguous rows of
/// length k (B is n × k): dot products vectorised along k, in tiles of up to 4 rows of A
/// × 4 to 8 rows of B whose sums stay in registers until their lanes are added at the end.
/// The shape of a dense layer's forward pass (`x · Wᵀ`) for small batches.
///
/// # Safety
/// AVX-512F; A holds m rows of `lda`, B n rows of `ldb` (each ≥ k), C m rows of `ldc` ≥ n.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_nt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(4);
        let args = NtArgs {
            n,
            k,
            lda,
            ldb,
            ldc,
            accumulate,
        };
        let (a, c) = (&a[i * lda..], &mut c[i * ldc..]);
        // SAFETY: forwarded; `rows` matches the const parameter.
        unsafe {
            match rows {
                1 => nt_rows::<1>(&args, a, b, c),
                2 => nt_rows::<2>(&args, a, b, c),
                3 => nt_rows::<3>(&args, a, b, c),
                _ => nt_rows::<4>(&args, a, b, c),
            }
        }
        i += rows;
    }
}

struct NtArgs {
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    accumulate: bool,
}

#[target_feature(enable = "avx512f")]
unsafe fn nt_rows<const MR: usize>(g: &NtArgs, a: &[f32], b: &[f32], c: &mut [f32]) {
    // as many rows of B as leave the tile's sums, the rows' readers and A in registers
    const fn widest(mr: usize) -> usize {
        match mr {
            1 => 8,
            2 => 6,
            _ => 4,
        }
    }
    let mut j = 0;
    while j < g.n {
        let cols = (g.n - j).min(widest(MR));
        // SAFETY: forwarded; `cols` matches the const parameter.
        unsafe {
            match cols {
                1 => nt_tile::<MR, 1>(g, a, b, c, j),
                2 => nt_tile::<MR, 2>(g, a, b, c, j),
                3 => nt_tile::<MR, 3>(g, a, b, c, j),
                4 => nt_tile::<MR, 4>(g, a, b, c, j),
                5 => nt_tile::<MR, 5>(g, a, b, c, j),
                6 => nt_tile::<MR, 6>(g, a, b, c, j),
                7 => nt_tile::<MR, 7>(g, a, b, c, j),
                _ => nt_tile::<MR, 8>(g, a, b, c, j),
            }
        }
        j += cols;
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn nt_tile<const MR: usize, const NR: usize>(
    g: &NtArgs,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    j: usize,
) {
    // f32 pointers are 4-byte aligned, so a row's offset into its cache line is a whole
    // number of elements; the tile's rows share it when their stride is whole lines
    let row0 = b.as_ptr().wrapping_add(j * g.ldb);
    let skew = (row0 as usize % 64) / 4;
    let sum = if NR == 1 || g.ldb.is_multiple_of(L) {
        // SAFETY: forwarded.
        unsafe { nt_sums_aligned::<MR, NR>(g, a, row0, skew) }
    } else {
        // SAFETY: forwarded.
        unsafe { nt_sums::<MR, NR>(g, a, row0) }
    };
    // the tile's sums in (row, column) order, eight at a time side by side, the rest one
    // by one: the same totals either way (see `reduce_add_8`)
    const { assert!(MR * NR <= 32) };
    let count = MR * NR;
    let mut totals = [0.0f32; 32];
    let mut i = 0;
    while i + 8 <= count {
        let eight = reduce_add_8(std::array::from_fn(|t| sum[(i + t) / NR][(i + t) % NR]));
        // SAFETY: floats i..i + 8 ≤ MR·NR ≤ 32 of `totals`.
        unsafe { _mm256_storeu_ps(totals.as_mut_ptr().add(i), eight) };
        i += 8;
    }
    for t in i..count {
        totals[t] = _mm512_reduce_add_ps(sum[t / NR][t % NR]);
    }
    for (t, &total) in totals[..count].iter().enumerate() {
        let out = &mut c[(t / NR) * g.ldc + j + t % NR];
        *out = if g.accumulate { *out + total } else { total };
    }
}

/// `[_mm512_reduce_add_ps(s[q]) for q in 0..8]`, bit for bit, with the eight reductions
/// done side by side: each level adds the same pairs of lanes as the single reduction
/// (lane l with l + 8, then l + 4, l + 2, l + 1), so the sums are the same, in 21
/// shuffles and adds instead of 80 (a dense layer's outputs, eight of a tile at a time).
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce_add_8(s: [__m512; 8]) -> __m256 {
    // lane l + 8: [s_q lanes 0..8 summed with 8..16 | s_q+1 likewise]
    let pair = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
        )
    };
    let (a01, a23, a45, a67) = (
        pair(s[0], s[1]),
        pair(s[2], s[3]),
        pair(s[4], s[5]),
        pair(s[6], s[7]),
    );
    // lane l + 4: 128-bit quarter i holds s_i (of four) lanes 0..4
    let quad = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
        )
    };
    let (b0123, b4567) = (quad(a01, a23), quad(a45, a67));
    // lane l + 2: quarter i holds [s_i 0, s_i 1, s_i+4 0, s_i+4 1]
    let c = _mm512_add_ps(
        _mm512_shuffle_ps::<0b01_00_01_00>(b0123, b4567),
        _mm512_shuffle_ps::<0b11_10_11_10>(b0123, b4567),
    );
    // lane l + 1: quarter i holds [s_i, s_i+4, s_i, s_i+4]
    let d = _mm512_add_ps(
        _mm512_shuffle_ps::<0b10_00_10_00>(c, c),
        _mm512_shuffle_ps::<0b11_01_11_01>(c, c),
    );
    // s_q is in lane 4q (q < 4) or 4(q − 4) + 1
    let order = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_castps512_ps256(_mm512_permutexvar_ps(order, d))
}

/// The lane sums of a tile, reading rows of B by unaligned loads.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn nt_sums<const MR: usize, const NR: usize>(
    g: &NtArgs,
    a: &[f32],
    row0: *const f32,
) -> [[__m512; NR]; MR] {
    let mut sum = [[_mm512_setzero_ps(); NR]; MR];
    for p in (0..g.k).step_by(L) {
        let m = lanes(g.k - p);
        let mut bv = [_mm512_setzero_ps(); NR];
        for (q, v) in bv.iter_mut().enumerate() {
            // SAFETY: row q of the tile, lanes limited to k.
            *v = unsafe { _mm512_maskz_loadu_ps(m, row0.add(q * g.ldb + p)) };
        }
        for (r, sum_r) in sum.iter_mut().enumerate() {
            // SAFETY: row r of A, lanes limited to k.
            let av = unsafe { _mm512_maskz_loadu_ps(m, a.as_ptr().add(r * g.lda + p)) };
            for (s, &v) in sum_r.iter_mut().zip(&bv) {
                *s = _mm512_fmadd_ps(av, v, *s);
            }
        }
    }
    sum
}

/// [`nt_sums`] for rows that all start `skew` elements into a cache line: each row is
/// read by 64-byte-aligned loads, and every vector of 16 elements is shifted into place
/// from two of them (`vpermt2ps`), so its lanes, hence the sums, are exactly those of an
/// unaligned load. The allocator places a weight matrix 16 or 32 bytes into a line, and
/// unaligned loads then split every line they stream from L2 (reading LeNet's 120 × 256
/// dense weight at batch 1: 1.62 µs → 1.11 µs).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn nt_sums_aligned<const MR: usize, const NR: usize>(
    g: &NtArgs,
    a: &[f32],
    row0: *const f32,
    skew: usize,
) -> [[__m512; NR]; MR] {
    let mut sum = [[_mm512_setzero_ps(); NR]; MR];
    let base = row0.wrapping_sub(skew);
    // elements [skew, end) from each row's base are the row
    let end = skew + g.k;
    // lane l takes element skew + l of (this chunk, the next)
    let shift = _mm512_add_epi32(
        _mm512_set1_epi32(skew as i32),
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
    );
    let mut prev = [_mm512_setzero_ps(); NR];
    for (q, v) in prev.iter_mut().enumerate() {
        // SAFETY: aligned; the mask keeps the lanes inside row q.
        *v = unsafe {
            _mm512_maskz_load_ps(lanes(end) & !lanes(skew), base.wrapping_add(q * g.ldb))
        };
    }
    let mut p = 0;
    // whole chunks: the next one lies inside the row
    while p + 2 * L <= end {
        let mut bv = [_mm512_setzero_ps(); NR];
        for (q, (v, prev)) in bv.iter_mut().zip(&mut prev).enumerate() {
            // SAFETY: aligned, inside row q by the loop bound.
            let next = unsafe { _mm512_load_ps(base.wrapping_add(q * g.ldb + p + L)) };
            *v = _mm512_permutex2var_ps(*prev, shift, next);
            *prev = next;
        }
        for (r, sum_r) in sum.iter_mut().enumerate() {
            // SAFETY: row r of A; p + 16 ≤ k by the loop bound.
            let av = unsafe { _mm512_loadu_ps(a.as_ptr().add(r * g.lda + p)) };
            for (s, &v) in sum_r.iter_mut().zip(&bv) {
                *s = _mm512_fmadd_ps(av, v, *s);
            }
        }
        p += L;
    }
    // at most two more vectors, with masks
    while p < g.k {
        let q_end = p + L;
        let next_mask = if q_end < end { lanes(end - q_end) } else { 0 };
        let mut bv = [_mm512_setzero_ps(); NR];
        for (q, (v, prev)) in bv.iter_mut().zip(&mut prev).enumerate() {
            // SAFETY: aligned; the mask keeps the lanes inside row q (an empty one reads
            // nothing).
            let next =
                unsafe { _mm512_maskz_load_ps(next_mask, base.wrapping_add(q * g.ldb + q_end)) };
            *v = _mm512_permutex2var_ps(*prev, shift, next);
            *prev = next;
        }
        let m = lanes(g.k - p);
        for (r, sum_r) in sum.iter_mut().enumerate() {
            // SAFETY: row r of A, lanes limited to k.
            let av = unsafe { _mm512_maskz_loadu_ps(m, a.as_ptr().add(r * g.lda + p)) };
            for (s, &v) in sum_r.iter_mut().zip(&bv) {
                *s = _mm512_fmadd_ps(av, v, *s);
            }
        }
        p += L;
    }
    sum
}

/// `dst[i] = table[src[i]]`, sixteen lookups per gather (the tail one by one).
///
/// # Safety
/// AVX-512F; `table` holds 256 values; `dst` is as long as `src` (and is only written).
#[target_feature(enable = "avx512f")]
pub unsafe fn lookup_bytes(table: &[f32], src: &[u8], dst: &mut [std::mem::MaybeUninit<f32>]) {
    debug_assert!(table.len() >= 256 && dst.len() >= src.len());
    let full = src.len() / L * L;
    for i in (0..full).step_by(L) {
        // SAFETY: 16 bytes from i < full lie in src; each index is a byte, below the
        // table's 256 entries; 16 values from i lie in dst.
        unsafe {
            let bytes = _mm_loadu_si128(src.as_ptr().add(i).cast());
            let v = _mm512_i32gather_ps::<4>(_mm512_cvtepu8_epi32(bytes), table.as_ptr().cast());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i).cast(), v);
        }
    }
    for (d, &b) in dst[full..src.len()].iter_mut().zip(&src[full..]) {
        d.write(table[usize::from(b)]);
    }
}

/// `grad[i] ← grad[i] · y[i]·(1 − y[i])`: the sigmoid's backward step from its output.
///
/// # Safety
/// AVX-512F; `y` at least as long as `grad`.
#[target_feature(enable = "avx512f")]
pub unsafe fn sigmoid_backward(grad: &mut [f32], y: &[f32]) {
    debug_assert!(y.len() >= grad.len());
    let one = _mm512_set1_ps(1.0);
    for i in (0..grad.len()).step_by(L) {
        let m = lanes(grad.len() - i);
        // SAFETY: the mask limits the access to grad's length.
        unsafe {
            let (g, yv) = (
                _mm512_maskz_loadu_ps(m, grad.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(m, y.as_ptr().add(i)),
            );
            let d = _mm512_mul_ps(yv, _mm512_sub_ps(one, yv));
            _mm512_mask_storeu_ps(grad.as_mut_ptr().add(i), m, _mm512_mul_ps(g, d));
        }
    }
}

/// `grad[i] ← grad[i]` where `y[i] > 0`, else 0: the relu's backward step from its output.
///
/// # Safety
/// AVX-512F; `y` at least as long as `grad`.
#[target_feature(enable = "avx512f")]
pub unsafe fn relu_backward(grad: &mut [f32], y: &[f32]) {
    debug_assert!(y.len() >= grad.len());
    for i in (0..grad.len()).step_by(L) {
        let m = lanes(grad.len() - i);
        // SAFETY: the mask limits the access to grad's length.
        unsafe {
            let (g, yv) = (
                _mm512_maskz_loadu_ps(m, grad.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(m, y.as_ptr().add(i)),
            );
            let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(yv, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(
                grad.as_mut_ptr().add(i),
                m,
                _mm512_maskz_mov_ps(positive, g),
            );
        }
    }
}

/// True when no element is NaN or ±∞: x − x is 0 exactly for finite x and NaN otherwise,
/// so four running sums of it stay 0 unless some element is not finite (one compare at
/// the end instead of one per vector).
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn all_finite(x: &[f32]) -> bool {
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut chunks = x.chunks_exact(4 * L);
    for chunk in &mut chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: inside the chunk.
            let v = unsafe { _mm512_loadu_ps(chunk.as_ptr().add(j * L)) };
            *a = _mm512_add_ps(*a, _mm512_sub_ps(v, v));
        }
    }
    let rest = chunks.remainder();
    for i in (0..rest.len()).step_by(L) {
        // SAFETY: the mask limits the access to the slice.
        let v = unsafe { _mm512_maskz_loadu_ps(lanes(rest.len() - i), rest.as_ptr().add(i)) };
        acc[0] = _mm512_add_ps(acc[0], _mm512_sub_ps(v, v));
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(sum, _mm512_setzero_ps()) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, RngExt, SeedableRng};

    #[test]
    fn eight_reductions_side_by_side_equal_eight_single_ones() {
        if !super::super::avx512() {
            return;
        }
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            // magnitudes spread over 2^±20, so that the order of the additions shows
            let v: Vec<f32> = (0..128)
                .map(|_| rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-20..20)))
                .collect();
            // SAFETY: AVX-512F checked above; 8 vectors of 16 from a 128-element slice.
            let (side_by_side, single) = unsafe {
                let s: [__m512; 8] =
                    std::array::from_fn(|q| _mm512_loadu_ps(v.as_ptr().add(16 * q)));
                let mut out = [0.0f32; 8];
                _mm256_storeu_ps(out.as_mut_ptr(), reduce_add_8(s));
                (out, s.map(|x| _mm512_reduce_add_ps(x)))
            };
            assert_eq!(side_by_side.map(f32::to_bits), single.map(f32::to_bits));
        }
    }
}
