//! The instruction-set level the f32 kernels run at, chosen once per process, and the
//! vector abstraction they are written over. A kernel is one generic function over
//! [`Simd`]; the crate's `dispatch!` macro compiles it once per instruction set (AVX-512: 16 lanes,
//! AVX2 + FMA: 8, NEON: 4) and runs the one the level names. [`Level::Scalar`] is the
//! portable path: the callers' plain loops and `matrixmultiply`, for f64 and any CPU.
//!
//! The level is the best the CPU has, or `KILN_SIMD=avx512|avx2|neon|scalar`; a level the
//! CPU lacks (or a misspelt one) stops the process at the first kernel with a message
//! naming the levels it has, rather than crashing on an illegal instruction or quietly
//! running another level. [`with_level`] forces a level on the calling thread for one
//! call (how the tests run every level the CPU supports in one process).
//!
//! Every level gives the same bits for any number of threads. Levels may differ from one
//! another by rounding (the lane count orders the sums, FMA rounds once, the vector e^x
//! is within 2 ulp of libm): the tests compare each level's f32 results with the f64
//! reference loops to `1e-5 · (1 + |value|)`, and max pooling, which only selects,
//! exactly.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) use neon::Neon;

use crate::error::{Result, TensorError};
use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

/// An instruction-set level of the f32 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// The portable path: plain loops and `matrixmultiply` (the only path for f64).
    Scalar,
    /// aarch64 Advanced SIMD, 4 lanes (every aarch64 CPU has it).
    Neon,
    /// x86-64 AVX2 with FMA, 8 lanes (x86-64-v3).
    Avx2,
    /// x86-64 AVX-512F, 16 lanes.
    Avx512,
}

impl Level {
    /// Every level, portable first.
    pub const ALL: [Level; 4] = [Level::Scalar, Level::Neon, Level::Avx2, Level::Avx512];

    /// The name `KILN_SIMD` takes: `scalar`, `neon`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Neon => "neon",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a name as [`Level::name`] prints it.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    /// True when this CPU can run the level's kernels.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The levels this CPU supports, portable first.
    pub fn supported() -> Vec<Level> {
        Level::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .collect()
    }

    /// The best level this CPU supports.
    pub fn best() -> Level {
        *Level::supported()
            .last()
            .expect("scalar is always supported")
    }

    /// f32 lanes per vector (1 for the portable path).
    pub fn lanes(self) -> usize {
        match self {
            Level::Scalar => 1,
            Level::Neon => 4,
            Level::Avx2 => 8,
            Level::Avx512 => 16,
        }
    }

    /// True for the levels that run vector kernels (all but [`Level::Scalar`]).
    pub fn is_vector(self) -> bool {
        self != Level::Scalar
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The level `KILN_SIMD` asks for (or the best one when it is unset), checked against
/// this CPU: an error naming the supported levels if it lacks it or the name is unknown.
pub fn level_from_env() -> Result<Level> {
    let bad = |msg: String| TensorError::invalid("KILN_SIMD", msg);
    let names = || {
        Level::supported()
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if std::env::var_os("KILN_NO_SIMD").is_some() {
        return Err(bad(
            "KILN_NO_SIMD is no longer read: set KILN_SIMD=scalar instead".into(),
        ));
    }
    let Some(value) = std::env::var_os("KILN_SIMD") else {
        return Ok(Level::best());
    };
    let value = value.to_string_lossy();
    let Some(level) = Level::from_name(&value) else {
        return Err(bad(format!(
            "unknown level {value:?} (the levels are scalar, neon, avx2, avx512; this CPU has {})",
            names()
        )));
    };
    if !level.is_supported() {
        return Err(bad(format!(
            "this CPU cannot run {level} (it has {})",
            names()
        )));
    }
    Ok(level)
}

/// The process's level, chosen on first use from `KILN_SIMD` (see [`level_from_env`]).
/// A bad `KILN_SIMD` ends the process here with its message and exit status 2: kernels
/// have no error to return it through, and running another level instead would hide it.
pub fn process_level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| match level_from_env() {
        Ok(level) => level,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    })
}

thread_local! {
    /// A level forced on this thread by [`with_level`].
    static FORCED: Cell<Option<Level>> = const { Cell::new(None) };
}

/// The level a kernel called on this thread runs at: the one [`with_level`] forces, else
/// [`process_level`]. Kernels read it once per call, on the calling thread, and pass it
/// to the tasks they split off.
pub fn level() -> Level {
    FORCED.with(Cell::get).unwrap_or_else(process_level)
}

/// Runs `f` with the kernels it calls on this thread at `level`; an error if this CPU
/// cannot run it.
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> Result<R> {
    if !level.is_supported() {
        return Err(TensorError::invalid(
            "with_level",
            format!("this CPU cannot run {level}"),
        ));
    }
    struct Restore(Option<Level>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(level))));
    Ok(f())
}

