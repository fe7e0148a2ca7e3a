//! `DataParallel`: the shards' summed gradient is the whole batch's gradient, the numbers
//! depend on the number of shards and never on the number of threads, predictions match
//! the network's own, and a failing shard leaves the threads ready for the next batch.

mod common;

use common::bits;
use kiln_autograd::RandomKey;
use kiln_nn::data::{Batch, DataLoader, FashionMnist, ImageDataset};
use kiln_nn::train::{batch_gradient, evaluate_accuracy};
use kiln_nn::zoo::lenet;
use kiln_nn::{
    Activation, BlockExt, DataParallel, Dense, Init, Labels, NnError, Sequential, Sgd,
    SoftmaxCrossEntropyLoss, Trainer,
};
use kiln_tensor::rand::{rngs::StdRng, RngExt, SeedableRng};
use kiln_tensor::{Float, Tensor};

fn make<T: Float>() -> Sequential<T> {
    lenet::<T>(Activation::Sigmoid)
}

fn batch<T: Float>(n: usize, seed: u64) -> (Tensor<T>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Tensor::<T>::rand_normal([n, 1, 28, 28], T::ZERO, T::ONE, &mut rng).unwrap();
    let labels = (0..n).map(|_| rng.random_range(0..10)).collect();
    (x, labels)
}

fn grads<T: Float>(net: &Sequential<T>) -> Vec<Vec<f64>> {
    net.collect_params()
        .iter()
        .map(|(_, p)| {
            p.grad()
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_f64())
                .collect()
        })
        .collect()
}

#[test]
fn shard_gradients_sum_to_the_whole_batch_gradient() {
    let (x, labels) = batch::<f64>(10, 1);
    let whole = make::<f64>();
    whole.initialize(&Init::xavier(), 3).unwrap();
    let key = RandomKey::for_step(0);
    let reference = batch_gradient(
        &whole,
        &SoftmaxCrossEntropyLoss,
        x.clone(),
        (&labels).into(),
        key,
    )
    .unwrap();
    let expected = grads(&whole);
    // 10 images in 3 shards of 4, 4 and 2, on 2 threads: uneven shards, one thread doing two
    for (shards, threads) in [(2, 2), (3, 2), (3, 1), (10, 3)] {
        let net = make::<f64>();
        net.initialize(&Init::xavier(), 3).unwrap();
        let parallel = DataParallel::new(&net, make::<f64>, shards, threads).unwrap();
        let outcome = parallel
            .gradient(x.clone(), &labels, RandomKey::for_step(0))
            .unwrap();
        assert!((outcome.loss - reference.loss).abs() < 1e-9 * reference.loss.abs());
        assert_eq!(outcome.scores.shape(), reference.scores.shape());
        let mut worst = 0.0f64;
        for (g, e) in grads(&net).iter().zip(&expected) {
            for (g, e) in g.iter().zip(e) {
                worst = worst.max((g - e).abs() / e.abs().max(1e-6));
            }
        }
        assert!(
            worst < 1e-9,
            "{shards} shards on {threads} threads: relative error {worst:e}"
        );
    }
}

/// Three training steps of a network whose shapes are still deferred at the start.
fn train_steps(shards: usize, threads: usize) -> Vec<u32> {
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 5).unwrap();
    let parallel = DataParallel::new(&net, make::<f32>, shards, threads).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.5).momentum(0.9));
    for step in 0..3 {
        let (x, labels) = batch::<f32>(37, 10 + step);
        parallel
            .gradient(x, &labels, RandomKey::for_step(0))
            .unwrap();
        trainer.step(37).unwrap();
    }
    bits(&net)
}

#[test]
fn the_number_of_threads_never_changes_a_bit() {
    // threads take shards as they free up, so which thread computes which shard varies
    // from run to run; the sums must not
    for shards in [2, 3, 7] {
        let one = train_steps(shards, 1);
        for run in 0..3 {
            let (two, three) = (train_steps(shards, 2), train_steps(shards, 3));
            assert_eq!(one, two, "{shards} shards: 1 vs 2 threads, run {run}");
            assert_eq!(one, three, "{shards} shards: 1 vs 3 threads, run {run}");
        }
    }
    // a different number of shards adds the gradient in a different order: close, not equal
    let (two, three) = (train_steps(2, 2), train_steps(3, 2));
    assert_ne!(two, three);
    let worst = two
        .iter()
        .zip(&three)
        .map(|(&a, &b)| (f32::from_bits(a) - f32::from_bits(b)).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "2 vs 3 shards differ by {worst}");
}

