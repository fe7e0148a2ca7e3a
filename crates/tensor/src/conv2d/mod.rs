//! 2-d convolution (cross-correlation, as every framework computes it) over NCHW tensors,
//! lowered to im2col + GEMM, with its three backward kernels; the book's reference loops
//! live in [`mod@reference`] and are the oracle of the tests.

mod direct;
pub mod im2col;
mod lowered;
pub mod pooled;
pub mod reference;
pub mod select;

use crate::activation::Activation;
use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::shape::{Hw, Shape};
use crate::tensor::Tensor;
use crate::window::out_size;

/// The options of a 2-d convolution. The default is stride 1, no padding, no dilation,
/// one group.
///
/// ```
/// use kiln_tensor::Conv2dParams;
/// let p = Conv2dParams::default().stride(2).padding((1, 2));
/// assert_eq!((p.stride.h, p.padding.w), (2, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Step between windows, (h, w).
    pub stride: Hw,
    /// Zeros added on each side, (h, w).
    pub padding: Hw,
    /// Spacing between kernel taps, (h, w); 1 is a dense kernel.
    pub dilation: Hw,
    /// Channel groups: input and output channels are split into this many independent
    /// convolutions.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: Hw::new(1, 1),
            padding: Hw::new(0, 0),
            dilation: Hw::new(1, 1),
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// Sets the stride (one number or (h, w)).
    pub fn stride(mut self, s: impl Into<Hw>) -> Self {
        self.stride = s.into();
        self
    }

    /// Sets the padding (one number or (h, w)).
    pub fn padding(mut self, p: impl Into<Hw>) -> Self {
        self.padding = p.into();
        self
    }

    /// Sets the dilation (one number or (h, w)).
    pub fn dilation(mut self, d: impl Into<Hw>) -> Self {
        self.dilation = d.into();
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// Checks an input shape (N, C, H, W) against a weight shape (C_out, C/groups, KH, KW)
    /// and these options, and returns every size the kernels need.
    pub fn geometry(&self, op: &'static str, x: &Shape, weight: &Shape) -> Result<ConvGeometry> {
        if x.rank() != 4 {
            return Err(TensorError::invalid(
                op,
                format!("input must be 4-d (N, C, H, W), got shape {x}"),
            ));
        }
        if weight.rank() != 4 {
            return Err(TensorError::invalid(
                op,
                format!("weight must be 4-d (C_out, C_in/groups, KH, KW), got shape {weight}"),
            ));
        }
        let bad = |what: &str, v: Hw| {
            TensorError::invalid(op, format!("{what} must be ≥ 1 on both axes, got {v}"))
        };
        if self.stride.h == 0 || self.stride.w == 0 {
            return Err(bad("stride", self.stride));
        }
        if self.dilation.h == 0 || self.dilation.w == 0 {
            return Err(bad("dilation", self.dilation));
        }
        let groups = self.groups;
        let (n, c, h, w) = (x[0], x[1], x[2], x[3]);
        let (c_out, c_w, k_h, k_w) = (weight[0], weight[1], weight[2], weight[3]);
        if groups == 0 {
            return Err(TensorError::invalid(op, "groups must be ≥ 1, got 0"));
        }
        if k_h == 0 || k_w == 0 || c_out == 0 {
            return Err(TensorError::invalid(
                op,
                format!("weight shape {weight} has an empty axis"),
            ));
        }
        if c != c_w * groups {
            let expects = if groups == 1 {
                format!("{c_w}")
            } else {
                format!("{c_w} × {groups} groups = {}", c_w * groups)
            };
            return Err(TensorError::invalid(
                op,
                format!(
                    "input has {c} channels, weight expects {expects} (input {x}, weight {weight})"
                ),
            ));
        }
        if c_out % groups != 0 {
            return Err(TensorError::invalid(
                op,
                format!(
                    "{c_out} output channels do not split into {groups} groups (weight {weight})"
                ),
            ));
        }
        let too_big = || {
            TensorError::invalid(
                op,
                format!(
                    "kernel {k_h}×{k_w} with dilation {} is larger than the padded input {}×{} \
                     (input {x}, padding {})",
                    self.dilation,
                    padded(h, self.padding.h),
                    padded(w, self.padding.w),
                    self.padding
                ),
            )
        };
        let h_out = out_size(
            h,
            k_h,
            self.padding.h,
            self.stride.h,
            self.dilation.h,
            false,
        )
        .ok_or_else(too_big)?;
        let w_out = out_size(
            w,
            k_w,
            self.padding.w,
            self.stride.w,
            self.dilation.w,
            false,
        )
        .ok_or_else(too_big)?;
        // every buffer the kernels make must be one a tensor can be: the input and the
        // weight (given as bare shapes to the backward kernels), the output, the im2col
        // matrix of one image and group, and one group of the padded input
        x.elements(op)?;
        weight.elements(op)?;
        Shape::from([n, c_out, h_out, w_out]).elements(op)?;
        // (c_w·k_h·k_w, h_out·w_out), as four axes: a fifth would spill the shape onto the
        // heap, on every call of a batch-1 forward
        Shape::from([c_w, k_h * k_w, h_out, w_out]).elements(op)?;
        let (h_padded, w_padded) = (h + 2 * self.padding.h, w + 2 * self.padding.w);
        Shape::from([c_w, h_padded, w_padded]).elements(op)?;
        Ok(ConvGeometry {
            n,
            c,
            h,
            w,
            c_out,
            k_h,
            k_w,
            h_out,
            w_out,
            groups,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        })
    }
}