/// A vector instruction set: f32 vectors of [`Simd::LANES`] lanes, i32 vectors of as
/// many, and lane masks. A value of an implementing type exists only once the CPU is
/// known to have the instruction set, so its safe methods may use it.
///
/// Semantics every implementation keeps (the kernels depend on them):
/// - `max(a, b)` is `a > b ? a : b` and `min(a, b)` is `a < b ? a : b`, lane by lane (x86's
///   rule): a NaN in `b` comes out, and of two equal values (±0) `b` stays.
/// - masked loads read only the lanes of the mask (the others may lie outside memory)
///   and give 0 elsewhere; masked stores write only the mask's lanes.
/// - [`Simd::reduce_add`] adds the lanes in a fixed order, and [`Simd::reduce_add_8`]
///   gives exactly its sums.
///
/// # Safety
/// An implementation may be constructed only on a CPU that has its instruction set.
pub unsafe trait Simd: Copy + Send + Sync + 'static {
    /// f32 lanes per vector.
    const LANES: usize;
    /// The level this is.
    const LEVEL: Level;
    /// Vector registers (32 on AVX-512 and NEON, 16 on AVX2): how large a tile of sums
    /// the kernels keep in registers.
    const REGISTERS: usize;
    /// True when [`Simd::shift_pair`] is implemented (AVX-512's `vpermt2ps`).
    const SHIFT_PAIR: bool = false;
    /// f32 × LANES.
    type V: Copy;
    /// i32 × LANES.
    type I: Copy;
    /// One bit (or lane) per lane.
    type M: Copy;

    /// All lanes 0.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// LANES values from `p`.
    ///
    /// # Safety
    /// `p..p + LANES` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// LANES values to `p`.
    ///
    /// # Safety
    /// `p..p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// The lanes of `v` as an array (the first LANES of 16).
    fn to_array(self, v: Self::V) -> [f32; 16];

    /// The lanes `lo..hi`, clamped to `0..LANES` (empty when `hi ≤ lo`).
    fn mask_range(self, lo: isize, hi: isize) -> Self::M;
    /// The first `n` lanes (all for n ≥ LANES).
    #[inline(always)]
    fn mask_first(self, n: usize) -> Self::M {
        self.mask_range(0, n.min(Self::LANES) as isize)
    }
    /// The lanes of `m` from memory at `p`, 0 elsewhere.
    ///
    /// # Safety
    /// The masked lanes of `p..p + LANES` must be readable.
    unsafe fn load_masked(self, m: Self::M, p: *const f32) -> Self::V;
    /// The lanes of `m` from memory at `p`, those of `src` elsewhere.
    ///
    /// # Safety
    /// As [`Simd::load_masked`].
    unsafe fn load_masked_or(self, src: Self::V, m: Self::M, p: *const f32) -> Self::V;
    /// Writes the lanes of `m` of `v` to `p`.
    ///
    /// # Safety
    /// The masked lanes of `p..p + LANES` must be writable.
    unsafe fn store_masked(self, p: *mut f32, m: Self::M, v: Self::V);

    /// a + b.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// a − b.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// a · b.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// a · b + c, rounded once.
    fn fmadd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// c − a · b, rounded once.
    fn fnmadd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a > b ? a : b`.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a < b ? a : b`.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Rounds to the nearest integer, ties to even.
    fn round(self, a: Self::V) -> Self::V;
    /// y · 2ⁿ for integral n in −150..=128 (e^x's last step).
    fn scale(self, y: Self::V, n: Self::V) -> Self::V;
    /// 1 / d to within 2⁻²³ relative.
    fn recip(self, d: Self::V) -> Self::V;
    /// The sum of the lanes, in a fixed order.
    fn reduce_add(self, v: Self::V) -> f32;
    /// `[reduce_add(s[q]) for q in 0..8]`, bit for bit (an implementation may do the eight
    /// side by side).
    #[inline(always)]
    fn reduce_add_8(self, s: [Self::V; 8]) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        for (o, v) in out.iter_mut().zip(s) {
            *o = self.reduce_add(v);
        }
        out
    }

    /// a > b (false where either is NaN).
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// Either a or b is NaN.
    fn unordered(self, a: Self::V, b: Self::V) -> Self::M;
    /// a | b.
    fn or(self, a: Self::M, b: Self::M) -> Self::M;
    /// a & !b.
    fn and_not(self, a: Self::M, b: Self::M) -> Self::M;
    /// True when no lane is set.
    fn none(self, m: Self::M) -> bool;
    /// `m ? a : b`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;

    /// All lanes `x`.
    fn splat_i(self, x: i32) -> Self::I;
    /// Lane l holds `start + l · step`.
    fn ramp_i(self, start: i32, step: i32) -> Self::I;
    /// a + b.
    fn add_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// `m ? a : b`.
    fn select_i(self, m: Self::M, a: Self::I, b: Self::I) -> Self::I;
    /// a == b.
    fn eq_i(self, a: Self::I, b: Self::I) -> Self::M;
    /// The lanes of `m` from memory at `p`, 0 elsewhere.
    ///
    /// # Safety
    /// As [`Simd::load_masked`].
    unsafe fn load_masked_i(self, m: Self::M, p: *const u32) -> Self::I;
    /// Writes the lanes of `m` of `v` to `p`.
    ///
    /// # Safety
    /// As [`Simd::store_masked`].
    unsafe fn store_masked_i(self, p: *mut u32, m: Self::M, v: Self::I);

    /// The even and the odd lanes of the 2·LANES values `lo ‖ hi`.
    fn deinterleave(self, lo: Self::V, hi: Self::V) -> (Self::V, Self::V);
    /// `a0 b0 a1 b1 …` as two vectors (the first LANES values, then the rest).
    fn interleave(self, a: Self::V, b: Self::V) -> (Self::V, Self::V);

    /// The 2·LANES values `prev ‖ next` shifted down by `skew` lanes, where `shift` is
    /// `ramp_i(skew, 1)`: how rows read by aligned loads are realigned. Only where
    /// [`Simd::SHIFT_PAIR`].
    fn shift_pair(self, prev: Self::V, shift: Self::I, next: Self::V) -> Self::V {
        let _ = (prev, shift, next);
        unreachable!("shift_pair on a level without it")
    }
    /// [`Simd::load`] from a 64-byte-aligned address.
    ///
    /// # Safety
    /// As [`Simd::load`], and `p` aligned to 64 bytes.
    #[inline(always)]
    unsafe fn load_aligned(self, p: *const f32) -> Self::V {
        // SAFETY: forwarded.
        unsafe { self.load(p) }
    }
    /// [`Simd::load_masked`] from a 64-byte-aligned address.
    ///
    /// # Safety
    /// As [`Simd::load_masked`], and `p` aligned to 64 bytes.
    #[inline(always)]
    unsafe fn load_aligned_masked(self, m: Self::M, p: *const f32) -> Self::V {
        // SAFETY: forwarded.
        unsafe { self.load_masked(m, p) }
    }

    /// `table[bytes[l]]` for each lane l.
    ///
    /// # Safety
    /// `bytes..bytes + LANES` readable; `table` holds 256 values.
    #[inline(always)]
    unsafe fn lookup(self, table: *const f32, bytes: *const u8) -> Self::V {
        let mut v = [0.0f32; 16];
        for (l, out) in v.iter_mut().enumerate().take(Self::LANES) {
            // SAFETY: the caller's contract.
            *out = unsafe { *table.add(usize::from(*bytes.add(l))) };
        }
        // SAFETY: v holds 16 ≥ LANES values.
        unsafe { self.load(v.as_ptr()) }
    }
}

