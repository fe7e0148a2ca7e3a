//! Trust over whole runs, on a small real subset of Fashion-MNIST: the same seed gives the
//! same network bit for bit (with 1 thread or 2), a run resumed from its saved state ends
//! where an uninterrupted one does, and a diverging run stops with an error that says
//! where, before any weight turns NaN.

mod common;

use common::bits;
use kiln_nn::checkpoint::{load_training_state, save_training_state, TrainingProgress};
use kiln_nn::data::{locate_fashion_mnist, DataLoader, FashionMnist, ImageDataset};
use kiln_nn::train::train_epoch;
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, BlockExt, Init, NnError, Sequential, Sgd, Trainer};
use kiln_tensor::parallel::with_threads;
use std::sync::OnceLock;

/// The first 512 test images (the smaller file reads faster).
fn subset() -> &'static ImageDataset {
    static DATA: OnceLock<ImageDataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = locate_fashion_mnist(None).expect("Fashion-MNIST ships in data/fashion-mnist");
        FashionMnist::new(dir, false).unwrap().take(512)
    })
}

const SEED: u64 = 7;
const BATCH: usize = 64;

fn fresh() -> (Sequential<f32>, Trainer<f32>) {
    let net = lenet::<f32>(Activation::Relu);
    net.initialize(&Init::xavier(), SEED).unwrap();
    net.predict(&kiln_tensor::Tensor::zeros([1, 1, 28, 28]))
        .unwrap(); // fixes the deferred shapes
    let trainer = Trainer::new(net.collect_params(), Sgd::new(0.1).momentum(0.9).wd(1e-4));
    (net, trainer)
}

fn train(net: &Sequential<f32>, trainer: &mut Trainer<f32>, epochs: std::ops::Range<u64>) {
    let mut loader = DataLoader::new(subset(), BATCH).unwrap().shuffle(SEED);
    for epoch in epochs {
        train_epoch(net, loader.epoch::<f32>(epoch), trainer, BATCH, |_| {}).unwrap();
    }
}

fn run(threads: usize, epochs: u64) -> Vec<u32> {
    with_threads(threads, || {
        let (net, mut trainer) = fresh();
        train(&net, &mut trainer, 0..epochs);
        bits(&net)
    })
    .unwrap()
}

#[test]
fn same_seed_same_network_with_one_or_two_threads() {
    let one = run(1, 2);
    assert_eq!(one, run(1, 2), "two runs with one thread differ");
    assert_eq!(one, run(2, 2), "one and two threads differ");
    let (untrained, _) = fresh();
    assert_ne!(one, bits(&untrained), "training changed nothing");
}

#[test]
fn identical_parameters_give_identical_checkpoint_files() {
    let dir = std::env::temp_dir().join(format!("kiln-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str| {
        let (net, mut trainer) = fresh();
        train(&net, &mut trainer, 0..1);
        let path = dir.join(name);
        net.save_parameters(&path).unwrap();
        std::fs::read(path).unwrap()
    };
    assert_eq!(save("a.params"), save("b.params"));
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = std::env::temp_dir().join(format!("kiln-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.state");
    let uninterrupted = run(1, 3);
    with_threads(1, || {
        let (net, mut trainer) = fresh();
        train(&net, &mut trainer, 0..1);
        save_training_state(
            &path,
            &net.collect_params(),
            &trainer,
            TrainingProgress {
                batches: 0,
                epoch: 1,
                seed: SEED,
            },
        )
        .unwrap();
    })
    .unwrap();
    let resumed = with_threads(1, || {
        // a new process would build the same network and trainer, then load
        let net = lenet::<f32>(Activation::Relu);
        let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1).momentum(0.9).wd(1e-4));
        let progress = load_training_state(&path, &net.collect_params(), &mut trainer).unwrap();
        assert_eq!(
            progress,
            TrainingProgress {
                batches: 0,
                epoch: 1,
                seed: SEED
            }
        );
        train(&net, &mut trainer, progress.epoch..3);
        bits(&net)
    })
    .unwrap();
    assert_eq!(uninterrupted, resumed);
}

#[test]
fn divergence_stops_the_epoch_before_weights_turn_nan() {
    let net = lenet::<f32>(Activation::Relu);
    net.initialize(&Init::xavier(), SEED).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(1e6));
    let mut loader = DataLoader::new(subset(), BATCH).unwrap().shuffle(SEED);
    let err = train_epoch(&net, loader.epoch::<f32>(0), &mut trainer, BATCH, |_| {}).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, NnError::Diverged { .. }),
        "unexpected error: {message}"
    );
    assert!(
        message.starts_with("training diverged at step "),
        "{message}"
    );
    assert!(message.contains("lower learning rate"), "{message}");
    for (name, p) in net.collect_params().iter() {
        assert!(
            p.data().unwrap().data().iter().all(|v| !v.is_nan()),
            "{name} holds NaN"
        );
    }
}