/// Every size of one convolution, validated: input (n, c, h, w), weight (c_out, c/groups,
/// k_h, k_w), output (n, c_out, h_out, w_out). Each of these shapes, the im2col matrix of
/// one image and group (c/groups·k_h·k_w × h_out·w_out) and one group of the padded input
/// (c/groups × (h + 2·pad_h) × (w + 2·pad_w)) holds at most
/// [`MAX_NUMEL`](crate::shape::MAX_NUMEL) elements, so products of these fields do not
/// overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct ConvGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub h_out: usize,
    pub w_out: usize,
    pub groups: usize,
    pub stride: Hw,
    pub padding: Hw,
    pub dilation: Hw,
}

impl ConvGeometry {
    /// Input channels per group.
    pub fn c_per_group(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    pub fn c_out_per_group(&self) -> usize {
        self.c_out / self.groups
    }

    /// Rows of the im2col matrix: C/groups · KH · KW (one row per kernel tap).
    pub fn col_rows(&self) -> usize {
        self.c_per_group() * self.k_h * self.k_w
    }

    /// Output shape (N, C_out, H_out, W_out).
    pub fn out_shape(&self) -> Shape {
        Shape::from([self.n, self.c_out, self.h_out, self.w_out])
    }

    /// Input shape (N, C, H, W).
    pub fn in_shape(&self) -> Shape {
        Shape::from([self.n, self.c, self.h, self.w])
    }

    /// Weight shape (C_out, C/groups, KH, KW).
    pub fn weight_shape(&self) -> Shape {
        Shape::from([self.c_out, self.c_per_group(), self.k_h, self.k_w])
    }

    /// True when im2col would copy the input unchanged (1×1 kernel, stride 1, no padding),
    /// so the GEMM can read the input directly.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.k_h == 1
            && self.k_w == 1
            && self.stride == Hw::new(1, 1)
            && self.padding == Hw::new(0, 0)
    }
}

/// `len + 2·pad` for a message, counted in 128 bits where it cannot overflow.
fn padded(len: usize, pad: usize) -> String {
    (len as u128 + 2 * pad as u128).to_string()
}

fn check_bias<T: Float>(op: &'static str, bias: Option<&Tensor<T>>, c_out: usize) -> Result<()> {
    match bias {
        Some(b) if b.dims() != [c_out] => Err(TensorError::invalid(
            op,
            format!("bias has shape {}, expected [{c_out}]", b.shape()),
        )),
        _ => Ok(()),
    }
}

fn check_grad_out<T: Float>(op: &'static str, dy: &Tensor<T>, g: &ConvGeometry) -> Result<()> {
    if *dy.shape() != g.out_shape() {
        return Err(TensorError::invalid(
            op,
            format!(
                "output gradient has shape {}, expected {}",
                dy.shape(),
                g.out_shape()
            ),
        ));
    }
    Ok(())
}

