//! Measures the convolutions of a network of the zoo one by one (forward, input gradient,
//! weight gradient) at every SIMD level this CPU has, in GFLOP/s and as a share of the
//! FMA peak measured in the same run: where a network's convolution time goes.
//!
//!     cargo run --release --example bench_convs -- --model resnet18 --batch-size 32
//!     RAYON_NUM_THREADS=1 cargo run --release --example bench_convs -- --model resnet18

mod common;

use common::{median, Args};
use kiln::tensor::conv2d::select::{with_path, ConvPath};
use kiln::tensor::conv2d::{conv2d, conv2d_backward_input, conv2d_backward_weight, Conv2dParams};
use kiln::tensor::rand::{rngs::StdRng, SeedableRng};
use kiln::tensor::simd::{with_level, Level};
use kiln::tensor::{Hw, Tensor};
use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

const USAGE: &str = "\
Measures a network's convolutions one by one at every SIMD level of this CPU.

usage: bench_convs [--model resnet18] [--batch-size 32] [--runs 5] [--level LEVEL]
                   [--path lowered|direct|batched]

Prints, per distinct convolution shape and product (forward, input gradient, weight
gradient): GFLOP/s (2 × multiply-adds / time, median of --runs) and its share of the
level's FMA peak, which the same run measures first (independent FMAs in registers).
Models: resnet18 (D2L 7.6 at 1×96×96), lenet.";

/// (name, input shape, weight shape, stride, padding) for one convolution shape.
type ConvShape = (&'static str, [usize; 4], [usize; 4], usize, usize);

fn shapes(model: &str, n: usize) -> Option<Vec<ConvShape>> {
    Some(match model {
        "resnet18" => vec![
            ("stem 7x7/2 1->64 @96", [n, 1, 96, 96], [64, 1, 7, 7], 2, 3),
            ("3x3 64->64 @24", [n, 64, 24, 24], [64, 64, 3, 3], 1, 1),
            ("3x3/2 64->128 @24", [n, 64, 24, 24], [128, 64, 3, 3], 2, 1),
            ("1x1/2 64->128 @24", [n, 64, 24, 24], [128, 64, 1, 1], 2, 0),
            ("3x3 128->128 @12", [n, 128, 12, 12], [128, 128, 3, 3], 1, 1),
            (
                "3x3/2 128->256 @12",
                [n, 128, 12, 12],
                [256, 128, 3, 3],
                2,
                1,
            ),
            (
                "1x1/2 128->256 @12",
                [n, 128, 12, 12],
                [256, 128, 1, 1],
                2,
                0,
            ),
            ("3x3 256->256 @6", [n, 256, 6, 6], [256, 256, 3, 3], 1, 1),
            ("3x3/2 256->512 @6", [n, 256, 6, 6], [512, 256, 3, 3], 2, 1),
            ("1x1/2 256->512 @6", [n, 256, 6, 6], [512, 256, 1, 1], 2, 0),
            ("3x3 512->512 @3", [n, 512, 3, 3], [512, 512, 3, 3], 1, 1),
        ],
        "lenet" => vec![
            ("5x5 1->6 @28", [n, 1, 28, 28], [6, 1, 5, 5], 1, 0),
            ("5x5 6->16 @12", [n, 6, 12, 12], [16, 6, 5, 5], 1, 0),
        ],
        _ => return None,
    })
}

/// Seconds per call of `f`: the median of `runs` timings, each of enough calls for ~50 ms.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-6);
    let calls = ((0.05 / once) as usize).max(1);
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    f();
                }
                t.elapsed().as_secs_f64() / calls as f64
            })
            .collect(),
    )
}

/// GFLOP/s of independent FMAs in registers at `level` (0 for the scalar level).
fn peak(level: Level, runs: usize) -> f64 {
    let (lanes, accs) = match level {
        Level::Avx512 => (16, 16),
        Level::Avx2 => (8, 12),
        Level::Neon => (4, 16),
        Level::Scalar => return 0.0,
    };
    const ROUNDS: usize = 100_000;
    let s = time(runs, || {
        black_box(fma_rounds(level, black_box(ROUNDS)));
    });
    (2 * lanes * accs * ROUNDS) as f64 / s / 1e9
}

