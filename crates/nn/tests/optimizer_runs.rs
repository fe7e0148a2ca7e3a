//! Optimizers over whole runs: a run resumed from its saved training state ends bit for
//! bit where an uninterrupted one does, for every optimizer (with a schedule); the update
//! counts follow Gluon's (per parameter for Adam's `t`, the lagging-parameter rule); and
//! a state of another optimizer, or of an older format, is refused.

use kiln_autograd::Tape;
use kiln_nn::checkpoint::{load_training_state, save_training_state, TrainingProgress};
use kiln_nn::{
    AdaDelta, AdaGrad, Adam, AdamW, Block, BlockExt, CosineScheduler, Dense, FactorScheduler, Init,
    MultiFactorScheduler, Nag, NnError, Optimizer, Parameter, RmsProp, Sequential, Sgd, Trainer,
    WarmupMode,
};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::Tensor;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-optim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A small f32 network with fixed initial weights (shapes fixed by a first forward).
fn net() -> Sequential<f32> {
    let net = Sequential::new()
        .add(Dense::new(5).activation(kiln_nn::Activation::Sigmoid))
        .add(Dense::new(3));
    net.initialize(&Init::xavier(), 3).unwrap();
    net.predict(&Tensor::zeros([1, 4])).unwrap();
    net
}

/// Batch `k` of 8 samples: inputs and regression targets, the same in every run.
fn batch(k: u64) -> (Tensor<f32>, Tensor<f32>) {
    let mut rng = StdRng::seed_from_u64(100 + k);
    (
        Tensor::rand_uniform([8, 4], -1.0, 1.0, &mut rng),
        Tensor::rand_uniform([8, 3], -1.0, 1.0, &mut rng),
    )
}

/// Steps `range` of the run: squared error, backward, step(8).
fn train(net: &Sequential<f32>, trainer: &mut Trainer<f32>, range: std::ops::Range<u64>) {
    for k in range {
        let (x, y) = batch(k);
        let tape = Tape::new();
        let out = net.forward(&tape.constant(x)).unwrap();
        let loss = out.sub(&tape.constant(y)).unwrap().square().unwrap();
        loss.sum().unwrap().backward().unwrap();
        trainer.step(8).unwrap();
    }
}

fn bits(net: &Sequential<f32>) -> Vec<u32> {
    let params = net.collect_params();
    params
        .iter()
        .flat_map(|(_, p)| p.data().unwrap().data().to_vec())
        .map(f32::to_bits)
        .collect()
}

/// A trainer for `net` with `optimizer`, the biases without weight decay, and a schedule
/// whose rate changes at every step.
fn trainer<O: Optimizer<f32> + Clone + 'static>(
    net: &Sequential<f32>,
    optimizer: &O,
) -> Trainer<f32> {
    let params = net.collect_params();
    params.filter(|k, _| k.ends_with("bias")).set_wd_mult(0.0);
    Trainer::new(params, optimizer.clone())
        .lr_scheduler(
            CosineScheduler::new(10)
                .base_lr(0.05)
                .warmup(3, 0.01, WarmupMode::Linear),
        )
        .unwrap()
}

/// Six steps straight, against three, save, load into a fresh network and trainer,
/// three more: the same bits, the same state.
fn resumes_bit_for_bit<O: Optimizer<f32> + Clone + 'static>(optimizer: O) {
    let name = Optimizer::<f32>::name(&optimizer);
    let straight = net();
    let mut t = trainer(&straight, &optimizer);
    train(&straight, &mut t, 0..6);

    let path = tmp(&format!("{name}.state"));
    let first = net();
    let mut t1 = trainer(&first, &optimizer);
    train(&first, &mut t1, 0..3);
    let progress = TrainingProgress {
        epoch: 3,
        batches: 0,
        seed: 0,
    };
    save_training_state(&path, &first.collect_params(), &t1, progress).unwrap();

    let resumed = Sequential::new()
        .add(Dense::<f32>::new(5).activation(kiln_nn::Activation::Sigmoid))
        .add(Dense::new(3));
    let mut t2 = trainer(&resumed, &optimizer);
    assert_eq!(
        load_training_state(&path, &resumed.collect_params(), &mut t2).unwrap(),
        progress
    );
    assert_eq!(t2.num_update(), 3);
    assert_eq!(t2.states(), t1.states(), "{name}: the state as saved");
    train(&resumed, &mut t2, 3..6);
    assert_ne!(
        bits(&straight),
        bits(&net()),
        "{name}: training changed nothing"
    );
    assert_eq!(
        bits(&resumed),
        bits(&straight),
        "{name}: resumed run differs"
    );
    assert_eq!(t2.states(), t.states(), "{name}: optimizer state differs");
    assert_eq!(t2.num_update(), 6);
}