/// 2-d cross-correlation of `x` (N, C, H, W) with `weight` (C_out, C/groups, KH, KW) plus an
/// optional `bias` (C_out): `y[n, o, i, j] = b[o] + Σ_{c,p,q} w[o, c, p, q] ·
/// x[n, g·C/groups + c, i·sh + p·dh − ph, j·sw + q·dw − pw]`.
///
/// # Shapes
/// x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out) → (N, C_out, H_out, W_out)
/// with H_out, W_out from [`crate::window::out_size`].
pub fn conv2d<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    params: &Conv2dParams,
) -> Result<Tensor<T>> {
    conv2d_activation(x, weight, bias, params, None)
}

/// [`conv2d`] followed by an activation, fused: the activation is applied to each tile of
/// the output while it is still in registers or cache (Gluon's `Conv2D(activation=…)`).
///
/// # Shapes
/// As [`conv2d`].
pub fn conv2d_activation<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    params: &Conv2dParams,
    activation: Option<Activation>,
) -> Result<Tensor<T>> {
    let g = params.geometry("conv2d", x.shape(), weight.shape())?;
    check_bias("conv2d", bias, g.c_out)?;
    let sel = select::select::<T>(&g);
    let y = lowered::forward(
        &g,
        &sel,
        x.data(),
        weight.data(),
        bias.map(Tensor::data),
        activation,
    );
    Ok(Tensor::from_parts(y, g.out_shape()))
}

/// Gradient of [`conv2d`] with respect to its input: for each image and group,
/// `dcols = W_gᵀ · dy_g`, folded back onto the image by col2im.
///
/// # Shapes
/// dy (N, C_out, H_out, W_out), weight (C_out, C/groups, KH, KW) → (N, C, H, W) = `x_shape`.
pub fn conv2d_backward_input<T: Float>(
    dy: &Tensor<T>,
    weight: &Tensor<T>,
    x_shape: &Shape,
    params: &Conv2dParams,
) -> Result<Tensor<T>> {
    let op = "conv2d_backward_input";
    let g = params.geometry(op, x_shape, weight.shape())?;
    check_grad_out(op, dy, &g)?;
    let sel = select::select::<T>(&g);
    let dx = lowered::backward_input(&g, &sel, dy.data(), weight.data());
    Ok(Tensor::from_parts(dx, x_shape.clone()))
}

/// Gradient of [`conv2d`] with respect to its weight: `dW_g = Σ_n dy_g · rows_g`, with
/// `rows` the image's receptive fields one per row (im2row). The sum runs over fixed
/// groups of images in order, so it does not depend on the number of threads.
///
/// # Shapes
/// dy (N, C_out, H_out, W_out), x (N, C, H, W) → (C_out, C/groups, KH, KW) = `w_shape`.
pub fn conv2d_backward_weight<T: Float>(
    dy: &Tensor<T>,
    x: &Tensor<T>,
    w_shape: &Shape,
    params: &Conv2dParams,
) -> Result<Tensor<T>> {
    let op = "conv2d_backward_weight";
    let g = params.geometry(op, x.shape(), w_shape)?;
    check_grad_out(op, dy, &g)?;
    let sel = select::select::<T>(&g);
    let dw = lowered::backward_weight(&g, &sel, dy.data(), x.data());
    Ok(Tensor::from_parts(dw, w_shape.clone()))
}

