//! 2×2 max pooling with stride 2 (LeNet's), AVX-512, f32: sixteen windows at a time,
//! with MXNet's rule that the gradient goes to the first maximum of each window.

use super::avx512::lanes;
use std::arch::x86_64::*;

/// Max pooling of one plane (h × w, row length `w`) by 2×2 windows with stride 2 and no
/// padding, into `y` (h_out × w_out) with, if `arg` is given, each window's first
/// maximum's index in it (row-major within the plane).
///
/// # Safety
/// AVX-512F; `x` holds at least 2·h_out rows of `w` ≥ 2·w_out values; `y` and `arg` hold
/// h_out·w_out values.
#[target_feature(enable = "avx512f")]
pub unsafe fn max_pool_2x2(
    x: &[f32],
    w: usize,
    h_out: usize,
    w_out: usize,
    y: &mut [f32],
    arg: Option<&mut [u32]>,
) {
    debug_assert!(x.len() >= 2 * h_out * w && w >= 2 * w_out);
    debug_assert!(y.len() >= h_out * w_out);
    // SAFETY: forwarded.
    unsafe {
        match arg {
            Some(arg) => {
                debug_assert!(arg.len() >= h_out * w_out);
                pool_2x2::<true>(x, w, h_out, w_out, y, arg.as_mut_ptr())
            }
            None => pool_2x2::<false>(x, w, h_out, w_out, y, std::ptr::null_mut()),
        }
    }
}

/// [`max_pool_2x2`], recording the argmax (into `arg`) only if `ARG`.
#[target_feature(enable = "avx512f")]
unsafe fn pool_2x2<const ARG: bool>(
    x: &[f32],
    w: usize,
    h_out: usize,
    w_out: usize,
    y: &mut [f32],
    arg: *mut u32,
) {
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for oh in 0..h_out {
        let (r0, r1) = (
            x.as_ptr().wrapping_add(2 * oh * w),
            x.as_ptr().wrapping_add((2 * oh + 1) * w),
        );
        for ow0 in (0..w_out).step_by(16) {
            let count = (w_out - ow0).min(16);
            let (m_lo, m_hi) = (lanes(2 * count), lanes((2 * count).saturating_sub(16)));
            // SAFETY: the masks stop at 2·w_out values of each row, inside x.
            let (top, bottom) = unsafe {
                let load = |r: *const f32| {
                    let lo = _mm512_maskz_loadu_ps(m_lo, r.add(2 * ow0));
                    let hi = _mm512_maskz_loadu_ps(m_hi, r.add(2 * ow0 + 16));
                    (
                        _mm512_permutex2var_ps(lo, even, hi),
                        _mm512_permutex2var_ps(lo, odd, hi),
                    )
                };
                (load(r0), load(r1))
            };
            // the window's four elements in row-major order, with their plane indices
            let first = _mm512_add_epi32(_mm512_set1_epi32((2 * oh * w + 2 * ow0) as i32), even);
            let candidates = [
                (top.0, first),
                (top.1, _mm512_add_epi32(first, _mm512_set1_epi32(1))),
                (
                    bottom.0,
                    _mm512_add_epi32(first, _mm512_set1_epi32(w as i32)),
                ),
                (
                    bottom.1,
                    _mm512_add_epi32(first, _mm512_set1_epi32(w as i32 + 1)),
                ),
            ];
            let out = lanes(count);
            // Without argmax and without NaN, a chain of vmaxps: `max(v, best)` is
            // `v > best ? v : best`, so the first of equal values stays, as below.
            let any_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(top.0, top.1)
                | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(bottom.0, bottom.1);
            if !ARG && any_nan == 0 {
                let best = _mm512_max_ps(
                    bottom.1,
                    _mm512_max_ps(bottom.0, _mm512_max_ps(top.1, top.0)),
                );
                // SAFETY: the mask stops at w_out outputs of row oh.
                unsafe { _mm512_mask_storeu_ps(y.as_mut_ptr().add(oh * w_out + ow0), out, best) };
                continue;
            }
            let (mut best, mut at) = (_mm512_set1_ps(f32::NEG_INFINITY), first);
            if any_nan == 0 {
                // no NaN: "greater" alone, one compare per candidate after the first
                // (which any value beats from −∞, or ties at −∞ with the same bits)
                (best, at) = (top.0, first);
                for &(v, idx) in &candidates[1..] {
                    let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
                    best = _mm512_mask_mov_ps(best, greater, v);
                    at = _mm512_mask_mov_epi32(at, greater, idx);
                }
            } else {
                for (v, idx) in candidates {
                    // greater, or the window's first NaN (see pool2d::beats)
                    let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                        | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v)
                            & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best));
                    best = _mm512_mask_mov_ps(best, greater, v);
                    at = _mm512_mask_mov_epi32(at, greater, idx);
                }
            }
            // SAFETY: the mask stops at w_out outputs of row oh; `arg` is given if ARG.
            unsafe {
                _mm512_mask_storeu_ps(y.as_mut_ptr().add(oh * w_out + ow0), out, best);
                if ARG {
                    _mm512_mask_storeu_epi32(arg.add(oh * w_out + ow0).cast(), out, at);
                }
            }
        }
    }
}

