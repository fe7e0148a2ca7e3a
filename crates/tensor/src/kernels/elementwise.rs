//! Element-wise f32 kernels over [`Simd`]: e^x and the logistic function (the formula of
//! [`super::exp`], whose scalar functions are their portable twins), the activations'
//! backward steps, the finiteness check and a sum. Entry points take the [`Level`]
//! to run at, which must be a vector level.

use super::exp::{EXP_MAX, EXP_POLY, LN2_HI, LN2_LO};
use crate::simd::{dispatch, Level, Simd};

/// e^x lane by lane: Cephes' polynomial after range reduction, as [`super::exp::exp_f32`].
#[inline(always)]
pub(crate) fn exp_v<S: Simd>(s: S, x: S::V) -> S::V {
    // min/max return their second operand when either is NaN: x goes second, so a NaN
    // passes the clamp and comes out NaN
    let x = s.min(s.splat(EXP_MAX), s.max(s.splat(-EXP_MAX), x));
    let n = s.round(s.mul(x, s.splat(std::f32::consts::LOG2_E)));
    let r = s.fnmadd(n, s.splat(LN2_HI), x);
    let r = s.fnmadd(n, s.splat(LN2_LO), r);
    let mut p = s.splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = s.fmadd(p, r, s.splat(c));
    }
    let y = s.add(s.fmadd(p, s.mul(r, r), r), s.splat(1.0));
    s.scale(y, n)
}

/// 1 / (1 + e^−x) lane by lane.
#[inline(always)]
pub(crate) fn sigmoid_v<S: Simd>(s: S, x: S::V) -> S::V {
    s.recip(s.add(s.splat(1.0), exp_v(s, s.sub(s.zero(), x))))
}

/// `dst[i] = f(src[i])` (or in place when `src` is `None`), vector by vector, the tail
/// masked.
#[inline(always)]
fn map<S: Simd>(s: S, src: Option<&[f32]>, dst: &mut [f32], f: impl Fn(S::V) -> S::V) {
    let n = dst.len();
    let from = src.map_or(dst.as_ptr(), <[f32]>::as_ptr);
    debug_assert!(src.is_none_or(|x| x.len() == n));
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: LANES values from i < n of both slices.
        unsafe { s.store(dst.as_mut_ptr().add(i), f(s.load(from.add(i)))) };
        i += S::LANES;
    }
    if i < n {
        let m = s.mask_first(n - i);
        // SAFETY: the mask limits the access to the slices' bounds.
        unsafe {
            let v = f(s.load_masked(m, from.add(i)));
            s.store_masked(dst.as_mut_ptr().add(i), m, v);
        }
    }
}

#[inline(always)]
fn exp_k<S: Simd>(s: S, src: &[f32], dst: &mut [f32]) {
    map(
        s,
        Some(src),
        dst,
        #[inline(always)]
        |x| exp_v(s, x),
    );
}

#[inline(always)]
fn sigmoid_k<S: Simd>(s: S, src: &[f32], dst: &mut [f32]) {
    map(
        s,
        Some(src),
        dst,
        #[inline(always)]
        |x| sigmoid_v(s, x),
    );
}

#[inline(always)]
fn sigmoid_in_place_k<S: Simd>(s: S, x: &mut [f32]) {
    map(
        s,
        None,
        x,
        #[inline(always)]
        |x| sigmoid_v(s, x),
    );
}

/// `dst[i] = e^src[i]` (`dst` as long as `src`).
pub(crate) fn exp(level: Level, src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    dispatch!(level, exp_k(src: &[f32], dst: &mut [f32]))
}

/// `dst[i] = 1 / (1 + e^−src[i])` (`dst` as long as `src`).
pub(crate) fn sigmoid(level: Level, src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    dispatch!(level, sigmoid_k(src: &[f32], dst: &mut [f32]))
}

/// `x[i] = 1 / (1 + e^−x[i])`.
pub(crate) fn sigmoid_in_place(level: Level, x: &mut [f32]) {
    dispatch!(level, sigmoid_in_place_k(x: &mut [f32]))
}

