//! `dst[i] = table[src[i]]` over [`Simd`] (f32): a lookup of 256-entry tables by bytes,
//! how image bytes become values (the table holds the transform of each byte value).
//! Gathers where the instruction set has them (AVX2, AVX-512), lane by lane elsewhere.
//! A generic kernel of this layer rather than data-loading code of `kiln-nn`: it is
//! vector code, chosen by the level like every other kernel.

use crate::simd::{dispatch, Level, Simd};
use std::mem::MaybeUninit;

#[inline(always)]
fn lookup_k<S: Simd>(s: S, table: &[f32; 256], src: &[u8], dst: &mut [MaybeUninit<f32>]) {
    let l = S::LANES;
    let full = src.len() / l * l;
    for i in (0..full).step_by(l) {
        // SAFETY: LANES bytes from i < full lie in src; each indexes the 256 entries; LANES
        // values from i lie in dst (as long as src).
        unsafe {
            let v = s.lookup(table.as_ptr(), src.as_ptr().add(i));
            s.store(dst.as_mut_ptr().add(i).cast(), v);
        }
    }
    for (d, &b) in dst[full..src.len()].iter_mut().zip(&src[full..]) {
        d.write(table[usize::from(b)]);
    }
}

/// `dst[i] = table[src[i]]`; every element of `dst` is written.
///
/// # Panics
/// If `dst` and `src` differ in length.
pub(crate) fn lookup_bytes(
    level: Level,
    table: &[f32; 256],
    src: &[u8],
    dst: &mut [MaybeUninit<f32>],
) {
    assert_eq!(src.len(), dst.len(), "lookup_bytes: lengths differ");
    dispatch!(level, lookup_k(table: &[f32; 256], src: &[u8], dst: &mut [MaybeUninit<f32>]))
}
