//! Convolution, activation and max pooling as one pass (how LeNet's layers run): each task
//! convolves its few images into a buffer that stays in cache, max-pools that buffer, and
//! applies the activation to the pooled values only. The full-size activation map is never
//! written to memory, and a quarter as many activations are computed.
//!
//! This equals `max_pool(f(conv(x)))` because every activation here is non-decreasing, so
//! `max f(z) = f(max z)`; where f saturates (ties after f), the window's maximum may be a
//! different element, but f′ is 0 there, so the gradients agree too.

use super::{lowered, Conv2dParams, ConvGeometry};
use crate::activation::Activation;
use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::parallel::{worth_splitting, IMAGES_PER_TASK};
use crate::pool2d::{max_pool2d_backward, max_pool_planes, Pool2dParams};
use crate::scratch::with_scratch;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// `max_pool(f(conv2d(x, w) + b))`, for inference: no argmax is recorded.
///
/// # Shapes
/// x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out) → (N, C_out, H_p, W_p),
/// with (H_p, W_p) the pooling of the convolution's (H_out, W_out).
pub fn conv2d_max_pool2d<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    conv: &Conv2dParams,
    activation: Option<Activation>,
    pool: &Pool2dParams,
) -> Result<Tensor<T>> {
    Ok(pooled_forward(x, weight, bias, conv, activation, pool, false)?.0)
}

/// `max_pool(f(conv2d(x, w) + b))` and, for each pooled value, the index within its
/// (H_out, W_out) plane of the convolution output it came from, which
/// [`conv2d_max_pool2d_backward_z`] routes the gradient to.
///
/// # Shapes
/// As [`conv2d_max_pool2d`]; argmax (N·C_out·H_p·W_p).
pub fn conv2d_max_pool2d_with_argmax<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    conv: &Conv2dParams,
    activation: Option<Activation>,
    pool: &Pool2dParams,
) -> Result<(Tensor<T>, Vec<u32>)> {
    pooled_forward(x, weight, bias, conv, activation, pool, true)
}

/// The fused pass, recording the argmax only if `with_argmax` (else it is empty).
fn pooled_forward<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    conv: &Conv2dParams,
    activation: Option<Activation>,
    pool: &Pool2dParams,
    with_argmax: bool,
) -> Result<(Tensor<T>, Vec<u32>)> {
    let g = conv.geometry("conv2d", x.shape(), weight.shape())?;
    super::check_bias("conv2d", bias, g.c_out)?;
    let pg = pool.geometry("max_pool2d", &g.out_shape())?;
    let (in_image, pooled_image) = (g.c * g.h * g.w, g.c_out * pg.h_out * pg.w_out);
    let mut out = vec![T::ZERO; g.n * pooled_image];
    let mut argmax = vec![0u32; if with_argmax { g.n * pooled_image } else { 0 }];
    // chosen here, on the calling thread, for every task
    let sel = super::select::select::<T>(&ConvGeometry {
        n: IMAGES_PER_TASK.min(g.n),
        ..g
    });
    let pool_path = crate::pool2d::select::path::<T>(&pg, sel.level);
    let task = |t: usize, out: &mut [T], argmax: Option<&mut [u32]>| {
        let images = t * IMAGES_PER_TASK..((t + 1) * IMAGES_PER_TASK).min(g.n);
        let sub = ConvGeometry {
            n: images.len(),
            ..g
        };
        let x_sub = &x.data()[images.start * in_image..images.end * in_image];
        // the convolution's output is pooled and dropped: it goes to this thread's scratch
        with_scratch(sub.n * g.c_out * g.h_out * g.w_out, |scratch| {
            let (w, b) = (weight.data(), bias.map(Tensor::data));
            let z = lowered::forward_in(&sub, &sel, x_sub, w, b, None, scratch);
            max_pool_planes(&z, &pg, pool_path, sel.level, out, argmax);
        });
        if let Some(a) = activation {
            a.apply_in_place_at(sel.level, out);
        }
    };
    let chunk = IMAGES_PER_TASK * pooled_image;
    if chunk > 0 {
        // one task (a small batch) runs here: rayon's bridge cost ~1% of a batch-1 forward
        if g.n > IMAGES_PER_TASK
            && worth_splitting(g.n * g.c_out * g.h_out * g.w_out * g.col_rows())
        {
            use rayon::prelude::*;
            let outs = out.par_chunks_mut(chunk).enumerate();
            if with_argmax {
                outs.zip(argmax.par_chunks_mut(chunk))
                    .for_each(|((t, o), a)| task(t, o, Some(a)));
            } else {
                outs.for_each(|(t, o)| task(t, o, None));
            }
        } else {
            // argmax chunks, or none for every task
            let mut arg_chunks = argmax.chunks_mut(chunk);
            for (t, o) in out.chunks_mut(chunk).enumerate() {
                task(t, o, arg_chunks.next());
            }
        }
    }
    Ok((Tensor::from_parts(out, pg.out_shape()), argmax))
}

/// The gradient of [`conv2d_max_pool2d_with_argmax`] with respect to the convolution's output.
#[derive(Clone, Debug)]
pub struct PooledGrad<T: Float> {
    /// dz (N, C_out, H_out, W_out): the gradient at every position of the convolution's
    /// output z, zero where no window's maximum was.
    pub dz: Tensor<T>,
    /// `dp ⊙ f′(p)` (N, C_out, H_p, W_p): the same gradient at the pooled positions only.
    /// Its sums per channel are the bias gradient, at a quarter of the reads of dz's.
    pub pooled: Tensor<T>,
}

/// The gradient with respect to the convolution's output z (before the activation), from
/// the gradient `dp` of the pooled, activated output `p`: `dp ⊙ f′(p)` routed to each
/// window's maximum. `dp` is taken by value and scaled in place.
///
/// # Shapes
/// dp, p (N, C_out, H_p, W_p), argmax from [`conv2d_max_pool2d_with_argmax`] → `z_shape`
/// (N, C_out, H_out, W_out).
pub fn conv2d_max_pool2d_backward_z<T: Float>(
    mut dp: Tensor<T>,
    p: &Tensor<T>,
    argmax: &[u32],
    activation: Option<Activation>,
    z_shape: &Shape,
    pool: &Pool2dParams,
) -> Result<PooledGrad<T>> {
    if dp.shape() != p.shape() {
        return Err(TensorError::invalid(
            "conv2d_max_pool2d_backward",
            format!(
                "gradient {} does not match output {}",
                dp.shape(),
                p.shape()
            ),
        ));
    }
    if let Some(a) = activation {
        a.backward_in_place(dp.data_mut(), p.data());
    }
    let dz = max_pool2d_backward(&dp, argmax, z_shape, pool)?;
    Ok(PooledGrad { dz, pooled: dp })
}
