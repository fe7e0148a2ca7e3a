//! Direct convolution kernels (AVX-512, f32) for convolutions with horizontal stride 1:
//! the three products of a convolution computed without an im2col matrix. Output
//! positions are taken 16 at a time in row-major order; a vector of them may span rows,
//! so each is described by up to [`MAX_SEGMENTS`] runs of lanes that read consecutive
//! input elements ([`PosVec`]). Tap `kk` = (c, p, q) of the kernel adds `taps[kk]` to
//! every input offset. The input is given already zero-padded, so no bounds are checked.

use super::avx512::{lanes, sigmoid16};
use crate::activation::Activation;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Lanes per vector.
const L: usize = 16;
/// Runs of consecutive input elements one vector of 16 output positions may need.
pub const MAX_SEGMENTS: usize = 4;

/// Sixteen consecutive output positions: for each run of lanes, its mask and the input
/// offset that lane 0 would read (so lane j of the run reads `base + j`).
#[derive(Clone, Copy, Debug)]
pub struct PosVec {
    segments: usize,
    masks: [__mmask16; MAX_SEGMENTS],
    bases: [isize; MAX_SEGMENTS],
    /// Lanes that are output positions (all but in the last vector).
    valid: __mmask16,
}

/// The position vectors of an (h_out × w_out) output read from a padded input of row
/// length `wp` with vertical stride `stride_h`; `None` if some vector would need more
/// than [`MAX_SEGMENTS`] runs (outputs narrower than 5 columns).
pub fn positions(h_out: usize, w_out: usize, stride_h: usize, wp: usize) -> Option<Vec<PosVec>> {
    let n = h_out * w_out;
    let mut out = Vec::with_capacity(n.div_ceil(L));
    for first in (0..n).step_by(L) {
        let end = (first + L).min(n);
        let mut v = PosVec {
            segments: 0,
            masks: [0; MAX_SEGMENTS],
            bases: [0; MAX_SEGMENTS],
            valid: lanes(end - first),
        };
        let mut pos = first;
        while pos < end {
            let oh = pos / w_out;
            let run_end = ((oh + 1) * w_out).min(end);
            if v.segments == MAX_SEGMENTS {
                return None;
            }
            let (l0, l1) = (pos - first, run_end - first);
            v.masks[v.segments] = (lanes(l1) & !lanes(l0)) as __mmask16;
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

/// How a kernel reads one position vector: as at most two runs, unrolled and held in
/// registers across the tap loop (the common case: outputs at least 8 wide), or through
/// the general loop over runs.
#[derive(Clone, Copy)]
struct Runs {
    masks: [__mmask16; 2],
    bases: [isize; 2],
}

impl PosVec {
    /// The vector as two runs (the second possibly empty), if it has no more.
    fn two_runs(&self) -> Option<Runs> {
        (self.segments <= 2).then(|| Runs {
            masks: [
                self.masks[0],
                if self.segments == 2 { self.masks[1] } else { 0 },
            ],
            bases: [
                self.bases[0],
                if self.segments == 2 {
                    self.bases[1]
                } else {
                    self.bases[0]
                },
            ],
        })
    }
}

/// The 16 input values one tap reads for the positions of `v`, from `x` at `offset`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gather(x: *const f32, offset: isize, v: &PosVec) -> __m512 {
    let mut out = _mm512_setzero_ps();
    for s in 0..v.segments {
        // SAFETY: the caller guarantees every valid lane's offset is inside the input.
        out = unsafe {
            _mm512_mask_loadu_ps(out, v.masks[s], x.wrapping_offset(offset + v.bases[s]))
        };
    }
    out
}

/// [`gather`] for a vector of at most two runs: two masked loads, no loop.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gather2(x: *const f32, offset: isize, r: &Runs) -> __m512 {
    // SAFETY: as in `gather`; a load with an empty mask touches no memory.
    unsafe {
        let lo = _mm512_maskz_loadu_ps(r.masks[0], x.wrapping_offset(offset + r.bases[0]));
        _mm512_mask_loadu_ps(lo, r.masks[1], x.wrapping_offset(offset + r.bases[1]))
    }
}

/// `x[offset + position] += value` for the positions of `v`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scatter_add(x: *mut f32, offset: isize, v: &PosVec, value: __m512) {
    for s in 0..v.segments {
        // SAFETY: as in `gather`; the runs of one vector never overlap.
        unsafe {
            let p = x.wrapping_offset(offset + v.bases[s]);
            let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(v.masks[s], p), value);
            _mm512_mask_storeu_ps(p, v.masks[s], sum);
        }
    }
}