/// `grad[i] ← f(grad[i], y[i])` over the length of `grad`.
#[inline(always)]
fn zip_in_place<S: Simd>(s: S, grad: &mut [f32], y: &[f32], f: impl Fn(S::V, S::V) -> S::V) {
    let n = grad.len();
    assert!(y.len() >= n);
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: LANES values from i < n of both slices.
        unsafe {
            let p = grad.as_mut_ptr().add(i);
            s.store(p, f(s.load(p), s.load(y.as_ptr().add(i))));
        }
        i += S::LANES;
    }
    if i < n {
        let m = s.mask_first(n - i);
        // SAFETY: the mask limits the access to grad's length.
        unsafe {
            let p = grad.as_mut_ptr().add(i);
            let v = f(s.load_masked(m, p), s.load_masked(m, y.as_ptr().add(i)));
            s.store_masked(p, m, v);
        }
    }
}

#[inline(always)]
fn sigmoid_backward_k<S: Simd>(s: S, grad: &mut [f32], y: &[f32]) {
    let one = s.splat(1.0);
    zip_in_place(
        s,
        grad,
        y,
        #[inline(always)]
        |g, y| s.mul(g, s.mul(y, s.sub(one, y))),
    );
}

#[inline(always)]
fn relu_backward_k<S: Simd>(s: S, grad: &mut [f32], y: &[f32]) {
    zip_in_place(
        s,
        grad,
        y,
        #[inline(always)]
        |g, y| s.select(s.gt(y, s.zero()), g, s.zero()),
    );
}

/// `grad[i] ← grad[i] · y[i]·(1 − y[i])`: the sigmoid's backward step from its output.
pub(crate) fn sigmoid_backward(level: Level, grad: &mut [f32], y: &[f32]) {
    dispatch!(level, sigmoid_backward_k(grad: &mut [f32], y: &[f32]))
}

/// `grad[i] ← grad[i]` where `y[i] > 0`, else 0: the relu's backward step from its output.
pub(crate) fn relu_backward(level: Level, grad: &mut [f32], y: &[f32]) {
    dispatch!(level, relu_backward_k(grad: &mut [f32], y: &[f32]))
}

/// x − x is 0 exactly for finite x and NaN otherwise, so four running sums of it stay 0
/// unless some element is not finite (one compare at the end instead of one per vector).
#[inline(always)]
fn all_finite_k<S: Simd>(s: S, x: &[f32]) -> bool {
    let mut acc = [s.zero(); 4];
    let mut chunks = x.chunks_exact(4 * S::LANES);
    for chunk in &mut chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: inside the chunk.
            let v = unsafe { s.load(chunk.as_ptr().add(j * S::LANES)) };
            *a = s.add(*a, s.sub(v, v));
        }
    }
    let rest = chunks.remainder();
    for i in (0..rest.len()).step_by(S::LANES) {
        // SAFETY: the mask limits the access to the slice.
        let v = unsafe { s.load_masked(s.mask_first(rest.len() - i), rest.as_ptr().add(i)) };
        acc[0] = s.add(acc[0], s.sub(v, v));
    }
    let sum = s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]));
    // 0 == 0 in every lane: neither greater nor less nor unordered
    let zero = s.zero();
    s.none(s.or(
        s.or(s.gt(sum, zero), s.gt(zero, sum)),
        s.unordered(sum, zero),
    ))
}

/// True when no element is NaN or ±∞.
pub(crate) fn all_finite(level: Level, x: &[f32]) -> bool {
    dispatch!(level, all_finite_k(x: &[f32]) -> bool)
}

/// Σ x with LANES running sums (a fixed order, so the same input gives the same sum).
#[inline(always)]
fn sum_k<S: Simd>(s: S, x: &[f32]) -> f32 {
    let mut acc = s.zero();
    for chunk in x.chunks(S::LANES) {
        // SAFETY: the mask stops at the chunk's end.
        acc = s.add(acc, unsafe {
            s.load_masked(s.mask_first(chunk.len()), chunk.as_ptr())
        });
    }
    s.reduce_add(acc)
}

/// Σ x.
pub(crate) fn sum(level: Level, x: &[f32]) -> f32 {
    dispatch!(level, sum_k(x: &[f32]) -> f32)
}
