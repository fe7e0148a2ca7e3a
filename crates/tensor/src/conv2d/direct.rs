//! The direct paths (f32, a vector level, horizontal stride 1): the three products of a
//! convolution by the kernels of [`crate::kernels::conv`], which read the input through
//! position vectors instead of an im2col matrix. [`super::select`] decides when they run
//! and keeps their [`Plan`]; the functions here are called with f32 slices only.

use super::select::{ConvPath, Selection};
use super::ConvGeometry;
use crate::activation::Activation;
use crate::kernels::conv::{self as k, Direct, PosVec};
use crate::kernels::conv_weight;
use crate::parallel::{
    collect_image_tasks, fill_image_tasks, for_each_image_task, map_image_tasks,
};
use crate::simd::Level;
use std::mem::MaybeUninit;

/// What the kernels need to know about one convolution at one level: computed once per
/// shape and kept with its [`Selection`].
#[derive(Debug)]
pub(crate) struct Plan {
    pos: Vec<PosVec>,
    /// The input offset each output position reads at tap 0, one per position.
    offsets: Vec<isize>,
    taps: Vec<isize>,
    /// Padded input height and width.
    hp: usize,
    wp: usize,
    /// The input gradient as a forward convolution, where its positions fit.
    pub(crate) transposed: Option<TransposedPlan>,
}

impl Plan {
    /// The plan for `g` at `level`, or `None` when some vector of output positions would
    /// need too many runs (outputs much narrower than a vector).
    pub(crate) fn new(g: &ConvGeometry, level: Level) -> Option<Plan> {
        let (hp, wp) = (g.h + 2 * g.padding.h, g.w + 2 * g.padding.w);
        let pos = k::positions(level.lanes(), g.h_out, g.w_out, g.stride.h, wp)?;
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
        let transposed = if g.stride.h == 1 {
            TransposedPlan::new(g, level, hp, wp)
        } else {
            None
        };
        Some(Plan {
            pos,
            offsets,
            taps,
            hp,
            wp,
            transposed,
        })
    }

    fn direct(&self, g: &ConvGeometry) -> Direct<'_> {
        Direct {
            taps: &self.taps,
            pos: &self.pos,
            m: g.c_out_per_group(),
            n: g.h_out * g.w_out,
        }
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

/// y = f(conv(x, W) + b) for all images, in a buffer this thread may have kept.
pub(super) fn forward(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    activation: Option<Activation>,
) -> Vec<f32> {
    let (out_image, work) = (g.c_out * g.h_out * g.w_out, work(g));
    let fill = forward_task(g, sel, x, w, bias, activation);
    // SAFETY: the task writes all og·plane outputs of every group of every image.
    unsafe { fill_image_tasks(g.n, out_image, work, fill) }
}

/// [`forward`] into `out` (N·C_out·H_out·W_out values, every one written).
pub(super) fn forward_into(
    g: &ConvGeometry,
    sel: &Selection,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    activation: Option<Activation>,
    out: &mut [MaybeUninit<f32>],
) {
    let fill = forward_task(g, sel, x, w, bias, activation);
    for_each_image_task(g.n, out, g.c_out * g.h_out * g.w_out, work(g), fill);
}

/// Elements touched by a convolution's product (for deciding whether to split it).
fn work(g: &ConvGeometry) -> usize {
    g.n * g.c_out * g.h_out * g.w_out * g.col_rows()
}

/// The task that writes the outputs of a range of images: all of them, every group.
fn forward_task<'a>(
    g: &'a ConvGeometry,
    sel: &'a Selection,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    activation: Option<Activation>,
) -> impl Fn(std::ops::Range<usize>, &mut [MaybeUninit<f32>]) + Sync + Send + 'a {
    let plan = sel.plan.as_deref().expect("a direct path has a plan");
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, k) = (g.h_out * g.w_out, g.c_out_per_group(), plan.taps.len());
    let level = sel.level;
    move |images: std::ops::Range<usize>, out: &mut [MaybeUninit<f32>]| {
        let direct = plan.direct(g);
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
                // SAFETY: the plan's positions are the level's; every tap offset plus
                // position lies inside the (padded) group input by the geometry.
                unsafe {
                    k::forward(
                        level,
                        &direct,
                        input,
                        &w[grp * og * k..(grp + 1) * og * k],
                        y_g,
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
                a.apply_in_place_at(level, y_n);
            }
        }
    }
}