/// What the forward kernel does to its sums before storing them: `f(acc + bias)`, with
/// f the identity, the logistic function or max(·, 0).
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// One value per output row, added first.
    pub bias: Option<&'a [f32]>,
    /// Applied last.
    pub activation: Option<Activation>,
}

impl Epilogue<'_> {
    /// Nothing added, nothing applied.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        activation: None,
    };
}

/// Forward: `y[o, n] = f(b[o] + Σ_kk w[o, kk] · x[taps[kk] + pos(n)])`, with w
/// (m × taps.len()) and y (m × n) row-major. Every element of y is written and none is
/// read, so y may start uninitialized. The epilogue's activation must be `None`,
/// `Sigmoid` or `Relu`.
///
/// # Safety
/// AVX-512F; every offset `taps[kk] + pos` must lie inside `x`, and `w`, `y` (and the
/// bias) must hold m rows of their lengths.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn forward(
    x: &[f32],
    taps: &[isize],
    pos: &[PosVec],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    m: usize,
    n: usize,
    epi: Epilogue<'_>,
) {
    debug_assert!(matches!(
        epi.activation,
        None | Some(Activation::Sigmoid) | Some(Activation::Relu)
    ));
    // blocks of 8 output channels: each tap then loads two position vectors (4 masked
    // loads) and 8 weights for 16 FMAs; 16 channels × 1 vector needed 18 loads for 16
    // (LeNet's conv2 at batch 1: 3.5-3.7 µs → 3.2-3.3 µs)
    let mut o = 0;
    while o < m {
        let rows = (m - o).min(8);
        let (w, y) = (&w[o * taps.len()..], &mut y[o * n..]);
        let epi = Epilogue {
            bias: epi.bias.map(|b| &b[o..]),
            activation: epi.activation,
        };
        // SAFETY: forwarded; `rows` matches the const parameter.
        unsafe {
            match rows {
                1 => forward_rows::<1>(x, taps, pos, w, y, n, epi),
                2 => forward_rows::<2>(x, taps, pos, w, y, n, epi),
                3 => forward_rows::<3>(x, taps, pos, w, y, n, epi),
                4 => forward_rows::<4>(x, taps, pos, w, y, n, epi),
                5 => forward_rows::<5>(x, taps, pos, w, y, n, epi),
                6 => forward_rows::<6>(x, taps, pos, w, y, n, epi),
                7 => forward_rows::<7>(x, taps, pos, w, y, n, epi),
                _ => forward_rows::<8>(x, taps, pos, w, y, n, epi),
            }
        }
        o += rows;
    }
}

