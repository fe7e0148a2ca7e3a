//! The convolution's three products by the path its [`Selection`] names: the direct
//! kernels, im2col/im2row + one GEMM per image and group, or ([`ConvPath::Batched`])
//! im2row over a task's images + one GEMM per task and group, over fixed tasks of images
//! that run on the thread pool. Inputs are validated by the public functions in `mod.rs`;
//! the shapes in the comments are per image and group.

use super::im2col::{col2im_at, im2col_at, im2row_at, row2im};
use super::select::{ConvPath, Selection};
use super::ConvGeometry;
use crate::activation::Activation;
use crate::float::Float;
use crate::kernels::{as_f32, as_f32_uninit, vec_from_f32};
use crate::matmul::{gemm_at, MatMut, MatRef};
use crate::parallel::{collect_image_tasks, map_image_tasks};

/// The f32 views of a direct path's operands (the selector picks one for f32 only).
fn f32s<T: Float>(x: &[T]) -> &[f32] {
    as_f32(x).expect("a direct path runs on f32 only")
}

/// The result of a direct path as `Vec<T>` (T is f32 there).
fn from_f32s<T: Float>(v: Vec<f32>) -> Vec<T> {
    vec_from_f32(v).expect("a direct path runs on f32 only")
}

/// Elements touched to convolve one image (for deciding whether to split the batch).
fn work_per_image(g: &ConvGeometry) -> usize {
    g.c_out * g.h_out * g.w_out * g.col_rows()
}

/// y = f(conv(x, W) + b) for all images: (N, C_out, H_out, W_out) in row-major order.
pub(super) fn forward<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
) -> Vec<T> {
    if sel.forward == ConvPath::Direct {
        let y = super::direct::forward(g, sel, f32s(x), f32s(w), bias.map(f32s), activation);
        return from_f32s(y);
    }
    if sel.forward == ConvPath::Batched {
        return forward_batched(g, sel, x, w, bias, activation);
    }
    let level = sel.level;
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
                        im2col_at(level, x_g, g, &mut cols);
                        &cols
                    };
                    // y_g (og × plane) = W_g (og × rows) · cols (rows × plane)
                    gemm_at(
                        level,
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
                    a.apply_in_place_at(level, y_n);
                }
            }
        },
    )
}

/// [`forward`] for a pass that only reads the result: written into `scratch` (N·C_out·
/// H_out·W_out values) when the direct path applies, else into a new buffer.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_in<'a, T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
    scratch: &'a mut [std::mem::MaybeUninit<T>],
) -> std::borrow::Cow<'a, [T]> {
    if sel.forward == ConvPath::Direct {
        let out = as_f32_uninit(scratch).expect("a direct path runs on f32 only");
        super::direct::forward_into(g, sel, f32s(x), f32s(w), bias.map(f32s), activation, out);
        // SAFETY: the direct path wrote every element.
        return std::borrow::Cow::Borrowed(unsafe {
            &*(scratch as *mut [std::mem::MaybeUninit<T>] as *const [T])
        });
    }
    std::borrow::Cow::Owned(forward(g, sel, x, w, bias, activation))
}

/// dx = conv's adjoint of dy: per image and group, dcols = W_gᵀ · dy_g, then col2im.
pub(super) fn backward_input<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    dy: &[T],
    w: &[T],
) -> Vec<T> {
    if sel.input != ConvPath::Lowered && sel.input != ConvPath::Batched {
        return from_f32s(super::direct::backward_input(g, sel, f32s(dy), f32s(w)));
    }
    if sel.input == ConvPath::Batched {
        return backward_input_batched(g, sel, dy, w);
    }
    let level = sel.level;
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
                        let dx_g = MatMut::new(dx_g, rows, plane);
                        gemm_at(level, T::ONE, w_t, dy_g, T::ZERO, dx_g);
                    } else {
                        gemm_at(
                            level,
                            T::ONE,
                            w_t,
                            dy_g,
                            T::ZERO,
                            MatMut::new(&mut dcols, rows, plane),
                        );
                        col2im_at(level, &dcols, g, dx_g);
                    }
                }
            }
        },
    )
}