#[test]
fn a_shared_batch_gives_the_same_bits_and_stays_as_it_was() {
    // the bench trains on one batch again and again, shared rather than copied
    let (x, labels) = batch::<f32>(37, 10);
    let shared = std::sync::Arc::new(x.clone());
    let mut runs = Vec::new();
    for images in [Some(shared.clone()), None] {
        let net = make::<f32>();
        net.initialize(&Init::xavier(), 5).unwrap();
        let parallel = DataParallel::new(&net, make::<f32>, 3, 2).unwrap();
        let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.5));
        for _ in 0..2 {
            match &images {
                Some(images) => parallel
                    .gradient(images.clone(), &labels, RandomKey::for_step(0))
                    .unwrap(),
                None => parallel
                    .gradient(x.clone(), &labels, RandomKey::for_step(0))
                    .unwrap(),
            };
            trainer.step(37).unwrap();
        }
        runs.push(bits(&net));
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(*shared, x);
}

#[test]
fn predictions_are_the_networks_own_in_order() {
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 2).unwrap();
    let (x, _) = batch::<f32>(21, 4);
    let expected = net.predict(&x).unwrap();
    let parallel = DataParallel::new(&net, make::<f32>, 4, 2).unwrap();
    let scores = parallel.predict(x.clone()).unwrap();
    assert_eq!(scores.dims(), &[21, 10]);
    for (a, b) in scores.data().iter().zip(expected.data()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let serial = DataParallel::new(&net, make::<f32>, 4, 1).unwrap();
    assert_eq!(serial.predict(x).unwrap(), scores);
}

#[test]
fn evaluation_and_epochs_agree_with_the_plain_loop() {
    let dir = kiln_nn::data::locate_fashion_mnist(None).unwrap();
    let data: ImageDataset = FashionMnist::new(dir, false).unwrap().take(200);
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 0).unwrap();
    let mut loader = DataLoader::new(&data, 64).unwrap();
    let parallel = DataParallel::new(&net, make::<f32>, 2, 2).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.9));
    let stats = parallel
        .train_epoch(loader.epoch::<f32>(0), &mut trainer, 64, |_| {})
        .unwrap();
    assert_eq!((stats.samples, stats.steps), (200, 4));
    let plain = evaluate_accuracy(&net, loader.epoch::<f32>(0)).unwrap();
    let shared = parallel.evaluate_accuracy(loader.epoch::<f32>(0)).unwrap();
    assert!((plain - shared).abs() <= 1.0 / 200.0, "{plain} vs {shared}");
}

#[test]
fn a_failing_shard_is_reported_and_the_next_batch_still_runs() {
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 0).unwrap();
    let parallel = DataParallel::new(&net, make::<f32>, 2, 2).unwrap();
    let (x, labels) = batch::<f32>(8, 0);
    parallel
        .gradient(x.clone(), &labels, RandomKey::for_step(0))
        .unwrap();
    // a NaN weight: both threads' shards fail; the error names the layer that saw it
    let w = net.collect_params().get("0.weight").unwrap().clone();
    let good = w.data().unwrap().as_ref().clone();
    let mut bad = good.clone();
    bad.data_mut()[0] = f32::NAN;
    w.set_data(bad).unwrap();
    let err = parallel
        .gradient(x.clone(), &labels, RandomKey::for_step(0))
        .unwrap_err();
    assert!(matches!(err.root(), NnError::NonFinite { .. }), "{err}");
    // the loop turns it into a divergence that names the step
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
    let one = vec![Batch {
        images: x.clone(),
        labels: Labels::Classes(labels.clone()),
    }];
    let err = parallel
        .train_epoch(one.into_iter(), &mut trainer, 8, |_| {})
        .unwrap_err();
    assert!(matches!(err, NnError::Diverged { step: 1, .. }), "{err}");
    w.set_data(good).unwrap();
    parallel
        .gradient(x, &labels, RandomKey::for_step(0))
        .unwrap();
    trainer.step(8).unwrap();
}

#[test]
fn bad_arguments_are_errors_that_say_what() {
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 0).unwrap();
    let err = DataParallel::new(&net, make::<f32>, 0, 1).err().unwrap();
    assert!(err.to_string().contains("0 shards"), "{err}");
    let other = || Sequential::<f32>::new().add(Dense::new(10));
    let err = DataParallel::new(&net, other, 2, 2).err().unwrap();
    assert!(err.to_string().contains("differ"), "{err}");
    let parallel = DataParallel::new(&net, make::<f32>, 2, 2).unwrap();
    let (x, _) = batch::<f32>(4, 0);
    let err = parallel
        .gradient(x, &[1, 2], RandomKey::for_step(0))
        .unwrap_err();
    assert!(err.to_string().contains("got 2 labels"), "{err}");
    let err = parallel.predict(Tensor::zeros([0, 1, 28, 28])).unwrap_err();
    assert!(err.to_string().contains("at least one image"), "{err}");
    // once the first batch has fixed the shapes, a wrongly shaped batch fails in the
    // layer, on either thread, with the layer's name
    parallel.predict(Tensor::zeros([4, 1, 28, 28])).unwrap();
    let err = parallel.predict(Tensor::zeros([4, 3, 28, 28])).unwrap_err();
    assert!(err.to_string().contains("conv0"), "{err}");
    assert_eq!((parallel.threads(), parallel.shards()), (2, 2));
}

