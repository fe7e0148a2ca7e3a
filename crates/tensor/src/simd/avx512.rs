//! [`Simd`] for AVX-512F: 16 lanes, masks in mask registers, masked loads and stores that
//! touch only their lanes.

use super::{Level, Simd};
use std::arch::x86_64::*;

/// The AVX-512F instruction set (a value exists only where the CPU has it).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline(always)]
    pub unsafe fn new() -> Self {
        Avx512(())
    }
}

// Every method is `#[inline(always)]` and calls its intrinsic in an `unsafe` block: a
// value of `Avx512` proves the CPU has AVX-512F, and the kernels that use it are
// compiled with the feature enabled (see `dispatch!`), where the intrinsics inline.
// SAFETY: constructed only by `new`, whose contract is the CPU's support.
unsafe impl Simd for Avx512 {
    const LANES: usize = 16;
    const LEVEL: Level = Level::Avx512;
    const REGISTERS: usize = 32;
    const SHIFT_PAIR: bool = true;
    type V = __m512;
    type I = __m512i;
    type M = __mmask16;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: AVX-512F is present (the type's invariant); likewise below.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn to_array(self, v: __m512) -> [f32; 16] {
        // SAFETY: 16 f32 lanes.
        unsafe { std::mem::transmute(v) }
    }
    #[inline(always)]
    fn mask_range(self, lo: isize, hi: isize) -> __mmask16 {
        let (lo, hi) = (lo.clamp(0, 16) as u32, hi.clamp(0, 16) as u32);
        if hi <= lo {
            0
        } else {
            (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
        }
    }
    #[inline(always)]
    fn mask_first(self, n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }
    #[inline(always)]
    unsafe fn load_masked(self, m: __mmask16, p: *const f32) -> __m512 {
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn load_masked_or(self, src: __m512, m: __mmask16, p: *const f32) -> __m512 {
        unsafe { _mm512_mask_loadu_ps(src, m, p) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: __mmask16, v: __m512) {
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn fnmadd(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fnmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn scale(self, y: __m512, n: __m512) -> __m512 {
        unsafe { _mm512_scalef_ps(y, n) }
    }
    #[inline(always)]
    fn recip(self, d: __m512) -> __m512 {
        // 1 / d without a division (vdivps issues once per 16 cycles and bounded the
        // convolution epilogues): the 14-bit estimate and one Newton step, r ← r +
        // r·(1 − d·r), which squares its error to below 2⁻²⁴ relative
        unsafe {
            let r = _mm512_rcp14_ps(d);
            _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0)), r)
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m512) -> f32 {
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn reduce_add_8(self, s: [__m512; 8]) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        // SAFETY: 8 floats into `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), reduce_add_8(s)) };
        out
    }
    #[inline(always)]
    fn gt(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn unordered(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn and_not(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a & !b
    }
    #[inline(always)]
    fn none(self, m: __mmask16) -> bool {
        m == 0
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mask_mov_ps(b, m, a) }
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m512i {
        unsafe { _mm512_set1_epi32(x) }
    }
    #[inline(always)]
    fn ramp_i(self, start: i32, step: i32) -> __m512i {
        unsafe {
            let l = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            _mm512_add_epi32(
                _mm512_set1_epi32(start),
                _mm512_mullo_epi32(l, _mm512_set1_epi32(step)),
            )
        }
    }
    #[inline(always)]
    fn add_i(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    fn select_i(self, m: __mmask16, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_mask_mov_epi32(b, m, a) }
    }
    #[inline(always)]
    fn eq_i(self, a: __m512i, b: __m512i) -> __mmask16 {
        unsafe { _mm512_cmpeq_epi32_mask(a, b) }
    }
    #[inline(always)]
    unsafe fn load_masked_i(self, m: __mmask16, p: *const u32) -> __m512i {
        unsafe { _mm512_maskz_loadu_epi32(m, p.cast()) }
    }
    #[inline(always)]
    unsafe fn store_masked_i(self, p: *mut u32, m: __mmask16, v: __m512i) {
        unsafe { _mm512_mask_storeu_epi32(p.cast(), m, v) }
    }
    #[inline(always)]
    fn deinterleave(self, lo: __m512, hi: __m512) -> (__m512, __m512) {
        unsafe {
            let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
            (
                _mm512_permutex2var_ps(lo, even, hi),
                _mm512_permutex2var_ps(lo, odd, hi),
            )
        }
    }
    #[inline(always)]
    fn interleave(self, a: __m512, b: __m512) -> (__m512, __m512) {
        unsafe {
            let lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
            let hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
            (
                _mm512_permutex2var_ps(a, lo, b),
                _mm512_permutex2var_ps(a, hi, b),
            )
        }
    }
    #[inline(always)]
    fn shift_pair(self, prev: __m512, shift: __m512i, next: __m512) -> __m512 {
        unsafe { _mm512_permutex2var_ps(prev, shift, next) }
    }
    #[inline(always)]
    unsafe fn load_aligned(self, p: *const f32) -> __m512 {
        unsafe { _mm512_load_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_aligned_masked(self, m: __mmask16, p: *const f32) -> __m512 {
        unsafe { _mm512_maskz_load_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn lookup(self, table: *const f32, bytes: *const u8) -> __m512 {
        // SAFETY: the caller's contract: 16 bytes, each indexing the 256-entry table.
        unsafe {
            let b = _mm_loadu_si128(bytes.cast());
            _mm512_i32gather_ps::<4>(_mm512_cvtepu8_epi32(b), table.cast())
        }
    }
}

/// `[_mm512_reduce_add_ps(s[q]) for q in 0..8]`, bit for bit, with the eight reductions
/// done side by side: each level adds the same pairs of lanes as the single reduction
/// (lane l with l + 8, then l + 4, l + 2, l + 1), so the sums are the same, in 21
/// shuffles and adds instead of 80 (a dense layer's outputs, eight of a tile at a time).
#[inline(always)]
fn reduce_add_8(s: [__m512; 8]) -> __m256 {
    // SAFETY: AVX-512F is present (only reached through an `Avx512` value).
    unsafe {
        // lane l + 8: [s_q lanes 0..8 summed with 8..16 | s_q+1 likewise]
        let pair = {
            #[inline(always)]
            |a: __m512, b: __m512| {
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                    _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
                )
            }
        };
        let (a01, a23, a45, a67) = (
            pair(s[0], s[1]),
            pair(s[2], s[3]),
            pair(s[4], s[5]),
            pair(s[6], s[7]),
        );
        // lane l + 4: 128-bit quarter i holds s_i (of four) lanes 0..4
        let quad = {
            #[inline(always)]
            |a: __m512, b: __m512| {
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
                    _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
                )
            }
        };
        let (b0123, b4567) = (quad(a01, a23), quad(a45, a67));
        // lane l + 2: quarter i holds [s_i 0, s_i 1, s_i+4 0, s_i+4 1]
        let c = _mm512_add_ps(
            _mm512_shuffle_ps::<0b01_00_01_00>(b0123, b4567),
            _mm512_shuffle_ps::<0b11_10_11_10>(b0123, b4567),
        );
        // lane l + 1: quarter i holds [s_i, s_i+4, s_i, s_i+4]
        let d = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(c, c),
            _mm512_shuffle_ps::<0b11_01_11_01>(c, c),
        );
        // s_q is in lane 4q (q < 4) or 4(q − 4) + 1
        let order = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0);
        _mm512_castps512_ps256(_mm512_permutexvar_ps(order, d))
    }
}
