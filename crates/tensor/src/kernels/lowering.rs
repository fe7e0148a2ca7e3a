//! im2col, im2row and col2im over [`Simd`] (f32) for stride-1, dilation-1 convolutions:
//! each row of the unfolded matrix is a run of an input row shifted by a tap, copied by
//! vectors whose lanes past the input's edges are the padding's zeros. The portable twins,
//! for every geometry, are in [`crate::conv2d::im2col`].

use crate::simd::{dispatch, Level, Simd};

/// The sizes a stride-1, dilation-1 lowering needs: input (c, h, w), kernel (kh, kw),
/// padding (ph, pw), output (h_out, w_out).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lowering {
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

/// `dst[i] = src[i + offset]` where `i + offset` lies inside `src`, else 0: one row of an
/// im2col matrix (the zeros are the padding).
#[inline(always)]
fn copy_shifted<S: Simd>(s: S, dst: &mut [f32], src: &[f32], offset: isize) {
    let (n, len, l) = (dst.len() as isize, src.len() as isize, S::LANES as isize);
    let (lo, hi) = ((-offset).max(0), (len - offset).min(n));
    let mut i = 0;
    while i < n {
        let valid = s.mask_range(lo - i, hi - i);
        // SAFETY: loads touch only lanes in `valid`, which index inside `src`; stores are
        // limited to dst's length.
        unsafe {
            let v = s.load_masked(valid, src.as_ptr().wrapping_offset(i + offset));
            let p = dst.as_mut_ptr().offset(i);
            if i + l <= n {
                s.store(p, v);
            } else {
                s.store_masked(p, s.mask_first((n - i) as usize), v);
            }
        }
        i += l;
    }
}

/// `dst[i + offset] += src[i]` where `i + offset` lies inside `dst`: the adjoint of
/// [`copy_shifted`], one row of col2im.
#[inline(always)]
fn add_shifted<S: Simd>(s: S, dst: &mut [f32], src: &[f32], offset: isize) {
    let (n, len) = (src.len() as isize, dst.len() as isize);
    let (lo, hi) = ((-offset).max(0), (len - offset).min(n));
    for i in (0..n).step_by(S::LANES) {
        let valid = s.mask_range(lo - i, hi - i);
        // SAFETY: every access is limited to lanes in `valid`, inside both slices.
        unsafe {
            let p = dst.as_mut_ptr().wrapping_offset(i + offset);
            let sum = s.add(
                s.load_masked(valid, p),
                s.load_masked(valid, src.as_ptr().offset(i)),
            );
            s.store_masked(p, valid, sum);
        }
    }
}

/// `dst[j] = x_c[padded_row − ph, j + shift − pw]` of one channel `x_c` (h × w), 0 where
/// that falls in the padding: a run of an im2col column or im2row row.
#[inline(always)]
fn copy_padded_row<S: Simd>(
    s: S,
    dst: &mut [f32],
    x_c: &[f32],
    l: &Lowering,
    padded_row: usize,
    shift: usize,
) {
    let ih = padded_row as isize - l.ph as isize;
    if ih < 0 || ih >= l.h as isize {
        dst.fill(0.0);
    } else {
        let ih = ih as usize;
        copy_shifted(
            s,
            dst,
            &x_c[ih * l.w..(ih + 1) * l.w],
            shift as isize - l.pw as isize,
        );
    }
}

#[inline(always)]
fn im2col_k<S: Simd>(s: S, x: &[f32], l: &Lowering, cols: &mut [f32]) {
    let plane = l.h_out * l.w_out;
    let mut rows = cols.chunks_exact_mut(plane);
    for x_c in x.chunks_exact(l.h * l.w).take(l.c) {
        for p in 0..l.kh {
            for q in 0..l.kw {
                let Some(dst) = rows.next() else { return };
                for (oh, out_row) in dst.chunks_exact_mut(l.w_out).enumerate() {
                    copy_padded_row(s, out_row, x_c, l, oh + p, q);
                }
            }
        }
    }
}

/// im2col for stride 1, dilation 1: `cols` (c·kh·kw × h_out·w_out) from `x` (c × h × w).
pub(crate) fn im2col_s1(level: Level, x: &[f32], l: &Lowering, cols: &mut [f32]) {
    assert!(x.len() >= l.c * l.h * l.w && cols.len() >= l.c * l.kh * l.kw * l.h_out * l.w_out);
    dispatch!(level, im2col_k(x: &[f32], l: &Lowering, cols: &mut [f32]))
}

#[inline(always)]
fn im2row_k<S: Simd>(s: S, x: &[f32], l: &Lowering, rows: &mut [f32]) {
    let k = l.c * l.kh * l.kw;
    for (n, row) in rows.chunks_exact_mut(k).enumerate().take(l.h_out * l.w_out) {
        let (oh, ow) = (n / l.w_out, n % l.w_out);
        let mut taps = row.chunks_exact_mut(l.kw);
        for x_c in x.chunks_exact(l.h * l.w).take(l.c) {
            for p in 0..l.kh {
                let Some(dst) = taps.next() else { return };
                copy_padded_row(s, dst, x_c, l, oh + p, ow);
            }
        }
    }
}

