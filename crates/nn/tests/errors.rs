//! The mistakes users make get errors that name the layer and the shapes.

use kiln_autograd::{AutogradError, Var};
use kiln_nn::{zoo::lenet, Activation, Block, BlockExt, Conv2D, Dense, Init, MaxPool2D, NnError};
use kiln_nn::{Sequential, SoftmaxCrossEntropyLoss};
use kiln_tensor::Tensor;

#[test]
fn backward_after_a_forward_on_no_tape_says_to_record_on_one() {
    // a first user's training step: the forward runs in predict mode on a value of no
    // tape, and the backward can only fail; the error says how to record
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let x = Tensor::<f32>::zeros([2, 1, 28, 28]);
    let y = net.forward(&Var::constant(x)).unwrap();
    let loss = SoftmaxCrossEntropyLoss.forward(&y, &[3, 7]).unwrap();
    let err = loss.sum().unwrap().backward().unwrap_err();
    assert_eq!(err, AutogradError::NoTape);
    assert!(
        NnError::from(err)
            .to_string()
            .ends_with("to train, record on a tape: `let tape = Tape::new(); let y = net.forward(&tape.constant(x))?;`"),
    );
}

#[test]
fn dense_fed_the_wrong_number_of_features() {
    let net = Sequential::<f32>::new().add(Dense::new(120).in_units(400));
    net.initialize(&Init::default(), 0).unwrap();
    let err = net.predict(&Tensor::zeros([2, 16, 4, 4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dense0: dense: input [2, 16, 4, 4] (read as [2, 256]) does not fit weight [120, 400] \
         (expected input (N, 400))"
    );
}

#[test]
fn conv2d_fed_the_wrong_number_of_channels() {
    let net = Sequential::<f32>::new().add(Conv2D::new(6, 5).in_channels(3));
    net.initialize(&Init::default(), 0).unwrap();
    let err = net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conv0: conv2d: input has 1 channels, weight expects 3 (input [1, 1, 28, 28], weight [6, 3, 5, 5])"
    );
}

#[test]
fn pool_window_larger_than_its_input() {
    let net = Sequential::<f32>::new()
        .add(MaxPool2D::new(2))
        .add(MaxPool2D::new(3));
    net.initialize(&Init::default(), 0).unwrap();
    let err = net.predict(&Tensor::zeros([1, 1, 4, 4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool1: max_pool2d: window 3×3 is larger than the padded input 2×2 (input [1, 1, 2, 2], padding (0, 0))"
    );
}

#[test]
fn forward_before_initialize() {
    let net = Sequential::<f32>::new().add(Dense::new(10));
    let err = net.predict(&Tensor::zeros([1, 4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dense: weight: is not initialized: call initialize() on the network before the first forward"
    );
    net.collect_params(); // names the blocks
    let err = net.predict(&Tensor::zeros([1, 4])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("dense0: dense0_weight: is not initialized"),
        "{err}"
    );
}
