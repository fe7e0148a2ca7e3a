//! Property tests: the fast kernels against the plain loops of `reference`, on random
//! shapes and options, in f32 and f64; and each backward kernel against its forward by the
//! adjoint identity ⟨f(x), dy⟩ = ⟨x, f*(dy)⟩, which holds exactly for a linear map.
//!
//! Every f32 test runs at every SIMD level this CPU supports (`scalar`, the portable path,
//! included) and with every path of the kernel family forced in turn ([`choices`]). The
//! levels round differently (lane counts change the order of the sums, FMA rounds once,
//! the vector e^x is within 2 ulp of libm), so f32 results are compared with the f64
//! reference loops to `1e-5 · (1 + |value|)`, the tolerance of `assert_close`; max pooling
//! selects values and is compared exactly, and its argmax too.

use kiln_tensor::conv2d::reference::conv2d_reference;
use kiln_tensor::conv2d::select::{with_path, ConvPath};
use kiln_tensor::conv2d::{
    conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, Conv2dParams,
};
use kiln_tensor::matmul::select::GemmPath;
use kiln_tensor::pool2d::reference::pool2d_reference;
use kiln_tensor::pool2d::select::PoolPath;
use kiln_tensor::pool2d::{
    avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, max_pool2d_with_argmax,
};
use kiln_tensor::simd::{with_level, Level};
use kiln_tensor::window::out_size;
use kiln_tensor::{Float, Pool2dParams, Tensor};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    groups: usize,
    c_per_group: usize,
    o_per_group: usize,
    h: usize,
    w: usize,
    k: (usize, usize),
    params: Conv2dParams,
    bias: bool,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        // 16 or 32 output channels per group take the lanes path of the weight gradient
        (
            1usize..4,
            1usize..4,
            1usize..4,
            prop_oneof![3 => 1usize..4, 1 => Just(16), 1 => Just(32)],
        ),
        (1usize..10, 1usize..10, 1usize..5, 1usize..5),
        (
            1usize..4,
            1usize..4,
            0usize..3,
            0usize..3,
            1usize..3,
            1usize..3,
        ),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |((n, groups, cg, og), (h, w, kh, kw), (sh, sw, ph, pw, dh, dw), bias, seed)| {
                ConvCase {
                    n,
                    groups,
                    c_per_group: cg,
                    o_per_group: og,
                    h,
                    w,
                    k: (kh, kw),
                    params: Conv2dParams::default()
                        .stride((sh, sw))
                        .padding((ph, pw))
                        .dilation((dh, dw))
                        .groups(groups),
                    bias,
                    seed,
                }
            },
        )
        .prop_filter("window must fit the padded input", |c| {
            let p = &c.params;
            out_size(c.h, c.k.0, p.padding.h, p.stride.h, p.dilation.h, false).is_some()
                && out_size(c.w, c.k.1, p.padding.w, p.stride.w, p.dilation.w, false).is_some()
        })
}

struct ConvTensors<T: Float> {
    x: Tensor<T>,
    w: Tensor<T>,
    b: Option<Tensor<T>>,
}

fn conv_tensors<T: Float>(c: &ConvCase) -> ConvTensors<T> {
    let mut rng = StdRng::seed_from_u64(c.seed);
    let one = T::ONE;
    let x = Tensor::rand_uniform(
        [c.n, c.groups * c.c_per_group, c.h, c.w],
        -one,
        one,
        &mut rng,
    );
    let w = Tensor::rand_uniform(
        [c.groups * c.o_per_group, c.c_per_group, c.k.0, c.k.1],
        -one,
        one,
        &mut rng,
    );
    let b = c
        .bias
        .then(|| Tensor::rand_uniform([c.groups * c.o_per_group], -one, one, &mut rng));
    ConvTensors { x, w, b }
}

/// The failure `e`, saying which level and paths it happened at.
fn at_choice(e: TestCaseError, c: Choice) -> TestCaseError {
    TestCaseError::fail(format!("{e} (at {c:?})"))
}