/// The transpose of [`im2col_s1`]: `rows` (h_out·w_out × c·kh·kw), one row per output
/// position holding its receptive field (the layout the weight gradient multiplies by).
pub(crate) fn im2row_s1(level: Level, x: &[f32], l: &Lowering, rows: &mut [f32]) {
    assert!(x.len() >= l.c * l.h * l.w && rows.len() >= l.c * l.kh * l.kw * l.h_out * l.w_out);
    dispatch!(level, im2row_k(x: &[f32], l: &Lowering, rows: &mut [f32]))
}

#[inline(always)]
fn col2im_k<S: Simd>(s: S, cols: &[f32], l: &Lowering, dx: &mut [f32]) {
    let plane = l.h_out * l.w_out;
    if l.ph == 0 && l.pw == 0 && l.w <= 16 {
        // Gather instead of scatter: each input row's gradient is summed in registers (one
        // per LANES columns) from the column rows that read it, then stored once. (Adding
        // into memory row by row makes each masked load wait on the overlapping masked
        // store before it.) Lanes q..q + w_out of an input row come from a column row
        // shifted by q; chunk t of the row holds its columns tL..tL + L.
        let chunks = l.w.div_ceil(S::LANES);
        let mut masks = [[s.mask_first(0); 16]; 4];
        for (t, masks_t) in masks.iter_mut().enumerate().take(chunks) {
            let first = (t * S::LANES) as isize;
            for (q, m) in masks_t.iter_mut().enumerate().take(l.kw) {
                *m = s.mask_range(q as isize - first, (q + l.w_out) as isize - first);
            }
        }
        for (c, dx_c) in dx.chunks_exact_mut(l.h * l.w).take(l.c).enumerate() {
            for (i, dx_row) in dx_c.chunks_exact_mut(l.w).enumerate() {
                for (t, masks_t) in masks.iter().enumerate().take(chunks) {
                    let first = t * S::LANES;
                    // two running sums, so that each add waits on the one before it only
                    // half as often
                    let (mut even, mut odd) = (s.zero(), s.zero());
                    for p in (i + 1).saturating_sub(l.h_out)..l.kh.min(i + 1) {
                        // column row (c, p, q) read at output row i − p, shifted left by q
                        let base = cols.as_ptr().wrapping_add(
                            (c * l.kh + p) * l.kw * plane + (i - p) * l.w_out + first,
                        );
                        let load = {
                            #[inline(always)]
                            |q: usize| {
                                // SAFETY: the mask limits the load to the w_out values of
                                // the row.
                                unsafe {
                                    s.load_masked(
                                        masks_t[q],
                                        base.wrapping_add(q * plane).wrapping_sub(q),
                                    )
                                }
                            }
                        };
                        let mut q = 0;
                        while q + 1 < l.kw {
                            even = s.add(even, load(q));
                            odd = s.add(odd, load(q + 1));
                            q += 2;
                        }
                        if q < l.kw {
                            even = s.add(even, load(q));
                        }
                    }
                    let acc = s.add(even, odd);
                    let row_mask = s.mask_first(l.w - first);
                    // SAFETY: the mask stops at the row's w values.
                    unsafe {
                        let at = dx_row.as_mut_ptr().add(first);
                        let old = s.load_masked(row_mask, at);
                        s.store_masked(at, row_mask, s.add(acc, old))
                    };
                }
            }
        }
        return;
    }
    let mut rows = cols.chunks_exact(plane);
    for dx_c in dx.chunks_exact_mut(l.h * l.w).take(l.c) {
        for p in 0..l.kh {
            for q in 0..l.kw {
                let Some(src) = rows.next() else { return };
                for (oh, col_row) in src.chunks_exact(l.w_out).enumerate() {
                    let ih = (oh + p) as isize - l.ph as isize;
                    if ih >= 0 && ih < l.h as isize {
                        let ih = ih as usize;
                        add_shifted(
                            s,
                            &mut dx_c[ih * l.w..(ih + 1) * l.w],
                            col_row,
                            q as isize - l.pw as isize,
                        );
                    }
                }
            }
        }
    }
}

/// col2im for stride 1, dilation 1: adds `cols` back onto `dx` (c × h × w).
pub(crate) fn col2im_s1(level: Level, cols: &[f32], l: &Lowering, dx: &mut [f32]) {
    assert!(dx.len() >= l.c * l.h * l.w && cols.len() >= l.c * l.kh * l.kw * l.h_out * l.w_out);
    dispatch!(level, col2im_k(cols: &[f32], l: &Lowering, dx: &mut [f32]))
}
