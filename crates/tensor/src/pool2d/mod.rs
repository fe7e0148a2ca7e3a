//! Max and average pooling over NCHW tensors, forward and backward, with MXNet's
//! semantics: max pooling pads with −∞ and routes each gradient to the first maximum of
//! its window; average pooling divides by the window clipped to the padded input
//! (`count_include_pad`, Gluon's default) or to the input itself.

pub mod reference;
pub mod select;

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::kernels::{as_f32, as_f32_mut, as_f32_uninit};
use crate::shape::{Hw, Shape};
use crate::simd::Level;
use crate::tensor::Tensor;
use crate::window::out_size;
use select::PoolPath;
use std::mem::MaybeUninit;

/// The options of 2-d pooling.
///
/// ```
/// use kiln_tensor::Pool2dParams;
/// let p = Pool2dParams::new(3).stride(2).padding(1);
/// assert_eq!((p.kernel.h, p.stride.w, p.count_include_pad), (3, 2, true));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window size, (h, w).
    pub kernel: Hw,
    /// Step between windows, (h, w); defaults to the window size.
    pub stride: Hw,
    /// Padding on each side, (h, w); smaller than the window.
    pub padding: Hw,
    /// Rounds the output size up, keeping a last window that hangs past the input.
    pub ceil_mode: bool,
    /// Average pooling only: count padding positions in the divisor (default true).
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// A `kernel` window with stride equal to the window, no padding, floor rounding.
    pub fn new(kernel: impl Into<Hw>) -> Self {
        let kernel = kernel.into();
        Pool2dParams {
            kernel,
            stride: kernel,
            padding: Hw::new(0, 0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, s: impl Into<Hw>) -> Self {
        self.stride = s.into();
        self
    }

    /// Sets the padding.
    pub fn padding(mut self, p: impl Into<Hw>) -> Self {
        self.padding = p.into();
        self
    }

    /// Sets ceil mode.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }

    /// Sets whether average pooling counts padding in its divisor.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    /// Checks an input shape (N, C, H, W) against these options.
    pub fn geometry(&self, op: &'static str, x: &Shape) -> Result<PoolGeometry> {
        if x.rank() != 4 {
            return Err(TensorError::invalid(
                op,
                format!("input must be 4-d (N, C, H, W), got shape {x}"),
            ));
        }
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k.h == 0 || k.w == 0 {
            return Err(TensorError::invalid(
                op,
                format!("window must be ≥ 1 on both axes, got {k}"),
            ));
        }
        if s.h == 0 || s.w == 0 {
            return Err(TensorError::invalid(
                op,
                format!("stride must be ≥ 1 on both axes, got {s}"),
            ));
        }
        // With padding below the window, every window holds at least one input element.
        if p.h >= k.h || p.w >= k.w {
            return Err(TensorError::invalid(
                op,
                format!("padding {p} must be smaller than the window {k}"),
            ));
        }
        let (h, w) = (x[2], x[3]);
        let too_big = || {
            TensorError::invalid(
                op,
                format!(
                    "window {}×{} is larger than the padded input {}×{} (input {x}, padding {p})",
                    k.h,
                    k.w,
                    // in 128 bits, where it cannot overflow
                    h as u128 + 2 * p.h as u128,
                    w as u128 + 2 * p.w as u128
                ),
            )
        };
        let h_out = out_size(h, k.h, p.h, s.h, 1, self.ceil_mode).ok_or_else(too_big)?;
        let w_out = out_size(w, k.w, p.w, s.w, 1, self.ceil_mode).ok_or_else(too_big)?;
        // the input (a bare shape for the backward kernels) and the output must be shapes
        // a tensor can have, so that products of these sizes do not overflow
        x.elements(op)?;
        Shape::from([x[0], x[1], h_out, w_out]).elements(op)?;
        Ok(PoolGeometry {
            n: x[0],
            c: x[1],
            h,
            w,
            h_out,
            w_out,
            params: *self,
        })
    }
}

/// Every size of one pooling, validated: the input (n, c, h, w) and the output
/// (n, c, h_out, w_out) hold at most [`MAX_NUMEL`](crate::shape::MAX_NUMEL) elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PoolGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub h_out: usize,
    pub w_out: usize,
    pub params: Pool2dParams,
}

/// One window along one axis: the in-bounds range `lo..hi` and the length of the window
/// clipped to the padded input (MXNet's divisor with `count_include_pad`).
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: usize,
    hi: usize,
    padded_len: usize,
}

