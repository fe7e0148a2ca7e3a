//! Direct convolution kernels over [`Simd`] (f32) for convolutions with horizontal stride
//! 1: the forward and input-gradient products of a convolution computed without an
//! im2col matrix (the weight gradient is in [`super::conv_weight`]). Output positions are
//! taken LANES at a time in row-major order; a vector of them may span rows, so each is
//! described by up to [`MAX_SEGMENTS`] runs of lanes that read consecutive input elements
//! ([`PosVec`]). Tap `kk` = (c, p, q) of the kernel adds `taps[kk]` to every input
//! offset. The input is given already zero-padded, so no bounds are checked. The
//! portable twin is the im2col + GEMM lowering of [`crate::conv2d`].

use super::elementwise::sigmoid_v;
use crate::activation::Activation;
use crate::simd::{dispatch, Level, Simd};
use std::mem::MaybeUninit;

/// Runs of consecutive input elements one vector of output positions may need.
pub(crate) const MAX_SEGMENTS: usize = 4;

/// LANES consecutive output positions: for each run of lanes, its lane range and the
/// input offset that lane 0 would read (so lane j of the run reads `base + j`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PosVec {
    pub(crate) segments: usize,
    /// Lanes `lo..hi` of each run.
    pub(crate) runs: [(u8, u8); MAX_SEGMENTS],
    pub(crate) bases: [isize; MAX_SEGMENTS],
    /// Lanes that are output positions: `0..valid` (all but in the last vector).
    pub(crate) valid: usize,
}

/// The position vectors of `lanes`-wide vectors over an (h_out × w_out) output read from a
/// padded input of row length `wp` with vertical stride `stride_h`; `None` if some vector
/// would need more than [`MAX_SEGMENTS`] runs (outputs narrower than LANES / 4 + 1).
pub(crate) fn positions(
    lanes: usize,
    h_out: usize,
    w_out: usize,
    stride_h: usize,
    wp: usize,
) -> Option<Vec<PosVec>> {
    let n = h_out * w_out;
    let mut out = Vec::with_capacity(n.div_ceil(lanes));
    for first in (0..n).step_by(lanes) {
        let end = (first + lanes).min(n);
        let mut v = PosVec {
            segments: 0,
            runs: [(0, 0); MAX_SEGMENTS],
            bases: [0; MAX_SEGMENTS],
            valid: end - first,
        };
        let mut pos = first;
        while pos < end {
            let oh = pos / w_out;
            let run_end = ((oh + 1) * w_out).min(end);
            if v.segments == MAX_SEGMENTS {
                return None;
            }
            v.runs[v.segments] = ((pos - first) as u8, (run_end - first) as u8);
            // lane l reads oh·stride_h·wp + (first + l − oh·w_out)
            v.bases[v.segments] =
                (oh * stride_h * wp) as isize + first as isize - (oh * w_out) as isize;
            v.segments += 1;
            pos = run_end;
        }
        out.push(v);
    }
    Some(out)
}

impl PosVec {
    /// True when the vector is one run over every lane: a plain load reads it.
    pub(crate) fn is_whole(&self, lanes: usize) -> bool {
        self.segments == 1 && self.runs[0] == (0, lanes as u8)
    }
}

/// How a kernel reads one position vector: its runs' masks and bases, made once per tile
/// and held across the tap loop.
#[derive(Clone, Copy)]
pub(crate) struct Runs<S: Simd> {
    masks: [S::M; MAX_SEGMENTS],
    bases: [isize; MAX_SEGMENTS],
    pub(crate) segments: usize,
}

impl<S: Simd> Runs<S> {
    #[inline(always)]
    pub(crate) fn new(s: S, p: &PosVec) -> Self {
        let mut masks = [s.mask_first(0); MAX_SEGMENTS];
        for (m, &(lo, hi)) in masks.iter_mut().zip(&p.runs).take(p.segments) {
            *m = s.mask_range(lo as isize, hi as isize);
        }
        // a second run that is absent reads nothing from the first's base
        let mut bases = p.bases;
        if p.segments == 1 {
            bases[1] = bases[0];
        }
        Runs {
            masks,
            bases,
            segments: p.segments,
        }
    }