/// Runs a kernel that is generic over [`Simd`] at a vector level: `dispatch!(level,
/// kernel(a: &[f32], b: usize) -> R)` compiles `kernel(simd, a, b)` once per instruction
/// set, each copy with its target features enabled (so every vector operation, always
/// inlined, becomes the instruction), and calls the copy for `level`. Kernels take their
/// arguments by name and concrete type; `Level::Scalar` is the callers' business (they
/// take the portable path) and panics here.
macro_rules! dispatch {
    ($level:expr, $kernel:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        fn avx512($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: this copy runs only at Level::Avx512, which is chosen only where
            // the CPU supports it.
            $kernel(unsafe { $crate::simd::Avx512::new() }, $($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn avx2($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: as above, for Level::Avx2.
            $kernel(unsafe { $crate::simd::Avx2::new() }, $($arg),*)
        }
        #[cfg(target_arch = "aarch64")]
        #[target_feature(enable = "neon")]
        #[allow(clippy::too_many_arguments)]
        fn neon($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: as above, for Level::Neon.
            $kernel(unsafe { $crate::simd::Neon::new() }, $($arg),*)
        }
        let level: $crate::simd::Level = $level;
        debug_assert!(level.is_supported());
        match level {
            // SAFETY: a level other than Scalar is only ever chosen where supported
            // (Level::is_supported, checked by level_from_env and with_level).
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
            #[cfg(target_arch = "aarch64")]
            $crate::simd::Level::Neon => unsafe { neon($($arg),*) },
            other => panic!("internal error: no {other} kernel on this CPU (callers take the portable path)"),
        }
    }};
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scalar_is_always_there() {
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.name()), Some(l));
        }
        assert_eq!(Level::from_name("sse2"), None);
        assert_eq!(Level::supported()[0], Level::Scalar);
        assert!(Level::best().is_supported());
    }

    #[test]
    fn with_level_forces_this_thread_and_restores() {
        let outer = level();
        with_level(Level::Scalar, || {
            assert_eq!(level(), Level::Scalar);
            let inner = std::thread::spawn(level).join().unwrap();
            assert_eq!(
                inner,
                process_level(),
                "other threads keep the process level"
            );
        })
        .unwrap();
        assert_eq!(level(), outer);
        let missing = Level::ALL.into_iter().find(|l| !l.is_supported());
        if let Some(l) = missing {
            let err = with_level(l, || ()).unwrap_err().to_string();
            assert!(err.contains(&format!("cannot run {l}")), "{err}");
        }
    }
}