fn spans(out: usize, len: usize, k: usize, s: usize, p: usize) -> Vec<Span> {
    (0..out)
        .map(|o| {
            let start = (o * s) as isize - p as isize;
            let end = (start + k as isize).min((len + p) as isize);
            Span {
                lo: start.max(0) as usize,
                hi: end.min(len as isize).max(0) as usize,
                padded_len: (end - start) as usize,
            }
        })
        .collect()
}

impl PoolGeometry {
    /// Output shape (N, C, H_out, W_out).
    pub fn out_shape(&self) -> Shape {
        Shape::from([self.n, self.c, self.h_out, self.w_out])
    }

    fn spans(&self) -> (Vec<Span>, Vec<Span>) {
        let (k, s, p) = (self.params.kernel, self.params.stride, self.params.padding);
        (
            spans(self.h_out, self.h, k.h, s.h, p.h),
            spans(self.w_out, self.w, k.w, s.w, p.w),
        )
    }

    /// True when the windows tile the input exactly: no padding, stride equal to the
    /// window, and every window inside the input.
    pub(crate) fn tiles_exactly(&self) -> bool {
        let p = &self.params;
        p.padding == Hw::new(0, 0)
            && p.stride == p.kernel
            && self.h_out * p.kernel.h <= self.h
            && self.w_out * p.kernel.w <= self.w
    }

    fn check_grad_out<T: Float>(&self, op: &'static str, dy: &Tensor<T>) -> Result<()> {
        if *dy.shape() != self.out_shape() {
            return Err(TensorError::invalid(
                op,
                format!(
                    "output gradient has shape {}, expected {}",
                    dy.shape(),
                    self.out_shape()
                ),
            ));
        }
        Ok(())
    }
}

/// Max pooling; also returns, for every output, the index within its (H, W) plane of the
/// first maximum of its window, which [`max_pool2d_backward`] routes the gradient to.
///
/// # Shapes
/// x (N, C, H, W) → (N, C, H_out, W_out), argmax (N·C·H_out·W_out).
pub fn max_pool2d_with_argmax<T: Float>(
    x: &Tensor<T>,
    params: &Pool2dParams,
) -> Result<(Tensor<T>, Vec<u32>)> {
    let (y, argmax) = max_pool2d_impl(x, params, true)?;
    Ok((y, argmax.unwrap_or_default()))
}

/// Max pooling with the argmax recorded only if `with_argmax`.
fn max_pool2d_impl<T: Float>(
    x: &Tensor<T>,
    params: &Pool2dParams,
    with_argmax: bool,
) -> Result<(Tensor<T>, Option<Vec<u32>>)> {
    let g = params.geometry("max_pool2d", x.shape())?;
    let (plane_in, plane_out) = (g.h * g.w, g.h_out * g.w_out);
    let planes = g.n * g.c;
    let mut out = vec![T::ZERO; planes * plane_out];
    let mut argmax = with_argmax.then(|| vec![0u32; planes * plane_out]);
    let level = crate::simd::level();
    let path = select::path::<T>(&g, level);
    if plane_out > 0 {
        if crate::parallel::worth_splitting(x.numel()) {
            use rayon::prelude::*;
            let xs = x
                .data()
                .par_chunks(plane_in)
                .zip(out.par_chunks_mut(plane_out));
            match &mut argmax {
                Some(a) => xs
                    .zip(a.par_chunks_mut(plane_out))
                    .for_each(|((x_p, y), arg)| {
                        max_pool_planes(x_p, &g, path, level, y, Some(arg))
                    }),
                None => xs.for_each(|(x_p, y)| max_pool_planes(x_p, &g, path, level, y, None)),
            }
        } else {
            max_pool_planes(x.data(), &g, path, level, &mut out, argmax.as_deref_mut());
        }
    }
    Ok((Tensor::from_parts(out, g.out_shape()), argmax))
}