    /// The input values one tap reads for these positions, from `x` at `offset`, with
    /// `RUNS` = 1 (one masked load), 2 (two), 3 (one plain load: the vector is whole)
    /// or 0 (the general loop over runs).
    #[inline(always)]
    pub(crate) unsafe fn gather<const RUNS: usize>(
        &self,
        s: S,
        x: *const f32,
        offset: isize,
    ) -> S::V {
        let at = {
            #[inline(always)]
            |r: usize| x.wrapping_offset(offset + self.bases[r])
        };
        // SAFETY: the caller guarantees every valid lane's offset is inside the input; a
        // masked load touches only its lanes.
        unsafe {
            match RUNS {
                3 => s.load(at(0)),
                1 => s.load_masked(self.masks[0], at(0)),
                2 => s.load_masked_or(s.load_masked(self.masks[0], at(0)), self.masks[1], at(1)),
                _ => {
                    let mut out = s.zero();
                    for r in 0..self.segments {
                        out = s.load_masked_or(out, self.masks[r], at(r));
                    }
                    out
                }
            }
        }
    }

    /// `x[offset + position] += value` for these positions.
    #[inline(always)]
    unsafe fn scatter_add(&self, s: S, x: *mut f32, offset: isize, value: S::V) {
        for r in 0..self.segments {
            // SAFETY: as in `gather`; the runs of one vector never overlap.
            unsafe {
                let p = x.wrapping_offset(offset + self.bases[r]);
                let sum = s.add(s.load_masked(self.masks[r], p), value);
                s.store_masked(p, self.masks[r], sum);
            }
        }
    }
}

/// The `RUNS` variant of [`Runs::gather`] that reads all of `pos`.
fn runs_kind(pos: &[PosVec], lanes: usize) -> usize {
    if pos.iter().all(|p| p.is_whole(lanes)) {
        3
    } else {
        match pos.iter().map(|p| p.segments).max() {
            Some(1) => 1,
            Some(2) => 2,
            _ => 0,
        }
    }
}

/// What the forward kernel does to its sums before storing them: `f(acc + bias)`, with
/// f the identity, the logistic function or max(·, 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epilogue<'a> {
    /// One value per output row, added first.
    pub bias: Option<&'a [f32]>,
    /// Applied last: `None`, `Sigmoid` or `Relu`.
    pub activation: Option<Activation>,
}

impl Epilogue<'_> {
    /// Nothing added, nothing applied.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        activation: None,
    };
}

/// The operands of a direct product: input (or output gradient) `x`, taps, positions
/// and weights `w` (m rows of taps.len()), over `m` output rows of `n` positions.
#[derive(Clone, Copy)]
pub(crate) struct Direct<'a> {
    pub taps: &'a [isize],
    pub pos: &'a [PosVec],
    pub m: usize,
    pub n: usize,
}

/// Output channels per block of the forward kernel (see `forward_k`).
const fn forward_block(registers: usize, whole: bool) -> usize {
    match (registers >= 32, whole) {
        (true, _) => 8,
        (false, true) => 5,
        (false, false) => 4,
    }
}

