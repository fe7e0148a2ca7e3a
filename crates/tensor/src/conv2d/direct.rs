//! The direct path (f32, AVX-512, horizontal stride 1): the three products of a
//! convolution by the kernels of [`crate::kernels::avx512_conv`], which read the input
//! through position vectors instead of an im2col matrix. Each function returns `None`
//! when the path does not apply, and the caller lowers to im2col + GEMM instead.

use super::ConvGeometry;
use crate::activation::Activation;
use crate::float::Float;
use crate::kernels::avx512_conv::{self as k, PosVec};
use crate::kernels::{as_f32, as_f32_mut, as_f32_uninit, vec_from_f32};
use crate::parallel::{
    collect_image_tasks, fill_image_tasks, for_each_image_task, map_image_tasks,
};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;

/// What the kernels need to know about one convolution: computed once per shape and kept
/// (per thread), since a network convolves the same shapes on every call.
struct Plan {
    pos: Vec<PosVec>,
    /// The input offset each output position reads at tap 0, one per position.
    offsets: Vec<isize>,
    taps: Vec<isize>,
    /// Padded input height and width.
    hp: usize,
    wp: usize,
}

thread_local! {
    /// Plans by geometry (with the batch size set to 0, which they do not depend on). A
    /// network has a few shapes: a short list compared field by field finds one faster
    /// than hashing the geometry would (which showed in batch-1 profiles).
    static PLANS: RefCell<Vec<(ConvGeometry, Option<Rc<Plan>>)>> = const { RefCell::new(Vec::new()) };
}

impl Plan {
    /// The plan for `g`, or `None` when the direct path does not apply.
    fn get<T: Float>(g: &ConvGeometry) -> Option<Rc<Plan>> {
        if g.stride.w != 1 || !crate::kernels::avx512() || as_f32::<T>(&[]).is_none() {
            return None;
        }
        let key = ConvGeometry { n: 0, ..*g };
        PLANS.with(|plans| {
            let mut plans = plans.borrow_mut();
            if let Some((_, plan)) = plans.iter().find(|(k, _)| *k == key) {
                return plan.clone();
            }
            if plans.len() >= 64 {
                plans.clear();
            }
            let plan = Plan::new(g).map(Rc::new);
            plans.push((key, plan.clone()));
            plan
        })
    }

    fn new(g: &ConvGeometry) -> Option<Plan> {
        let (hp, wp) = (g.h + 2 * g.padding.h, g.w + 2 * g.padding.w);
        let pos = k::positions(g.h_out, g.w_out, g.stride.h, wp)?;
        let mut taps = Vec::with_capacity(g.col_rows());
        for c in 0..g.c_per_group() {
            for p in 0..g.k_h {
                for q in 0..g.k_w {
                    taps.push((c * hp * wp + p * g.dilation.h * wp + q * g.dilation.w) as isize);
                }
            }
        }
        let offsets = (0..g.h_out * g.w_out)
            .map(|p| ((p / g.w_out) * g.stride.h * wp + p % g.w_out) as isize)
            .collect();
        Some(Plan {
            pos,
            offsets,
            taps,
            hp,
            wp,
        })
    }

    fn padded(&self, g: &ConvGeometry) -> bool {
        g.padding.h > 0 || g.padding.w > 0
    }

    /// Copies one group's channels (c, h, w) into the interior of `buf` (c, hp, wp),
    /// whose border stays zero.
    fn pad_into(&self, g: &ConvGeometry, x: &[f32], buf: &mut [f32]) {
        for (x_c, b_c) in x
            .chunks_exact(g.h * g.w)
            .zip(buf.chunks_exact_mut(self.hp * self.wp))
        {
            for (i, row) in x_c.chunks_exact(g.w).enumerate() {
                let start = (i + g.padding.h) * self.wp + g.padding.w;
                b_c[start..start + g.w].copy_from_slice(row);
            }
        }
    }
}

/// Per-image sizes: (input, output, one group's input, one group's padded input).
fn sizes(g: &ConvGeometry, plan: &Plan) -> (usize, usize, usize, usize) {
    let cg = g.c_per_group();
    (
        g.c * g.h * g.w,
        g.c_out * g.h_out * g.w_out,
        cg * g.h * g.w,
        cg * plan.hp * plan.wp,
    )
}

