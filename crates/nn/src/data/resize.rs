//! Bilinear resizing of byte images exactly as MXNet's `imresize` and
//! `transforms.Resize` compute it: both call OpenCV's `cv::resize(src, dst, size, 0, 0,
//! INTER_LINEAR)`, which works in fixed point on 8-bit images ([`resize_linear`]).

use super::sample::{checked_numel, Image};
use crate::error::{NnError, Result};

/// OpenCV's `INTER_RESIZE_COEF_BITS`: interpolation weights are integers out of 2^11.
const COEF_BITS: u32 = 11;
/// 2^11 = 2048, the weight of a whole source pixel.
const ONE: i32 = 1 << COEF_BITS;

/// The interpolation weight `w` ∈ [0, 1] as OpenCV stores it: `saturate_cast<short>(w ·
/// 2048)`, which rounds to nearest with ties to even (`cvRound`).
fn weight(w: f32) -> i32 {
    (w * ONE as f32).round_ties_even() as i32
}

/// The source position of output index `d` along an axis, as OpenCV computes it:
/// `f = (float)((d + 0.5) · scale − 0.5)` (in double, then rounded to float),
/// `s = cvFloor(f)`, and the fraction `f − s` (in float, exact).
fn source_position(d: usize, scale: f64) -> (i64, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let s = f.floor();
    (s as i64, f - s)
}

/// One output column's two taps: the first source column and the two weights.
struct ColumnTaps {
    /// First source column, clamped into the image.
    x0: Vec<usize>,
    /// Weights `(round(2048 (1 − f)), round(2048 f))` of columns `x0` and `x0 + 1`.
    weights: Vec<[i32; 2]>,
    /// Output columns from here on lie on or beyond the last source column and copy it
    /// (OpenCV's `xmax`).
    xmax: usize,
}

/// OpenCV's column tables for `INTER_LINEAR` (`cv::hal::resize`): a position left of the
/// first column is moved onto it with weight 0 for its neighbour; from the first output
/// column whose position reaches the last source column on (`xmax`), that column is copied.
fn column_taps(src_w: usize, dst_w: usize, scale: f64) -> ColumnTaps {
    let mut taps = ColumnTaps {
        x0: Vec::with_capacity(dst_w),
        weights: Vec::with_capacity(dst_w),
        xmax: dst_w,
    };
    let last = src_w as i64 - 1;
    for dx in 0..dst_w {
        let (mut sx, mut fx) = source_position(dx, scale);
        if sx < 0 {
            (sx, fx) = (0, 0.0);
        }
        if sx + 1 > last {
            taps.xmax = taps.xmax.min(dx);
            if sx >= last {
                (sx, fx) = (last, 0.0);
            }
        }
        taps.x0.push(sx as usize);
        taps.weights.push([weight(1.0 - fx), weight(fx)]);
    }
    taps
}