/// dx for dy by [`ConvPath::Direct`] (scattered adds) or [`ConvPath::DirectTransposed`]
/// (a forward convolution of dy, zero-padded by the dilated kernel, with the kernel
/// flipped and its channel axes swapped).
pub(super) fn backward_input(g: &ConvGeometry, sel: &Selection, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let plan = sel.plan.as_deref().expect("a direct path has a plan");
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, cg, k) = (
        g.h_out * g.w_out,
        g.c_out_per_group(),
        g.c_per_group(),
        plan.taps.len(),
    );
    let transposed = match sel.input {
        ConvPath::DirectTransposed => plan.transposed.as_ref(),
        _ => None,
    };
    let w_t = transposed.map(|t| t.flip(g, w));
    let direct = plan.direct(g);
    let level = sel.level;
    collect_image_tasks(
        g.n,
        in_image,
        g.n * out_image * k,
        |images, dx: &mut [f32]| {
            let mut buf = vec![0.0f32; if plan.padded(g) { padded_group } else { 0 }];
            let mut dy_padded = vec![0.0f32; transposed.map_or(0, |t| og * t.hq * t.wq)];
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
                    match (transposed, &w_t) {
                        (Some(t), Some(w_t)) => {
                            // SAFETY: a zeroed slice seen as maybe-uninitialized; the kernel
                            // only stores valid values into it.
                            let target =
                                unsafe { &mut *(target as *mut [f32] as *mut [MaybeUninit<f32>]) };
                            t.pad_into(g, dy_g, &mut dy_padded);
                            let kt = t.taps.len();
                            let d = Direct {
                                taps: &t.taps,
                                pos: &t.pos,
                                m: cg,
                                n: plan.hp * plan.wp,
                            };
                            // SAFETY: the transposed plan keeps every tap offset plus
                            // position inside dy_padded.
                            unsafe {
                                k::forward(
                                    level,
                                    &d,
                                    &dy_padded,
                                    &w_t[grp * cg * kt..][..cg * kt],
                                    target,
                                    k::Epilogue::NONE,
                                )
                            };
                        }
                        // SAFETY: as in `forward_into`, with the target in place of the
                        // input.
                        _ => unsafe {
                            k::backward_input(
                                level,
                                &direct,
                                dy_g,
                                &w[grp * og * k..(grp + 1) * og * k],
                                target,
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
    )
}

/// The input gradient of a stride-1 convolution as a forward convolution: dy padded by
/// the dilated kernel extent on every side, read by the flipped kernel with its channel
/// axes swapped, gives the gradient of the padded input.
#[derive(Debug)]
pub(crate) struct TransposedPlan {
    pos: Vec<PosVec>,
    taps: Vec<isize>,
    /// Padded dy height and width.
    hq: usize,
    wq: usize,
}

impl TransposedPlan {
    fn new(g: &ConvGeometry, level: Level, hp: usize, wp: usize) -> Option<TransposedPlan> {
        let (eh, ew) = ((g.k_h - 1) * g.dilation.h, (g.k_w - 1) * g.dilation.w);
        let (hq, wq) = (g.h_out + 2 * eh, g.w_out + 2 * ew);
        let pos = k::positions(level.lanes(), hp, wp, 1, wq)?;
        let (og, kk) = (g.c_out_per_group(), g.k_h * g.k_w);
        let mut taps = Vec::with_capacity(og * kk);
        for o in 0..og {
            for p in 0..g.k_h {
                for q in 0..g.k_w {
                    taps.push((o * hq * wq + p * g.dilation.h * wq + q * g.dilation.w) as isize);
                }
            }
        }
        Some(TransposedPlan { pos, taps, hq, wq })
    }

    /// Per group: (C/groups) × (C_out/groups · KH · KW), the flipped, transposed kernel:
    /// `w_t[grp][c][o, p, q] = w[grp·og + o][c, kh − 1 − p, kw − 1 − q]`.
    fn flip(&self, g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
        let (og, cg, kk) = (g.c_out_per_group(), g.c_per_group(), g.k_h * g.k_w);
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
        w_t
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

/// dW for dy by [`ConvPath::Direct`] or [`ConvPath::DirectLanes`]. Each task sums its
/// images (in order, inside the kernel's registers); tasks are added in order.
pub(super) fn backward_weight(
    g: &ConvGeometry,
    sel: &Selection,
    dy: &[f32],
    x: &[f32],
) -> Vec<f32> {
    let plan = sel.plan.as_deref().expect("a direct path has a plan");
    let (in_image, out_image, in_group, padded_group) = sizes(g, plan);
    let (plane, og, k) = (g.h_out * g.w_out, g.c_out_per_group(), plan.taps.len());
    let w_len = g.c_out * k;
    let (direct, level) = (plan.direct(g), sel.level);
    let lanes = sel.weight == ConvPath::DirectLanes;
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
            // SAFETY: the plan's positions are the level's; every tap offset plus
            // position lies inside each (padded) group input by the geometry; the lanes
            // path is chosen only when og is a multiple of the level's lanes.
            unsafe {
                if lanes {
                    conv_weight::backward_weight_lanes(
                        level,
                        &inputs,
                        &plan.taps,
                        &plan.offsets,
                        &dys,
                        dw_g,
                        og,
                    )
                } else {
                    conv_weight::backward_weight(level, &direct, &inputs, &dys, dw_g)
                }
            };
        }
        dw
    });
    let mut total = vec![0.0f32; w_len];
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(t, &p)| *t += p);
    }
    total
}
