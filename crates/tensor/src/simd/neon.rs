//! [`Simd`] for aarch64 Advanced SIMD (NEON): 4 lanes, masks as vectors of all-ones
//! lanes. NEON has no masked loads or stores: a partial one goes lane by lane (the
//! kernels use them only at the edges of rows and planes).

use super::{Level, Simd};
use std::arch::aarch64::*;

/// The NEON instruction set (every aarch64 CPU has it).
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    /// # Safety
    /// The CPU must support NEON.
    #[inline(always)]
    pub unsafe fn new() -> Self {
        Neon(())
    }
}

/// The lanes set in `m`, as bools.
#[inline(always)]
fn lanes(m: uint32x4_t) -> [bool; 4] {
    let mut bits = [0u32; 4];
    // SAFETY: NEON is present; 4 values into `bits`.
    unsafe { vst1q_u32(bits.as_mut_ptr(), m) };
    bits.map(|b| b != 0)
}

/// True when every lane of `m` is set.
#[inline(always)]
fn all(m: uint32x4_t) -> bool {
    // SAFETY: NEON is present.
    unsafe { vminvq_u32(m) == u32::MAX }
}

/// 2^k for integral k in −126..=127, lane by lane.
#[inline(always)]
fn pow2(k: float32x4_t) -> float32x4_t {
    // SAFETY: NEON is present.
    unsafe {
        let e = vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127));
        vreinterpretq_f32_s32(vshlq_n_s32::<23>(e))
    }
}

// Every method is `#[inline(always)]` and calls its intrinsics in `unsafe` blocks: a
// value of `Neon` proves the CPU has NEON, and the kernels that use it are compiled with
// the feature (see `dispatch!`).
// SAFETY: constructed only by `new`, whose contract is the CPU's support.
unsafe impl Simd for Neon {
    const LANES: usize = 4;
    const LEVEL: Level = Level::Neon;
    const REGISTERS: usize = 32;
    type V = float32x4_t;
    type I = int32x4_t;
    type M = uint32x4_t;