/// A small network with state (BatchNorm) and random draws (Dropout).
fn stateful_net() -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(16).activation(Activation::Relu))
        .add(kiln_nn::BatchNorm::new())
        .add(kiln_nn::Dropout::new(0.5))
        .add(Dense::new(10))
}

#[test]
fn shard_gradients_of_runs_of_shards_summed_in_order_are_gradients_bits() {
    // 37 samples in 5 shards of 8, 8, 8, 8, 5, computed as two runs of shards (0..2 and
    // 2..5, as two processes would) and summed in shard order: the first shard's gradient
    // is the sum, each next one added; the state is the mean of the shards' states
    let x = Tensor::<f32>::rand_normal([37, 12], 0.0, 1.0, &mut StdRng::seed_from_u64(8)).unwrap();
    let labels: Vec<usize> = (0..37).map(|i| (i * 3) % 10).collect();
    let key = RandomKey::for_step(4);
    let fresh = || {
        let net = stateful_net();
        net.initialize(&Init::xavier(), 6).unwrap();
        net.predict(&x.slice_axis(0, 0, 1).unwrap()).unwrap();
        net
    };
    let whole = fresh();
    let parallel = DataParallel::new(&whole, stateful_net, 5, 2).unwrap();
    let outcome = parallel.gradient(x.clone(), &labels, key).unwrap();

    let net = fresh();
    let parallel = DataParallel::new(&net, stateful_net, 5, 2).unwrap();
    let before = bits(&net);
    let mut shards = Vec::new();
    for (start, end) in [(0, 16), (16, 37)] {
        let part = x.slice_axis(0, start, end).unwrap();
        let got = parallel
            .shard_gradients(part, &labels[start..end], 8, key.offset(start as u64))
            .unwrap();
        assert_eq!(got.len(), (end - start).div_ceil(8));
        shards.extend(got);
    }
    // nothing was left behind: no fresh gradient, the state as it was
    assert_eq!(bits(&net), before);
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
    assert!(trainer.step(37).is_err(), "no gradient is left fresh");

    assert_eq!(shards.len(), 5);
    let loss = shards.iter().fold(0.0, |l, s| l + s.outcome.loss);
    assert_eq!(loss.to_bits(), outcome.loss.to_bits());
    let scores: Vec<&Tensor<f32>> = shards.iter().map(|s| &s.outcome.scores).collect();
    assert_eq!(Tensor::concat(&scores, 0).unwrap(), outcome.scores);
    let params = whole.collect_params().into_params();
    let states: Vec<usize> = (0..params.len())
        .filter(|&i| params[i].is_state())
        .collect();
    assert_eq!(states.len(), 2, "running mean and variance");
    for (i, p) in params.iter().enumerate() {
        let expected = match states.iter().position(|&s| s == i) {
            Some(k) => {
                let mut sum = shards[0].states[k].data().to_vec();
                for s in &shards[1..] {
                    sum.iter_mut()
                        .zip(s.states[k].data())
                        .for_each(|(a, b)| *a += *b);
                }
                sum.iter_mut().for_each(|v| *v /= 5.0);
                assert_eq!(p.data().unwrap().data(), &sum[..], "{}", p.name());
                continue;
            }
            None => p.grad().unwrap(),
        };
        let mut sum = shards[0].grads[i].as_ref().unwrap().data().to_vec();
        for s in &shards[1..] {
            let g = s.grads[i].as_ref().unwrap();
            sum.iter_mut().zip(g.data()).for_each(|(a, b)| *a += *b);
        }
        let same = sum
            .iter()
            .zip(expected.data())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{}: the in-order sum differs from gradient's",
            p.name()
        );
    }
    assert!(parallel
        .shard_gradients(x.clone(), &labels, 0, key)
        .unwrap_err()
        .to_string()
        .contains("shard_size"));
}

#[test]
fn predict_in_shards_of_a_run_of_shards_is_predict_of_the_whole_batch() {
    let net = make::<f32>();
    net.initialize(&Init::xavier(), 2).unwrap();
    let (x, _) = batch::<f32>(21, 4);
    let parallel = DataParallel::new(&net, make::<f32>, 4, 2).unwrap();
    // 21 images in 4 shards of 6: shards 1..4 are images 6..21
    let whole = parallel.predict(x.clone()).unwrap();
    let part = parallel
        .predict_in_shards(x.slice_axis(0, 6, 21).unwrap(), 6)
        .unwrap();
    assert_eq!(part, whole.slice_axis(0, 6, 21).unwrap());
    assert!(parallel.predict_in_shards(x, 0).is_err());
}
