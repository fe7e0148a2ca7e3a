//! 2×2 max pooling with stride 2 (LeNet's) over [`Simd`] (f32): LANES windows at a time,
//! with MXNet's rule that the gradient goes to the first maximum of each window. The
//! portable twin, for every window, is in [`crate::pool2d`].

use crate::simd::{dispatch, Level, Simd};
use std::mem::MaybeUninit;

/// Max pooling of one plane (h × w, row length `w`) by 2×2 windows with stride 2 and no
/// padding, into `y` (h_out × w_out) with, if `arg` is given, each window's first
/// maximum's index in it (row-major within the plane).
///
/// # Panics
/// If `x` holds fewer than 2·h_out rows of `w` ≥ 2·w_out values, or `y` or `arg` fewer
/// than h_out·w_out.
pub(crate) fn max_pool_2x2(
    level: Level,
    x: &[f32],
    w: usize,
    h_out: usize,
    w_out: usize,
    y: &mut [f32],
    arg: Option<&mut [u32]>,
) {
    assert!(x.len() >= 2 * h_out * w && w >= 2 * w_out);
    assert!(y.len() >= h_out * w_out);
    match arg {
        Some(arg) => {
            assert!(arg.len() >= h_out * w_out);
            dispatch!(level, pool_arg(x: &[f32], w: usize, h_out: usize, w_out: usize, y: &mut [f32], arg: &mut [u32]))
        }
        None => {
            dispatch!(level, pool_values(x: &[f32], w: usize, h_out: usize, w_out: usize, y: &mut [f32]))
        }
    }
}

#[inline(always)]
fn pool_arg<S: Simd>(
    s: S,
    x: &[f32],
    w: usize,
    h_out: usize,
    w_out: usize,
    y: &mut [f32],
    arg: &mut [u32],
) {
    pool_2x2::<S, true>(s, x, w, h_out, w_out, y, arg.as_mut_ptr());
}

#[inline(always)]
fn pool_values<S: Simd>(s: S, x: &[f32], w: usize, h_out: usize, w_out: usize, y: &mut [f32]) {
    pool_2x2::<S, false>(s, x, w, h_out, w_out, y, std::ptr::null_mut());
}

/// [`max_pool_2x2`], recording the argmax (into `arg`) only if `ARG`.
#[inline(always)]
fn pool_2x2<S: Simd, const ARG: bool>(
    s: S,
    x: &[f32],
    w: usize,
    h_out: usize,
    w_out: usize,
    y: &mut [f32],
    arg: *mut u32,
) {
    let l = S::LANES;
    for oh in 0..h_out {
        let (r0, r1) = (
            x.as_ptr().wrapping_add(2 * oh * w),
            x.as_ptr().wrapping_add((2 * oh + 1) * w),
        );
        for ow0 in (0..w_out).step_by(l) {
            let count = (w_out - ow0).min(l);
            let full = count == l;
            let (m_lo, m_hi) = (
                s.mask_first(2 * count),
                s.mask_first((2 * count).saturating_sub(l)),
            );
            // SAFETY: the masks stop at 2·w_out values of each row, inside x.
            let load = {
                #[inline(always)]
                |r: *const f32| unsafe {
                    let (lo, hi) = if full {
                        (s.load(r.add(2 * ow0)), s.load(r.add(2 * ow0 + l)))
                    } else {
                        (
                            s.load_masked(m_lo, r.add(2 * ow0)),
                            s.load_masked(m_hi, r.add(2 * ow0 + l)),
                        )
                    };
                    s.deinterleave(lo, hi)
                }
            };
            let (top, bottom) = (load(r0), load(r1));
            let out = s.mask_first(count);
            let y_at = y.as_mut_ptr().wrapping_add(oh * w_out + ow0);
            // Without argmax and without NaN, a chain of max: `max(v, best)` is
            // `v > best ? v : best`, so the first of equal values stays, as below.
            let any_nan = s.or(s.unordered(top.0, top.1), s.unordered(bottom.0, bottom.1));
            if !ARG && s.none(any_nan) {
                let best = s.max(bottom.1, s.max(bottom.0, s.max(top.1, top.0)));
                // SAFETY: the mask stops at w_out outputs of row oh.
                unsafe { s.store_masked(y_at, out, best) };
                continue;
            }
            // the window's four elements in row-major order, with their plane indices
            let first = s.ramp_i((2 * oh * w + 2 * ow0) as i32, 2);
            let candidates = [
                (top.0, first),
                (top.1, s.add_i(first, s.splat_i(1))),
                (bottom.0, s.add_i(first, s.splat_i(w as i32))),
                (bottom.1, s.add_i(first, s.splat_i(w as i32 + 1))),
            ];
            let (mut best, mut at) = (s.splat(f32::NEG_INFINITY), first);
            if s.none(any_nan) {
                // no NaN: "greater" alone, one compare per candidate after the first
                // (which any value beats from −∞, or ties at −∞ with the same bits)
                (best, at) = (top.0, first);
                for &(v, idx) in &candidates[1..] {
                    let greater = s.gt(v, best);
                    best = s.select(greater, v, best);
                    at = s.select_i(greater, idx, at);
                }
            } else {
                for (v, idx) in candidates {
                    // greater, or the window's first NaN (see pool2d::beats)
                    let greater = s.or(
                        s.gt(v, best),
                        s.and_not(s.unordered(v, v), s.unordered(best, best)),
                    );
                    best = s.select(greater, v, best);
                    at = s.select_i(greater, idx, at);
                }
            }
            // SAFETY: the mask stops at w_out outputs of row oh; `arg` is given if ARG.
            unsafe {
                s.store_masked(y_at, out, best);
                if ARG {
                    s.store_masked_i(arg.add(oh * w_out + ow0), out, at);
                }
            }
        }
    }
}