/// y = f(conv(x, W) + b), or `None` if the direct path does not apply.
pub(super) fn forward<T: Float>(
    g: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
) -> Option<Vec<T>> {
    let (plan, x, w, bias) = forward_inputs(g, x, w, bias)?;
    let out_image = g.c_out * g.h_out * g.w_out;
    let fill = forward_fill(g, &plan, x, w, bias, activation);
    // SAFETY: the kernel writes all og·plane outputs of every group of every image.
    let out = unsafe { fill_image_tasks(g.n, out_image, g.n * out_image * plan.taps.len(), fill) };
    vec_from_f32(out)
}

/// [`forward`] into `out` (N·C_out·H_out·W_out values, every one written), or `None`
/// (and `out` untouched) if the direct path does not apply.
pub(super) fn forward_into<T: Float>(
    g: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    activation: Option<Activation>,
    out: &mut [MaybeUninit<T>],
) -> Option<()> {
    let (plan, x, w, bias) = forward_inputs(g, x, w, bias)?;
    let out = as_f32_uninit(out)?;
    let out_image = g.c_out * g.h_out * g.w_out;
    let fill = forward_fill(g, &plan, x, w, bias, activation);
    for_each_image_task(g.n, out, out_image, g.n * out_image * plan.taps.len(), fill);
    Some(())
}

/// The plan and the f32 views of a forward's operands, if the direct path applies.
#[allow(clippy::type_complexity)]
fn forward_inputs<'a, T: Float>(
    g: &ConvGeometry,
    x: &'a [T],
    w: &'a [T],
    bias: Option<&'a [T]>,
) -> Option<(Rc<Plan>, &'a [f32], &'a [f32], Option<&'a [f32]>)> {
    let plan = Plan::get::<T>(g)?;
    let bias = match bias {
        Some(b) => Some(as_f32(b)?),
        None => None,
    };
    Some((plan, as_f32(x)?, as_f32(w)?, bias))
}

/// The task that writes the outputs of a range of images: all of them, every group.
fn forward_fill<'a>(
    g: &'a ConvGeometry,
    plan: &'a Plan,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    activation: Option<Activation>,
) -> impl Fn(std::ops::Range<usize>, &mut [MaybeUninit<f32>]) + Sync + Send + 'a {
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, k) = (g.h_out * g.w_out, g.c_out_per_group(), plan.taps.len());
    move |images: std::ops::Range<usize>, out: &mut [MaybeUninit<f32>]| {
        let mut buf = vec![0.0f32; if plan.padded(g) { padded_group } else { 0 }];
        for (y_n, n) in out.chunks_exact_mut(out_image).zip(images) {
            for grp in 0..g.groups {
                let x_g = &x[n * in_image + grp * in_group..][..in_group];
                let input: &[f32] = if plan.padded(g) {
                    plan.pad_into(g, x_g, &mut buf);
                    &buf
                } else {
                    x_g
                };
                let y_g = &mut y_n[grp * og * plane..(grp + 1) * og * plane];
                let epi = k::Epilogue {
                    bias: bias.map(|b| &b[grp * og..(grp + 1) * og]),
                    activation: activation
                        .filter(|a| matches!(a, Activation::Sigmoid | Activation::Relu)),
                };
                // SAFETY: AVX-512F is present (Plan::get checked); every tap offset plus
                // position lies inside the (padded) group input by the geometry.
                unsafe {
                    k::forward(
                        input,
                        &plan.taps,
                        &plan.pos,
                        &w[grp * og * k..(grp + 1) * og * k],
                        y_g,
                        og,
                        plane,
                        epi,
                    )
                };
            }
            // the activations the kernel's epilogue does not apply itself
            if let Some(a) =
                activation.filter(|a| !matches!(a, Activation::Sigmoid | Activation::Relu))
            {
                // SAFETY: the kernel wrote every element of the image's output.
                let y_n = unsafe { &mut *(y_n as *mut [MaybeUninit<f32>] as *mut [f32]) };
                a.apply_in_place(y_n);
            }
        }
    }
}