/// Gradient of [`conv2d`] with respect to its bias: `db[o] = Σ_{n,i,j} dy[n, o, i, j]`.
///
/// # Shapes
/// dy (N, C_out, H_out, W_out) → (C_out).
pub fn conv2d_backward_bias<T: Float>(dy: &Tensor<T>) -> Result<Tensor<T>> {
    if dy.rank() != 4 {
        return Err(TensorError::invalid(
            "conv2d_backward_bias",
            format!("output gradient must be 4-d, got shape {}", dy.shape()),
        ));
    }
    let (n, c_out, plane) = (dy.dims()[0], dy.dims()[1], dy.dims()[2] * dy.dims()[3]);
    let level = crate::simd::level();
    // per task of images, then the tasks in order: the same sums for any thread count
    let partials = crate::parallel::map_image_tasks(n, dy.numel(), |images| {
        let mut db = vec![T::ZERO; c_out];
        for y_n in dy.data()[images.start * c_out * plane..images.end * c_out * plane]
            .chunks_exact((c_out * plane).max(1))
        {
            for (d, y_o) in db.iter_mut().zip(y_n.chunks_exact(plane.max(1))) {
                *d += match crate::kernels::sum_f32(level, y_o) {
                    Some(s) => T::from_f64(s as f64),
                    None => y_o.iter().copied().sum::<T>(),
                };
            }
        }
        db
    });
    let mut db = vec![T::ZERO; c_out];
    for partial in partials {
        db.iter_mut().zip(&partial).for_each(|(d, &p)| *d += p);
    }
    Ok(Tensor::from_parts(db, Shape::from([c_out])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_mismatch_message_names_both_shapes() {
        let x = Tensor::<f32>::zeros([1, 3, 8, 8]);
        let w = Tensor::<f32>::zeros([6, 1, 5, 5]);
        let err = conv2d(&x, &w, None, &Conv2dParams::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conv2d: input has 3 channels, weight expects 1 (input [1, 3, 8, 8], weight [6, 1, 5, 5])"
        );
    }

    #[test]
    fn bad_options_are_errors() {
        let x = Tensor::<f32>::zeros([1, 1, 4, 4]);
        let w = Tensor::<f32>::zeros([1, 1, 5, 5]);
        let err = conv2d(&x, &w, None, &Conv2dParams::default()).unwrap_err();
        assert!(
            err.to_string().contains("larger than the padded input 4×4"),
            "{err}"
        );
        let w3 = Tensor::<f32>::zeros([1, 1, 3, 3]);
        let zero_stride = Conv2dParams::default().stride((0, 1));
        assert!(conv2d(&x, &w3, None, &zero_stride)
            .unwrap_err()
            .to_string()
            .contains("stride must be ≥ 1"));
        let bias = Tensor::<f32>::zeros([2]);
        assert!(conv2d(&x, &w3, Some(&bias), &Conv2dParams::default()).is_err());
        assert!(conv2d(&Tensor::zeros([4, 4]), &w3, None, &Conv2dParams::default()).is_err());
        let groups = Conv2dParams::default().groups(2);
        let err = conv2d(&Tensor::<f32>::zeros([1, 4, 4, 4]), &w3, None, &groups).unwrap_err();
        assert!(
            err.to_string().contains("weight expects 1 × 2 groups = 2"),
            "{err}"
        );
    }

    #[test]
    fn sizes_that_overflow_are_errors_naming_the_op() {
        let x = Tensor::<f32>::zeros([1, 1, 4, 4]);
        let w = Tensor::<f32>::zeros([1, 1, 3, 3]);
        // 2·pad wraps to 0 in 64 bits, so the 3×3 kernel seemed to fit a 4×4 input
        let wraps = Conv2dParams::default().padding((1 << 63, 0));
        let err = conv2d(&x, &w, None, &wraps).unwrap_err();
        assert!(
            err.to_string()
                .contains("larger than the padded input 18446744073709551620×4"),
            "{err}"
        );
        // padding 2³⁰ on a 4×4 input: (2³¹ + 2)² outputs per channel, past the limit
        let wide = Conv2dParams::default().padding(1 << 30);
        let w512 = Tensor::<f32>::zeros([512, 1, 3, 3]);
        let err = conv2d(&x, &w512, None, &wide).unwrap_err();
        assert!(
            matches!(err, TensorError::TooLarge { op: "conv2d", .. }),
            "{err}"
        );
        // bare shapes given to the backward kernels are checked as well
        let dy = Tensor::<f32>::zeros([1, 1, 2, 2]);
        let huge_x = Shape::from([1 << 62, 1, 4, 4]);
        let err = conv2d_backward_input(&dy, &w, &huge_x, &Conv2dParams::default()).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::TooLarge {
                    op: "conv2d_backward_input",
                    ..
                }
            ),
            "{err}"
        );
        let huge_w = Shape::from([1 << 62, 1, 3, 3]);
        let err = conv2d_backward_weight(&dy, &x, &huge_w, &Conv2dParams::default()).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::TooLarge {
                    op: "conv2d_backward_weight",
                    ..
                }
            ),
            "{err}"
        );
    }
}