/// `MR` output channels; four or two position vectors at a time while there are few
/// channels, so at least 8 accumulators hide the FMA latency.
#[target_feature(enable = "avx512f")]
unsafe fn forward_rows<const MR: usize>(
    x: &[f32],
    taps: &[isize],
    pos: &[PosVec],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    n: usize,
    epi: Epilogue<'_>,
) {
    let mut v = 0;
    if MR <= 2 {
        while v + 4 <= pos.len() {
            // SAFETY: forwarded.
            unsafe { forward_tile::<MR, 4>(x, taps, &pos[v..v + 4], w, y, n, v, epi) };
            v += 4;
        }
    }
    if MR <= 8 {
        while v + 2 <= pos.len() {
            // SAFETY: forwarded.
            unsafe { forward_tile::<MR, 2>(x, taps, &pos[v..v + 2], w, y, n, v, epi) };
            v += 2;
        }
    }
    while v < pos.len() {
        // SAFETY: forwarded.
        unsafe { forward_tile::<MR, 1>(x, taps, &pos[v..v + 1], w, y, n, v, epi) };
        v += 1;
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tile<const MR: usize, const NV: usize>(
    x: &[f32],
    taps: &[isize],
    pos: &[PosVec],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    n: usize,
    first: usize,
    epi: Epilogue<'_>,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if let Some(b) = epi.bias {
        for (acc_r, &b_r) in acc.iter_mut().zip(b) {
            *acc_r = [_mm512_set1_ps(b_r); NV];
        }
    }
    // SAFETY: forwarded.
    unsafe {
        match pos.iter().map(|p| p.segments).max() {
            Some(1) => forward_taps::<MR, NV, 1>(x, taps, pos, w, &mut acc),
            Some(2) => forward_taps::<MR, NV, 2>(x, taps, pos, w, &mut acc),
            _ => forward_taps::<MR, NV, 0>(x, taps, pos, w, &mut acc),
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, (&a, p)) in acc_r.iter().zip(pos).enumerate() {
            let a = match epi.activation {
                Some(Activation::Sigmoid) => sigmoid16(a),
                // a second: a NaN comes out NaN, as from the scalar relu
                Some(Activation::Relu) => _mm512_max_ps(_mm512_setzero_ps(), a),
                _ => a,
            };
            // SAFETY: row r of y, positions limited by the valid mask.
            unsafe {
                _mm512_mask_storeu_ps(
                    y.as_mut_ptr().cast::<f32>().add(r * n + (first + q) * L),
                    p.valid,
                    a,
                )
            };
        }
    }
}

/// The tap loop of [`forward_tile`] for position vectors of at most `RUNS` runs each:
/// one masked load per vector and tap (RUNS = 1), two (RUNS = 2), or the general loop
/// over runs (RUNS = 0). Fixing the count per tile keeps the choice out of the tap loop.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn forward_taps<const MR: usize, const NV: usize, const RUNS: usize>(
    x: &[f32],
    taps: &[isize],
    pos: &[PosVec],
    w: &[f32],
    acc: &mut [[__m512; NV]; MR],
) {
    let k = taps.len();
    let mut runs = [Runs {
        masks: [0; 2],
        bases: [0; 2],
    }; NV];
    if RUNS != 0 {
        for (r, p) in runs.iter_mut().zip(pos) {
            *r = p.two_runs().expect("at most two runs");
        }
    }
    for (kk, &tap) in taps.iter().enumerate() {
        let mut xv = [_mm512_setzero_ps(); NV];
        for ((xq, p), r) in xv.iter_mut().zip(pos).zip(&runs) {
            // SAFETY: the caller guarantees the offsets are inside x.
            *xq = unsafe {
                match RUNS {
                    1 => _mm512_maskz_loadu_ps(
                        r.masks[0],
                        x.as_ptr().wrapping_offset(tap + r.bases[0]),
                    ),
                    2 => gather2(x.as_ptr(), tap, r),
                    _ => gather(x.as_ptr(), tap, p),
                }
            };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: w holds MR rows of k taps.
            let wv = _mm512_set1_ps(unsafe { *w.get_unchecked(r * k + kk) });
            for (a, &xq) in acc_r.iter_mut().zip(&xv) {
                *a = _mm512_fmadd_ps(wv, xq, *a);
            }
        }
    }
}

/// Input gradient: `dx[taps[kk] + pos(n)] += Σ_o w[o, kk] · dy[o, n]`, with w (m × K) and
/// dy (m × n) row-major; `dx` is the padded input's gradient and accumulates.
///
/// # Safety
/// As [`forward`], with `dx` in place of `x`.
#[target_feature(enable = "avx512f")]
pub unsafe fn backward_input(
    dy: &[f32],
    taps: &[isize],
    pos: &[PosVec],
    w: &[f32],
    dx: &mut [f32],
    m: usize,
    n: usize,
) {
    let mut kk = 0;
    while kk < taps.len() {
        let rows = (taps.len() - kk).min(16);
        // SAFETY: forwarded; `rows` matches the const parameter.
        unsafe {
            match rows {
                1 => input_rows::<1>(dy, taps, kk, pos, w, dx, m, n),
                2 => input_rows::<2>(dy, taps, kk, pos, w, dx, m, n),
                3 => input_rows::<3>(dy, taps, kk, pos, w, dx, m, n),
                4 => input_rows::<4>(dy, taps, kk, pos, w, dx, m, n),
                5 => input_rows::<5>(dy, taps, kk, pos, w, dx, m, n),
                6 => input_rows::<6>(dy, taps, kk, pos, w, dx, m, n),
                7 => input_rows::<7>(dy, taps, kk, pos, w, dx, m, n),
                8 => input_rows::<8>(dy, taps, kk, pos, w, dx, m, n),
                9 => input_rows::<9>(dy, taps, kk, pos, w, dx, m, n),
                10 => input_rows::<10>(dy, taps, kk, pos, w, dx, m, n),
                11 => input_rows::<11>(dy, taps, kk, pos, w, dx, m, n),
                12 => input_rows::<12>(dy, taps, kk, pos, w, dx, m, n),
                13 => input_rows::<13>(dy, taps, kk, pos, w, dx, m, n),
                14 => input_rows::<14>(dy, taps, kk, pos, w, dx, m, n),
                15 => input_rows::<15>(dy, taps, kk, pos, w, dx, m, n),
                _ => input_rows::<16>(dy, taps, kk, pos, w, dx, m, n),
            }
        }
        kk += rows;
    }
}