/// dx for dy, or `None` if the direct path does not apply. With stride 1 this is a
/// forward convolution of dy, zero-padded by the dilated kernel, with the kernel flipped
/// and its channel axes swapped (no scattered adds); otherwise the adds are scattered.
pub(super) fn backward_input<T: Float>(g: &ConvGeometry, dy: &[T], w: &[T]) -> Option<Vec<T>> {
    // A small unpadded stride-1 convolution lowers better: dcols = Wᵀ·dy in the few-rows
    // GEMM (exact work, no padding), then a col2im that sums each input row in registers.
    let unit = |hw: crate::shape::Hw| hw.h == 1 && hw.w == 1;
    if unit(g.stride) && unit(g.dilation) && g.padding.h == 0 && g.padding.w == 0 && g.w <= 16 {
        return None;
    }
    let plan_rc = Plan::get::<T>(g)?;
    let plan: &Plan = &plan_rc;
    let (dy, w) = (as_f32(dy)?, as_f32(w)?);
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, cg, k) = (
        g.h_out * g.w_out,
        g.c_out_per_group(),
        g.c_per_group(),
        plan.taps.len(),
    );
    let transposed = if g.stride.h == 1 {
        Transposed::new(g, plan, w)
    } else {
        None
    };
    let dx = collect_image_tasks(
        g.n,
        in_image,
        g.n * out_image * k,
        |images, dx: &mut [f32]| {
            let mut buf = vec![0.0f32; if plan.padded(g) { padded_group } else { 0 }];
            let mut dy_padded = vec![0.0f32; transposed.as_ref().map_or(0, |t| og * t.hq * t.wq)];
            for (dx_n, n) in dx.chunks_exact_mut(in_image).zip(images) {
                for grp in 0..g.groups {
                    let dy_g = &dy[n * out_image + grp * og * plane..][..og * plane];
                    let dx_g = &mut dx_n[grp * in_group..(grp + 1) * in_group];
                    let target: &mut [f32] = if plan.padded(g) {
                        buf.fill(0.0);
                        &mut buf
                    } else {
                        dx_g
                    };
                    match &transposed {
                        Some(t) => {
                            // SAFETY: a zeroed slice seen as maybe-uninitialized; the kernel
                            // only stores valid values into it.
                            let target =
                                unsafe { &mut *(target as *mut [f32] as *mut [MaybeUninit<f32>]) };
                            t.pad_into(g, dy_g, &mut dy_padded);
                            // SAFETY: AVX-512F is present; the transposed geometry keeps every
                            // tap offset plus position inside dy_padded.
                            unsafe {
                                let w_t = &t.w[grp * cg * t.taps.len()..][..cg * t.taps.len()];
                                k::forward(
                                    &dy_padded,
                                    &t.taps,
                                    &t.pos,
                                    w_t,
                                    target,
                                    cg,
                                    plan.hp * plan.wp,
                                    k::Epilogue::NONE,
                                )
                            };
                        }
                        // SAFETY: as in `forward`, with the target in place of the input.
                        None => unsafe {
                            k::backward_input(
                                dy_g,
                                &plan.taps,
                                &plan.pos,
                                &w[grp * og * k..(grp + 1) * og * k],
                                target,
                                og,
                                plane,
                            )
                        },
                    }
                    if plan.padded(g) {
                        // keep the interior: gradient that reached the padding is dropped
                        for (dx_c, b_c) in dx_g
                            .chunks_exact_mut(g.h * g.w)
                            .zip(buf.chunks_exact(plan.hp * plan.wp))
                        {
                            for (i, row) in dx_c.chunks_exact_mut(g.w).enumerate() {
                                let start = (i + g.padding.h) * plan.wp + g.padding.w;
                                row.copy_from_slice(&b_c[start..start + g.w]);
                            }
                        }
                    }
                }
            }
        },
    );
    vec_from_f32(dx)
}

/// The input gradient of a stride-1 convolution as a forward convolution: dy padded by
/// the dilated kernel extent on every side, read by the flipped kernel with its channel
/// axes swapped, gives the gradient of the padded input.
struct Transposed {
    pos: Vec<PosVec>,
    taps: Vec<isize>,
    /// Per group: (C/groups) × (C_out/groups · KH · KW), the flipped, transposed kernel.
    w: Vec<f32>,
    /// Padded dy height and width.
    hq: usize,
    wq: usize,
}