/// Forward: `y[o, n] = f(b[o] + Σ_kk w[o, kk] · x[taps[kk] + pos(n)])`, with w
/// (m × taps.len()) and y (m × n) row-major. Every element of y is written and none is
/// read, so y may start uninitialized.
///
/// # Safety
/// Every offset `taps[kk] + pos` must lie inside `x`; the positions must be those of
/// `level`'s lanes (`positions(level.lanes(), …)`) over n; `w`, `y` and the bias must
/// hold m rows of their lengths.
pub(crate) unsafe fn forward(
    level: Level,
    d: &Direct<'_>,
    x: &[f32],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    epi: Epilogue<'_>,
) {
    debug_assert!(matches!(
        epi.activation,
        None | Some(Activation::Sigmoid) | Some(Activation::Relu)
    ));
    assert!(w.len() >= d.m * d.taps.len() && y.len() >= d.m * d.n);
    assert!(epi.bias.is_none_or(|b| b.len() >= d.m));
    dispatch!(level, forward_k(d: &Direct<'_>, x: &[f32], w: &[f32], y: &mut [MaybeUninit<f32>], epi: Epilogue<'_>))
}

#[inline(always)]
fn forward_k<S: Simd>(
    s: S,
    d: &Direct<'_>,
    x: &[f32],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    epi: Epilogue<'_>,
) {
    // blocks of 8 output channels: each tap then loads two position vectors and 8
    // weights for 16 FMAs; 16 channels × 1 vector needed 18 loads for 16 (LeNet's conv2
    // at batch 1 on AVX-512: 3.5-3.7 µs → 3.2-3.3 µs). With 16 registers, 6 channels
    // where the vectors are whole rows (12 sums, 2 inputs, 1 weight), else 4: vectors
    // that cross rows hold two masks each as well (6 spilled the sums on every tap).
    let whole = runs_kind(d.pos, S::LANES) == 3;
    let block = forward_block(S::REGISTERS, whole);
    // the channels in blocks of equal size (16 → 4 × 4, not 5 + 5 + 5 + 1)
    let block = d.m.div_ceil(d.m.div_ceil(block).max(1)).max(1);
    let mut o = 0;
    while o < d.m {
        let rows = (d.m - o).min(block);
        let (w, y) = (&w[o * d.taps.len()..], &mut y[o * d.n..]);
        let epi = Epilogue {
            bias: epi.bias.map(|b| &b[o..]),
            activation: epi.activation,
        };
        match rows {
            1 => forward_rows::<S, 1>(s, d, x, w, y, epi, whole),
            2 => forward_rows::<S, 2>(s, d, x, w, y, epi, whole),
            3 => forward_rows::<S, 3>(s, d, x, w, y, epi, whole),
            4 => forward_rows::<S, 4>(s, d, x, w, y, epi, whole),
            5 => forward_rows::<S, 5>(s, d, x, w, y, epi, whole),
            6 => forward_rows::<S, 6>(s, d, x, w, y, epi, whole),
            7 => forward_rows::<S, 7>(s, d, x, w, y, epi, whole),
            _ => forward_rows::<S, 8>(s, d, x, w, y, epi, whole),
        }
        o += rows;
    }
}

/// `MR` output channels; four or two position vectors at a time while there are few
/// channels, so that enough sums hide the FMA latency (and fit the registers: `whole`
/// says whether the vectors need masks).
#[inline(always)]
fn forward_rows<S: Simd, const MR: usize>(
    s: S,
    d: &Direct<'_>,
    x: &[f32],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    epi: Epilogue<'_>,
    whole: bool,
) {
    let pos = d.pos;
    let mut v = 0;
    if MR <= 2 && (whole || S::REGISTERS >= 32) {
        while v + 4 <= pos.len() {
            forward_tile::<S, MR, 4>(s, d, x, w, y, v, epi);
            v += 4;
        }
    }
    // 3 × 3 with 16 registers: 9 sums, and 6 loads per 9 FMAs
    if MR == 3 && whole && S::REGISTERS < 32 {
        while v + 3 <= pos.len() {
            forward_tile::<S, MR, 3>(s, d, x, w, y, v, epi);
            v += 3;
        }
    }
    if MR <= forward_block(S::REGISTERS, whole) {
        while v + 2 <= pos.len() {
            forward_tile::<S, MR, 2>(s, d, x, w, y, v, epi);
            v += 2;
        }
    }
    while v < pos.len() {
        forward_tile::<S, MR, 1>(s, d, x, w, y, v, epi);
        v += 1;
    }
}

