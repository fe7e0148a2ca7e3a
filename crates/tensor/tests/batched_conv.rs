//! The batched lowering (`ConvPath::Batched`: im2row over a task's images, one GEMM per
//! task and group) on batches of several tasks, the last one short, with groups, padding
//! and stride: the forward against the reference loops, the two gradients by the adjoint
//! identity ⟨conv(x), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩ in f64, and f32 at every level against f64.

use kiln_tensor::conv2d::reference::conv2d_reference;
use kiln_tensor::conv2d::select::{with_path, ConvPath};
use kiln_tensor::conv2d::{conv2d, conv2d_backward_input, conv2d_backward_weight, Conv2dParams};
use kiln_tensor::simd::{with_level, Level};
use kiln_tensor::{Float, Tensor};
use rand::{rngs::StdRng, SeedableRng};

/// (input, weight, stride, padding, groups).
type Case = ([usize; 4], [usize; 4], usize, usize, usize);

/// 19 images are three tasks of 8, 8 and 3.
const CASES: [Case; 4] = [
    // ResNet-18's last stage, narrowed: 3×3 at 3×3 with padding
    ([19, 8, 3, 3], [16, 8, 3, 3], 1, 1, 1),
    // its stride-2 entry and 1×1 shortcut
    ([19, 4, 6, 6], [8, 4, 3, 3], 2, 1, 1),
    ([19, 4, 6, 6], [8, 4, 1, 1], 2, 0, 1),
    // groups
    ([19, 6, 5, 4], [4, 3, 2, 3], 1, 1, 2),
];

fn dot<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> f64 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| x.to_f64() * y.to_f64())
        .sum()
}

fn params(stride: usize, padding: usize, groups: usize) -> Conv2dParams {
    Conv2dParams {
        stride: stride.into(),
        padding: padding.into(),
        groups,
        ..Conv2dParams::default()
    }
}

#[test]
fn batched_products_are_the_convolution_and_its_adjoints_in_f64() {
    let mut rng = StdRng::seed_from_u64(11);
    for (xs, ws, s, p, groups) in CASES {
        let params = params(s, p, groups);
        let x = Tensor::<f64>::rand_uniform(xs, -1.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_uniform(ws, -1.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_uniform([ws[0]], -1.0, 1.0, &mut rng);
        let expect = conv2d_reference(&x, &w, Some(&b), &params).unwrap();
        let dy = Tensor::<f64>::rand_uniform(expect.shape().clone(), -1.0, 1.0, &mut rng);
        with_path(ConvPath::Batched, || {
            let y = conv2d(&x, &w, Some(&b), &params).unwrap();
            for (a, e) in y.data().iter().zip(expect.data()) {
                assert!((a - e).abs() < 1e-12, "{xs:?} {ws:?}: {a} vs {e}");
            }
            let y0 = conv2d(&x, &w, None, &params).unwrap();
            let dx = conv2d_backward_input(&dy, &w, x.shape(), &params).unwrap();
            let dw = conv2d_backward_weight(&dy, &x, w.shape(), &params).unwrap();
            let lhs = dot(&y0, &dy);
            let tol = 1e-10 * (1.0 + lhs.abs());
            assert!((lhs - dot(&x, &dx)).abs() < tol, "{xs:?}: ⟨x, dx⟩");
            assert!((lhs - dot(&w, &dw)).abs() < tol, "{xs:?}: ⟨w, dw⟩");
        });
    }
}

#[test]
fn batched_f32_at_every_level_matches_f64() {
    let mut rng = StdRng::seed_from_u64(12);
    for (xs, ws, s, p, groups) in CASES {
        let params = params(s, p, groups);
        let x = Tensor::<f64>::rand_uniform(xs, -1.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_uniform(ws, -1.0, 1.0, &mut rng);
        let y = conv2d(&x, &w, None, &params).unwrap();
        let dy = Tensor::<f64>::rand_uniform(y.shape().clone(), -1.0, 1.0, &mut rng);
        let dx = conv2d_backward_input(&dy, &w, x.shape(), &params).unwrap();
        let dw = conv2d_backward_weight(&dy, &x, w.shape(), &params).unwrap();
        let f = |t: &Tensor<f64>| t.cast::<f32>();
        let (x32, w32, dy32) = (f(&x), f(&w), f(&dy));
        for level in Level::supported() {
            with_level(level, || {
                with_path(ConvPath::Batched, || {
                    let got = [
                        (conv2d(&x32, &w32, None, &params).unwrap(), &y),
                        (
                            conv2d_backward_input(&dy32, &w32, x.shape(), &params).unwrap(),
                            &dx,
                        ),
                        (
                            conv2d_backward_weight(&dy32, &x32, w.shape(), &params).unwrap(),
                            &dw,
                        ),
                    ];
                    for (i, (a, e)) in got.iter().enumerate() {
                        for (u, v) in a.data().iter().zip(e.data()) {
                            // sums of at most 19·36 products of values in [−1, 1]
                            assert!(
                                (f64::from(*u) - v).abs() < 1e-4 * (1.0 + v.abs()),
                                "{level} {xs:?} product {i}: {u} vs {v}"
                            );
                        }
                    }
                })
            })
            .unwrap();
        }
    }
}