/// dW = Σ_n dy_n · rows_n per group: each task sums its images in order into its own
/// partial gradient, then the partials are added in task order.
pub(super) fn backward_weight<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    dy: &[T],
    x: &[T],
) -> Vec<T> {
    if sel.weight == ConvPath::Batched {
        return backward_weight_batched(g, sel, dy, x);
    }
    if sel.weight != ConvPath::Lowered {
        return from_f32s(super::direct::backward_weight(g, sel, f32s(dy), f32s(x)));
    }
    let level = sel.level;
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
                im2row_at(
                    level,
                    &x[n * in_image + grp * cg * g.h * g.w..][..cg * g.h * g.w],
                    g,
                    &mut patches,
                );
                // dW_g (og × rows) += dy_g (og × plane) · patches (plane × rows)
                gemm_at(
                    level,
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

/// The sizes the batched path works with: (plane, rows, og, cg, in_image, out_image).
fn batched_sizes(g: &ConvGeometry) -> (usize, usize, usize, usize, usize, usize) {
    let plane = g.h_out * g.w_out;
    (
        plane,
        g.col_rows(),
        g.c_out_per_group(),
        g.c_per_group(),
        g.c * g.h * g.w,
        g.c_out * plane,
    )
}

/// Stacks the im2row patches of images `images` for group `grp`: P (t·plane × rows), each
/// image's (plane × rows) block after the previous one.
fn stack_patches<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[T],
    images: std::ops::Range<usize>,
    grp: usize,
    patches: &mut [T],
) {
    let (plane, rows, _, cg, in_image, _) = batched_sizes(g);
    let group_in = cg * g.h * g.w;
    for (p_n, n) in patches.chunks_exact_mut(plane * rows).zip(images) {
        im2row_at(
            sel.level,
            &x[n * in_image + grp * group_in..][..group_in],
            g,
            p_n,
        );
    }
}

/// Gathers the output gradient of images `images` for group `grp` into
/// D (og × t·plane): row o holds output channel o of each image in turn.
fn gather_dy<T: Float>(
    g: &ConvGeometry,
    dy: &[T],
    images: std::ops::Range<usize>,
    grp: usize,
    gathered: &mut [T],
) {
    let (plane, _, og, _, _, out_image) = batched_sizes(g);
    let t = images.len();
    for (k, n) in images.enumerate() {
        for o in 0..og {
            gathered[o * t * plane + k * plane..][..plane]
                .copy_from_slice(&dy[n * out_image + (grp * og + o) * plane..][..plane]);
        }
    }
}

/// [`ConvPath::Batched`] forward: per task of t images and group, P = their stacked
/// patches (t·plane × rows) and Y (og × t·plane) = W_g (og × rows) · Pᵀ in one GEMM, whose
/// columns are then each image's outputs. For small output planes, where a GEMM per image
/// (n = plane) or a vector of positions (plane < lanes) wastes most of the machine.
fn forward_batched<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
) -> Vec<T> {
    let (plane, rows, og, _, _, out_image) = batched_sizes(g);
    collect_image_tasks(
        g.n,
        out_image,
        g.n * work_per_image(g),
        |images, out: &mut [T]| {
            let t = images.len();
            let mut patches = vec![T::ZERO; t * plane * rows];
            let mut y = vec![T::ZERO; og * t * plane];
            for grp in 0..g.groups {
                stack_patches(g, sel, x, images.clone(), grp, &mut patches);
                gemm_at(
                    sel.level,
                    T::ONE,
                    MatRef::new(&w[grp * og * rows..(grp + 1) * og * rows], og, rows),
                    MatRef::new(&patches, t * plane, rows).t(),
                    T::ZERO,
                    MatMut::new(&mut y, og, t * plane),
                );
                for (k, y_n) in out.chunks_exact_mut(out_image).enumerate() {
                    for o in 0..og {
                        y_n[(grp * og + o) * plane..][..plane]
                            .copy_from_slice(&y[o * t * plane + k * plane..][..plane]);
                    }
                }
            }
            for y_n in out.chunks_exact_mut(out_image) {
                if let Some(b) = bias {
                    for (y_o, &b_o) in y_n.chunks_exact_mut(plane).zip(b) {
                        y_o.iter_mut().for_each(|v| *v += b_o);
                    }
                }
                if let Some(a) = activation {
                    a.apply_in_place_at(sel.level, y_n);
                }
            }
        },
    )
}

/// [`ConvPath::Batched`] input gradient: per task and group, D = the gathered dy
/// (og × t·plane), dP (t·plane × rows) = Dᵀ · W_g in one GEMM, then each image's block of
/// dP added back onto its input positions (the adjoint of im2row).
fn backward_input_batched<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    dy: &[T],
    w: &[T],
) -> Vec<T> {
    let (plane, rows, og, cg, in_image, _) = batched_sizes(g);
    let group_in = cg * g.h * g.w;
    collect_image_tasks(
        g.n,
        in_image,
        g.n * work_per_image(g),
        |images, dx: &mut [T]| {
            let t = images.len();
            let mut gathered = vec![T::ZERO; og * t * plane];
            let mut dpatches = vec![T::ZERO; t * plane * rows];
            for grp in 0..g.groups {
                gather_dy(g, dy, images.clone(), grp, &mut gathered);
                gemm_at(
                    sel.level,
                    T::ONE,
                    MatRef::new(&gathered, og, t * plane).t(),
                    MatRef::new(&w[grp * og * rows..(grp + 1) * og * rows], og, rows),
                    T::ZERO,
                    MatMut::new(&mut dpatches, t * plane, rows),
                );
                for (dx_n, dp_n) in dx
                    .chunks_exact_mut(in_image)
                    .zip(dpatches.chunks_exact(plane * rows))
                {
                    row2im(dp_n, g, &mut dx_n[grp * group_in..(grp + 1) * group_in]);
                }
            }
        },
    )
}

/// [`ConvPath::Batched`] weight gradient: per task and group, dW_g += D (og × t·plane) ·
/// P (t·plane × rows) in one GEMM; the tasks' partial gradients are added in task order.
fn backward_weight_batched<T: Float>(
    g: &ConvGeometry,
    sel: &Selection,
    dy: &[T],
    x: &[T],
) -> Vec<T> {
    let (plane, rows, og, _, _, _) = batched_sizes(g);
    let w_len = g.c_out * rows;
    let partials = map_image_tasks(g.n, g.n * work_per_image(g), |images| {
        let t = images.len();
        let mut dw = vec![T::ZERO; w_len];
        let mut patches = vec![T::ZERO; t * plane * rows];
        let mut gathered = vec![T::ZERO; og * t * plane];
        for grp in 0..g.groups {
            stack_patches(g, sel, x, images.clone(), grp, &mut patches);
            gather_dy(g, dy, images.clone(), grp, &mut gathered);
            gemm_at(
                sel.level,
                T::ONE,
                MatRef::new(&gathered, og, t * plane),
                MatRef::new(&patches, t * plane, rows),
                T::ZERO,
                MatMut::new(&mut dw[grp * og * rows..(grp + 1) * og * rows], og, rows),
            );
        }
        dw
    });
    let mut total = vec![T::ZERO; w_len];
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(t, &p)| *t += p);
    }
    total
}