#[inline(always)]
fn forward_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    d: &Direct<'_>,
    x: &[f32],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    first: usize,
    epi: Epilogue<'_>,
) {
    let pos = &d.pos[first..first + NV];
    let mut acc = [[s.zero(); NV]; MR];
    if let Some(b) = epi.bias {
        for (acc_r, &b_r) in acc.iter_mut().zip(b) {
            *acc_r = [s.splat(b_r); NV];
        }
    }
    let mut runs = [Runs::new(s, &pos[0]); NV];
    for (r, p) in runs.iter_mut().zip(pos) {
        *r = Runs::new(s, p);
    }
    // the sums go in and come out by value: through a reference, LLVM kept them in
    // registers but also stored all of them on every tap (AVX2, LeNet's conv1)
    let acc = match runs_kind(pos, S::LANES) {
        3 => forward_taps::<S, MR, NV, 3>(s, d.taps, &runs, x, w, acc),
        1 => forward_taps::<S, MR, NV, 1>(s, d.taps, &runs, x, w, acc),
        2 => forward_taps::<S, MR, NV, 2>(s, d.taps, &runs, x, w, acc),
        _ => forward_taps::<S, MR, NV, 0>(s, d.taps, &runs, x, w, acc),
    };
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, (&a, p)) in acc_r.iter().zip(pos).enumerate() {
            let a = match epi.activation {
                Some(Activation::Sigmoid) => sigmoid_v(s, a),
                // a second: a NaN comes out NaN, as from the scalar relu
                Some(Activation::Relu) => s.max(s.zero(), a),
                _ => a,
            };
            let out = y
                .as_mut_ptr()
                .cast::<f32>()
                .wrapping_add(r * d.n + (first + q) * S::LANES);
            // SAFETY: row r of y, positions limited by the valid lanes.
            unsafe {
                if p.valid == S::LANES {
                    s.store(out, a)
                } else {
                    s.store_masked(out, s.mask_first(p.valid), a)
                }
            };
        }
    }
}