    #[inline(always)]
    fn zero(self) -> float32x4_t {
        // SAFETY: NEON is present (the type's invariant); likewise below.
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    fn to_array(self, v: float32x4_t) -> [f32; 16] {
        let mut out = [0.0f32; 16];
        // SAFETY: 4 floats into `out`.
        unsafe { vst1q_f32(out.as_mut_ptr(), v) };
        out
    }
    #[inline(always)]
    fn mask_range(self, lo: isize, hi: isize) -> uint32x4_t {
        let (lo, hi) = (lo.clamp(-1, 5) as i32, hi.clamp(-1, 5) as i32);
        unsafe {
            let lane = vld1q_s32([0, 1, 2, 3].as_ptr());
            vandq_u32(
                vcgeq_s32(lane, vdupq_n_s32(lo)),
                vcltq_s32(lane, vdupq_n_s32(hi)),
            )
        }
    }
    #[inline(always)]
    unsafe fn load_masked(self, m: uint32x4_t, p: *const f32) -> float32x4_t {
        unsafe { self.load_masked_or(vdupq_n_f32(0.0), m, p) }
    }
    #[inline(always)]
    unsafe fn load_masked_or(self, src: float32x4_t, m: uint32x4_t, p: *const f32) -> float32x4_t {
        unsafe {
            if all(m) {
                return vld1q_f32(p);
            }
            let mut v = [0.0f32; 4];
            vst1q_f32(v.as_mut_ptr(), src);
            for (l, on) in lanes(m).into_iter().enumerate() {
                if on {
                    v[l] = *p.add(l);
                }
            }
            vld1q_f32(v.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: uint32x4_t, v: float32x4_t) {
        unsafe {
            if all(m) {
                return vst1q_f32(p, v);
            }
            let mut vals = [0.0f32; 4];
            vst1q_f32(vals.as_mut_ptr(), v);
            for (l, on) in lanes(m).into_iter().enumerate() {
                if on {
                    *p.add(l) = vals[l];
                }
            }
        }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn fnmadd(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        unsafe { vfmsq_f32(c, a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // not vmaxq_f32, whose rule for NaN and ±0 differs from x86's
        unsafe { vbslq_f32(vcgtq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vbslq_f32(vcltq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        unsafe { vrndnq_f32(a) }
    }
    #[inline(always)]
    fn scale(self, y: float32x4_t, n: float32x4_t) -> float32x4_t {
        // 2ⁿ in two halves, as on AVX2
        unsafe {
            let half = vrndmq_f32(vmulq_f32(n, vdupq_n_f32(0.5)));
            vmulq_f32(vmulq_f32(y, pow2(half)), pow2(vsubq_f32(n, half)))
        }
    }
    #[inline(always)]
    fn recip(self, d: float32x4_t) -> float32x4_t {
        unsafe { vdivq_f32(vdupq_n_f32(1.0), d) }
    }
    #[inline(always)]
    fn reduce_add(self, v: float32x4_t) -> f32 {
        // (v0 + v1) + (v2 + v3)
        unsafe {
            let p = vpaddq_f32(v, v);
            vgetq_lane_f32::<0>(p) + vgetq_lane_f32::<1>(p)
        }
    }
    #[inline(always)]
    fn gt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        unsafe { vcgtq_f32(a, b) }
    }
    #[inline(always)]
    fn unordered(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        unsafe { vmvnq_u32(vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b))) }
    }
    #[inline(always)]
    fn or(self, a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        unsafe { vorrq_u32(a, b) }
    }
    #[inline(always)]
    fn and_not(self, a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        unsafe { vbicq_u32(a, b) }
    }
    #[inline(always)]
    fn none(self, m: uint32x4_t) -> bool {
        unsafe { vmaxvq_u32(m) == 0 }
    }
    #[inline(always)]
    fn select(self, m: uint32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vbslq_f32(m, a, b) }
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> int32x4_t {
        unsafe { vdupq_n_s32(x) }
    }
    #[inline(always)]
    fn ramp_i(self, start: i32, step: i32) -> int32x4_t {
        let v = [start, start + step, start + 2 * step, start + 3 * step];
        unsafe { vld1q_s32(v.as_ptr()) }
    }
    #[inline(always)]
    fn add_i(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        unsafe { vaddq_s32(a, b) }
    }
    #[inline(always)]
    fn select_i(self, m: uint32x4_t, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        unsafe { vbslq_s32(m, a, b) }
    }
    #[inline(always)]
    fn eq_i(self, a: int32x4_t, b: int32x4_t) -> uint32x4_t {
        unsafe { vceqq_s32(a, b) }
    }
    #[inline(always)]
    unsafe fn load_masked_i(self, m: uint32x4_t, p: *const u32) -> int32x4_t {
        unsafe {
            let mut v = [0i32; 4];
            for (l, on) in lanes(m).into_iter().enumerate() {
                if on {
                    v[l] = *p.add(l) as i32;
                }
            }
            vld1q_s32(v.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_masked_i(self, p: *mut u32, m: uint32x4_t, v: int32x4_t) {
        unsafe {
            let mut vals = [0i32; 4];
            vst1q_s32(vals.as_mut_ptr(), v);
            for (l, on) in lanes(m).into_iter().enumerate() {
                if on {
                    *p.add(l) = vals[l] as u32;
                }
            }
        }
    }
    #[inline(always)]
    fn deinterleave(self, lo: float32x4_t, hi: float32x4_t) -> (float32x4_t, float32x4_t) {
        unsafe { (vuzp1q_f32(lo, hi), vuzp2q_f32(lo, hi)) }
    }
    #[inline(always)]
    fn interleave(self, a: float32x4_t, b: float32x4_t) -> (float32x4_t, float32x4_t) {
        unsafe { (vzip1q_f32(a, b), vzip2q_f32(a, b)) }
    }
}
