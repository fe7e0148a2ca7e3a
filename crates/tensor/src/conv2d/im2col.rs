//! Lowering a convolution to matrix products: im2col unfolds one image's receptive fields
//! into the columns of a matrix, im2row into its rows (the layout the weight gradient
//! multiplies by), and col2im folds column gradients back onto the image. Stride-1,
//! dilation-1 f32 lowerings take the vector kernels of `kernels::lowering` at a
//! vector level.

use super::ConvGeometry;
use crate::float::Float;
use crate::kernels::lowering::{self, Lowering};
use crate::kernels::{as_f32, as_f32_mut};
use crate::simd::Level;

/// The range of output positions `o` whose input index `o·stride + offset − pad` lies in
/// `0..len`, as a half-open range clipped to `0..out`.
#[inline]
fn valid_range(out: usize, len: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
    // lo: first o with o·stride + offset ≥ pad
    let lo = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    // hi: first o with o·stride + offset ≥ len + pad
    let hi = if offset >= len + pad {
        0
    } else {
        (len + pad - offset).div_ceil(stride)
    };
    (lo.min(out), hi.min(out).max(lo.min(out)))
}

/// The vector lowering's sizes when it applies to `g` at `level` (stride 1, dilation 1,
/// a vector level; the caller checks the element type).
fn fast_lowering(level: Level, g: &ConvGeometry) -> Option<Lowering> {
    let unit = |hw: crate::shape::Hw| hw.h == 1 && hw.w == 1;
    (unit(g.stride) && unit(g.dilation) && level.is_vector()).then(|| Lowering {
        c: g.c_per_group(),
        h: g.h,
        w: g.w,
        kh: g.k_h,
        kw: g.k_w,
        ph: g.padding.h,
        pw: g.padding.w,
        h_out: g.h_out,
        w_out: g.w_out,
    })
}

/// Unfolds the channels of one image and one group, `x` = (C/groups, H, W), into
/// `cols` = (C/groups · KH · KW, H_out · W_out):
/// `cols[(c·KH + i)·KW + j, oh·W_out + ow] = x[c, oh·sh + i·dh − ph, ow·sw + j·dw − pw]`,
/// zero where that index falls in the padding.
pub fn im2col<T: Float>(x: &[T], g: &ConvGeometry, cols: &mut [T]) {
    im2col_at(crate::simd::level(), x, g, cols)
}

/// [`im2col`] at `level`.
pub(crate) fn im2col_at<T: Float>(level: Level, x: &[T], g: &ConvGeometry, cols: &mut [T]) {
    debug_assert_eq!(x.len(), g.c_per_group() * g.h * g.w);
    debug_assert_eq!(cols.len(), g.col_rows() * g.h_out * g.w_out);
    if let (Some(s), Some(xf)) = (fast_lowering(level, g), as_f32(x)) {
        let cf = as_f32_mut(cols).expect("cols has the element type of x");
        return lowering::im2col_s1(level, xf, &s, cf);
    }
    let (h, w, h_out, w_out) = (g.h, g.w, g.h_out, g.w_out);
    let plane = h_out * w_out;
    let mut row = 0;
    for c in 0..g.c_per_group() {
        let x_c = &x[c * h * w..(c + 1) * h * w];
        for i in 0..g.k_h {
            let (oh_lo, oh_hi) = valid_range(h_out, h, g.stride.h, i * g.dilation.h, g.padding.h);
            for j in 0..g.k_w {
                let (ow_lo, ow_hi) =
                    valid_range(w_out, w, g.stride.w, j * g.dilation.w, g.padding.w);
                let dst = &mut cols[row * plane..(row + 1) * plane];
                for oh in 0..h_out {
                    let out_row = &mut dst[oh * w_out..(oh + 1) * w_out];
                    if oh < oh_lo || oh >= oh_hi || ow_lo >= ow_hi {
                        out_row.fill(T::ZERO);
                        continue;
                    }
                    let ih = oh * g.stride.h + i * g.dilation.h - g.padding.h;
                    let x_row = &x_c[ih * w..(ih + 1) * w];
                    out_row[..ow_lo].fill(T::ZERO);
                    out_row[ow_hi..].fill(T::ZERO);
                    let iw0 = ow_lo * g.stride.w + j * g.dilation.w - g.padding.w;
                    for (k, v) in out_row[ow_lo..ow_hi].iter_mut().enumerate() {
                        *v = x_row[iw0 + k * g.stride.w];
                    }
                }
                row += 1;
            }
        }
    }
}

/// The transpose of [`im2col`]: `rows` = (H_out · W_out, C/groups · KH · KW), one row per
/// output position holding its receptive field.
pub fn im2row<T: Float>(x: &[T], g: &ConvGeometry, rows: &mut [T]) {
    im2row_at(crate::simd::level(), x, g, rows)
}

