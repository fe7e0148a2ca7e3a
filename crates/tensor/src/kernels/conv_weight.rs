//! The direct convolution's weight gradient over [`Simd`] (f32): `dw[o, kk] += Σ_images
//! Σ_n dy[o, n] · x[taps[kk] + pos(n)]`, in two forms — sums of position vectors reduced
//! at the end, or (when the output channels fill whole vectors) the channels in the lanes.

use super::conv::{Direct, Runs};
use crate::simd::{dispatch, Level, Simd};

/// Weight gradient over several images. Each tile (a few output channels × a few taps)
/// keeps its sums in registers while it runs over a chunk of images, and in a scratch row
/// of vectors between chunks; the lanes are added into `dw` once at the end. Every sum
/// meets the images and positions in the same order whatever the chunking, so the
/// chunking changes the speed only.
///
/// # Safety
/// As [`super::conv::forward`], for every (x, dy) pair; `dw` holds m · K values.
pub(crate) unsafe fn backward_weight(
    level: Level,
    d: &Direct<'_>,
    xs: &[&[f32]],
    dys: &[&[f32]],
    dw: &mut [f32],
) {
    assert!(dw.len() >= d.m * d.taps.len());
    assert!(dys.iter().all(|dy| dy.len() >= d.m * d.n) && xs.len() == dys.len());
    dispatch!(level, backward_weight_k(d: &Direct<'_>, xs: &[&[f32]], dys: &[&[f32]], dw: &mut [f32]))
}

#[inline(always)]
fn backward_weight_k<S: Simd>(s: S, d: &Direct<'_>, xs: &[&[f32]], dys: &[&[f32]], dw: &mut [f32]) {
    let (m, k) = (d.m, d.taps.len());
    let mut scratch = vec![s.zero(); m * k];
    let mut runs = Vec::with_capacity(d.pos.len());
    for p in d.pos {
        runs.push(Runs::new(s, p));
    }
    // When the scratch fits in L1 beside an image (a narrow layer over a large plane,
    // such as LeNet's first), run every tile over one image at a time so that the
    // image's dy and x stay in L1 across the tiles; otherwise (many taps, small planes)
    // run each tile over all the images, so its sums never leave the registers.
    let chunk = if m * k * S::LANES * 4 <= 16 << 10 {
        1
    } else {
        xs.len().max(1)
    };
    // with 32 registers: blocks of 4 channels (× 6 taps) for wide layers, up to 6 (× 4
    // taps) for narrow ones; with 16: 3 × 3
    let block = match (S::REGISTERS >= 32, m >= 8) {
        (true, true) => 4,
        (true, false) => 6,
        (false, _) => 3,
    };
    for (xc, dc) in xs.chunks(chunk).zip(dys.chunks(chunk)) {
        let mut o = 0;
        while o < m {
            let rows = (m - o).min(block);
            let sums = &mut scratch[o * k..(o + rows) * k];
            match rows {
                1 => weight_rows::<S, 1>(s, d, &runs, xc, dc, sums, o),
                2 => weight_rows::<S, 2>(s, d, &runs, xc, dc, sums, o),
                3 => weight_rows::<S, 3>(s, d, &runs, xc, dc, sums, o),
                4 => weight_rows::<S, 4>(s, d, &runs, xc, dc, sums, o),
                5 => weight_rows::<S, 5>(s, d, &runs, xc, dc, sums, o),
                _ => weight_rows::<S, 6>(s, d, &runs, xc, dc, sums, o),
            }
            o += rows;
        }
    }
    for (dst, &sum) in dw.iter_mut().zip(&scratch) {
        *dst += s.reduce_add(sum);
    }
}

/// Output channels `o0 .. o0 + MR` (their sums are `sums`, MR rows of K vectors).
#[inline(always)]
fn weight_rows<S: Simd, const MR: usize>(
    s: S,
    d: &Direct<'_>,
    runs: &[Runs<S>],
    xs: &[&[f32]],
    dys: &[&[f32]],
    sums: &mut [S::V],
    o0: usize,
) {
    // at most 24 sums with 32 registers, 9 with 16, so that they and the gathered
    // inputs fit
    let widest = match (S::REGISTERS >= 32, MR <= 4) {
        (true, true) => 6,
        (true, false) => 4,
        (false, _) => 3,
    };
    let mut kk = 0;
    while kk < d.taps.len() {
        let cols = (d.taps.len() - kk).min(widest);
        match cols {
            1 => weight_tile::<S, MR, 1>(s, d, runs, kk, xs, dys, sums, o0),
            2 => weight_tile::<S, MR, 2>(s, d, runs, kk, xs, dys, sums, o0),
            3 => weight_tile::<S, MR, 3>(s, d, runs, kk, xs, dys, sums, o0),
            4 => weight_tile::<S, MR, 4>(s, d, runs, kk, xs, dys, sums, o0),
            5 => weight_tile::<S, MR, 5>(s, d, runs, kk, xs, dys, sums, o0),
            _ => weight_tile::<S, MR, 6>(s, d, runs, kk, xs, dys, sums, o0),
        }
        kk += cols;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weight_tile<S: Simd, const MR: usize, const KR: usize>(
    s: S,
    d: &Direct<'_>,
    runs: &[Runs<S>],
    kk0: usize,
    xs: &[&[f32]],
    dys: &[&[f32]],
    sums: &mut [S::V],
    o0: usize,
) {
    let k = d.taps.len();
    let mut sum = [[s.zero(); KR]; MR];
    for (r, sum_r) in sum.iter_mut().enumerate() {
        for (c, v) in sum_r.iter_mut().enumerate() {
            *v = sums[r * k + kk0 + c];
        }
    }
    // the sums go in and out of the position loop by value, and vectors that are whole
    // rows (LeNet's conv1 with 8 lanes: every one) take a loop without masks: with AVX2's
    // 16 registers, the masks of the general loop spilled a sum to memory on every step
    let sum = if d.pos.iter().all(|p| p.is_whole(S::LANES)) {
        weight_positions::<S, MR, KR, true>(s, d, runs, kk0, xs, dys, o0, sum)
    } else {
        weight_positions::<S, MR, KR, false>(s, d, runs, kk0, xs, dys, o0, sum)
    };
    for (r, sum_r) in sum.iter().enumerate() {
        for (c, &v) in sum_r.iter().enumerate() {
            sums[r * k + kk0 + c] = v;
        }
    }
}

/// The position loop of [`weight_tile`]; `WHOLE` when every vector is one whole run.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weight_positions<S: Simd, const MR: usize, const KR: usize, const WHOLE: bool>(
    s: S,
    d: &Direct<'_>,
    runs: &[Runs<S>],
    kk0: usize,
    xs: &[&[f32]],
    dys: &[&[f32]],
    o0: usize,
    mut sum: [[S::V; KR]; MR],
) -> [[S::V; KR]; MR] {
    let taps = &d.taps[kk0..kk0 + KR];
    for (x, dy) in xs.iter().zip(dys) {
        for (v, (p, runs)) in d.pos.iter().zip(runs).enumerate() {
            let xv = if WHOLE {
                gather_taps::<S, KR, 3>(s, runs, x, taps)
            } else if runs.segments <= 2 {
                gather_taps::<S, KR, 2>(s, runs, x, taps)
            } else {
                gather_taps::<S, KR, 0>(s, runs, x, taps)
            };
            let full = WHOLE || p.valid == S::LANES;
            for (r, sum_r) in sum.iter_mut().enumerate() {
                let at = dy.as_ptr().wrapping_add((o0 + r) * d.n + v * S::LANES);
                // SAFETY: row o0 + r of dy; invalid lanes read as 0.
                let dv = unsafe {
                    if full {
                        s.load(at)
                    } else {
                        s.load_masked(s.mask_first(p.valid), at)
                    }
                };
                for (acc, &xc) in sum_r.iter_mut().zip(&xv) {
                    *acc = s.fmadd(dv, xc, *acc);
                }
            }
        }
    }
    sum
}

/// The input values of `KR` taps for one position vector, by [`Runs::gather`]'s `RUNS`
/// variant (fixed per vector, so that the choice stays out of the tap loop).
#[inline(always)]
fn gather_taps<S: Simd, const KR: usize, const RUNS: usize>(
    s: S,
    runs: &Runs<S>,
    x: &[f32],
    taps: &[isize],
) -> [S::V; KR] {
    let mut xv = [s.zero(); KR];
    for (xc, &tap) in xv.iter_mut().zip(taps) {
        // SAFETY: the caller guarantees the offsets are inside x.
        *xc = unsafe { runs.gather::<RUNS>(s, x.as_ptr(), tap) };
    }
    xv
}

/// Weight gradient with LANES output channels in the lanes of a vector, for layers whose
/// output channels come in multiples of LANES (LeNet's conv2): `dw[o, kk] += Σ_images
/// Σ_p x[taps[kk] + offsets[p]] · dy[o, p]`. Each tap's sums for LANES channels are one
/// vector, fed by one broadcast input value and one row of the transposed dy per
/// position: no masked, line-splitting input loads and no lane reductions, which bound
/// [`backward_weight`] on such layers. Every sum runs over images, then positions, in
/// order.
///
/// # Safety
/// `m` a multiple of the level's lanes; every `taps[kk] + offsets[p]` inside each x;
/// each dy holds m rows of `offsets.len()` values; `dw` holds m · K values.
pub(crate) unsafe fn backward_weight_lanes(
    level: Level,
    xs: &[&[f32]],
    taps: &[isize],
    offsets: &[isize],
    dys: &[&[f32]],
    dw: &mut [f32],
    m: usize,
) {
    assert!(m.is_multiple_of(level.lanes()) && dw.len() >= m * taps.len());
    assert!(dys.iter().all(|dy| dy.len() >= m * offsets.len()) && xs.len() == dys.len());
    dispatch!(level, lanes_k(xs: &[&[f32]], taps: &[isize], offsets: &[isize], dys: &[&[f32]], dw: &mut [f32], m: usize))
}

#[inline(always)]
fn lanes_k<S: Simd>(
    s: S,
    xs: &[&[f32]],
    taps: &[isize],
    offsets: &[isize],
    dys: &[&[f32]],
    dw: &mut [f32],
    m: usize,
) {
    let n = offsets.len();
    // dy (m × n) of every image, transposed to (n × m)
    let mut dyt = vec![0.0f32; dys.len() * n * m];
    for (dy, t) in dys.iter().zip(dyt.chunks_exact_mut((n * m).max(1))) {
        for (o, row) in dy.chunks_exact(n.max(1)).take(m).enumerate() {
            for (p, &v) in row.iter().enumerate() {
                t[p * m + o] = v;
            }
        }
    }
    let k = taps.len();
    // taps per tile: their sums, four dy vectors and the broadcasts fit the registers
    // (8 with AVX2 spilled a sum on every step)
    let steps: &[usize] = if S::REGISTERS >= 32 {
        &[12, 8, 4, 2, 1]
    } else {
        &[6, 4, 2, 1]
    };
    // With 16 registers and channels in pairs of vectors: 4 taps × 2 vectors of channels,
    // positions two at a time, so that each broadcast input feeds two FMAs (one per
    // vector) instead of one.
    if S::REGISTERS < 32 && m.is_multiple_of(2 * S::LANES) {
        for ob in (0..m).step_by(2 * S::LANES) {
            let mut kk = 0;
            while kk < k {
                let step = if k - kk >= 4 { 4 } else { 1 };
                let args = LanesTile {
                    xs,
                    taps: &taps[kk..kk + step],
                    offsets,
                    dyt: &dyt,
                    m,
                    ob,
                };
                let sums: &[[S::V; 2]] = match step {
                    4 => &lanes_pair_tile::<S, 4>(s, &args),
                    _ => &lanes_pair_tile::<S, 1>(s, &args),
                };
                // dw[ob + b·LANES + o, kk + t] += sums[t][b][o]
                for (t, pair) in sums.iter().enumerate() {
                    for (b, &sum) in pair.iter().enumerate() {
                        let lanes = s.to_array(sum);
                        for (o, v) in lanes.iter().take(S::LANES).enumerate() {
                            dw[(ob + b * S::LANES + o) * k + kk + t] += v;
                        }
                    }
                }
                kk += step;
            }
        }
        return;
    }
    for ob in (0..m).step_by(S::LANES) {
        let mut kk = 0;
        while kk < k {
            let step = *steps.iter().find(|&&st| st <= k - kk).expect("1 fits");
            let args = LanesTile {
                xs,
                taps: &taps[kk..kk + step],
                offsets,
                dyt: &dyt,
                m,
                ob,
            };
            let mut add = {
                #[inline(always)]
                |sums: &[S::V]| {
                    // dw[ob + o, kk + t] += sums[t][o]: tap t's sums for channels ob..
                    for (t, &sum) in sums.iter().enumerate() {
                        let lanes = s.to_array(sum);
                        for (o, v) in lanes.iter().take(S::LANES).enumerate() {
                            dw[(ob + o) * k + kk + t] += v;
                        }
                    }
                }
            };
            match step {
                12 => add(&lanes_tile::<S, 12>(s, &args)),
                8 => add(&lanes_tile::<S, 8>(s, &args)),
                6 => add(&lanes_tile::<S, 6>(s, &args)),
                4 => add(&lanes_tile::<S, 4>(s, &args)),
                2 => add(&lanes_tile::<S, 2>(s, &args)),
                _ => add(&lanes_tile::<S, 1>(s, &args)),
            }
            kk += step;
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

/// `TB` taps × 2·LANES channels (two vectors from `ob`): positions two at a time, each
/// tap's two input values broadcast against the two positions' dy rows of both vectors.
/// Every sum runs over images, then positions, in order, as in [`lanes_tile`].
#[inline(always)]
fn lanes_pair_tile<S: Simd, const TB: usize>(s: S, a: &LanesTile<'_>) -> [[S::V; 2]; TB] {
    let (n, m, l) = (a.offsets.len(), a.m, S::LANES);
    let mut taps = [0isize; TB];
    taps.copy_from_slice(&a.taps[..TB]);
    let mut acc = [[s.zero(); 2]; TB];
    for (i, x) in a.xs.iter().enumerate() {
        let dyt = &a.dyt[i * n * m..(i + 1) * n * m];
        let x = x.as_ptr();
        let mut p = 0;
        while p < n {
            let np = if p + 2 <= n { 2 } else { 1 };
            let mut d = [[s.zero(); 2]; 2];
            for (j, dj) in d.iter_mut().enumerate().take(np) {
                for (b, db) in dj.iter_mut().enumerate() {
                    // SAFETY: row p + j of this image's transposed dy, LANES channels from
                    // ob + b·LANES (ob + 2·LANES ≤ m).
                    *db = unsafe { s.load(dyt.as_ptr().add((p + j) * m + a.ob + b * l)) };
                }
            }
            for (t, acc_t) in acc.iter_mut().enumerate() {
                for (j, dj) in d.iter().enumerate().take(np) {
                    let at = x.wrapping_offset(a.offsets[p + j] + taps[t]);
                    // SAFETY: the caller guarantees tap + offset lies inside x.
                    let v = s.splat(unsafe { *at });
                    for (acc_tb, &db) in acc_t.iter_mut().zip(dj) {
                        *acc_tb = s.fmadd(v, db, *acc_tb);
                    }
                }
            }
            p += np;
        }
    }
    acc
}

/// `TB` taps × LANES channels: positions four at a time, each tap's four input values
/// broadcast from memory against the four positions' dy rows.
#[inline(always)]
fn lanes_tile<S: Simd, const TB: usize>(s: S, a: &LanesTile<'_>) -> [S::V; TB] {
    let (n, m) = (a.offsets.len(), a.m);
    // a fixed-size copy, so that the tap loops unroll and the sums stay in registers
    let taps: [isize; TB] = std::array::from_fn(|t| a.taps[t]);
    let mut acc = [s.zero(); TB];
    for (i, x) in a.xs.iter().enumerate() {
        let dyt = &a.dyt[i * n * m..(i + 1) * n * m];
        let x = x.as_ptr();
        let mut p = 0;
        while p + 4 <= n {
            // SAFETY: rows p..p + 4 of this image's transposed dy, LANES channels from ob.
            let mut d = [s.zero(); 4];
            for (j, dj) in d.iter_mut().enumerate() {
                // SAFETY: as above.
                *dj = unsafe { s.load(dyt.as_ptr().add((p + j) * m + a.ob)) };
            }
            let base: [*const f32; 4] =
                std::array::from_fn(|j| x.wrapping_offset(a.offsets[p + j]));
            for t in 0..TB {
                for j in 0..4 {
                    // SAFETY: the caller guarantees tap + offset lies inside x.
                    let v = s.splat(unsafe { *base[j].wrapping_offset(taps[t]) });
                    acc[t] = s.fmadd(v, d[j], acc[t]);
                }
            }
            p += 4;
        }
        while p < n {
            // SAFETY: as above, for one position.
            let d = unsafe { s.load(dyt.as_ptr().add(p * m + a.ob)) };
            let b = x.wrapping_offset(a.offsets[p]);
            for t in 0..TB {
                // SAFETY: as above.
                let v = s.splat(unsafe { *b.wrapping_offset(taps[t]) });
                acc[t] = s.fmadd(v, d, acc[t]);
            }
            p += 1;
        }
    }
    acc
}