/// Max pooling of whole (H, W) planes of `x`, as many as `x` holds, into `out` and, if
/// given, `argmax` (one plane of each per input plane), on the calling thread: the body
/// of [`max_pool2d_with_argmax`] and [`max_pool2d`], and what a fused op calls on its own
/// buffer. `path` is [`select::path`]'s for `g` at `level`.
pub(crate) fn max_pool_planes<T: Float>(
    x: &[T],
    g: &PoolGeometry,
    path: PoolPath,
    level: Level,
    out: &mut [T],
    mut argmax: Option<&mut [u32]>,
) {
    let (plane_in, plane_out) = (g.h * g.w, g.h_out * g.w_out);
    if plane_in == 0 || plane_out == 0 {
        return;
    }
    let tiled = g.tiles_exactly();
    let (hs, ws) = if tiled {
        (Vec::new(), Vec::new())
    } else {
        g.spans()
    };
    // the portable loops record the argmax anyway: into a scratch plane if none is wanted
    let mut scratch = Vec::new();
    for (p, (x_p, y)) in x
        .chunks_exact(plane_in)
        .zip(out.chunks_exact_mut(plane_out))
        .enumerate()
    {
        let arg = argmax
            .as_deref_mut()
            .map(|a| &mut a[p * plane_out..(p + 1) * plane_out]);
        if path == PoolPath::Vector2x2 {
            let (xf, yf) = (as_f32(x_p).expect("f32"), as_f32_mut(y).expect("f32"));
            crate::kernels::pool::max_pool_2x2(level, xf, g.w, g.h_out, g.w_out, yf, arg);
            continue;
        }
        let arg = match arg {
            Some(a) => a,
            None => {
                scratch.resize(plane_out, 0);
                &mut scratch[..]
            }
        };
        if tiled {
            max_plane_tiled(x_p, y, arg, g);
        } else {
            max_plane(x_p, y, arg, g, &hs, &ws);
        }
    }
}

/// True when `v` replaces `best` as a window's maximum: it is greater, or it is the
/// window's first NaN. A NaN in a window makes the maximum NaN, as in NumPy and
/// PyTorch, so that a diverged value reaches the checks downstream instead of
/// disappearing behind its neighbours.
#[inline(always)]
pub(crate) fn beats<T: Float>(v: T, best: T) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// Max pooling of one (H, W) plane, any options.
fn max_plane<T: Float>(
    x: &[T],
    y: &mut [T],
    arg: &mut [u32],
    g: &PoolGeometry,
    hs: &[Span],
    ws: &[Span],
) {
    let mut o = 0;
    for sh in hs {
        for sw in ws {
            let (mut best, mut at) = (T::NEG_INFINITY, sh.lo * g.w + sw.lo);
            for i in sh.lo..sh.hi {
                for (j, &v) in x[i * g.w + sw.lo..i * g.w + sw.hi].iter().enumerate() {
                    if beats(v, best) {
                        best = v;
                        at = i * g.w + sw.lo + j;
                    }
                }
            }
            y[o] = best;
            arg[o] = at as u32;
            o += 1;
        }
    }
}

/// Max pooling of one plane when the windows tile it exactly (no padding, stride equal
/// to the window, every window inside): the same result as [`max_plane`] with no
/// clipping to do.
fn max_plane_tiled<T: Float>(x: &[T], y: &mut [T], arg: &mut [u32], g: &PoolGeometry) {
    let (kh, kw) = (g.params.kernel.h, g.params.kernel.w);
    for oh in 0..g.h_out {
        for ow in 0..g.w_out {
            let start = oh * kh * g.w + ow * kw;
            let (mut best, mut at) = (T::NEG_INFINITY, start);
            for i in 0..kh {
                let row = start + i * g.w;
                for (j, &v) in x[row..row + kw].iter().enumerate() {
                    if beats(v, best) {
                        best = v;
                        at = row + j;
                    }
                }
            }
            y[oh * g.w_out + ow] = best;
            arg[oh * g.w_out + ow] = at as u32;
        }
    }
}

/// Max pooling (−∞ padding): `y[n, c, i, j] = max` of the window at (i·sh − ph, j·sw − pw).
/// Records no argmax: for inference, where no gradient will be taken.
pub fn max_pool2d<T: Float>(x: &Tensor<T>, params: &Pool2dParams) -> Result<Tensor<T>> {
    Ok(max_pool2d_impl(x, params, false)?.0)
}

