//! Criterion benches of the kernels LeNet spends its time in, at the book's shapes with
//! batch 256 (f32), at every SIMD level this CPU supports (the last part of each name:
//! `avx512`, `avx2`, `neon`, `scalar`). Throughput is reported as elements/s where one
//! element is one floating-point operation, so `Gelem/s` reads as GFLOP/s. `peak/fma_LEVEL`
//! measures this machine's own ceiling at each vector level (independent FMAs on as many
//! registers as hide their latency), so each kernel's share of peak is its figure divided
//! by its level's: the nominal peak of the reference machine is ~262 GFLOP/s per core
//! with AVX-512 and half that with AVX2, but a shared virtual machine may deliver less.
//!
//!     cargo bench --bench kernels [-- FILTER]
//!     RAYON_NUM_THREADS=1 cargo bench --bench kernels   # one core
//!     cargo bench --bench kernels -- avx2               # one level

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln::autograd::Var;
use kiln::tensor::conv2d::{conv2d, conv2d_backward_input, conv2d_backward_weight, Conv2dParams};
use kiln::tensor::matmul::{gemm, MatMut, MatRef};
use kiln::tensor::pool2d::{max_pool2d_backward, max_pool2d_with_argmax};
use kiln::tensor::rand::{rngs::StdRng, SeedableRng};
use kiln::tensor::simd::{with_level, Level};
use kiln::tensor::{Pool2dParams, Tensor};
use std::hint::black_box;

const BATCH: usize = 256;