#[test]
fn every_optimizer_resumes_bit_for_bit() {
    resumes_bit_for_bit(Sgd::new(0.1).wd(1e-3));
    resumes_bit_for_bit(Sgd::new(0.1).momentum(0.9).wd(1e-3));
    resumes_bit_for_bit(Nag::new(0.1).momentum(0.9).wd(1e-3));
    resumes_bit_for_bit(Adam::default().wd(1e-3));
    resumes_bit_for_bit(AdamW::default().wd(1e-2));
    resumes_bit_for_bit(RmsProp::default());
    resumes_bit_for_bit(RmsProp::default().centered(true).clip_gradient(0.5));
    resumes_bit_for_bit(AdaGrad::default());
    resumes_bit_for_bit(AdaDelta::new().wd(1e-3));
}

#[test]
fn the_state_of_another_optimizer_or_format_is_refused() {
    let path = tmp("sgd.state");
    let a = net();
    let mut sgd = Trainer::new(a.collect_params(), Sgd::new(0.1).momentum(0.9));
    train(&a, &mut sgd, 0..1);
    let progress = TrainingProgress {
        epoch: 1,
        batches: 0,
        seed: 0,
    };
    save_training_state(&path, &a.collect_params(), &sgd, progress).unwrap();

    let b = net();
    let before = bits(&b);
    let mut adam = Trainer::new(b.collect_params(), Adam::default());
    let err = load_training_state(&path, &b.collect_params(), &mut adam).unwrap_err();
    assert!(matches!(err, NnError::Checkpoint { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("holds the state of optimizer SGD, but the trainer's optimizer is Adam"),
        "{message}"
    );
    // SGD without momentum keeps no tensors: the file's momentum does not fit
    let mut plain = Trainer::new(b.collect_params(), Sgd::new(0.1));
    let message = load_training_state(&path, &b.collect_params(), &mut plain)
        .unwrap_err()
        .to_string();
    assert!(message.contains("momentum"), "{message}");
    assert_eq!(bits(&b), before, "a refused load changes nothing");
    assert_eq!(adam.num_update(), 0);

    // a training state of format version 1 (SGD's momentum only)
    let mut old = std::fs::read(&path).unwrap();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, &old).unwrap();
    let message = load_training_state(&path, &b.collect_params(), &mut sgd)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("format version 1 is not supported (this kiln reads versions 3 and 4)"),
        "{message}"
    );
}

/// Two one-weight layers `[b, a]`, weights 1.
fn two_layers() -> (Sequential<f64>, Parameter<f64>, Parameter<f64>) {
    let net = Sequential::new()
        .add(Dense::<f64>::new(1).in_units(1).use_bias(false))
        .add(Dense::<f64>::new(1).in_units(1).use_bias(false));
    net.initialize(&Init::One, 0).unwrap();
    let params = net.collect_params();
    let b = params.get("0.weight").unwrap().clone();
    let a = params.get("1.weight").unwrap().clone();
    (net, b, a)
}

fn grad(p: &Parameter<f64>, g: f64) {
    p.leaf()
        .unwrap()
        .set_grad(Tensor::from_f64s(&[g], [1, 1]).unwrap())
        .unwrap();
}

fn value(p: &Parameter<f64>) -> f64 {
    p.data().unwrap().data()[0]
}

