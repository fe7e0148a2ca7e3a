//! The convolution kernels: im2col/im2row + one GEMM per image and group, over fixed tasks
//! of images that run on the thread pool. Inputs are validated by the public functions in
//! `mod.rs`; the shapes in the comments are per image and group.

use super::im2col::{col2im, im2col, im2row};
use super::ConvGeometry;
use crate::activation::Activation;
use crate::float::Float;
use crate::matmul::{gemm, MatMut, MatRef};
use crate::parallel::{collect_image_tasks, map_image_tasks};

/// Elements touched to convolve one image (for deciding whether to split the batch).
fn work_per_image(g: &ConvGeometry) -> usize {
    g.c_out * g.h_out * g.w_out * g.col_rows()
}

/// y = f(conv(x, W) + b) for all images: (N, C_out, H_out, W_out) in row-major order.
pub(super) fn forward<T: Float>(
    g: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
) -> Vec<T> {
    #[cfg(target_arch = "x86_64")]
    if let Some(y) = super::direct::forward(g, x, w, bias, activation) {
        return y;
    }
    let (plane, rows, og, cg) = (
        g.h_out * g.w_out,
        g.col_rows(),
        g.c_out_per_group(),
        g.c_per_group(),
    );
    let (in_image, out_image) = (g.c * g.h * g.w, g.c_out * plane);
    collect_image_tasks(
        g.n,
        out_image,
        g.n * work_per_image(g),
        |images, out: &mut [T]| {
            let mut cols = vec![T::ZERO; if g.is_pointwise() { 0 } else { rows * plane }];
            for (y_n, n) in out.chunks_exact_mut(out_image).zip(images) {
                for grp in 0..g.groups {
                    let x_g = &x[n * in_image + grp * cg * g.h * g.w..][..cg * g.h * g.w];
                    let cols: &[T] = if g.is_pointwise() {
                        x_g
                    } else {
                        im2col(x_g, g, &mut cols);
                        &cols
                    };
                    // y_g (og × plane) = W_g (og × rows) · cols (rows × plane)
                    gemm(
                        T::ONE,
                        MatRef::new(&w[grp * og * rows..(grp + 1) * og * rows], og, rows),
                        MatRef::new(cols, rows, plane),
                        T::ZERO,
                        MatMut::new(
                            &mut y_n[grp * og * plane..(grp + 1) * og * plane],
                            og,
                            plane,
                        ),
                    );
                }
                if let Some(b) = bias {
                    for (y_o, &b_o) in y_n.chunks_exact_mut(plane).zip(b) {
                        y_o.iter_mut().for_each(|v| *v += b_o);
                    }
                }
                if let Some(a) = activation {
                    a.apply_in_place(y_n);
                }
            }
        },
    )
}

/// [`forward`] for a pass that only reads the result: written into `scratch` (N·C_out·
/// H_out·W_out values) when the direct path applies, else into a new buffer.
pub(super) fn forward_in<'a, T: Float>(
    g: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
    scratch: &'a mut [std::mem::MaybeUninit<T>],
) -> std::borrow::Cow<'a, [T]> {
    #[cfg(target_arch = "x86_64")]
    if super::direct::forward_into(g, x, w, bias, activation, scratch).is_some() {
        // SAFETY: the direct path wrote every element.
        return std::borrow::Cow::Borrowed(unsafe {
            &*(scratch as *mut [std::mem::MaybeUninit<T>] as *const [T])
        });
    }
    let _ = scratch;
    std::borrow::Cow::Owned(forward(g, x, w, bias, activation))
}

/// dx = conv's adjoint of dy: per image and group, dcols = W_gᵀ · dy_g, then col2im.
pub(super) fn backward_input<T: Float>(g: &ConvGeometry, dy: &[T], w: &[T]) -> Vec<T> {
    #[cfg(target_arch = "x86_64")]
    if let Some(dx) = super::direct::backward_input(g, dy, w) {
        return dx;
    }
    let (plane, rows, og, cg) = (
        g.h_out * g.w_out,
        g.col_rows(),
        g.c_out_per_group(),
        g.c_per_group(),
    );
    let (in_image, out_image) = (g.c * g.h * g.w, g.c_out * plane);
    collect_image_tasks(
        g.n,
        in_image,
        g.n * work_per_image(g),
        |images, dx: &mut [T]| {
            let mut dcols = vec![T::ZERO; rows * plane];
            for (dx_n, n) in dx.chunks_exact_mut(in_image).zip(images) {
                for grp in 0..g.groups {
                    // dcols (rows × plane) = W_gᵀ (rows × og) · dy_g (og × plane)
                    let w_t = MatRef::new(&w[grp * og * rows..(grp + 1) * og * rows], og, rows).t();
                    let dy_g = MatRef::new(
                        &dy[n * out_image + grp * og * plane..][..og * plane],
                        og,
                        plane,
                    );
                    let dx_g = &mut dx_n[grp * cg * g.h * g.w..(grp + 1) * cg * g.h * g.w];
                    if g.is_pointwise() {
                        gemm(T::ONE, w_t, dy_g, T::ZERO, MatMut::new(dx_g, rows, plane));
                    } else {
                        gemm(
                            T::ONE,
                            w_t,
                            dy_g,
                            T::ZERO,
                            MatMut::new(&mut dcols, rows, plane),
                        );
                        col2im(&dcols, g, dx_g);
                    }
                }
            }
        },
    )
}

/// dW = Σ_n dy_n · rows_n per group: each task sums its images in order into its own
/// partial gradient, then the partials are added in task order.
pub(super) fn backward_weight<T: Float>(g: &ConvGeometry, dy: &[T], x: &[T]) -> Vec<T> {
    #[cfg(target_arch = "x86_64")]
    if let Some(dw) = super::direct::backward_weight(g, dy, x) {
        return dw;
    }
    let (plane, rows, og, cg) = (
        g.h_out * g.w_out,
        g.col_rows(),
        g.c_out_per_group(),
        g.c_per_group(),
    );
    let (in_image, out_image) = (g.c * g.h * g.w, g.c_out * plane);
    let w_len = g.c_out * rows;
    let partials = map_image_tasks(g.n, g.n * work_per_image(g), |images| {
        let mut dw = vec![T::ZERO; w_len];
        let mut patches = vec![T::ZERO; plane * rows];
        for n in images {
            for grp in 0..g.groups {
                im2row(
                    &x[n * in_image + grp * cg * g.h * g.w..][..cg * g.h * g.w],
                    g,
                    &mut patches,
                );
                // dW_g (og × rows) += dy_g (og × plane) · patches (plane × rows)
                gemm(
                    T::ONE,
                    MatRef::new(
                        &dy[n * out_image + grp * og * plane..][..og * plane],
                        og,
                        plane,
                    ),
                    MatRef::new(&patches, plane, rows),
                    T::ONE,
                    MatMut::new(&mut dw[grp * og * rows..(grp + 1) * og * rows], og, rows),
                );
            }
        }
        dw
    });
    let mut total = vec![T::ZERO; w_len];
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(t, &p)| *t += p);
    }
    total
}
