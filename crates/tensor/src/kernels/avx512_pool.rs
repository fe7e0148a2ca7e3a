//! 2×2 max pooling with stride 2 (LeNet's), AVX-512, f32: sixteen windows at a time,
//! with MXNet's rule that the gradient goes to the first maximum of each window.

use std::arch::x86_64::*;

/// Max pooling of one plane (h × w, row length `w`) by 2×2 windows with stride 2 and no
/// padding, into `y` (h_out × w_out) with each window's first maximum's index in `arg`
/// (row-major within the plane).
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
    arg: &mut [u32],
) {
    debug_assert!(x.len() >= 2 * h_out * w && w >= 2 * w_out);
    debug_assert!(y.len() >= h_out * w_out && arg.len() >= h_out * w_out);
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let lanes = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
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
            let (mut best, mut at) = (_mm512_set1_ps(f32::NEG_INFINITY), first);
            for (v, idx) in candidates {
                let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
                best = _mm512_mask_mov_ps(best, greater, v);
                at = _mm512_mask_mov_epi32(at, greater, idx);
            }
            let out = lanes(count);
            // SAFETY: the mask stops at w_out outputs of row oh.
            unsafe {
                _mm512_mask_storeu_ps(y.as_mut_ptr().add(oh * w_out + ow0), out, best);
                _mm512_mask_storeu_epi32(arg.as_mut_ptr().add(oh * w_out + ow0).cast(), out, at);
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