fn fma_rounds(level: Level, rounds: usize) -> f32 {
    match level {
        // SAFETY: only the levels Level::supported reports are measured.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { fma_avx512(rounds) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { fma_avx2(rounds) },
        #[cfg(target_arch = "aarch64")]
        Level::Neon => unsafe { fma_neon(rounds) },
        _ => 0.0,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(rounds: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 16];
    let (a, b) = (_mm512_set1_ps(1.000_001), _mm512_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    _mm512_reduce_add_ps(
        acc.iter()
            .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v)),
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(rounds: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 12];
    let (a, b) = (_mm256_set1_ps(1.000_001), _mm256_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    // SAFETY: 8 floats into `lanes`.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
fn fma_neon(rounds: usize) -> f32 {
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

fn main() {
    let args = Args::parse(USAGE, &["model", "batch-size", "runs", "level", "path"]);
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let model: String = args.get("model", "resnet18".to_string());
    let n: usize = args.get("batch-size", 32);
    let runs: usize = args.get("runs", 5);
    let only: Option<String> = args.opt("level");
    let path = match args.opt("path").as_deref() {
        None => None,
        Some("lowered") => Some(ConvPath::Lowered),
        Some("direct") => Some(ConvPath::Direct),
        Some("batched") => Some(ConvPath::Batched),
        Some(other) => return Err(format!("--path: no path {other:?}").into()),
    };
    let shapes = shapes(&model, n).ok_or(format!("--model: no shapes for {model:?}"))?;
    let mut rng = StdRng::seed_from_u64(0);
    for level in Level::supported() {
        if only.as_deref().is_some_and(|l| l != level.to_string()) {
            continue;
        }
        let peak = peak(level, runs);
        println!("# {level}: FMA peak {peak:.1} GFLOP/s (one thread)");
        println!(
            "{:<22} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7}",
            "conv", "fwd GF/s", "%peak", "dx GF/s", "%peak", "dw GF/s", "%peak"
        );
        let (mut total_s, mut total_flops) = (0.0, 0.0);
        for &(name, xs, ws, stride, pad) in &shapes {
            let p = Conv2dParams {
                stride: Hw::from(stride),
                padding: Hw::from(pad),
                ..Conv2dParams::default()
            };
            let x = Tensor::<f32>::rand_uniform(xs, -1.0, 1.0, &mut rng);
            let w = Tensor::<f32>::rand_uniform(ws, -1.0, 1.0, &mut rng);
            let y = conv2d(&x, &w, None, &p)?;
            let dy = Tensor::<f32>::rand_uniform(y.dims(), -1.0, 1.0, &mut rng);
            let flops = (2 * y.numel() * ws[1] * ws[2] * ws[3]) as f64;
            let at = |f: &mut dyn FnMut()| {
                with_level(level, || match path {
                    Some(p) => with_path(p, &mut *f),
                    None => f(),
                })
                .expect("a supported level")
            };
            let fwd = time(runs, || {
                at(&mut || drop(black_box(conv2d(&x, &w, None, &p))))
            });
            let dx = time(runs, || {
                at(&mut || drop(black_box(conv2d_backward_input(&dy, &w, x.shape(), &p))))
            });
            let dw = time(runs, || {
                at(&mut || drop(black_box(conv2d_backward_weight(&dy, &x, w.shape(), &p))))
            });
            let pct = |s: f64| match peak {
                0.0 => "-".to_string(),
                _ => format!("{:.0}%", 100.0 * flops / s / 1e9 / peak),
            };
            println!(
                "{name:<22} {:>9.1} {:>7} {:>9.1} {:>7} {:>9.1} {:>7}",
                flops / fwd / 1e9,
                pct(fwd),
                flops / dx / 1e9,
                pct(dx),
                flops / dw / 1e9,
                pct(dw)
            );
            total_s += fwd + dx + dw;
            total_flops += 3.0 * flops;
        }
        println!(
            "# {level}: all shapes once each, three products: {:.1} GFLOP/s",
            total_flops / total_s / 1e9
        );
    }
    Ok(())
}