/// `KR` taps starting at `kk0`: for each position vector, Σ_o w[o, kk]·dy[o, ·] in
/// registers, then added onto the input positions the taps read.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn input_rows<const KR: usize>(
    dy: &[f32],
    taps: &[isize],
    kk0: usize,
    pos: &[PosVec],
    w: &[f32],
    dx: &mut [f32],
    m: usize,
    n: usize,
) {
    let k = taps.len();
    for (v, p) in pos.iter().enumerate() {
        let mut acc = [_mm512_setzero_ps(); KR];
        for o in 0..m {
            // SAFETY: row o of dy, lanes limited to valid positions.
            let d = unsafe { _mm512_maskz_loadu_ps(p.valid, dy.as_ptr().add(o * n + v * L)) };
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: w holds m rows of k taps.
                let wv = _mm512_set1_ps(unsafe { *w.get_unchecked(o * k + kk0 + r) });
                *a = _mm512_fmadd_ps(wv, d, *a);
            }
        }
        for (r, &a) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees the offsets are inside dx.
            unsafe { scatter_add(dx.as_mut_ptr(), taps[kk0 + r], p, a) };
        }
    }
}

/// Weight gradient over several images: `dw[o, kk] += Σ_images Σ_n dy[o, n] ·
/// x[taps[kk] + pos(n)]`. Each tile (up to 6 output channels × 4 taps, or 4 × 6) keeps
/// its sums in registers while it runs over a chunk of images, and in a scratch row of
/// vectors between chunks; the lanes are added into `dw` once at the end. Every sum
/// meets the images and positions in the same order whatever the chunking, so the
/// chunking changes the speed only.
///
/// # Safety
/// As [`forward`], for every (x, dy) pair; `dw` holds m · K values.
#[target_feature(enable = "avx512f")]
pub unsafe fn backward_weight(
    xs: &[&[f32]],
    taps: &[isize],
    pos: &[PosVec],
    dys: &[&[f32]],
    dw: &mut [f32],
    m: usize,
    n: usize,
) {
    let k = taps.len();
    let mut scratch = vec![_mm512_setzero_ps(); m * k];
    // When the scratch fits in L1 beside an image (a narrow layer over a large plane,
    // such as LeNet's first), run every tile over one image at a time so that the
    // image's dy and x stay in L1 across the tiles; otherwise (many taps, small planes)
    // run each tile over all the images, so its sums never leave the registers.
    let chunk = if m * k * L * 4 <= 16 << 10 {
        1
    } else {
        xs.len().max(1)
    };
    // blocks of 4 channels (× 6 taps) for wide layers, up to 6 (× 4 taps) for narrow ones
    let block = if m >= 8 { 4 } else { 6 };
    for (xc, dc) in xs.chunks(chunk).zip(dys.chunks(chunk)) {
        let mut o = 0;
        while o < m {
            let rows = (m - o).min(block);
            let sums = &mut scratch[o * k..(o + rows) * k];
            // SAFETY: forwarded; `rows` matches the const parameter.
            unsafe {
                match rows {
                    1 => weight_rows::<1>(xc, taps, pos, dc, sums, o, n),
                    2 => weight_rows::<2>(xc, taps, pos, dc, sums, o, n),
                    3 => weight_rows::<3>(xc, taps, pos, dc, sums, o, n),
                    4 => weight_rows::<4>(xc, taps, pos, dc, sums, o, n),
                    5 => weight_rows::<5>(xc, taps, pos, dc, sums, o, n),
                    _ => weight_rows::<6>(xc, taps, pos, dc, sums, o, n),
                }
            }
            o += rows;
        }
    }
    for (d, &s) in dw.iter_mut().zip(&scratch) {
        *d += _mm512_reduce_add_ps(s);
    }
}