/// `Σ x` with sixteen running sums (a fixed order, so the same input gives the same sum).
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn sum(x: &[f32]) -> f32 {
    let mut acc = _mm512_setzero_ps();
    for chunk in x.chunks(16) {
        let m = if chunk.len() == 16 {
            0xffff
        } else {
            ((1u32 << chunk.len()) - 1) as __mmask16
        };
        // SAFETY: the mask stops at the chunk's end.
        acc = _mm512_add_ps(acc, unsafe { _mm512_maskz_loadu_ps(m, chunk.as_ptr()) });
    }
    _mm512_reduce_add_ps(acc)
}

/// The gradient of [`max_pool_2x2`] for one plane: each window's gradient written to its
/// recorded maximum and 0 to the window's other three elements (the windows tile the
/// plane, so nothing needs adding). Columns and rows past 2·w_out, 2·h_out are untouched;
/// the rest of `dx` is only written, never read, so it may start uninitialized.
///
/// # Safety
/// AVX-512F; sizes as [`max_pool_2x2`], with `dx` in place of `x` and every `arg` inside
/// its window.
#[target_feature(enable = "avx512f")]
pub unsafe fn max_unpool_2x2(
    dy: &[f32],
    arg: &[u32],
    w: usize,
    h_out: usize,
    w_out: usize,
    dx: &mut [std::mem::MaybeUninit<f32>],
) {
    debug_assert!(dx.len() >= 2 * h_out * w && w >= 2 * w_out);
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    // interleave two 16-lane vectors a, b into a0 b0 a1 b1 …: first and second halves
    let inter_lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let inter_hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for oh in 0..h_out {
        for ow0 in (0..w_out).step_by(16) {
            let count = (w_out - ow0).min(16);
            let m = lanes(count);
            // SAFETY: the mask stops at w_out entries of row oh.
            let (d, at) = unsafe {
                (
                    _mm512_maskz_loadu_ps(m, dy.as_ptr().add(oh * w_out + ow0)),
                    _mm512_maskz_loadu_epi32(m, arg.as_ptr().add(oh * w_out + ow0).cast()),
                )
            };
            let first = _mm512_add_epi32(_mm512_set1_epi32((2 * oh * w + 2 * ow0) as i32), even);
            let pick = |offset: i32| {
                let hit =
                    _mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(first, _mm512_set1_epi32(offset)));
                _mm512_maskz_mov_ps(hit, d)
            };
            let rows = [(pick(0), pick(1)), (pick(w as i32), pick(w as i32 + 1))];
            let (m_lo, m_hi) = (lanes(2 * count), lanes((2 * count).saturating_sub(16)));
            for (r, (left, right)) in rows.into_iter().enumerate() {
                let row = dx
                    .as_mut_ptr()
                    .cast::<f32>()
                    .wrapping_add((2 * oh + r) * w + 2 * ow0);
                // SAFETY: the masks stop at 2·w_out values of the row, inside dx.
                unsafe {
                    _mm512_mask_storeu_ps(row, m_lo, _mm512_permutex2var_ps(left, inter_lo, right));
                    _mm512_mask_storeu_ps(
                        row.add(16),
                        m_hi,
                        _mm512_permutex2var_ps(left, inter_hi, right),
                    );
                }
            }
        }
    }
}
