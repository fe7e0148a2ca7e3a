//! im2col and col2im: unfolding one image's receptive fields into the columns of a matrix
//! (so a convolution becomes one GEMM), and folding column gradients back onto the image.

use super::ConvGeometry;
use crate::float::Float;

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

/// Unfolds the channels of one image and one group, `x` = (C/groups, H, W), into
/// `cols` = (C/groups · KH · KW, H_out · W_out):
/// `cols[(c·KH + i)·KW + j, oh·W_out + ow] = x[c, oh·sh + i·dh − ph, ow·sw + j·dw − pw]`,
/// zero where that index falls in the padding.
pub fn im2col<T: Float>(x: &[T], g: &ConvGeometry, cols: &mut [T]) {
    let (h, w) = (g.h, g.w);
    let (h_out, w_out) = (g.h_out, g.w_out);
    let plane = h_out * w_out;
    debug_assert_eq!(x.len(), g.c_per_group() * h * w);
    debug_assert_eq!(cols.len(), g.col_rows() * plane);
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
                    if g.stride.w == 1 {
                        out_row[ow_lo..ow_hi].copy_from_slice(&x_row[iw0..iw0 + (ow_hi - ow_lo)]);
                    } else {
                        for (k, v) in out_row[ow_lo..ow_hi].iter_mut().enumerate() {
                            *v = x_row[iw0 + k * g.stride.w];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column entry back onto the input position it was
/// read from (`dx` accumulates; entries that came from padding are dropped).
pub fn col2im<T: Float>(cols: &[T], g: &ConvGeometry, dx: &mut [T]) {
    let (h, w) = (g.h, g.w);
    let (h_out, w_out) = (g.h_out, g.w_out);
    let plane = h_out * w_out;
    debug_assert_eq!(dx.len(), g.c_per_group() * h * w);
    debug_assert_eq!(cols.len(), g.col_rows() * plane);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