/// Output channels `o0 .. o0 + MR` (their sums are `sums`, MR rows of K vectors).
#[target_feature(enable = "avx512f")]
unsafe fn weight_rows<const MR: usize>(
    xs: &[&[f32]],
    taps: &[isize],
    pos: &[PosVec],
    dys: &[&[f32]],
    sums: &mut [__m512],
    o0: usize,
    n: usize,
) {
    // at most 24 sums, so that they and the gathered inputs fit the 32 registers
    let widest = if MR <= 4 { 6 } else { 4 };
    let mut kk = 0;
    while kk < taps.len() {
        let cols = (taps.len() - kk).min(widest);
        // SAFETY: forwarded; `cols` matches the const parameter.
        unsafe {
            match cols {
                1 => weight_tile::<MR, 1>(xs, taps, kk, pos, dys, sums, o0, n),
                2 => weight_tile::<MR, 2>(xs, taps, kk, pos, dys, sums, o0, n),
                3 => weight_tile::<MR, 3>(xs, taps, kk, pos, dys, sums, o0, n),
                4 => weight_tile::<MR, 4>(xs, taps, kk, pos, dys, sums, o0, n),
                5 => weight_tile::<MR, 5>(xs, taps, kk, pos, dys, sums, o0, n),
                _ => weight_tile::<MR, 6>(xs, taps, kk, pos, dys, sums, o0, n),
            }
        }
        kk += cols;
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn weight_tile<const MR: usize, const KR: usize>(
    xs: &[&[f32]],
    taps: &[isize],
    kk0: usize,
    pos: &[PosVec],
    dys: &[&[f32]],
    sums: &mut [__m512],
    o0: usize,
    n: usize,
) {
    let k = taps.len();
    let mut sum = [[_mm512_setzero_ps(); KR]; MR];
    for (r, sum_r) in sum.iter_mut().enumerate() {
        sum_r.copy_from_slice(&sums[r * k + kk0..r * k + kk0 + KR]);
    }
    for (x, dy) in xs.iter().zip(dys) {
        for (v, p) in pos.iter().enumerate() {
            let mut xv = [_mm512_setzero_ps(); KR];
            let two = p.two_runs();
            for (c, xc) in xv.iter_mut().enumerate() {
                // SAFETY: the caller guarantees the offsets are inside x.
                *xc = unsafe {
                    match &two {
                        Some(r) => gather2(x.as_ptr(), taps[kk0 + c], r),
                        None => gather(x.as_ptr(), taps[kk0 + c], p),
                    }
                };
            }
            for (r, sum_r) in sum.iter_mut().enumerate() {
                // SAFETY: row o0 + r of dy; invalid lanes read as 0.
                let d = unsafe {
                    _mm512_maskz_loadu_ps(p.valid, dy.as_ptr().add((o0 + r) * n + v * L))
                };
                for (s, &xc) in sum_r.iter_mut().zip(&xv) {
                    *s = _mm512_fmadd_ps(d, xc, *s);
                }
            }
        }
    }
    for (r, sum_r) in sum.iter().enumerate() {
        sums[r * k + kk0..r * k + kk0 + KR].copy_from_slice(sum_r);
    }
}

/// Weight gradient with 16 output channels in the lanes of a vector, for layers whose
/// output channels come in multiples of 16 (LeNet's conv2): `dw[o, kk] += Σ_images Σ_p
/// x[taps[kk] + offsets[p]] · dy[o, p]`. Each tap's sums for 16 channels are one vector,
/// fed by one broadcast input value and one row of the transposed dy per position: no
/// masked, line-splitting input loads and no lane reductions, which bound
/// [`backward_weight`] on such layers. Every sum runs over images, then positions, in
/// order.
///
/// # Safety
/// AVX-512F; `m` a multiple of 16; every `taps[kk] + offsets[p]` inside each x; each dy
/// holds m rows of `offsets.len()` values; `dw` holds m · K values.
#[target_feature(enable = "avx512f")]
pub unsafe fn backward_weight_lanes(
    xs: &[&[f32]],
    taps: &[isize],
    offsets: &[isize],
    dys: &[&[f32]],
    dw: &mut [f32],
    m: usize,
) {
    debug_assert_eq!(m % L, 0);
    let n = offsets.len();
    // dy (m × n) of every image, transposed to (n × m)
    let mut dyt = vec![0.0f32; dys.len() * n * m];
    // lane o of a gather reads channel o's value at position p
    let rows = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(n as i32),
    );
    for (dy, t) in dys.iter().zip(dyt.chunks_exact_mut((n * m).max(1))) {
        debug_assert!(dy.len() >= m * n);
        for ob in (0..m).step_by(L) {
            for p in 0..n {
                // SAFETY: rows ob..ob + 16 of dy, column p < n.
                unsafe {
                    let v = _mm512_i32gather_ps::<4>(rows, dy.as_ptr().add(ob * n + p));
                    _mm512_storeu_ps(t.as_mut_ptr().add(p * m + ob), v);
                }
            }
        }
    }
    let k = taps.len();
    for ob in (0..m).step_by(L) {
        let mut kk = 0;
        while kk < k {
            let step = match k - kk {
                r if r >= 12 => 12,
                r if r >= 8 => 8,
                r if r >= 4 => 4,
                r if r >= 2 => 2,
                _ => 1,
            };
            let args = LanesTile {
                xs,
                taps: &taps[kk..kk + step],
                offsets,
                dyt: &dyt,
                m,
                ob,
            };
            let mut add = |sums: &[__m512]| add_lanes(sums, dw, ob, k, kk);
            // SAFETY: forwarded; `step` matches the const parameter.
            unsafe {
                match step {
                    12 => add(&lanes_tile::<12>(&args)),
                    8 => add(&lanes_tile::<8>(&args)),
                    4 => add(&lanes_tile::<4>(&args)),
                    2 => add(&lanes_tile::<2>(&args)),
                    _ => add(&lanes_tile::<1>(&args)),
                }
            }
            kk += step;
        }
    }
}

/// `dw[ob + o, kk + t] += sums[t][o]`: tap t's sums for channels ob.. of a lanes tile.
fn add_lanes(sums: &[__m512], dw: &mut [f32], ob: usize, k: usize, kk: usize) {
    for (t, s) in sums.iter().enumerate() {
        // SAFETY: __m512 is 16 f32 lanes.
        let lanes: [f32; L] = unsafe { std::mem::transmute(*s) };
        for (o, v) in lanes.iter().enumerate() {
            dw[(ob + o) * k + kk + t] += v;
        }
    }
}

struct LanesTile<'a> {
    xs: &'a [&'a [f32]],
    taps: &'a [isize],
    offsets: &'a [isize],
    dyt: &'a [f32],
    m: usize,
    ob: usize,
}

