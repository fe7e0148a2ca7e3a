//! The worked examples of D2L's CNN chapter (MXNet edition, sections 6.2–6.5), with the
//! book's own numbers.

use kiln_tensor::conv2d::reference::{convolve2d, corr2d};
use kiln_tensor::conv2d::{conv2d, Conv2dParams};
use kiln_tensor::pool2d::{avg_pool2d, max_pool2d};
use kiln_tensor::{Pool2dParams, Tensor};
use rand::{rngs::StdRng, SeedableRng};

fn t(values: &[f64], shape: &[usize]) -> Tensor<f32> {
    Tensor::from_f64s(values, shape).unwrap()
}

fn d2l_x() -> Tensor<f32> {
    Tensor::arange(9).reshape([3, 3]).unwrap()
}

/// X = ones(6, 8) with columns 2..=5 set to 0 (6.2.3).
fn edge_image() -> Tensor<f32> {
    let mut x = Tensor::ones([6, 8]);
    for i in 0..6 {
        for j in 2..6 {
            x.set(&[i, j], 0.0).unwrap();
        }
    }
    x
}

#[test]
fn corr2d_of_the_books_example() {
    // 6.2.1: X = [[0,1,2],[3,4,5],[6,7,8]], K = [[0,1],[2,3]]
    let k = t(&[0., 1., 2., 3.], &[2, 2]);
    let y = corr2d(&d2l_x(), &k).unwrap();
    assert_eq!(y.dims(), &[2, 2]);
    assert_eq!(y.data(), &[19., 25., 37., 43.]);
}

#[test]
fn true_convolution_flips_the_kernel() {
    // 6.2.5: convolving with K equals cross-correlating with K flipped: [[3,2],[1,0]]
    // [[0*3+1*2+3*1+4*0, ...]] = [[5, 11], [23, 29]]
    let k = t(&[0., 1., 2., 3.], &[2, 2]);
    let y = convolve2d(&d2l_x(), &k).unwrap();
    assert_eq!(y.data(), &[5., 11., 23., 29.]);
    assert_eq!(y, corr2d(&d2l_x(), &t(&[3., 2., 1., 0.], &[2, 2])).unwrap());
}

#[test]
fn edge_detection() {
    // 6.2.3: K = [[1, -1]] marks 1 at the white→black edge, -1 at black→white.
    let k = t(&[1., -1.], &[1, 2]);
    let y = corr2d(&edge_image(), &k).unwrap();
    assert_eq!(y.dims(), &[6, 7]);
    for i in 0..6 {
        for j in 0..7 {
            let expected = match j {
                1 => 1.0,
                5 => -1.0,
                _ => 0.0,
            };
            assert_eq!(y.get(&[i, j]).unwrap(), expected, "at ({i}, {j})");
        }
    }
    // The transposed image has horizontal edges: this kernel finds nothing.
    let yt = corr2d(&edge_image().transpose(0, 1).unwrap(), &k).unwrap();
    assert_eq!(yt.dims(), &[8, 5]);
    assert!(yt.data().iter().all(|&v| v == 0.0));
}

fn conv_shape(kernel: (usize, usize), params: Conv2dParams) -> Vec<usize> {
    let x = Tensor::<f32>::zeros([1, 1, 8, 8]);
    let w = Tensor::<f32>::zeros([1, 1, kernel.0, kernel.1]);
    conv2d(&x, &w, None, &params).unwrap().dims()[2..].to_vec()
}

#[test]
fn padding_and_stride_shapes() {
    // 6.3: all on an 8×8 input
    let p = Conv2dParams::default;
    assert_eq!(conv_shape((3, 3), p().padding(1)), [8, 8]);
    assert_eq!(conv_shape((5, 3), p().padding((2, 1))), [8, 8]);
    assert_eq!(conv_shape((3, 3), p().padding(1).stride(2)), [4, 4]);
    assert_eq!(
        conv_shape((3, 5), p().padding((0, 1)).stride((3, 4))),
        [2, 2]
    );
}

