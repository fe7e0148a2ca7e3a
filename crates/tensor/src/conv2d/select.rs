//! The convolution path selector: for one geometry, element type and level, which kernel
//! computes each of the three products. Chosen once per shape and kept (per thread, with
//! the direct path's plan), since a network convolves the same shapes on every call;
//! forceable per thread so that the tests compare every path with the reference loops.

use super::direct::Plan;
use super::ConvGeometry;
use crate::float::{DType, Float};
use crate::simd::{self, Level};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// How one product of a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPath {
    /// im2col (im2row for the weight gradient, col2im for the input gradient) and a GEMM
    /// per image and group: every geometry and type (at `scalar`, the portable path).
    Lowered,
    /// The direct kernels, reading the input through position vectors without an im2col
    /// matrix: f32 at a vector level, horizontal stride 1. The input gradient scatters
    /// its sums.
    Direct,
    /// The input gradient of a stride-1 convolution as a direct forward convolution of
    /// the padded output gradient with the flipped, transposed kernel (no scattered adds).
    DirectTransposed,
    /// The weight gradient with the output channels in the vectors' lanes, when they
    /// come in whole vectors.
    DirectLanes,
    /// im2row over each task's images and one GEMM per task and group, for each of the
    /// three products: for output planes too small for a vector of positions or for a
    /// GEMM per image (ResNet-18's last stages: 6×6 and 3×3 with 256-512 channels).
    Batched,
}

/// The paths of the three products for one geometry, at one level.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub level: Level,
    pub forward: ConvPath,
    pub input: ConvPath,
    pub weight: ConvPath,
    /// The direct kernels' plan, when any product takes a direct path.
    pub plan: Option<Arc<Plan>>,
}

thread_local! {
    static FORCED: Cell<Option<ConvPath>> = const { Cell::new(None) };
    /// Selections by geometry (with the batch size set to 0, which they do not depend
    /// on), level, forced path and type. A network has a few shapes: a short list
    /// compared field by field finds one faster than hashing would (which showed in
    /// batch-1 profiles).
    #[allow(clippy::type_complexity)]
    static SELECTIONS: RefCell<Vec<(Key, Arc<Selection>)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    g: ConvGeometry,
    level: Level,
    forced: Option<ConvPath>,
    dtype: DType,
}

/// Runs `f` with every convolution it computes on this thread taking `path` for each
/// product where that path applies (and [`ConvPath::Lowered`] where it does not). With
/// [`simd::with_level`], how the tests reach every path of every level.
pub fn with_path<R>(path: ConvPath, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ConvPath>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(path))));
    f()
}

/// The paths `g` takes for element type `T` at this thread's level.
pub(crate) fn select<T: Float>(g: &ConvGeometry) -> Arc<Selection> {
    let key = Key {
        g: ConvGeometry { n: 0, ..*g },
        level: simd::level(),
        forced: FORCED.with(Cell::get),
        dtype: T::DTYPE,
    };
    SELECTIONS.with(|all| {
        let mut all = all.borrow_mut();
        if let Some((_, s)) = all.iter().find(|(k, _)| *k == key) {
            return s.clone();
        }
        if all.len() >= 64 {
            all.clear();
        }
        let s = Arc::new(choose(&key));
        all.push((key, s.clone()));
        s
    })
}

fn choose(key: &Key) -> Selection {
    let (g, level) = (&key.g, key.level);
    let lowered = Selection {
        level,
        forward: ConvPath::Lowered,
        input: ConvPath::Lowered,
        weight: ConvPath::Lowered,
        plan: None,
    };
    let batched = Selection {
        forward: ConvPath::Batched,
        input: ConvPath::Batched,
        weight: ConvPath::Batched,
        ..lowered.clone()
    };
    if key.forced == Some(ConvPath::Batched) {
        return batched;
    }
    if !level.is_vector() || key.dtype != DType::F32 {
        return lowered;
    }
    // Small output planes (ResNet-18's 6×6 and 3×3 stages) leave most lanes of a vector
    // of positions idle, and a GEMM per image has n = plane; strided 1×1 shortcuts read
    // one input in four. One GEMM over a task's images does all three products at 2-4×
    // the direct paths' rate there (bench_convs --model resnet18, AVX-512, one thread).
    let strided_pointwise = g.k_h == 1 && g.k_w == 1 && (g.stride.h > 1 || g.stride.w > 1);
    if key.forced.is_none() && (g.h_out * g.w_out < 64 || strided_pointwise) {
        return batched;
    }
    if g.stride.w != 1 {
        return lowered;
    }
    let Some(plan) = Plan::new(g, level) else {
        return lowered;
    };
    let unit = |hw: crate::shape::Hw| hw.h == 1 && hw.w == 1;
    let input = if g.stride.h == 1 && plan.transposed.is_some() {
        ConvPath::DirectTransposed
    } else {
        ConvPath::Direct
    };
    // A small unpadded stride-1 convolution's input gradient lowers better: dcols =
    // Wᵀ·dy in the few-rows GEMM (exact work, no padding), then col2im (LeNet's conv2,
    // 12 wide: with AVX2, 0.55-0.62 s → 0.45-0.51 s of CPU for 30 training steps; the
    // transposed forward computes 2.25× the products there, on dy's zero border).
    let small =
        unit(g.stride) && unit(g.dilation) && g.padding.h == 0 && g.padding.w == 0 && g.w <= 16;
    let weight = if g.c_out_per_group().is_multiple_of(level.lanes()) {
        ConvPath::DirectLanes
    } else {
        ConvPath::Direct
    };
    let (forward, input, weight) = match key.forced {
        None => (
            ConvPath::Direct,
            if small { ConvPath::Lowered } else { input },
            weight,
        ),
        Some(ConvPath::Lowered) => return lowered,
        // each product takes the forced path if it has it, else its own direct one
        Some(forced) => (
            ConvPath::Direct,
            match forced {
                ConvPath::Direct => ConvPath::Direct,
                _ => input,
            },
            match forced {
                ConvPath::Direct => ConvPath::Direct,
                _ => weight,
            },
        ),
    };
    Selection {
        level,
        forward,
        input,
        weight,
        plan: Some(Arc::new(plan)),
    }
}