/// `TB` taps × 16 channels: positions four at a time, each tap's four input values
/// broadcast from memory against the four positions' dy rows.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn lanes_tile<const TB: usize>(a: &LanesTile<'_>) -> [__m512; TB] {
    let (n, m) = (a.offsets.len(), a.m);
    // a fixed-size copy, so that the tap loops unroll and the sums stay in registers
    let taps: [isize; TB] = std::array::from_fn(|t| a.taps[t]);
    let mut acc = [_mm512_setzero_ps(); TB];
    for (i, x) in a.xs.iter().enumerate() {
        let dyt = &a.dyt[i * n * m..(i + 1) * n * m];
        let x = x.as_ptr();
        let mut p = 0;
        while p + 4 <= n {
            // SAFETY: rows p..p + 4 of this image's transposed dy, 16 channels from ob.
            let d: [__m512; 4] = std::array::from_fn(|j| unsafe {
                _mm512_loadu_ps(dyt.as_ptr().add((p + j) * m + a.ob))
            });
            let base: [*const f32; 4] =
                std::array::from_fn(|j| x.wrapping_offset(a.offsets[p + j]));
            for t in 0..TB {
                for j in 0..4 {
                    // SAFETY: the caller guarantees tap + offset lies inside x.
                    let v = unsafe { _mm512_set1_ps(*base[j].wrapping_offset(taps[t])) };
                    acc[t] = _mm512_fmadd_ps(v, d[j], acc[t]);
                }
            }
            p += 4;
        }
        while p < n {
            // SAFETY: as above, for one position.
            let d = unsafe { _mm512_loadu_ps(dyt.as_ptr().add(p * m + a.ob)) };
            let b = x.wrapping_offset(a.offsets[p]);
            for t in 0..TB {
                // SAFETY: as above.
                let v = unsafe { _mm512_set1_ps(*b.wrapping_offset(taps[t])) };
                acc[t] = _mm512_fmadd_ps(v, d, acc[t]);
            }
            p += 1;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_split_vectors_at_row_ends() {
        // 3 rows of 8 outputs, input rows of 12: vector 0 covers rows 0 and 1
        let p = positions(3, 8, 1, 12).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].segments, 2);
        assert_eq!((p[0].masks[0], p[0].bases[0]), (0x00ff, 0));
        // lane 8 is (row 1, column 0) = input offset 12, so lane 0 would read 12 − 8 = 4
        assert_eq!((p[0].masks[1], p[0].bases[1]), (0xff00, 4));
        assert_eq!(p[1].valid, 0x00ff);
        assert!(
            positions(6, 3, 1, 3).is_none(),
            "3-wide outputs need 6 runs per vector"
        );
    }
}
