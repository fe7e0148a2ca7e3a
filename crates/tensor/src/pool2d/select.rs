//! The pooling path selector: the vector 2×2 kernels or the portable loops, chosen from
//! the geometry, the element type and the level, and forceable per thread for the tests.

use super::PoolGeometry;
use crate::float::{DType, Float};
use crate::shape::Hw;
use crate::simd::Level;
use std::cell::Cell;

/// How max pooling and its gradient are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolPath {
    /// The plain loops: every window, padding and type.
    Portable,
    /// The vector kernels for 2×2 windows with stride 2 that tile the input (f32 at a
    /// vector level): LANES windows at a time.
    Vector2x2,
}

thread_local! {
    static FORCED: Cell<Option<PoolPath>> = const { Cell::new(None) };
}

/// Runs `f` with every max pooling it computes on this thread taking `path` where that
/// path applies (and [`PoolPath::Portable`] where it does not).
pub fn with_path<R>(path: PoolPath, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<PoolPath>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(path))));
    f()
}

/// The path of max pooling `g` over `T` at `level`.
pub(crate) fn path<T: Float>(g: &PoolGeometry, level: Level) -> PoolPath {
    let vector = level.is_vector()
        && T::DTYPE == DType::F32
        && g.tiles_exactly()
        && g.params.kernel == Hw::new(2, 2);
    match FORCED.with(Cell::get) {
        Some(PoolPath::Portable) => PoolPath::Portable,
        _ if vector => PoolPath::Vector2x2,
        _ => PoolPath::Portable,
    }
}