/// The tap loop of [`forward_tile`] for position vectors read by [`Runs::gather`]'s
/// `RUNS` variant. Fixing the variant per tile keeps the choice out of the tap loop.
#[inline(always)]
fn forward_taps<S: Simd, const MR: usize, const NV: usize, const RUNS: usize>(
    s: S,
    taps: &[isize],
    runs: &[Runs<S>; NV],
    x: &[f32],
    w: &[f32],
    mut acc: [[S::V; NV]; MR],
) -> [[S::V; NV]; MR] {
    let k = taps.len();
    for (kk, &tap) in taps.iter().enumerate() {
        let mut xv = [s.zero(); NV];
        for (xq, r) in xv.iter_mut().zip(runs) {
            // SAFETY: the caller guarantees the offsets are inside x.
            *xq = unsafe { r.gather::<RUNS>(s, x.as_ptr(), tap) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: w holds MR rows of k taps.
            let wv = s.splat(unsafe { *w.get_unchecked(r * k + kk) });
            for (a, &xq) in acc_r.iter_mut().zip(&xv) {
                *a = s.fmadd(wv, xq, *a);
            }
        }
    }
    acc
}

/// Input gradient: `dx[taps[kk] + pos(n)] += Σ_o w[o, kk] · dy[o, n]`, with w (m × K) and
/// dy (m × n) row-major; `dx` is the padded input's gradient and accumulates.
///
/// # Safety
/// As [`forward`], with `dx` in place of `x`.
pub(crate) unsafe fn backward_input(
    level: Level,
    d: &Direct<'_>,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
) {
    assert!(w.len() >= d.m * d.taps.len() && dy.len() >= d.m * d.n);
    dispatch!(level, backward_input_k(d: &Direct<'_>, dy: &[f32], w: &[f32], dx: &mut [f32]))
}

#[inline(always)]
fn backward_input_k<S: Simd>(s: S, d: &Direct<'_>, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let most = if S::REGISTERS >= 32 { 16 } else { 12 };
    let mut kk = 0;
    while kk < d.taps.len() {
        let rows = (d.taps.len() - kk).min(most);
        match rows {
            1 => input_rows::<S, 1>(s, d, kk, dy, w, dx),
            2 => input_rows::<S, 2>(s, d, kk, dy, w, dx),
            3 => input_rows::<S, 3>(s, d, kk, dy, w, dx),
            4 => input_rows::<S, 4>(s, d, kk, dy, w, dx),
            5 => input_rows::<S, 5>(s, d, kk, dy, w, dx),
            6 => input_rows::<S, 6>(s, d, kk, dy, w, dx),
            7 => input_rows::<S, 7>(s, d, kk, dy, w, dx),
            8 => input_rows::<S, 8>(s, d, kk, dy, w, dx),
            9 => input_rows::<S, 9>(s, d, kk, dy, w, dx),
            10 => input_rows::<S, 10>(s, d, kk, dy, w, dx),
            11 => input_rows::<S, 11>(s, d, kk, dy, w, dx),
            12 => input_rows::<S, 12>(s, d, kk, dy, w, dx),
            13 => input_rows::<S, 13>(s, d, kk, dy, w, dx),
            14 => input_rows::<S, 14>(s, d, kk, dy, w, dx),
            15 => input_rows::<S, 15>(s, d, kk, dy, w, dx),
            _ => input_rows::<S, 16>(s, d, kk, dy, w, dx),
        }
        kk += rows;
    }
}

/// `KR` taps starting at `kk0`: for each position vector, Σ_o w[o, kk]·dy[o, ·] in
/// registers, then added onto the input positions the taps read.
#[inline(always)]
fn input_rows<S: Simd, const KR: usize>(
    s: S,
    d: &Direct<'_>,
    kk0: usize,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
) {
    let k = d.taps.len();
    for (v, p) in d.pos.iter().enumerate() {
        let valid = s.mask_first(p.valid);
        let mut acc = [s.zero(); KR];
        for o in 0..d.m {
            // SAFETY: row o of dy, lanes limited to valid positions.
            let dv = unsafe { s.load_masked(valid, dy.as_ptr().add(o * d.n + v * S::LANES)) };
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: w holds m rows of k taps.
                let wv = s.splat(unsafe { *w.get_unchecked(o * k + kk0 + r) });
                *a = s.fmadd(wv, dv, *a);
            }
        }
        let runs = Runs::new(s, p);
        for (r, &a) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees the offsets are inside dx.
            unsafe { runs.scatter_add(s, dx.as_mut_ptr(), d.taps[kk0 + r], a) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_split_vectors_at_row_ends() {
        // 3 rows of 8 outputs, input rows of 12, 16 lanes: vector 0 covers rows 0 and 1
        let p = positions(16, 3, 8, 1, 12).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].segments, 2);
        assert_eq!((p[0].runs[0], p[0].bases[0]), ((0, 8), 0));
        // lane 8 is (row 1, column 0) = input offset 12, so lane 0 would read 12 − 8 = 4
        assert_eq!((p[0].runs[1], p[0].bases[1]), ((8, 16), 4));
        assert_eq!(p[1].valid, 8);
        // 8 lanes: one whole run per row
        let p8 = positions(8, 3, 8, 1, 12).unwrap();
        assert!(p8.iter().all(|v| v.is_whole(8)));
        assert_eq!(p8[2].bases[0], 24);
        assert!(
            positions(16, 6, 3, 1, 3).is_none(),
            "3-wide outputs need 6 runs per vector of 16"
        );
        assert!(
            positions(4, 6, 1, 1, 3).is_some(),
            "4 lanes never need more than 4"
        );
    }
}
