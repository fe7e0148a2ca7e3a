//! Gradient checks of whole blocks (input and every parameter), in f64.

use kiln_autograd::GradcheckOptions;
use kiln_nn::zoo::lenet;
use kiln_nn::{
    gradcheck_block, Activation, AvgPool2D, BlockExt, Conv2D, Dense, Init, MaxPool2D, Sequential,
};
use kiln_tensor::rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use kiln_tensor::Tensor;

fn input(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Distinct values 0.01 apart: no max-pooling window has ties.
fn tie_free(shape: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| 0.01 * i as f64 - 0.005 * n as f64).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    Tensor::from_f64s(&v, shape).unwrap()
}

fn assert_block<B: kiln_nn::Block<f64>>(block: &B, x: Tensor<f64>) {
    block.initialize(&Init::uniform(0.5), 1).unwrap();
    let report = gradcheck_block(block, &x, GradcheckOptions::default()).unwrap();
    assert!(report.passed(1e-6), "{report}");
}

#[test]
fn gradcheck_conv2d_block_every_option() {
    assert_block(
        &Conv2D::<f64>::new(4, 3).activation(Activation::Tanh),
        input(&[2, 2, 6, 6], 1),
    );
    assert_block(
        &Conv2D::<f64>::new(4, (2, 3))
            .strides(2)
            .padding((1, 2))
            .dilation((2, 1))
            .groups(2)
            .use_bias(false),
        input(&[2, 4, 7, 8], 2),
    );
    assert_block(
        &Conv2D::<f64>::new(3, 1).activation(Activation::SoftRelu),
        input(&[1, 5, 3, 3], 3),
    );
}

#[test]
fn gradcheck_dense_block() {
    assert_block(
        &Dense::<f64>::new(5).activation(Activation::Sigmoid),
        input(&[3, 2, 2, 2], 4),
    );
    assert_block(
        &Dense::<f64>::new(2).flatten(false).use_bias(false),
        input(&[2, 3, 4], 5),
    );
}

#[test]
fn gradcheck_pool_blocks() {
    assert_block(
        &MaxPool2D::new(3).strides(2).padding(1).ceil_mode(true),
        tie_free(&[2, 2, 6, 7], 6),
    );
    assert_block(
        &AvgPool2D::new((2, 3)).padding(1).count_include_pad(false),
        input(&[1, 3, 5, 5], 7),
    );
    assert_block(&AvgPool2D::new(2).ceil_mode(true), input(&[1, 1, 5, 5], 8));
}

#[test]
fn gradcheck_small_sequential() {
    let net = Sequential::<f64>::new()
        .add(Conv2D::new(3, 3).padding(1).activation(Activation::Relu))
        .add(AvgPool2D::new(2))
        .add(Dense::new(4).activation(Activation::Tanh))
        .add(Dense::new(2));
    assert_block(&net, input(&[2, 1, 6, 6], 9));
}

#[test]
fn gradcheck_softsign_alone_and_fused() {
    // Gluon's Activation('softsign'), alone and fused into Conv2D (pooled) and Dense
    let softsign = Activation::from_name("softsign").unwrap();
    assert_block(&softsign, input(&[2, 3], 11));
    let net = Sequential::<f64>::new()
        .add(Conv2D::new(2, 3).activation(softsign))
        .add(MaxPool2D::new(2))
        .add(Dense::new(3).activation(softsign));
    assert_block(&net, input(&[2, 1, 6, 6], 12));
}

#[test]
fn gradcheck_lenet_f64() {
    // The whole book network, sigmoid as in the chapter; 300 sampled elements per tensor.
    let net = lenet::<f64>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let x = Tensor::rand_uniform([2, 1, 28, 28], 0.0, 1.0, &mut StdRng::seed_from_u64(10));
    let options = GradcheckOptions {
        max_elements_per_leaf: Some(300),
        ..Default::default()
    };
    let report = gradcheck_block(&net, &x, options).unwrap();
    assert!(report.checked > 1800, "{report}");
    assert!(report.passed(1e-6), "{report}");
}