impl Transposed {
    fn new(g: &ConvGeometry, plan: &Plan, w: &[f32]) -> Option<Transposed> {
        let (eh, ew) = ((g.k_h - 1) * g.dilation.h, (g.k_w - 1) * g.dilation.w);
        let (hq, wq) = (g.h_out + 2 * eh, g.w_out + 2 * ew);
        let pos = k::positions(plan.hp, plan.wp, 1, wq)?;
        let (og, cg, kk) = (g.c_out_per_group(), g.c_per_group(), g.k_h * g.k_w);
        let mut taps = Vec::with_capacity(og * kk);
        for o in 0..og {
            for p in 0..g.k_h {
                for q in 0..g.k_w {
                    taps.push((o * hq * wq + p * g.dilation.h * wq + q * g.dilation.w) as isize);
                }
            }
        }
        // w_t[grp][c][o, p, q] = w[grp·og + o][c, kh − 1 − p, kw − 1 − q]
        let mut w_t = Vec::with_capacity(w.len());
        for grp in 0..g.groups {
            for c in 0..cg {
                for o in 0..og {
                    for p in 0..g.k_h {
                        for q in 0..g.k_w {
                            let flipped = (g.k_h - 1 - p) * g.k_w + (g.k_w - 1 - q);
                            w_t.push(w[((grp * og + o) * cg + c) * kk + flipped]);
                        }
                    }
                }
            }
        }
        Some(Transposed {
            pos,
            taps,
            w: w_t,
            hq,
            wq,
        })
    }

    /// Copies dy of one group (og, h_out, w_out) into the interior of `buf`.
    fn pad_into(&self, g: &ConvGeometry, dy: &[f32], buf: &mut [f32]) {
        let (eh, ew) = ((g.k_h - 1) * g.dilation.h, (g.k_w - 1) * g.dilation.w);
        for (dy_o, b_o) in dy
            .chunks_exact(g.h_out * g.w_out)
            .zip(buf.chunks_exact_mut(self.hq * self.wq))
        {
            for (i, row) in dy_o.chunks_exact(g.w_out).enumerate() {
                let start = (i + eh) * self.wq + ew;
                b_o[start..start + g.w_out].copy_from_slice(row);
            }
        }
    }
}

/// dW for dy, or `None` if the direct path does not apply. Each task sums its images
/// (in order, inside the kernel's registers); tasks are added in order.
pub(super) fn backward_weight<T: Float>(g: &ConvGeometry, dy: &[T], x: &[T]) -> Option<Vec<T>> {
    let plan_rc = Plan::get::<T>(g)?;
    let plan: &Plan = &plan_rc;
    let (dy, x) = (as_f32(dy)?, as_f32(x)?);
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, k) = (g.h_out * g.w_out, g.c_out_per_group(), plan.taps.len());
    let w_len = g.c_out * k;
    let partials = map_image_tasks(g.n, g.n * out_image * k, |images| {
        let mut dw = vec![0.0f32; w_len];
        let count = images.len();
        let mut buf = vec![
            0.0f32;
            if plan.padded(g) {
                count * padded_group
            } else {
                0
            }
        ];
        for grp in 0..g.groups {
            let group_input = |n: usize| &x[n * in_image + grp * in_group..][..in_group];
            let inputs: Vec<&[f32]> = if plan.padded(g) {
                for (n, b) in images.clone().zip(buf.chunks_exact_mut(padded_group)) {
                    plan.pad_into(g, group_input(n), b);
                }
                buf.chunks_exact(padded_group).collect()
            } else {
                images.clone().map(group_input).collect()
            };
            let dys: Vec<&[f32]> = images
                .clone()
                .map(|n| &dy[n * out_image + grp * og * plane..][..og * plane])
                .collect();
            let dw_g = &mut dw[grp * og * k..(grp + 1) * og * k];
            // SAFETY: AVX-512F is present; every tap offset plus position lies inside each
            // (padded) group input by the geometry.
            unsafe {
                if og % 16 == 0 {
                    k::backward_weight_lanes(&inputs, &plan.taps, &plan.offsets, &dys, dw_g, og)
                } else {
                    k::backward_weight(&inputs, &plan.taps, &plan.pos, &dys, dw_g, og, plane)
                }
            };
        }
        dw
    });
    let mut total = vec![T::ZERO; w_len];
    let total_f = as_f32_mut(&mut total)?;
    for partial in partials {
        total_f.iter_mut().zip(&partial).for_each(|(t, &p)| *t += p);
    }
    Some(total)
}