fn rand(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// LeNet's two convolutions: (name, input shape, weight shape).
fn lenet_convs() -> [(&'static str, [usize; 4], [usize; 4]); 2] {
    [
        ("conv1", [BATCH, 1, 28, 28], [6, 1, 5, 5]),
        ("conv2", [BATCH, 6, 12, 12], [16, 6, 5, 5]),
    ]
}

fn convolution(c: &mut Criterion) {
    let p = Conv2dParams::default();
    let mut group = c.benchmark_group("conv2d");
    for (name, xs, ws) in lenet_convs() {
        let (x, w, b) = (rand(&xs, 1), rand(&ws, 2), rand(&ws[..1], 3));
        let y = conv2d(&x, &w, Some(&b), &p).unwrap();
        let dy = rand(y.dims(), 4);
        let flops = 2 * y.numel() * ws[1] * ws[2] * ws[3];
        group.throughput(Throughput::Elements(flops as u64));
        for level in Level::supported() {
            let at = |f: &mut dyn FnMut()| with_level(level, f).unwrap();
            let id = |what: &str| BenchmarkId::new(what, format!("{name}/{level}"));
            group.bench_function(id("forward"), |bench| {
                bench.iter(|| at(&mut || drop(conv2d(black_box(&x), &w, Some(&b), &p))))
            });
            group.bench_function(id("backward_input"), |bench| {
                bench.iter(|| {
                    at(&mut || drop(conv2d_backward_input(black_box(&dy), &w, x.shape(), &p)))
                })
            });
            group.bench_function(id("backward_weight"), |bench| {
                bench.iter(|| {
                    at(&mut || drop(conv2d_backward_weight(black_box(&dy), &x, w.shape(), &p)))
                })
            });
        }
    }
    group.finish();
}

fn pooling_and_sigmoid(c: &mut Criterion) {
    let p = Pool2dParams::new(2);
    let mut group = c.benchmark_group("elementwise");
    for (name, shape) in [("pool1", [BATCH, 6, 24, 24]), ("pool2", [BATCH, 16, 8, 8])] {
        let x = rand(&shape, 5);
        let (y, argmax) = max_pool2d_with_argmax(&x, &p).unwrap();
        group.throughput(Throughput::Elements(x.numel() as u64));
        for level in Level::supported() {
            let at = |f: &mut dyn FnMut()| with_level(level, f).unwrap();
            let id = |what: &str| BenchmarkId::new(what, format!("{name}/{level}"));
            group.bench_function(id("max_pool2d"), |bench| {
                bench.iter(|| at(&mut || drop(max_pool2d_with_argmax(black_box(&x), &p))))
            });
            group.bench_function(id("max_pool2d_backward"), |bench| {
                bench.iter(|| {
                    at(&mut || drop(max_pool2d_backward(black_box(&y), &argmax, x.shape(), &p)))
                })
            });
            group.bench_function(id("sigmoid"), |bench| {
                bench.iter(|| at(&mut || drop(black_box(&x).sigmoid())))
            });
        }
    }
    group.finish();
}

/// `out = x·Wᵀ` for x (m × k) and a Dense weight W (n × k), both row-major: Dense's
/// forward product, W read through a transposed view as the layer reads it.
fn dense_forward(x: &Tensor<f32>, w: &Tensor<f32>, out: &mut [f32]) {
    let (m, k, n) = (x.dims()[0], x.dims()[1], w.dims()[0]);
    gemm(
        1.0,
        MatRef::new(x.data(), m, k),
        MatRef::new(w.data(), n, k).t(),
        0.0,
        MatMut::new(out, m, n),
    )
}

fn matrix_products(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    // (m, k, n): LeNet's dense layers at batch 256, each y (m × n) = x (m × k) · Wᵀ with
    // the weight W (n × k) row-major, as `Dense` multiplies (checked against it below)
    for (m, k, n) in [(256, 256, 120), (256, 120, 84), (256, 84, 10)] {
        let (x, w) = (rand(&[m, k], 6), rand(&[n, k], 7));
        let mut out = vec![0.0f32; m * n];
        dense_forward(&x, &w, &mut out);
        let layer = Var::constant(x.clone()).dense(&Var::constant(w.clone()), None);
        assert_eq!(
            layer
                .expect("a dense product of fitting shapes")
                .value()
                .data(),
            &out[..],
            "the bench's product is not the one Dense computes"
        );
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        for level in Level::supported() {
            group.bench_function(
                BenchmarkId::new("dense_forward_x_wt", format!("{m}x{k}x{n}/{level}")),
                |bench| {
                    bench.iter(|| {
                        with_level(level, || dense_forward(black_box(&x), &w, &mut out)).unwrap();
                        black_box(&out);
                    })
                },
            );
        }
    }
    // a large square product of two row-major matrices, A·B: GEMM's own ceiling
    let (m, k, n) = (1024, 1024, 1024);
    let (a, b) = (rand(&[m, k], 6), rand(&[k, n], 7));
    let mut out = vec![0.0f32; m * n];
    group.throughput(Throughput::Elements((2 * m * k * n) as u64));
    for level in Level::supported() {
        group.bench_function(
            BenchmarkId::new("row_major_a_b", format!("{m}x{k}x{n}/{level}")),
            |bench| {
                bench.iter(|| {
                    with_level(level, || {
                        gemm(
                            1.0,
                            MatRef::new(a.data(), m, k),
                            MatRef::new(b.data(), k, n),
                            0.0,
                            MatMut::new(&mut out, m, n),
                        )
                    })
                    .unwrap();
                    black_box(&out);
                })
            },
        );
    }
    group.finish();
}

/// `rounds` × 16 FMAs of 16 lanes on 16 independent accumulators kept in registers: the
/// AVX-512 FMA peak.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_rounds_avx512(rounds: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 16];
    let (a, b) = (_mm512_set1_ps(1.000_001), _mm512_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
    _mm512_reduce_add_ps(sum)
}

/// `rounds` × 12 FMAs of 8 lanes on 12 independent accumulators (of AVX2's 16
/// registers): the AVX2 FMA peak.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_rounds_avx2(rounds: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 12];
    let (a, b) = (_mm256_set1_ps(1.000_001), _mm256_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    let mut lanes = [0.0f32; 8];
    // SAFETY: 8 floats into `lanes`.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

/// `rounds` × 16 FMAs of 4 lanes on 16 independent accumulators: the NEON FMA peak.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
fn fma_rounds_neon(rounds: usize) -> f32 {
    use std::arch::aarch64::*;
    let mut acc = [vdupq_n_f32(0.0); 16];
    let (a, b) = (vdupq_n_f32(1.000_001), vdupq_n_f32(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = vfmaq_f32(b, *v, a);
        }
    }
    acc.iter().map(|&v| vaddvq_f32(v)).sum()
}

fn peak(c: &mut Criterion) {
    const ROUNDS: usize = 10_000;
    let mut group = c.benchmark_group("peak");
    for level in Level::supported() {
        // FLOPs per round: accumulators × lanes × 2
        let per_round = match level {
            Level::Avx512 => 16 * 16,
            Level::Avx2 => 12 * 8,
            Level::Neon => 16 * 4,
            Level::Scalar => continue,
        };
        group.throughput(Throughput::Elements((2 * per_round * ROUNDS) as u64));
        group.bench_function(format!("fma_{level}"), |bench| {
            bench.iter(|| match level {
                // SAFETY: each level's FMAs run only where Level::supported says so.
                #[cfg(target_arch = "x86_64")]
                Level::Avx512 => unsafe { fma_rounds_avx512(black_box(ROUNDS)) },
                #[cfg(target_arch = "x86_64")]
                Level::Avx2 => unsafe { fma_rounds_avx2(black_box(ROUNDS)) },
                #[cfg(target_arch = "aarch64")]
                Level::Neon => unsafe { fma_rounds_neon(black_box(ROUNDS)) },
                _ => unreachable!("a vector level of this CPU"),
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    peak,
    convolution,
    pooling_and_sigmoid,
    matrix_products
);
criterion_main!(benches);