/// The gradient of [`max_pool_2x2`] for one plane: each window's gradient written to its
/// recorded maximum and 0 to the window's other three elements (the windows tile the
/// plane, so nothing needs adding). Columns and rows past 2·w_out, 2·h_out are untouched;
/// the rest of `dx` is only written, never read, so it may start uninitialized.
///
/// # Panics
/// On the sizes of [`max_pool_2x2`], with `dx` in place of `x`. Every `arg` must lie
/// inside its window (the forward's construction; a stray one only loses its gradient).
pub(crate) fn max_unpool_2x2(
    level: Level,
    dy: &[f32],
    arg: &[u32],
    w: usize,
    h_out: usize,
    w_out: usize,
    dx: &mut [MaybeUninit<f32>],
) {
    assert!(dx.len() >= 2 * h_out * w && w >= 2 * w_out);
    assert!(dy.len() >= h_out * w_out && arg.len() >= h_out * w_out);
    dispatch!(level, unpool_k(dy: &[f32], arg: &[u32], w: usize, h_out: usize, w_out: usize, dx: &mut [MaybeUninit<f32>]))
}

#[inline(always)]
fn unpool_k<S: Simd>(
    s: S,
    dy: &[f32],
    arg: &[u32],
    w: usize,
    h_out: usize,
    w_out: usize,
    dx: &mut [MaybeUninit<f32>],
) {
    let l = S::LANES;
    for oh in 0..h_out {
        for ow0 in (0..w_out).step_by(l) {
            let count = (w_out - ow0).min(l);
            let m = s.mask_first(count);
            // SAFETY: the mask stops at w_out entries of row oh.
            let (d, at) = unsafe {
                (
                    s.load_masked(m, dy.as_ptr().add(oh * w_out + ow0)),
                    s.load_masked_i(m, arg.as_ptr().add(oh * w_out + ow0)),
                )
            };
            let first = s.ramp_i((2 * oh * w + 2 * ow0) as i32, 2);
            let pick = {
                #[inline(always)]
                |offset: i32| {
                    let hit = s.eq_i(at, s.add_i(first, s.splat_i(offset)));
                    s.select(hit, d, s.zero())
                }
            };
            let rows = [(pick(0), pick(1)), (pick(w as i32), pick(w as i32 + 1))];
            let (m_lo, m_hi) = (
                s.mask_first(2 * count),
                s.mask_first((2 * count).saturating_sub(l)),
            );
            for (r, (left, right)) in rows.into_iter().enumerate() {
                let row = dx
                    .as_mut_ptr()
                    .cast::<f32>()
                    .wrapping_add((2 * oh + r) * w + 2 * ow0);
                let (lo, hi) = s.interleave(left, right);
                // SAFETY: the masks stop at 2·w_out values of the row, inside dx.
                unsafe {
                    if count == l {
                        s.store(row, lo);
                        s.store(row.add(l), hi);
                    } else {
                        s.store_masked(row, m_lo, lo);
                        s.store_masked(row.add(l), m_hi, hi);
                    }
                }
            }
        }
    }
}