/// Resizes a byte image to `out_h × out_w` with OpenCV's `INTER_LINEAR` on 8-bit images,
/// which MXNet's `imresize` and `transforms.Resize` (default `interpolation=1`) call:
///
/// - the same size is a copy;
/// - an exact halving of both sides (`1 / (out / in)` within `DBL_EPSILON` of 2 on both
///   axes) is OpenCV's `INTER_AREA` fast path, the mean of each 2×2 block:
///   `(a + b + c + d + 2) >> 2` (rounded half to even instead for 2 or more than 4
///   channels);
/// - otherwise, with `scale = 1 / (out / in)` per axis (in double) and, for output index
///   `d`, `f = (float)((d + 0.5) · scale − 0.5)`, `s = ⌊f⌋`, fraction `f − s`, weights
///   `w0 = round(2048 (1 − f))`, `w1 = round(2048 f)` (ties to even):
///   - along each source row, `D[x] = w0 · S[s] + w1 · S[s + 1]` in `i32`; a position left
///     of the image becomes `s = 0, f = 0`; from the first column whose `s + 1` reaches
///     past the last source column on, `D[x] = 2048 · S[last]`;
///   - down the columns, between rows `r0 = clip(s)` and `r1 = clip(s + 1)` (clipped into
///     the image, the weights kept),
///     `out = (((w0 · (D0 >> 4)) >> 16) + ((w1 · (D1 >> 4)) >> 16) + 2) >> 2`
///     (OpenCV's `VResizeLinear` for `uchar`, whose SIMD and scalar paths agree).
///
/// Channels (the last axis) are interpolated independently. An empty input, an output
/// side of 0, or an output of more than 2^31 − 1 bytes (OpenCV's `int` limit) is an error.
pub fn resize_linear(image: &Image<'_>, out_h: usize, out_w: usize) -> Result<Image<'static>> {
    let [h, w, c] = image.hwc();
    let fits = |n: usize| n <= i32::MAX as usize;
    if out_h == 0 || out_w == 0 {
        return Err(NnError::invalid(
            "Resize",
            format!("the output size must be at least 1×1, got {out_w}×{out_h} (W×H)"),
        ));
    }
    if h == 0 || w == 0 || c == 0 {
        return Err(NnError::invalid(
            "Resize",
            format!("the image is empty ({h}×{w}×{c}, H×W×C)"),
        ));
    }
    let out_len = checked_numel(&[out_h, out_w, c]).filter(|&n| fits(n));
    let Some(out_len) = out_len.filter(|_| fits(h * w * c)) else {
        return Err(NnError::invalid(
            "Resize",
            format!(
                "{out_w}×{out_h} (W×H) with {c} channels is more than 2^31 − 1 bytes, OpenCV's limit"
            ),
        ));
    };
    let src = image.pixels();
    if (out_h, out_w) == (h, w) {
        return Image::new(src.to_vec(), [h, w, c]);
    }
    let inv_x = out_w as f64 / w as f64;
    let inv_y = out_h as f64 / h as f64;
    let (scale_x, scale_y) = (1.0 / inv_x, 1.0 / inv_y);
    // cv::hal::resize: "in case of scale_x && scale_y is equal to 2, INTER_AREA (fast)
    // also is equal to INTER_LINEAR", and takes that path
    let near_int = |s: f64| (s - s.round_ties_even()).abs() < f64::EPSILON;
    let halving = near_int(scale_x)
        && near_int(scale_y)
        && scale_x.round_ties_even() == 2.0
        && scale_y.round_ties_even() == 2.0;
    let mut out = vec![0u8; out_len];
    if halving && w == 2 * out_w && h == 2 * out_h {
        halve(src, [h, w, c], &mut out);
    } else {
        linear(src, [h, w, c], [out_h, out_w], [scale_y, scale_x], &mut out);
    }
    Image::new(out, [out_h, out_w, c])
}

/// OpenCV's `INTER_AREA` for an exact halving of both sides on 8-bit images: each output
/// byte is `(a + b + c + d + 2) >> 2` over its 2×2 block for 1, 3 or 4 channels (its
/// `ResizeAreaFastVec`), and `cvRound((a + b + c + d) · 0.25f)`, ties to even, for other
/// channel counts (its generic loop: OpenCV notes that "area resize implementation for
/// 2-channel images isn't bit-exact").
fn halve(src: &[u8], [h, w, c]: [usize; 3], out: &mut [u8]) {
    let mean: fn(u32) -> u8 = if matches!(c, 1 | 3 | 4) {
        |sum| ((sum + 2) >> 2) as u8
    } else {
        |sum| (sum as f32 * 0.25).round_ties_even() as u8
    };
    let (out_w, row) = (w / 2, w * c);
    for (dy, out_row) in out.chunks_exact_mut(out_w * c).enumerate().take(h / 2) {
        let (top, bottom) = (&src[2 * dy * row..], &src[(2 * dy + 1) * row..]);
        for dx in 0..out_w {
            for k in 0..c {
                let (a, b) = (2 * dx * c + k, (2 * dx + 1) * c + k);
                let sum = top[a] as u32 + top[b] as u32 + bottom[a] as u32 + bottom[b] as u32;
                out_row[dx * c + k] = mean(sum);
            }
        }
    }
}

/// OpenCV's separable fixed-point bilinear pass (`resizeGeneric_` with `HResizeLinear` and
/// `VResizeLinear` for `uchar`).
fn linear(
    src: &[u8],
    [h, w, c]: [usize; 3],
    [out_h, out_w]: [usize; 2],
    [scale_y, scale_x]: [f64; 2],
    out: &mut [u8],
) {
    let taps = column_taps(w, out_w, scale_x);
    let width = out_w * c;
    // the horizontal pass of source row r: D[x] = w0 · S[x0] + w1 · S[x0 + 1]
    let horizontal = |r: usize, d: &mut [i32]| {
        let s = &src[r * w * c..][..w * c];
        for dx in 0..out_w {
            let (x0, [w0, w1]) = (taps.x0[dx] * c, taps.weights[dx]);
            for k in 0..c {
                d[dx * c + k] = if dx < taps.xmax {
                    w0 * s[x0 + k] as i32 + w1 * s[x0 + c + k] as i32
                } else {
                    ONE * s[x0 + k] as i32
                };
            }
        }
    };
    // the two source rows last passed, as OpenCV keeps them: each is computed once while
    // the output moves down, and memory stays two rows whatever the image's height
    let mut cache = [
        (usize::MAX, vec![0i32; width]),
        (usize::MAX, vec![0i32; width]),
    ];
    // down the columns: rows clip(s) and clip(s + 1), OpenCV's `clip(x, 0, h)`
    let clip = |r: i64| r.clamp(0, h as i64 - 1) as usize;
    for (dy, out_row) in out.chunks_exact_mut(width).enumerate() {
        let (sy, fy) = source_position(dy, scale_y);
        let (b0, b1) = (weight(1.0 - fy), weight(fy));
        let (r0, r1) = (clip(sy), clip(sy + 1));
        for r in [r0, r1] {
            if cache[0].0 != r && cache[1].0 != r {
                let free = usize::from(cache[0].0 == r0 || cache[0].0 == r1);
                horizontal(r, &mut cache[free].1);
                cache[free].0 = r;
            }
        }
        let row = |r: usize| &cache[usize::from(cache[0].0 != r)].1;
        for ((o, &d0), &d1) in out_row.iter_mut().zip(row(r0)).zip(row(r1)) {
            *o = ((((b0 * (d0 >> 4)) >> 16) + ((b1 * (d1 >> 4)) >> 16) + 2) >> 2) as u8;
        }
    }
    debug_assert_eq!(out.len(), out_h * width);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(bytes: &[u8], hwc: [usize; 3], out_h: usize, out_w: usize) -> Vec<u8> {
        let image = Image::new(bytes, hwc).unwrap();
        resize_linear(&image, out_h, out_w).unwrap().into_pixels()
    }

    #[test]
    fn two_by_two_to_four_by_four_by_hand() {
        // src [[0, 64], [128, 255]], 2×2 → 4×4: scale = 1 / (4 / 2) = 0.5 on both axes.
        // Output index d: f = (d + 0.5)·0.5 − 0.5 = −0.25, 0.25, 0.75, 1.25
        //   d = 0: s = −1 → (columns) moved to s = 0, f = 0: weights (2048, 0)
        //                  (rows) s = −1, f = 0.75 kept: weights (512, 1536), rows clip(−1) = 0, 0
        //   d = 1: s = 0, f = 0.25: weights (1536, 512)
        //   d = 2: s = 0, f = 0.75: weights (512, 1536)
        //   d = 3: s = 1, f = 0.25: s + 1 = 2 is past the last column (1), so xmax = 3 and
        //          columns copy S[1]·2048; rows 1 and clip(2) = 1 with weights (1536, 512)
        // Horizontal pass, row 0 (0, 64):    [0, 32768, 98304, 131072]
        //   (2048·0; 1536·0 + 512·64; 512·0 + 1536·64; 2048·64)
        // row 1 (128, 255): [262144, 327168, 457216, 522240]
        //   (2048·128; 1536·128 + 512·255; 512·128 + 1536·255; 2048·255)
        // D >> 4: row 0 [0, 2048, 6144, 8192], row 1 [16384, 20448, 28576, 32640]
        // Vertical, out = ((b0·(D0>>4) >> 16) + (b1·(D1>>4) >> 16) + 2) >> 2:
        //   dy = 0 (rows 0, 0; 512, 1536): x = 1: (512·2048 >> 16 = 16) + (1536·2048 >> 16
        //          = 48) = 64, (64 + 2) >> 2 = 16; x = 2: 48 + 144 = 192 → 48; x = 3: 64 + 192 → 64
        //   dy = 1 (rows 0, 1; 1536, 512): x = 0: 0 + (512·16384 >> 16 = 128) → 130 >> 2 = 32;
        //          x = 1: 48 + (512·20448 >> 16 = 159) = 207 → 52;
        //          x = 2: 144 + (512·28576 >> 16 = 223) = 367 → 92;
        //          x = 3: 192 + (512·32640 >> 16 = 255) = 447 → 112
        //   dy = 2 (rows 0, 1; 512, 1536): x = 0: 0 + 384 → 96; x = 1: 16 + 479 = 495 → 124;
        //          x = 2: 48 + (1536·28576 >> 16 = 669) = 717 → 179; x = 3: 64 + 765 → 207
        //   dy = 3 (rows 1, 1; 1536, 512): x = 0: 384 + 128 → 128; x = 1: 479 + 159 → 160;
        //          x = 2: 669 + 223 = 892 → 223; x = 3: 765 + 255 = 1020 → 255
        // (the exact bilinear value at dy = dx = 2 is 179.4375)
        let out = resize(&[0, 64, 128, 255], [2, 2, 1], 4, 4);
        #[rustfmt::skip]
        assert_eq!(out, [
            0, 16, 48, 64,
            32, 52, 92, 112,
            96, 124, 179, 207,
            128, 160, 223, 255,
        ]);
    }

    #[test]
    fn three_by_three_to_two_by_two_by_hand() {
        // src rows [10, 20, 30], [40, 50, 60], [70, 80, 250], 3×3 → 2×2: scale = 1 / (2 / 3)
        // = 1.5 (not 2, so no area path). f = (d + 0.5)·1.5 − 0.5 = 0.25, 1.75:
        //   d = 0: s = 0, f = 0.25: weights (1536, 512)
        //   d = 1: s = 1, f = 0.75: weights (512, 1536); s + 1 = 2 is the last column, so
        //          both taps are used (xmax stays 2)
        // Horizontal: row 0: [1536·10 + 512·20, 512·20 + 1536·30] = [25600, 56320]
        //             row 1: [1536·40 + 512·50, 512·50 + 1536·60] = [87040, 117760]
        //             row 2: [1536·70 + 512·80, 512·80 + 1536·250] = [148480, 424960]
        // >> 4: [1600, 3520], [5440, 7360], [9280, 26560]
        // dy = 0 (rows 0, 1; 1536, 512): x = 0: (1536·1600 >> 16 = 37) + (512·5440 >> 16 = 42)
        //        = 79, (79 + 2) >> 2 = 20; x = 1: (1536·3520 >> 16 = 82) + (512·7360 >> 16 = 57)
        //        = 139 → 35
        // dy = 1 (rows 1, 2; 512, 1536): x = 0: (512·5440 >> 16 = 42) + (1536·9280 >> 16 =
        //        217) = 259 → 65; x = 1: (512·7360 >> 16 = 57) + (1536·26560 >> 16 = 622) =
        //        679 → 170
        let out = resize(&[10, 20, 30, 40, 50, 60, 70, 80, 250], [3, 3, 1], 2, 2);
        assert_eq!(out, [20, 35, 65, 170]);
    }

    #[test]
    fn halving_is_the_mean_of_each_block() {
        // 4×2 → 2×1: 1 / (1 / 2) = 2 on both axes, OpenCV's INTER_AREA fast path:
        // (1 + 2 + 3 + 5 + 2) >> 2 = 3, (10 + 11 + 12 + 14 + 2) >> 2 = 12
        let out = resize(&[1, 2, 3, 5, 10, 11, 12, 14], [4, 2, 1], 2, 1);
        assert_eq!(out, [3, 12]);
        // sums 4k + 2 round up with 1 channel ((1 + 1 + 2 + 2 + 2) >> 2 = 2) but to even
        // with 2: channel 0 sums 6 → 1.5 → 2, channel 1 sums 10 → 2.5 → 2
        assert_eq!(resize(&[1, 1, 2, 2], [2, 2, 1], 1, 1), [2]);
        assert_eq!(resize(&[1, 2, 1, 2, 2, 3, 2, 3], [2, 2, 2], 1, 1), [2, 2]);
    }

    #[test]
    fn same_size_is_a_copy_and_constants_stay_constant() {
        let bytes: Vec<u8> = (0..30).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(resize(&bytes, [5, 2, 3], 5, 2), bytes);
        for v in [0u8, 1, 127, 254, 255] {
            let out = resize(&[v; 3 * 7 * 2], [3, 7, 2], 11, 5);
            assert!(out.iter().all(|&o| o == v), "{v}: {out:?}");
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        let image = Image::new(vec![0u8; 4], [2, 2, 1]).unwrap();
        let e = resize_linear(&image, 0, 3).unwrap_err().to_string();
        assert_eq!(
            e,
            "Resize: the output size must be at least 1×1, got 3×0 (W×H)"
        );
        let e = resize_linear(&image, 1 << 20, 1 << 12)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2^31 − 1 bytes"), "{e}");
        let empty = Image::new(vec![], [0, 2, 1]).unwrap();
        assert!(resize_linear(&empty, 2, 2).is_err());
    }
}
