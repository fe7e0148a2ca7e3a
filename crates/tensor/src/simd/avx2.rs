//! [`Simd`] for AVX2 with FMA (x86-64-v3): 8 lanes, masks as vectors of all-ones lanes,
//! masked loads by `vmaskmovps` (which touches only its lanes).

use super::{Level, Simd};
use std::arch::x86_64::*;

/// The AVX2 + FMA instruction set (a value exists only where the CPU has both).
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline(always)]
    pub unsafe fn new() -> Self {
        Avx2(())
    }
}

/// 2^k for integral k in −126..=127, lane by lane.
#[inline(always)]
fn pow2(k: __m256) -> __m256 {
    // SAFETY: AVX2 is present (only reached through an `Avx2` value).
    unsafe {
        let e = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
    }
}

// Every method is `#[inline(always)]` and calls its intrinsics in `unsafe` blocks: a
// value of `Avx2` proves the CPU has AVX2 and FMA, and the kernels that use it are
// compiled with those features (see `dispatch!`), where the intrinsics inline.
// SAFETY: constructed only by `new`, whose contract is the CPU's support.
unsafe impl Simd for Avx2 {
    const LANES: usize = 8;
    const LEVEL: Level = Level::Avx2;
    const REGISTERS: usize = 16;
    type V = __m256;
    type I = __m256i;
    type M = __m256;

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: AVX2 and FMA are present (the type's invariant); likewise below.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn to_array(self, v: __m256) -> [f32; 16] {
        let mut out = [0.0f32; 16];
        // SAFETY: 8 floats into `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }
    #[inline(always)]
    fn mask_range(self, lo: isize, hi: isize) -> __m256 {
        let (lo, hi) = (lo.clamp(-1, 9) as i32, hi.clamp(-1, 9) as i32);
        unsafe {
            let lane = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
            // lo ≤ l < hi: (hi > l) and not (lo > l)
            let below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane);
            let below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane);
            _mm256_castsi256_ps(_mm256_andnot_si256(below_lo, below_hi))
        }
    }
    #[inline(always)]
    unsafe fn load_masked(self, m: __m256, p: *const f32) -> __m256 {
        unsafe { _mm256_maskload_ps(p, _mm256_castps_si256(m)) }
    }
    #[inline(always)]
    unsafe fn load_masked_or(self, src: __m256, m: __m256, p: *const f32) -> __m256 {
        unsafe { _mm256_blendv_ps(src, _mm256_maskload_ps(p, _mm256_castps_si256(m)), m) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: __m256, v: __m256) {
        // a full mask stores plainly: vmaskmovps to memory is slow on AMD's cores
        unsafe {
            if _mm256_movemask_ps(m) == 0xff {
                _mm256_storeu_ps(p, v)
            } else {
                _mm256_maskstore_ps(p, _mm256_castps_si256(m), v)
            }
        }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn fnmadd(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fnmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn scale(self, y: __m256, n: __m256) -> __m256 {
        // 2ⁿ in two halves, so that neither overflows the exponent field; each product
        // by a power of two is exact unless it is subnormal
        unsafe {
            let half = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5)));
            _mm256_mul_ps(_mm256_mul_ps(y, pow2(half)), pow2(_mm256_sub_ps(n, half)))
        }
    }
    #[inline(always)]
    fn recip(self, d: __m256) -> __m256 {
        // AVX2's estimate has 12 bits; a division is exact and costs little here
        unsafe { _mm256_div_ps(_mm256_set1_ps(1.0), d) }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m256) -> f32 {
        // ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)), as `reduce_add_8` adds
        unsafe {
            let t = _mm256_hadd_ps(v, v);
            let t = _mm256_hadd_ps(t, t);
            _mm_cvtss_f32(_mm_add_ss(
                _mm256_castps256_ps128(t),
                _mm256_extractf128_ps::<1>(t),
            ))
        }
    }
    #[inline(always)]
    fn reduce_add_8(self, s: [__m256; 8]) -> [f32; 8] {
        // the same pairs as `reduce_add`, eight vectors at a time: 7 horizontal adds, 2
        // lane swaps and one add instead of 32 of each
        unsafe {
            let h01 = _mm256_hadd_ps(s[0], s[1]);
            let h23 = _mm256_hadd_ps(s[2], s[3]);
            let h45 = _mm256_hadd_ps(s[4], s[5]);
            let h67 = _mm256_hadd_ps(s[6], s[7]);
            // [s0..s3 lanes 0-3 sums | s0..s3 lanes 4-7 sums], likewise s4..s7
            let h0123 = _mm256_hadd_ps(h01, h23);
            let h4567 = _mm256_hadd_ps(h45, h67);
            let lo = _mm256_permute2f128_ps::<0x20>(h0123, h4567);
            let hi = _mm256_permute2f128_ps::<0x31>(h0123, h4567);
            let mut out = [0.0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(lo, hi));
            out
        }
    }
    #[inline(always)]
    fn gt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn unordered(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    fn and_not(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_andnot_ps(b, a) }
    }
    #[inline(always)]
    fn none(self, m: __m256) -> bool {
        unsafe { _mm256_movemask_ps(m) == 0 }
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_blendv_ps(b, a, m) }
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m256i {
        unsafe { _mm256_set1_epi32(x) }
    }
    #[inline(always)]
    fn ramp_i(self, start: i32, step: i32) -> __m256i {
        unsafe {
            let l = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
            _mm256_add_epi32(
                _mm256_set1_epi32(start),
                _mm256_mullo_epi32(l, _mm256_set1_epi32(step)),
            )
        }
    }
    #[inline(always)]
    fn add_i(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    fn select_i(self, m: __m256, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_blendv_epi8(b, a, _mm256_castps_si256(m)) }
    }
    #[inline(always)]
    fn eq_i(self, a: __m256i, b: __m256i) -> __m256 {
        unsafe { _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)) }
    }
    #[inline(always)]
    unsafe fn load_masked_i(self, m: __m256, p: *const u32) -> __m256i {
        unsafe { _mm256_maskload_epi32(p.cast(), _mm256_castps_si256(m)) }
    }
    #[inline(always)]
    unsafe fn store_masked_i(self, p: *mut u32, m: __m256, v: __m256i) {
        unsafe {
            if _mm256_movemask_ps(m) == 0xff {
                _mm256_storeu_si256(p.cast(), v)
            } else {
                _mm256_maskstore_epi32(p.cast(), _mm256_castps_si256(m), v)
            }
        }
    }
    #[inline(always)]
    fn deinterleave(self, lo: __m256, hi: __m256) -> (__m256, __m256) {
        unsafe {
            // per 128-bit half: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit
            // pairs reordered to [lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6]
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
            let order = {
                #[inline(always)]
                |v: __m256| {
                    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
                }
            };
            (order(even), order(odd))
        }
    }
    #[inline(always)]
    fn interleave(self, a: __m256, b: __m256) -> (__m256, __m256) {
        unsafe {
            // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7]
            let (l, h) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
            (
                _mm256_permute2f128_ps::<0x20>(l, h),
                _mm256_permute2f128_ps::<0x31>(l, h),
            )
        }
    }
    #[inline(always)]
    unsafe fn lookup(self, table: *const f32, bytes: *const u8) -> __m256 {
        // SAFETY: the caller's contract: 8 bytes, each indexing the 256-entry table.
        unsafe {
            let b = _mm_loadl_epi64(bytes.cast());
            _mm256_i32gather_ps::<4>(table, _mm256_cvtepu8_epi32(b))
        }
    }
}