/// Gradient of max pooling: each `dy` goes to the first maximum of its window.
///
/// # Shapes
/// dy (N, C, H_out, W_out), argmax from [`max_pool2d_with_argmax`] → (N, C, H, W) = `x_shape`.
pub fn max_pool2d_backward<T: Float>(
    dy: &Tensor<T>,
    argmax: &[u32],
    x_shape: &Shape,
    params: &Pool2dParams,
) -> Result<Tensor<T>> {
    let op = "max_pool2d_backward";
    let g = params.geometry(op, x_shape)?;
    g.check_grad_out(op, dy)?;
    let (plane_in, plane_out) = (g.h * g.w, g.h_out * g.w_out);
    // the largest index, by a fold that vectorizes (`any` stops early and does not)
    let largest = argmax.iter().fold(0u32, |m, &i| m.max(i));
    if argmax.len() != dy.numel() || (!argmax.is_empty() && largest as usize >= plane_in) {
        return Err(TensorError::invalid(
            op,
            "argmax does not belong to this input",
        ));
    }
    let level = crate::simd::level();
    let fast = select::path::<T>(&g, level) == PoolPath::Vector2x2;
    let per_image = g.c * plane_in;
    let planes = |p: usize| {
        let range = p * plane_out..(p + 1) * plane_out;
        (&dy.data()[range.clone()], &argmax[range])
    };
    // The 2×2 kernel writes every element of a plane that its windows cover exactly, so
    // such planes need no zeroing first (zeroing them was 3% of a LeNet step).
    if fast && g.h == 2 * g.h_out && g.w == 2 * g.w_out {
        let fill = |images: std::ops::Range<usize>, part: &mut [MaybeUninit<T>]| {
            for (p, dx_p) in part.chunks_exact_mut(plane_in.max(1)).enumerate() {
                let (dy_p, arg_p) = planes(images.start * g.c + p);
                unpool_2x2(level, dy_p, arg_p, &g, dx_p);
            }
        };
        // SAFETY: the windows cover each plane exactly and the kernel writes every
        // element of the windows, so every element of each part is written.
        let dx =
            unsafe { crate::parallel::fill_image_tasks(g.n, per_image, x_shape.numel(), fill) };
        return Ok(Tensor::from_parts(dx, x_shape.clone()));
    }
    // each task of images zeroes its part just before scattering into it, while the
    // part is in cache (one large zeroed allocation streamed the whole gradient through
    // memory once more)
    let dx = crate::parallel::collect_image_tasks(
        g.n,
        per_image,
        x_shape.numel(),
        |images, part: &mut [T]| {
            for (p, dx_p) in part.chunks_exact_mut(plane_in.max(1)).enumerate() {
                let (dy_p, arg_p) = planes(images.start * g.c + p);
                // SAFETY: an initialized slice seen as maybe-uninitialized: the kernel
                // only writes valid values into it.
                let uninit = unsafe { &mut *(dx_p as *mut [T] as *mut [MaybeUninit<T>]) };
                if fast {
                    unpool_2x2(level, dy_p, arg_p, &g, uninit);
                    continue;
                }
                for (&d, &at) in dy_p.iter().zip(arg_p) {
                    dx_p[at as usize] += d;
                }
            }
        },
    );
    Ok(Tensor::from_parts(dx, x_shape.clone()))
}

/// The vector 2×2 unpooling of one plane (f32 at a vector level: the caller's path).
/// It writes the windows' every element and reads none, so `dx` may start uninitialized.
fn unpool_2x2<T: Float>(
    level: Level,
    dy: &[T],
    arg: &[u32],
    g: &PoolGeometry,
    dx: &mut [MaybeUninit<T>],
) {
    let (dyf, dxf) = (as_f32(dy).expect("f32"), as_f32_uninit(dx).expect("f32"));
    // every argmax was checked to lie in the plane (max_pool2d_backward)
    crate::kernels::pool::max_unpool_2x2(level, dyf, arg, g.w, g.h_out, g.w_out, dxf);
}

fn divisor(g: &PoolGeometry, sh: &Span, sw: &Span) -> usize {
    if g.params.count_include_pad {
        sh.padded_len * sw.padded_len
    } else {
        (sh.hi - sh.lo) * (sw.hi - sw.lo)
    }
}

/// Average pooling: the window's sum divided by its size, counted as in MXNet (see the
/// module doc).
///
/// # Shapes
/// x (N, C, H, W) → (N, C, H_out, W_out).
pub fn avg_pool2d<T: Float>(x: &Tensor<T>, params: &Pool2dParams) -> Result<Tensor<T>> {
    let g = params.geometry("avg_pool2d", x.shape())?;
    let (hs, ws) = g.spans();
    let plane_in = g.h * g.w;
    let mut out = Vec::with_capacity(g.n * g.c * g.h_out * g.w_out);
    for x_p in x.data().chunks_exact(plane_in.max(1)).take(g.n * g.c) {
        for sh in &hs {
            for sw in &ws {
                let mut sum = T::ZERO;
                for i in sh.lo..sh.hi {
                    for &v in &x_p[i * g.w + sw.lo..i * g.w + sw.hi] {
                        sum += v;
                    }
                }
                out.push(sum / T::from_usize(divisor(&g, sh, sw)));
            }
        }
    }
    Ok(Tensor::from_parts(out, g.out_shape()))
}