#[test]
fn a_parameter_first_updated_late_starts_adams_count_at_one() {
    let (net, b, a) = two_layers();
    let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.1)).ignore_stale_grad(true);
    for _ in 0..2 {
        grad(&a, 1.0);
        trainer.step(1).unwrap();
    }
    grad(&a, 1.0);
    grad(&b, 1.0);
    trainer.step(1).unwrap();
    let counts: Vec<_> = trainer.states().iter().map(|s| s.count).collect();
    assert_eq!(counts, [Some(1), Some(3)], "b updated once, a three times");
    assert_eq!(trainer.num_update(), 3);
    // b's one update is Adam's first: the same as a fresh trainer's first step
    let (fresh, fb, _) = two_layers();
    let mut first = Trainer::new(fresh.collect_params(), Adam::new(0.1)).ignore_stale_grad(true);
    grad(&fb, 1.0);
    first.step(1).unwrap();
    assert_eq!(value(&b), value(&fb));
    assert_ne!(value(&b), value(&a));
}

#[test]
fn a_lagging_parameter_reads_the_rate_before_the_others_count() {
    // MXNet counts the update of each parameter before reading the rate at
    // num_update = max(counts). b (first in order) lags a by 5: at step 6, b counts to 1
    // while num_update is still 5 (rate 1), then a counts to 6 (rate 0.5). SGD counts
    // four parameters at a time, so both see 0.5.
    let schedule = || MultiFactorScheduler::new([5], 0.5).base_lr(1.0);
    let run = |make: &dyn Fn(kiln_nn::ParameterDict<f64>) -> Trainer<f64>| {
        let (net, b, a) = two_layers();
        let mut trainer = make(net.collect_params()).ignore_stale_grad(true);
        for _ in 0..5 {
            grad(&a, 1.0);
            trainer.step(1).unwrap();
        }
        let (b0, a0) = (value(&b), value(&a));
        grad(&a, 1.0);
        grad(&b, 1.0);
        trainer.step(1).unwrap();
        (b0 - value(&b), a0 - value(&a))
    };
    let nag = run(&|p| {
        Trainer::new(p, Nag::new(0.0))
            .lr_scheduler(schedule())
            .unwrap()
    });
    assert_eq!(nag, (1.0, 0.5));
    let sgd = run(&|p| {
        Trainer::new(p, Sgd::new(0.0))
            .lr_scheduler(schedule())
            .unwrap()
    });
    assert_eq!(sgd, (0.5, 0.5));
}

#[test]
fn lr_mult_scales_the_scheduled_rate_and_bad_multipliers_are_refused() {
    let (net, b, a) = two_layers();
    b.set_lr_mult(0.25);
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.0))
        .lr_scheduler(FactorScheduler::new(10, 0.5).base_lr(2.0))
        .unwrap();
    grad(&a, 1.0);
    grad(&b, 1.0);
    trainer.step(1).unwrap();
    assert_eq!((value(&a), value(&b)), (1.0 - 2.0, 1.0 - 0.5));
    a.set_wd_mult(f64::NAN);
    grad(&a, 1.0);
    grad(&b, 1.0);
    let message = trainer.step(1).unwrap_err().to_string();
    assert!(message.contains("wd_mult NaN"), "{message}");
    assert!(message.contains(&a.name()), "{message}");
    assert_eq!(value(&b), 0.5, "nothing changed");
}

#[test]
fn set_learning_rate_and_num_update() {
    let (net, _, a) = two_layers();
    let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.1)).ignore_stale_grad(true);
    let message = trainer.set_learning_rate(f64::NAN).unwrap_err().to_string();
    assert!(
        message.contains("Adam") && message.contains("NaN"),
        "{message}"
    );
    trainer.set_learning_rate(0.2).unwrap();
    assert_eq!(trainer.learning_rate(), 0.2);
    // Gluon's begin_num_update: a parameter not updated yet counts from it
    trainer.set_num_update(10);
    grad(&a, 1.0);
    trainer.step(1).unwrap();
    assert_eq!(trainer.num_update(), 11);
    assert_eq!(trainer.states()[1].count, Some(11));
    assert_eq!(trainer.states()[0].count, None);
}