fn assert_close<T: Float>(a: &Tensor<T>, b: &Tensor<T>, tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.shape(), b.shape());
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        let (x, y) = (x.to_f64(), y.to_f64());
        prop_assert!(
            (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())),
            "element {} differs: {} vs {}",
            i,
            x,
            y
        );
    }
    Ok(())
}

/// `n` cases, or `PROPTEST_CASES` when it is set (CI's emulated runs take fewer).
fn cases(n: u32) -> ProptestConfig {
    let env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig::with_cases(env.unwrap_or(n))
}

/// A way to compute: a level and, for each kernel family, a path forced or left to the
/// selector.
#[derive(Clone, Copy, Debug)]
struct Choice {
    level: Level,
    conv: Option<ConvPath>,
    gemm: Option<GemmPath>,
    pool: Option<PoolPath>,
}

/// Every level this CPU supports, each with the selectors' own choice and with each path
/// forced: together they reach every kernel.
fn choices() -> Vec<Choice> {
    let mut out = Vec::new();
    for level in Level::supported() {
        let auto = Choice {
            level,
            conv: None,
            gemm: None,
            pool: None,
        };
        out.push(auto);
        // the batched lowering runs at every level and for every type
        out.push(Choice {
            conv: Some(ConvPath::Batched),
            ..auto
        });
        if level.is_vector() {
            for conv in [ConvPath::Lowered, ConvPath::Direct] {
                out.push(Choice {
                    conv: Some(conv),
                    ..auto
                });
            }
            for gemm in [GemmPath::Packed, GemmPath::FewRows, GemmPath::DotRows] {
                // with the convolutions lowered, so that their GEMMs take the path too
                out.push(Choice {
                    conv: Some(ConvPath::Lowered),
                    gemm: Some(gemm),
                    ..auto
                });
            }
            out.push(Choice {
                pool: Some(PoolPath::Portable),
                ..auto
            });
        }
    }
    out
}

/// [`at`] for a closure that borrows mutably (the GEMM's output).
fn at_choice_fn(c: Choice, f: impl FnOnce()) {
    at(c, f)
}

/// `f` computed the way `c` says, on this thread.
fn at<R>(c: Choice, f: impl FnOnce() -> R) -> R {
    with_level(c.level, || {
        let g = || match c.gemm {
            Some(p) => kiln_tensor::matmul::select::with_path(p, f),
            None => f(),
        };
        let p = || match c.pool {
            Some(p) => kiln_tensor::pool2d::select::with_path(p, g),
            None => g(),
        };
        match c.conv {
            Some(path) => with_path(path, p),
            None => p(),
        }
    })
    .expect("a supported level")
}

