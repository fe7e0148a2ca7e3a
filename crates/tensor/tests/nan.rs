//! A NaN is never hidden. A diverged weight makes NaNs; if an activation or a max pool
//! turned them into ordinary numbers, training would go on from garbage without any
//! check noticing. Every kernel that takes a maximum or clamps (relu, the sigmoid's
//! exponential, max pooling: fast f32 paths and portable f64 paths, alone and fused
//! into the convolution) must hand a NaN on.

use kiln_tensor::conv2d::pooled::{conv2d_max_pool2d, conv2d_max_pool2d_with_argmax};
use kiln_tensor::conv2d::{conv2d_activation, Conv2dParams};
use kiln_tensor::pool2d::reference::pool2d_reference;
use kiln_tensor::pool2d::{max_pool2d, max_pool2d_with_argmax};
use kiln_tensor::{Activation, Float, Pool2dParams, Tensor};

const ACTIVATIONS: [Activation; 5] = [
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::SoftRelu,
    Activation::Softsign,
];

fn activations_pass_nan_on<T: Float>() {
    for act in ACTIVATIONS {
        // long enough for the vector kernels, with the NaN in a vector lane and in the tail
        for at in [0, 5, 31, 36] {
            let mut data: Vec<T> = (0..37).map(|i| T::from_f64(i as f64 - 18.0)).collect();
            data[at] = T::from_f64(f64::NAN);
            act.apply_in_place(&mut data);
            assert!(data[at].is_nan(), "{act:?} turned NaN into {}", data[at]);
            assert_eq!(data.iter().filter(|v| v.is_nan()).count(), 1, "{act:?}");
        }
    }
}

#[test]
fn activations_pass_nan_on_f32_and_f64() {
    activations_pass_nan_on::<f32>();
    activations_pass_nan_on::<f64>();
}

/// A plane of 1s with NaN at `nan`, pooled with `params`: the windows holding the NaN
/// must be NaN and no other.
fn pool_with_nan<T: Float>(h: usize, w: usize, nan: (usize, usize), params: &Pool2dParams) {
    let mut x = Tensor::<T>::ones([1, 2, h, w]);
    x.data_mut()[h * w + nan.0 * w + nan.1] = T::from_f64(f64::NAN); // second plane
    let literal = pool2d_reference(&x, params, true).unwrap();
    let nans = |t: &Tensor<T>| t.data().iter().map(|v| v.is_nan()).collect::<Vec<_>>();
    // inference (no argmax) and training (argmax) paths
    for fast in [
        max_pool2d(&x, params).unwrap(),
        max_pool2d_with_argmax(&x, params).unwrap().0,
    ] {
        assert_eq!(nans(&fast), nans(&literal), "{params:?}");
        assert!(
            nans(&fast).iter().any(|&n| n),
            "{params:?}: the NaN vanished"
        );
        for (a, b) in fast.data().iter().zip(literal.data()) {
            assert!(a.is_nan() || a == b);
        }
    }
}

#[test]
fn max_pooling_passes_nan_on_in_every_path() {
    let two = Pool2dParams::new(2).stride(2);
    let three = Pool2dParams::new(3).stride(2).padding(1);
    for (h, w) in [(24, 24), (8, 8), (6, 38)] {
        for nan in [(0, 0), (h - 1, w - 1), (3, 5)] {
            // 2×2 stride 2: the AVX-512 kernel for f32, the tiled loop for f64
            pool_with_nan::<f32>(h, w, nan, &two);
            pool_with_nan::<f64>(h, w, nan, &two);
            // overlapping, padded windows: the general loop
            pool_with_nan::<f32>(h, w, nan, &three);
        }
    }
}

#[test]
fn a_nan_weight_reaches_the_output_of_fused_convolutions() {
    let x = Tensor::<f32>::ones([2, 1, 28, 28]);
    let mut w = Tensor::<f32>::full([6, 1, 5, 5], 0.1);
    w.data_mut()[0] = f32::NAN; // output channel 0
    let params = Conv2dParams::default();
    let pool = Pool2dParams::new(2).stride(2);
    for act in [Some(Activation::Relu), Some(Activation::Sigmoid), None] {
        let y = conv2d_activation(&x, &w, None, &params, act).unwrap();
        let p = conv2d_max_pool2d(&x, &w, None, &params, act, &pool).unwrap();
        let (p_arg, _) = conv2d_max_pool2d_with_argmax(&x, &w, None, &params, act, &pool).unwrap();
        for (t, what) in [
            (&y, "conv2d"),
            (&p, "conv2d + max_pool2d"),
            (&p_arg, "conv2d + max_pool2d with argmax"),
        ] {
            let plane = t.numel() / 12;
            for (i, v) in t.data().iter().enumerate() {
                // channel 0 of either image is NaN, every other channel is finite
                assert_eq!(
                    v.is_nan(),
                    (i / plane) % 6 == 0,
                    "{what} {act:?} at {i}: {v}"
                );
            }
        }
    }
}
