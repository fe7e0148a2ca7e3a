//! Trainer.step with Gluon's meaning: gradients divided by batch_size, weight decay and
//! momentum as MXNet's SGD, refusal of stale gradients. (Hyper-parameters reach MXNet's
//! kernels in float32, even for f64 weights: the values here are exact in float32, so the
//! hand derivations are exact too; `tests/optimizers.rs` covers the rounding.)

use kiln_autograd::Tape;
use kiln_nn::{Block, BlockExt, Dense, Init, Sequential, Sgd, Trainer};
use kiln_tensor::Tensor;

/// y = w·x with one weight, no bias; loss = Σ_batch y, so dL/dw = Σ x.
fn one_weight(w: f64) -> Dense<f64> {
    let d = Dense::new(1)
        .in_units(1)
        .use_bias(false)
        .weight_initializer(Init::Constant(w));
    d.initialize(&Init::default(), 0).unwrap();
    d
}

fn backward_sum(d: &Dense<f64>, xs: &[f64]) {
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_f64s(xs, [xs.len(), 1]).unwrap());
    d.forward(&x).unwrap().sum().unwrap().backward().unwrap();
}

fn weight(d: &Dense<f64>) -> f64 {
    d.weight().data().unwrap().data()[0]
}

#[test]
fn step_divides_by_batch_size_and_decays_weights() {
    let d = one_weight(2.0);
    let mut trainer = Trainer::new(d.collect_params(), Sgd::new(0.5).wd(0.125));
    backward_sum(&d, &[1.0, 3.0]); // g = 4
    trainer.step(2).unwrap();
    // w ← w − lr·wd·w − lr·g/bs = 2 − 0.0625·2 − 0.5·2 = 0.875
    assert_eq!(weight(&d), 0.875);
}

#[test]
fn momentum_accumulates_as_mxnet() {
    let d = one_weight(1.0);
    let mut trainer = Trainer::new(d.collect_params(), Sgd::new(0.25).momentum(0.5));
    backward_sum(&d, &[1.0]); // g = 1
    trainer.step(1).unwrap(); // m = −0.25, w = 0.75
    backward_sum(&d, &[1.0]);
    trainer.step(1).unwrap(); // m = 0.5·(−0.25) − 0.25 = −0.375, w = 0.375
    assert_eq!(weight(&d), 0.375);
    trainer.set_learning_rate(0.0).unwrap();
    backward_sum(&d, &[1.0]);
    trainer.step(1).unwrap(); // m = −0.1875, w = 0.1875
    assert_eq!(weight(&d), 0.1875);
}

#[test]
fn stale_gradients_are_refused_unless_ignored() {
    let (a, b) = (one_weight(1.0), one_weight(1.0));
    let net = Sequential::new().add(a).add(b);
    net.collect_params();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.125));
    // backward through the first layer only
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_f64s(&[1.0], [1, 1]).unwrap());
    net[0]
        .forward(&x)
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    let err = trainer.step(1).unwrap_err();
    assert!(
        err.to_string()
            .contains("dense1_weight was not refreshed by a backward"),
        "{err}"
    );
    let before = net
        .collect_params()
        .get("0.weight")
        .unwrap()
        .data()
        .unwrap()
        .data()[0];
    assert_eq!(before, 1.0, "nothing is updated when step refuses");
    let mut trainer = trainer_ignoring(net.collect_params());
    trainer.step(1).unwrap();
    let after = net
        .collect_params()
        .get("0.weight")
        .unwrap()
        .data()
        .unwrap()
        .data()[0];
    assert_eq!(after, 0.875);
    // a second step without a new backward: everything is stale now
    let mut strict = Trainer::new(net.collect_params(), Sgd::new(0.1));
    assert!(strict.step(1).is_err());
    assert!(strict.step(0).is_err(), "batch size 0");
}

fn trainer_ignoring(params: kiln_nn::ParameterDict<f64>) -> Trainer<f64> {
    Trainer::new(params, Sgd::new(0.125)).ignore_stale_grad(true)
}

#[test]
fn same_seed_same_parameters() {
    let make = |seed| {
        let net = kiln_nn::zoo::lenet::<f32>(kiln_nn::Activation::Sigmoid);
        net.initialize(&Init::xavier(), seed).unwrap();
        net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap();
        net.collect_params()
            .iter()
            .map(|(_, p)| p.data().unwrap().data().to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(make(5), make(5));
    assert_ne!(make(5), make(6));
}