fn two_channel_x() -> Tensor<f32> {
    t(
        &[
            0., 1., 2., 3., 4., 5., 6., 7., 8., 1., 2., 3., 4., 5., 6., 7., 8., 9.,
        ],
        &[1, 2, 3, 3],
    )
}

fn two_channel_k() -> Tensor<f32> {
    t(&[0., 1., 2., 3., 1., 2., 3., 4.], &[1, 2, 2, 2])
}

#[test]
fn multiple_input_channels() {
    // 6.4.1: corr2d_multi_in(X, K) = [[56, 72], [104, 120]]
    let y = conv2d(
        &two_channel_x(),
        &two_channel_k(),
        None,
        &Conv2dParams::default(),
    )
    .unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[56., 72., 104., 120.]);
}

#[test]
fn multiple_output_channels() {
    // 6.4.2: K stacked with K + 1 and K + 2 gives three output channels
    let k = two_channel_k();
    let (k1, k2) = (k.add_scalar(1.0), k.add_scalar(2.0));
    let stacked = Tensor::concat(&[&k, &k1, &k2], 0).unwrap();
    assert_eq!(stacked.dims(), &[3, 2, 2, 2]);
    let y = conv2d(&two_channel_x(), &stacked, None, &Conv2dParams::default()).unwrap();
    assert_eq!(
        y.data(),
        &[56., 72., 104., 120., 76., 100., 148., 172., 96., 128., 192., 224.]
    );
}

#[test]
fn one_by_one_convolution_is_a_matmul_over_channels() {
    // 6.4.3: a 1×1 convolution of (c_i, h, w) with (c_o, c_i, 1, 1) is (c_o × c_i) · (c_i × h·w)
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::<f64>::rand_normal([1, 3, 3, 3], 0.0, 1.0, &mut rng).unwrap();
    let k = Tensor::<f64>::rand_normal([2, 3, 1, 1], 0.0, 1.0, &mut rng).unwrap();
    let y1 = conv2d(&x, &k, None, &Conv2dParams::default()).unwrap();
    let y2 = k
        .reshape([2, 3])
        .unwrap()
        .matmul(&x.reshape([3, 9]).unwrap())
        .unwrap()
        .reshape([1, 2, 3, 3])
        .unwrap();
    for (a, b) in y1.data().iter().zip(y2.data()) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn max_and_average_pooling() {
    // 6.5.1: X = [[0,1,2],[3,4,5],[6,7,8]], 2×2 window, stride 1
    let x = d2l_x().reshape([1, 1, 3, 3]).unwrap();
    let p = Pool2dParams::new(2).stride(1);
    assert_eq!(max_pool2d(&x, &p).unwrap().data(), &[4., 5., 7., 8.]);
    assert_eq!(avg_pool2d(&x, &p).unwrap().data(), &[2., 3., 5., 6.]);
}

#[test]
fn pooling_padding_and_stride() {
    // 6.5.2: X = arange(16) as (1, 1, 4, 4)
    let x = Tensor::<f32>::arange(16).reshape([1, 1, 4, 4]).unwrap();
    let y = max_pool2d(&x, &Pool2dParams::new(3)).unwrap();
    assert_eq!(y.data(), &[10.]);
    let y = max_pool2d(&x, &Pool2dParams::new(3).padding(1).stride(2)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[5., 7., 13., 15.]);
    let y = max_pool2d(
        &x,
        &Pool2dParams::new((2, 3)).padding((1, 2)).stride((2, 3)),
    )
    .unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 2]);
    assert_eq!(y.data(), &[0., 3., 8., 11., 12., 15.]);
}

#[test]
fn pooling_acts_per_channel() {
    // 6.5.3: X and X + 1 as two channels: two output channels
    let x = Tensor::<f32>::arange(16).reshape([1, 1, 4, 4]).unwrap();
    let x2 = Tensor::concat(&[&x, &x.add_scalar(1.0)], 1).unwrap();
    let y = max_pool2d(&x2, &Pool2dParams::new(3).padding(1).stride(2)).unwrap();
    assert_eq!(y.dims(), &[1, 2, 2, 2]);
    assert_eq!(y.data(), &[5., 7., 13., 15., 6., 8., 14., 16.]);
}