/// [`im2row`] at `level`.
pub(crate) fn im2row_at<T: Float>(level: Level, x: &[T], g: &ConvGeometry, rows: &mut [T]) {
    let k = g.col_rows();
    debug_assert_eq!(x.len(), g.c_per_group() * g.h * g.w);
    debug_assert_eq!(rows.len(), k * g.h_out * g.w_out);
    if let (Some(s), Some(xf)) = (fast_lowering(level, g), as_f32(x)) {
        let rf = as_f32_mut(rows).expect("rows has the element type of x");
        return lowering::im2row_s1(level, xf, &s, rf);
    }
    let (h, w) = (g.h as isize, g.w as isize);
    for (n, row) in rows.chunks_exact_mut(k).enumerate() {
        let (oh, ow) = (n / g.w_out, n % g.w_out);
        let mut tap = 0;
        for c in 0..g.c_per_group() {
            for i in 0..g.k_h {
                let ih = (oh * g.stride.h + i * g.dilation.h) as isize - g.padding.h as isize;
                for j in 0..g.k_w {
                    let iw = (ow * g.stride.w + j * g.dilation.w) as isize - g.padding.w as isize;
                    row[tap] = if ih >= 0 && ih < h && iw >= 0 && iw < w {
                        x[(c * g.h + ih as usize) * g.w + iw as usize]
                    } else {
                        T::ZERO
                    };
                    tap += 1;
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column entry back onto the input position it was
/// read from (`dx` accumulates; entries that came from padding are dropped).
pub fn col2im<T: Float>(cols: &[T], g: &ConvGeometry, dx: &mut [T]) {
    col2im_at(crate::simd::level(), cols, g, dx)
}

/// [`col2im`] at `level`.
pub(crate) fn col2im_at<T: Float>(level: Level, cols: &[T], g: &ConvGeometry, dx: &mut [T]) {
    debug_assert_eq!(dx.len(), g.c_per_group() * g.h * g.w);
    debug_assert_eq!(cols.len(), g.col_rows() * g.h_out * g.w_out);
    if let (Some(s), Some(cf)) = (fast_lowering(level, g), as_f32(cols)) {
        let df = as_f32_mut(dx).expect("dx has the element type of cols");
        return lowering::col2im_s1(level, cf, &s, df);
    }
    let (h, w, h_out, w_out) = (g.h, g.w, g.h_out, g.w_out);
    let plane = h_out * w_out;
    let mut row = 0;
    for c in 0..g.c_per_group() {
        let dx_c = &mut dx[c * h * w..(c + 1) * h * w];
        for i in 0..g.k_h {
            let (oh_lo, oh_hi) = valid_range(h_out, h, g.stride.h, i * g.dilation.h, g.padding.h);
            for j in 0..g.k_w {
                let (ow_lo, ow_hi) =
                    valid_range(w_out, w, g.stride.w, j * g.dilation.w, g.padding.w);
                let src = &cols[row * plane..(row + 1) * plane];
                row += 1;
                if ow_lo >= ow_hi {
                    continue;
                }
                for oh in oh_lo..oh_hi {
                    let ih = oh * g.stride.h + i * g.dilation.h - g.padding.h;
                    let dx_row = &mut dx_c[ih * w..(ih + 1) * w];
                    let col_row = &src[oh * w_out + ow_lo..oh * w_out + ow_hi];
                    let iw0 = ow_lo * g.stride.w + j * g.dilation.w - g.padding.w;
                    for (k, &v) in col_row.iter().enumerate() {
                        dx_row[iw0 + k * g.stride.w] += v;
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2row`]: adds each patch entry back onto the input position it was
/// read from (`dx` accumulates; entries that came from padding are dropped). Positions
/// are visited in order, each patch in its (channel, kernel row, kernel column) order.
pub(crate) fn row2im<T: Float>(rows: &[T], g: &ConvGeometry, dx: &mut [T]) {
    let k = g.col_rows();
    debug_assert_eq!(dx.len(), g.c_per_group() * g.h * g.w);
    debug_assert_eq!(rows.len(), k * g.h_out * g.w_out);
    let (h, w) = (g.h as isize, g.w as isize);
    for (n, row) in rows.chunks_exact(k).enumerate() {
        let (oh, ow) = (n / g.w_out, n % g.w_out);
        let mut tap = 0;
        for c in 0..g.c_per_group() {
            for i in 0..g.k_h {
                let ih = (oh * g.stride.h + i * g.dilation.h) as isize - g.padding.h as isize;
                for j in 0..g.k_w {
                    let iw = (ow * g.stride.w + j * g.dilation.w) as isize - g.padding.w as isize;
                    if ih >= 0 && ih < h && iw >= 0 && iw < w {
                        dx[(c * g.h + ih as usize) * g.w + iw as usize] += row[tap];
                    }
                    tap += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conv2dParams, Shape, Tensor};
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn valid_range_clips_to_the_input() {
        // in 5, stride 1, pad 1, offset 0: o − 1 ∈ 0..5 → o ∈ 1..6, clipped to 0..5 → 1..5
        assert_eq!(valid_range(5, 5, 1, 0, 1), (1, 5));
        // offset 2: o + 1 ∈ 0..5 → o ∈ 0..4
        assert_eq!(valid_range(5, 5, 1, 2, 1), (0, 4));
        // stride 2, pad 1, offset 0: 2o − 1 ∈ 0..4 → o ∈ 1..3 (o < 2.5)
        assert_eq!(valid_range(3, 4, 2, 0, 1), (1, 3));
        // every position in the padding: empty
        let (lo, hi) = valid_range(2, 1, 1, 5, 1);
        assert!(lo >= hi);
    }

    /// <im2row(x), r> = <x, row2im(r)> in f64, for padded, strided, dilated geometries
    /// (the identity that makes row2im the input gradient of im2row).
    #[test]
    fn row2im_is_the_adjoint_of_im2row() {
        let mut rng = StdRng::seed_from_u64(9);
        for (xs, ws, stride, pad, dil) in [
            ([1, 3, 7, 6], [4, 3, 3, 3], 1, 1, 1),
            ([1, 2, 6, 6], [2, 2, 3, 3], 2, 1, 1),
            ([1, 2, 5, 7], [3, 2, 2, 3], 2, 0, 2),
            ([1, 4, 6, 6], [8, 4, 1, 1], 2, 0, 1),
        ] {
            let p = Conv2dParams {
                stride: stride.into(),
                padding: pad.into(),
                dilation: dil.into(),
                groups: 1,
            };
            let g = p
                .geometry("conv2d", &Shape::from(xs), &Shape::from(ws))
                .unwrap();
            let x = Tensor::<f64>::rand_uniform(xs, -1.0, 1.0, &mut rng);
            let k = g.col_rows() * g.h_out * g.w_out;
            let r = Tensor::<f64>::rand_uniform([k], -1.0, 1.0, &mut rng);
            let mut rows = vec![0.0; k];
            im2row(x.data(), &g, &mut rows);
            let mut dx = vec![0.0; x.numel()];
            row2im(r.data(), &g, &mut dx);
            let lhs: f64 = rows.iter().zip(r.data()).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.data().iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    /// Every lowering agrees between f32 (the vector path where it applies, at every
    /// level) and f64 (portable).
    #[test]
    fn fast_and_portable_lowerings_agree() {
        for level in Level::supported() {
            crate::simd::with_level(level, lowerings_agree).unwrap();
        }
    }

    fn lowerings_agree() {
        let cases = [
            (
                Shape::from([1, 3, 7, 9]),
                Shape::from([2, 3, 3, 2]),
                Conv2dParams::default().padding((1, 2)),
            ),
            (
                Shape::from([1, 2, 20, 19]),
                Shape::from([4, 2, 5, 5]),
                Conv2dParams::default(),
            ),
            (
                Shape::from([1, 1, 4, 4]),
                Shape::from([1, 1, 3, 3]),
                Conv2dParams::default().padding(2),
            ),
            // unpadded and at most 16 wide: col2im sums rows in registers
            (
                Shape::from([1, 6, 12, 12]),
                Shape::from([16, 6, 5, 5]),
                Conv2dParams::default(),
            ),
            (
                Shape::from([1, 2, 7, 16]),
                Shape::from([3, 2, 2, 4]),
                Conv2dParams::default(),
            ),
        ];
        for (xs, ws, p) in cases {
            let g = p.geometry("test", &xs, &ws).unwrap();
            let x64 =
                Tensor::<f64>::rand_uniform(xs.clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(3));
            let x32: Tensor<f32> = x64.cast();
            let n = g.col_rows() * g.h_out * g.w_out;
            let (mut c64, mut c32) = (vec![0.0f64; n], vec![7.0f32; n]);
            im2col(x64.data(), &g, &mut c64);
            im2col(x32.data(), &g, &mut c32);
            assert_eq!(
                c64.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                c32,
                "im2col {xs}"
            );
            let (mut r64, mut r32) = (vec![0.0f64; n], vec![7.0f32; n]);
            im2row(x64.data(), &g, &mut r64);
            im2row(x32.data(), &g, &mut r32);
            assert_eq!(
                r64.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                r32,
                "im2row {xs}"
            );
            let (mut d64, mut d32) = (vec![0.0f64; xs.numel()], vec![0.0f32; xs.numel()]);
            col2im(&c64, &g, &mut d64);
            col2im(&c32, &g, &mut d32);
            for (a, b) in d64.iter().zip(&d32) {
                assert!((*a as f32 - b).abs() < 1e-5, "col2im {xs}");
            }
        }
    }
}