/// Gradient of average pooling: each `dy` spread evenly over its window's in-bounds
/// elements, with the forward's divisor.
///
/// # Shapes
/// dy (N, C, H_out, W_out) → (N, C, H, W) = `x_shape`.
pub fn avg_pool2d_backward<T: Float>(
    dy: &Tensor<T>,
    x_shape: &Shape,
    params: &Pool2dParams,
) -> Result<Tensor<T>> {
    let op = "avg_pool2d_backward";
    let g = params.geometry(op, x_shape)?;
    g.check_grad_out(op, dy)?;
    let (hs, ws) = g.spans();
    let (plane_in, plane_out) = (g.h * g.w, g.h_out * g.w_out);
    let mut dx = vec![T::ZERO; x_shape.numel()];
    for (p, dx_p) in dx
        .chunks_exact_mut(plane_in.max(1))
        .take(g.n * g.c)
        .enumerate()
    {
        let dy_p = &dy.data()[p * plane_out..(p + 1) * plane_out];
        for (a, sh) in hs.iter().enumerate() {
            for (b, sw) in ws.iter().enumerate() {
                let share = dy_p[a * g.w_out + b] / T::from_usize(divisor(&g, sh, sw));
                for i in sh.lo..sh.hi {
                    for v in &mut dx_p[i * g.w + sw.lo..i * g.w + sw.hi] {
                        *v += share;
                    }
                }
            }
        }
    }
    Ok(Tensor::from_parts(dx, x_shape.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_gradient_goes_to_first_maximum() {
        let x = Tensor::<f64>::from_f64s(&[1., 3., 3., 0.], [1, 1, 2, 2]).unwrap();
        let p = Pool2dParams::new(2);
        let (y, arg) = max_pool2d_with_argmax(&x, &p).unwrap();
        assert_eq!(y.data(), &[3.]);
        assert_eq!(arg, vec![1]);
        let dx =
            max_pool2d_backward(&Tensor::<f64>::ones([1, 1, 1, 1]), &arg, x.shape(), &p).unwrap();
        assert_eq!(dx.data(), &[0., 1., 0., 0.]);
    }

    #[test]
    fn bad_windows_are_errors() {
        let x = Tensor::<f32>::zeros([1, 1, 2, 2]);
        let err = max_pool2d(&x, &Pool2dParams::new(3)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "max_pool2d: window 3×3 is larger than the padded input 2×2 (input [1, 1, 2, 2], padding (0, 0))"
        );
        assert!(avg_pool2d(&x, &Pool2dParams::new(2).stride(0)).is_err());
        assert!(avg_pool2d(&x, &Pool2dParams::new(2).padding(2)).is_err());
        assert!(avg_pool2d(&x, &Pool2dParams::new((2, 3)).padding((1, 2))).is_ok());
        assert!(avg_pool2d(&Tensor::<f32>::zeros([2, 2]), &Pool2dParams::new(2)).is_err());
    }

    #[test]
    fn sizes_that_overflow_are_errors_naming_the_op() {
        let x = Tensor::<f32>::zeros([1, 1, 4, 4]);
        // a window of 2⁶³ + 1 with padding 2⁶³ (2·pad wraps to 0): refused, not wrapped
        let p = Pool2dParams::new((1 << 63) + 1).padding(1 << 63).stride(1);
        let err = max_pool2d(&x, &p).unwrap_err();
        assert!(
            err.to_string().contains("larger than the padded input"),
            "{err}"
        );
        // a bare input shape for the backward pass that no tensor can have
        let dy = Tensor::<f32>::zeros([1, 1, 2, 2]);
        let huge = Shape::from([1 << 62, 1, 4, 4]);
        let err = avg_pool2d_backward(&dy, &huge, &Pool2dParams::new(2)).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::TooLarge {
                    op: "avg_pool2d_backward",
                    ..
                }
            ),
            "{err}"
        );
        let err = max_pool2d_backward(&dy, &[0; 4], &huge, &Pool2dParams::new(2)).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::TooLarge {
                    op: "max_pool2d_backward",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn ceil_mode_averages_the_overhang_over_in_bounds_elements() {
        // 1×1×3×3 arange, window 2, stride 2, ceil: the right column window is [2, 5] → 3.5
        let x = Tensor::<f64>::arange(9).reshape([1, 1, 3, 3]).unwrap();
        let p = Pool2dParams::new(2).ceil_mode(true);
        let y = avg_pool2d(&x, &p).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        assert_eq!(y.data(), &[2.0, 3.5, 6.5, 8.0]);
    }
}