fn dot<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> f64 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| x.to_f64() * y.to_f64())
        .sum()
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn conv2d_im2col_matches_reference_f64(c in conv_case()) {
        let t = conv_tensors::<f64>(&c);
        let fast = conv2d(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap();
        let slow = conv2d_reference(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap();
        assert_close(&fast, &slow, 1e-12)?;
    }

    /// The fused bias + activation epilogue equals the activation applied afterwards.
    #[test]
    fn conv2d_activation_is_conv2d_then_activation(c in conv_case(), which in 0usize..5) {
        use kiln_tensor::{conv2d::conv2d_activation, Activation};
        let act = [Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::SoftRelu, Activation::Softsign][which];
        let t = conv_tensors::<f32>(&c);
        let slow = act.apply(&conv2d_reference(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap());
        for choice in choices() {
            let fused = at(choice, || conv2d_activation(&t.x, &t.w, t.b.as_ref(), &c.params, Some(act)).unwrap());
            assert_close(&fused, &slow, 1e-5).map_err(|e| at_choice(e, choice))?;
        }
    }

    #[test]
    fn conv2d_matches_reference_f32_at_every_level_and_path(c in conv_case()) {
        let t = conv_tensors::<f32>(&c);
        let slow = conv2d_reference(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap();
        for choice in choices() {
            let fast = at(choice, || conv2d(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap());
            assert_close(&fast, &slow, 1e-5).map_err(|e| at_choice(e, choice))?;
        }
    }

    /// The f32 backward kernels (every level and path) agree with the f64 ones (the
    /// portable path, which the adjoint test below pins down).
    #[test]
    fn conv2d_backward_f32_matches_f64(c in conv_case()) {
        let t = conv_tensors::<f64>(&c);
        let y = conv2d(&t.x, &t.w, None, &c.params).unwrap();
        let dy = Tensor::rand_uniform(y.shape().clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(c.seed ^ 3));
        let dx64 = conv2d_backward_input(&dy, &t.w, t.x.shape(), &c.params).unwrap();
        let dw64 = conv2d_backward_weight(&dy, &t.x, t.w.shape(), &c.params).unwrap();
        let (x32, w32, dy32) = (t.x.cast::<f32>(), t.w.cast::<f32>(), dy.cast::<f32>());
        for choice in choices() {
            let (dx32, dw32, db32) = at(choice, || (
                conv2d_backward_input(&dy32, &w32, x32.shape(), &c.params).unwrap(),
                conv2d_backward_weight(&dy32, &x32, w32.shape(), &c.params).unwrap(),
                conv2d_backward_bias(&dy32).unwrap(),
            ));
            assert_close(&dx32, &dx64.cast::<f32>(), 1e-5).map_err(|e| at_choice(e, choice))?;
            assert_close(&dw32, &dw64.cast::<f32>(), 1e-5).map_err(|e| at_choice(e, choice))?;
            let db64 = conv2d_backward_bias(&dy).unwrap();
            assert_close(&db32, &db64.cast::<f32>(), 1e-5).map_err(|e| at_choice(e, choice))?;
        }
    }

    #[test]
    fn conv2d_backward_kernels_are_adjoint_to_forward(c in conv_case()) {
        let t = conv_tensors::<f64>(&c);
        let y = conv2d(&t.x, &t.w, None, &c.params).unwrap();
        let dy = Tensor::rand_uniform(y.shape().clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(c.seed ^ 1));
        let dx = conv2d_backward_input(&dy, &t.w, t.x.shape(), &c.params).unwrap();
        let dw = conv2d_backward_weight(&dy, &t.x, t.w.shape(), &c.params).unwrap();
        let lhs = dot(&y, &dy);
        let tol = 1e-10 * (1.0 + lhs.abs());
        prop_assert!((lhs - dot(&t.x, &dx)).abs() < tol, "⟨conv(x), dy⟩ = {} but ⟨x, dx⟩ = {}", lhs, dot(&t.x, &dx));
        prop_assert!((lhs - dot(&t.w, &dw)).abs() < tol, "⟨conv(w), dy⟩ = {} but ⟨w, dw⟩ = {}", lhs, dot(&t.w, &dw));
        let db = conv2d_backward_bias(&dy).unwrap();
        let expect = dy.sum(&[0, 2, 3], false).unwrap();
        assert_close(&db, &expect, 1e-12)?;
    }
}

#[derive(Clone, Debug)]
struct PoolCase {
    shape: [usize; 4],
    params: Pool2dParams,
    seed: u64,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (
        (1usize..3, 1usize..3, 1usize..9, 1usize..9),
        (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        (0usize..3, 0usize..3, any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |((n, c, h, w), (kh, kw, sh, sw), (ph, pw, ceil, include), seed)| PoolCase {
                shape: [n, c, h, w],
                params: Pool2dParams::new((kh, kw))
                    .stride((sh, sw))
                    .padding((ph.min(kh - 1), pw.min(kw - 1)))
                    .ceil_mode(ceil)
                    .count_include_pad(include),
                seed,
            },
        )
        .prop_filter("window must fit the padded input", |c| {
            c.params.geometry("pool", &c.shape.into()).is_ok()
        })
}

fn pool_input<T: Float>(c: &PoolCase) -> Tensor<T> {
    // A permutation of distinct values: no window has ties, so the argmax is unique.
    let n: usize = c.shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 - n as f64 / 2.0).collect();
    use rand::seq::SliceRandom;
    v.shuffle(&mut StdRng::seed_from_u64(c.seed));
    Tensor::from_f64s(&v, c.shape).unwrap()
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn pooling_matches_reference(c in pool_case()) {
        let x = pool_input::<f64>(&c);
        let (max, _) = max_pool2d_with_argmax(&x, &c.params).unwrap();
        assert_close(&max, &pool2d_reference(&x, &c.params, true).unwrap(), 0.0)?;
        let avg = avg_pool2d(&x, &c.params).unwrap();
        assert_close(&avg, &pool2d_reference(&x, &c.params, false).unwrap(), 1e-12)?;
        let x32 = pool_input::<f32>(&c);
        for choice in choices() {
            let avg32 = at(choice, || avg_pool2d(&x32, &c.params).unwrap());
            assert_close(&avg32, &pool2d_reference(&x32, &c.params, false).unwrap(), 1e-6).map_err(|e| at_choice(e, choice))?;
            let (max32, arg32) = at(choice, || max_pool2d_with_argmax(&x32, &c.params).unwrap());
            assert_close(&max32, &pool2d_reference(&x32, &c.params, true).unwrap(), 0.0).map_err(|e| at_choice(e, choice))?;
            let (_, arg64) = max_pool2d_with_argmax(&x, &c.params).unwrap();
            prop_assert_eq!(&arg32, &arg64, "argmax at {:?}", choice);
        }
    }

    #[test]
    fn pooling_backward_is_adjoint_to_forward(c in pool_case()) {
        let x = pool_input::<f64>(&c);
        let (max, argmax) = max_pool2d_with_argmax(&x, &c.params).unwrap();
        let dy = Tensor::rand_uniform(max.shape().clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(c.seed ^ 2));
        // max pooling selects elements: ⟨max(x), dy⟩ = ⟨x, dx⟩
        let dx = max_pool2d_backward(&dy, &argmax, x.shape(), &c.params).unwrap();
        prop_assert!((dot(&max, &dy) - dot(&x, &dx)).abs() < 1e-9 * (1.0 + dot(&max, &dy).abs()));
        // average pooling is linear
        let avg = avg_pool2d(&x, &c.params).unwrap();
        let dx = avg_pool2d_backward(&dy, x.shape(), &c.params).unwrap();
        prop_assert!((dot(&avg, &dy) - dot(&x, &dx)).abs() < 1e-9 * (1.0 + dot(&avg, &dy).abs()));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// The f32 GEMM (AVX-512 few-rows kernel where it applies, matrixmultiply elsewhere)
    /// against a loop in f64, with either operand transposed and β ∈ {0, 1}.
    #[test]
    fn sgemm_matches_loops(m in 1usize..40, k in 1usize..70, n in 1usize..70, ta in any::<bool>(), tb in any::<bool>(), accumulate in any::<bool>(), seed in any::<u64>()) {
        use kiln_tensor::matmul::{gemm, MatMut, MatRef};
        let mut rng = StdRng::seed_from_u64(seed);
        let a = Tensor::<f32>::rand_uniform([m, k], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_uniform([k, n], -1.0, 1.0, &mut rng);
        let c0 = Tensor::<f32>::rand_uniform([m, n], -1.0, 1.0, &mut rng);
        let (at, bt) = (a.transpose(0, 1).unwrap(), b.transpose(0, 1).unwrap());
        for choice in choices() {
            let mut c = c0.data().to_vec();
            let a_view = if ta { MatRef::new(at.data(), k, m).t() } else { MatRef::new(a.data(), m, k) };
            let b_view = if tb { MatRef::new(bt.data(), n, k).t() } else { MatRef::new(b.data(), k, n) };
            at_choice_fn(choice, || gemm(1.0, a_view, b_view, if accumulate { 1.0 } else { 0.0 }, MatMut::new(&mut c, m, n)));
            for i in 0..m {
                for j in 0..n {
                    let mut expect = if accumulate { c0.data()[i * n + j] as f64 } else { 0.0 };
                    for p in 0..k {
                        expect += a.data()[i * k + p] as f64 * b.data()[p * n + j] as f64;
                    }
                    prop_assert!((c[i * n + j] as f64 - expect).abs() < 1e-4, "C[{}, {}] = {} vs {} at {:?}", i, j, c[i * n + j], expect, choice);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// `A·Bᵀ` (a dense layer's product) gives the same bits wherever B starts in memory:
    /// the kernel reads B by aligned loads when its rows share a cache-line offset, and
    /// must then sum exactly what unaligned loads would (training is reproducible only if
    /// results do not depend on where the allocator put a weight).
    #[test]
    fn sgemm_nt_does_not_depend_on_alignment(m in 1usize..6, k in 1usize..80, n in 1usize..20, wide in any::<bool>(), seed in any::<u64>()) {
        use kiln_tensor::matmul::{gemm, MatMut, MatRef};
        let mut rng = StdRng::seed_from_u64(seed);
        // row strides of whole cache lines (aligned reads) or not (unaligned reads)
        let ldb = if wide { k.next_multiple_of(16) } else { k };
        let a = Tensor::<f32>::rand_uniform([m, k], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_uniform([n, ldb], -1.0, 1.0, &mut rng);
        for level in Level::supported() {
        let mut results = Vec::new();
        for offset in 0..16 {
            let mut storage = vec![0.0f32; n * ldb + 16];
            storage[offset..offset + n * ldb].copy_from_slice(b.data());
            // Bᵀ (k × n) over rows of B with stride ldb
            let b_view = MatRef::strided(&storage[offset..offset + n * ldb], k, n, 1, ldb);
            let mut c = vec![0.0f32; m * n];
            with_level(level, || gemm(1.0, MatRef::new(a.data(), m, k), b_view, 0.0, MatMut::new(&mut c, m, n))).unwrap();
            results.push(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
        for (offset, r) in results.iter().enumerate() {
            prop_assert_eq!(r, &results[0], "B at offset {} floats", offset);
        }
        for i in 0..m {
            for j in 0..n {
                let expect: f64 = (0..k).map(|p| a.data()[i * k + p] as f64 * b.data()[j * ldb + p] as f64).sum();
                let got = f32::from_bits(results[0][i * n + j]) as f64;
                prop_assert!((got - expect).abs() < 1e-4, "C[{}, {}] = {} vs {} at {}", i, j, got, expect, level);
            }
        }
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// The vectorised 2×2/stride-2 max pooling (f32) against the portable one (f64), values
    /// and argmax, with ties (values from a small set) so "first maximum" is exercised.
    #[test]
    fn max_pool_2x2_f32_matches_portable(n in 1usize..3, c in 1usize..3, h in 2usize..20, w in 2usize..41, levels in 1usize..6, seed in any::<u64>()) {
        use rand::RngExt;
        let mut rng = StdRng::seed_from_u64(seed);
        // zeros of both signs: equal, so the first of a window must stay
        let values: Vec<f64> = (0..n * c * h * w)
            .map(|_| match rng.random_range(0..levels) {
                0 if rng.random_bool(0.5) => -0.0,
                v => v as f64,
            })
            .collect();
        let x64 = Tensor::<f64>::from_f64s(&values, [n, c, h, w]).unwrap();
        let p = Pool2dParams::new(2);
        let (y64, arg64) = max_pool2d_with_argmax(&x64, &p).unwrap();
        for choice in choices() { at(choice, || -> Result<(), TestCaseError> {
        let (y32, arg32) = max_pool2d_with_argmax(&x64.cast::<f32>(), &p).unwrap();
        assert_close(&y32, &y64.cast::<f32>(), 0.0)?;
        prop_assert_eq!(&arg32, &arg64);
        // values only (inference: a chain of vmaxps), bit for bit the same, signs of zero too
        let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&max_pool2d(&x64.cast::<f32>(), &p).unwrap()), bits(&y32));
        let bits64 = |t: &Tensor<f64>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&y32), bits64(&y64).iter().map(|&b| (f64::from_bits(b) as f32).to_bits()).collect::<Vec<_>>());
        assert_close(&y64, &pool2d_reference(&x64, &p, true).unwrap(), 0.0)?;
        let dy = Tensor::<f64>::rand_uniform(y64.shape().clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(seed ^ 9));
        let dx64 = max_pool2d_backward(&dy, &arg64, x64.shape(), &p).unwrap();
        let dx32 = max_pool2d_backward(&dy.cast::<f32>(), &arg32, x64.shape(), &p).unwrap();
        assert_close(&dx32, &dx64.cast::<f32>(), 0.0)?;
        Ok(())
        }).map_err(|e| at_choice(e, choice))?; }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Convolution, activation and max pooling in one pass equal the three ops in a row,
    /// forward and backward (to the convolution's output).
    #[test]
    fn conv2d_max_pool2d_equals_the_three_ops(c in conv_case(), which in 0usize..5, k in 1usize..4, s in 1usize..4, ceil in any::<bool>()) {
        use kiln_tensor::conv2d::{conv2d_activation, pooled::{conv2d_max_pool2d, conv2d_max_pool2d_with_argmax, conv2d_max_pool2d_backward_z}};
        use kiln_tensor::Activation;
        let act = [Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::SoftRelu, Activation::Softsign][which];
        let t = conv_tensors::<f64>(&c);
        let pool = Pool2dParams::new(k).stride(s).ceil_mode(ceil);
        let z = conv2d(&t.x, &t.w, t.b.as_ref(), &c.params).unwrap();
        prop_assume!(pool.geometry("pool", z.shape()).is_ok());
        let y = conv2d_activation(&t.x, &t.w, t.b.as_ref(), &c.params, Some(act)).unwrap();
        let (expect, arg_y) = max_pool2d_with_argmax(&y, &pool).unwrap();
        let (fused, arg) = conv2d_max_pool2d_with_argmax(&t.x, &t.w, t.b.as_ref(), &c.params, Some(act), &pool).unwrap();
        assert_close(&fused, &expect, 1e-12)?;
        // without the argmax (inference), the same values
        prop_assert_eq!(&conv2d_max_pool2d(&t.x, &t.w, t.b.as_ref(), &c.params, Some(act), &pool).unwrap(), &fused);
        // argmax may differ where f ties (relu's zeros); f′ is 0 there, so dz agrees anyway
        let dp = Tensor::rand_uniform(fused.shape().clone(), -1.0, 1.0, &mut StdRng::seed_from_u64(c.seed ^ 5));
        let grad = conv2d_max_pool2d_backward_z(dp.clone(), &fused, &arg, Some(act), z.shape(), &pool).unwrap();
        let mut dz_chain = max_pool2d_backward(&dp, &arg_y, y.shape(), &pool).unwrap();
        act.backward_in_place(dz_chain.data_mut(), y.data());
        assert_close(&grad.dz, &dz_chain, 1e-12)?;
        // the pooled gradient's channel sums are dz's: the bias gradient either way
        assert_close(&conv2d_backward_bias(&grad.pooled).unwrap(), &conv2d_backward_bias(&grad.dz).unwrap(), 1e-12)?;
        // f32 agrees with f64, at every level and path
        let (x32, w32, b32) = (t.x.cast::<f32>(), t.w.cast::<f32>(), t.b.as_ref().map(|b| b.cast::<f32>()));
        for choice in choices() {
            let (f32_out, f32_values) = at(choice, || (
                conv2d_max_pool2d_with_argmax(&x32, &w32, b32.as_ref(), &c.params, Some(act), &pool).unwrap().0,
                conv2d_max_pool2d(&x32, &w32, b32.as_ref(), &c.params, Some(act), &pool).unwrap(),
            ));
            assert_close(&f32_out, &fused.cast::<f32>(), 1e-5).map_err(|e| at_choice(e, choice))?;
            // the f32 inference path (the vectorised max without argmax) gives the same bits
            prop_assert_eq!(f32_values.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), f32_out.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "at {:?}", choice);
        }
    }
}
