//! The pieces of D2L chapter 7 (issue "Beyond LeNet, part 1"): BatchNorm against hand
//! derivations, its running statistics under DataParallel and in checkpoints, dropout's
//! masks across threads, the D2L blocks' shapes and counts, summaries of multi-branch
//! networks, grad_req, forward hooks and fusion, and the errors of each.

mod common;

use common::bits;
use kiln_autograd::{GradReq, RandomKey, Tape, Var};
use kiln_nn::zoo::{resnet_block, transition_block, DenseBlock, Inception, Residual};
use kiln_nn::{
    gradcheck_block, Activation, BatchNorm, Block, BlockExt, Concatenate, Conv2D, DataParallel,
    Dense, Dropout, GlobalAvgPool2D, GlobalMaxPool2D, Identity, Init, LeakyReLU, MaxPool2D, PReLU,
    ReceptiveField, Sequential, Sgd, SoftmaxCrossEntropyLoss, Swish, Trainer, ELU, GELU, SELU,
};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::{Float, Hw, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

fn normal<T: Float>(shape: &[usize], scale: f64, seed: u64) -> Tensor<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::rand_normal(shape, T::ZERO, T::from_f64(scale), &mut rng).unwrap()
}

/// Per-channel (mean, biased variance) of an (N, C, …) tensor, in f64 by plain loops.
fn channel_stats(t: &Tensor<f64>) -> Vec<(f64, f64)> {
    let (n, c) = (t.dims()[0], t.dims()[1]);
    let inner = t.numel() / (n * c);
    (0..c)
        .map(|ch| {
            let vals: Vec<f64> = (0..n)
                .flat_map(|i| t.data()[(i * c + ch) * inner..][..inner].to_vec())
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            (mean, var)
        })
        .collect()
}

#[test]
fn batch_norm_output_has_mean_zero_and_variance_one_per_channel() {
    // (N, C, H, W) and (N, C): gamma 1, beta 0, training mode
    for shape in [&[4usize, 3, 5, 5][..], &[16, 7][..]] {
        let bn = BatchNorm::<f64>::new();
        bn.initialize(&Init::default(), 0).unwrap();
        let x = normal::<f64>(shape, 10.0, 1).add_scalar(3.0);
        let tape = Tape::new();
        let y = bn.forward(&tape.constant(x.clone())).unwrap();
        for (ch, ((m, v), (_, vx))) in channel_stats(y.value())
            .into_iter()
            .zip(channel_stats(&x))
            .enumerate()
        {
            assert!(m.abs() < 1e-6, "{shape:?} channel {ch}: mean {m}");
            // var(y) = var(x) / (var(x) + eps), eps = 1e-5
            assert!((v - vx / (vx + 1e-5)).abs() < 1e-9, "channel {ch}: var {v}");
            assert!((v - 1.0).abs() < 1e-6, "channel {ch}: var {v}");
        }
    }
}

#[test]
fn running_statistics_after_one_step_are_the_formula_on_the_batch() {
    // Conv2D → BatchNorm; a hook on the convolution gives the batch BatchNorm saw
    let net = Sequential::<f64>::new()
        .add(Conv2D::new(3, 3))
        .add(BatchNorm::new().momentum(0.8));
    net.initialize(&Init::xavier(), 2).unwrap();
    let seen = Rc::new(RefCell::new(None));
    let log = Rc::clone(&seen);
    net[0]
        .register_forward_hook(move |_, _, y| *log.borrow_mut() = Some(y.value().clone()))
        .unwrap();
    let x = normal::<f64>(&[6, 2, 7, 7], 1.0, 3);
    let tape = Tape::new();
    let y = net.forward(&tape.constant(x)).unwrap();
    let params = net.collect_params();
    let mean = || params.get("1.running_mean").unwrap().data().unwrap();
    assert_eq!(
        mean().data(),
        &[0.0; 3],
        "the forward pass does not update (MXNet)"
    );
    y.square().unwrap().sum().unwrap().backward().unwrap();
    let batch = seen.borrow().clone().unwrap();
    let m = 0.8f32 as f64; // momentum enters as a float32
    let var = params.get("1.running_var").unwrap().data().unwrap();
    for (ch, (bm, bv)) in channel_stats(&batch).into_iter().enumerate() {
        // running = running·m + batch·(1 − m), from 0 and 1
        assert!((mean().data()[ch] - bm * (1.0 - m)).abs() < 1e-12);
        assert!((var.data()[ch] - (m + bv * (1.0 - m))).abs() < 1e-9);
    }
    // the trainer leaves the state alone: no stale-gradient error, no update
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
    trainer.step(6).unwrap();
    assert!(
        (var.data()[0] - params.get("1.running_var").unwrap().data().unwrap().data()[0]).abs()
            == 0.0
    );
}

#[test]
fn use_global_stats_normalizes_with_the_running_statistics_in_training() {
    let bn = BatchNorm::<f64>::new()
        .use_global_stats(true)
        .in_channels(2);
    bn.initialize(&Init::default(), 0).unwrap();
    bn.running_mean()
        .set_data(Tensor::from_f64s(&[1.0, -2.0], [2]).unwrap())
        .unwrap();
    bn.running_var()
        .set_data(Tensor::from_f64s(&[4.0, 0.25], [2]).unwrap())
        .unwrap();
    let x = Tensor::from_f64s(&[3.0, 0.0, 5.0, -1.0], [2, 2]).unwrap();
    let tape = Tape::new();
    let y = bn.forward(&tape.constant(x)).unwrap();
    // (x − running_mean)/√(running_var + 1e-5)
    let f = |x: f64, m: f64, v: f64| (x - m) / (v + 1e-5f64).sqrt();
    let expect = [
        f(3.0, 1.0, 4.0),
        f(0.0, -2.0, 0.25),
        f(5.0, 1.0, 4.0),
        f(-1.0, -2.0, 0.25),
    ];
    for (a, b) in y.value().data().iter().zip(expect) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn batch_norm_state_is_saved_loaded_bit_for_bit_and_checked_by_name() {
    let dir = std::env::temp_dir().join(format!("kiln-bn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bn.params");
    let net = kiln_nn::zoo::bn_lenet::<f32>();
    net.initialize(&Init::xavier(), 0).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(1.0));
    for step in 0..2 {
        let x = normal::<f32>(&[8, 1, 28, 28], 1.0, step);
        let tape = Tape::new();
        let l = SoftmaxCrossEntropyLoss
            .forward(
                &net.forward(&tape.constant(x)).unwrap(),
                &[0, 1, 2, 3, 4, 5, 6, 7],
            )
            .unwrap()
            .sum()
            .unwrap();
        l.backward().unwrap();
        trainer.step(8).unwrap();
    }
    let rv = net
        .collect_params()
        .get("batchnorm0_running_var")
        .unwrap()
        .data()
        .unwrap();
    assert!(rv.data().iter().all(|&v| v != 1.0), "the statistics moved");
    net.save_parameters(&path).unwrap();
    let back = kiln_nn::zoo::bn_lenet::<f32>();
    back.load_parameters(&path).unwrap();
    assert_eq!(bits(&net), bits(&back));
    // a network without BatchNorm is another network: its first convolution already
    // differs (the sigmoid that BatchNorm moves after itself)
    let plain = kiln_nn::zoo::lenet::<f32>(Activation::Sigmoid);
    let err = plain.load_parameters(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("block 0 (conv0) is Conv2D(channels=6, kernel_size=(5, 5), strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, activation=none, use_bias=true) in the file and Conv2D(channels=6, kernel_size=(5, 5), strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, activation=sigmoid, use_bias=true) in this network: its activation is none in the file and sigmoid in this network"),
        "{err}"
    );
    plain.initialize(&Init::xavier(), 0).unwrap();
    plain.summary([1, 1, 28, 28]).unwrap();
    plain.save_parameters(&path).unwrap();
    let err = back.load_parameters(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("its activation is sigmoid in the file and none in this network"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// BN-LeNet trained 3 steps on `shards` shards and `threads` threads.
fn bn_lenet_steps(shards: usize, threads: usize) -> Vec<u32> {
    let net = kiln_nn::zoo::bn_lenet::<f32>();
    net.initialize(&Init::xavier(), 4).unwrap();
    let parallel = DataParallel::new(&net, kiln_nn::zoo::bn_lenet::<f32>, shards, threads).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.5).momentum(0.9));
    for step in 0..3 {
        let x = normal::<f32>(&[24, 1, 28, 28], 1.0, 20 + step);
        let labels: Vec<usize> = (0..24).map(|i| (i * 7 + step as usize) % 10).collect();
        parallel.gradient(x, &labels, trainer.random_key()).unwrap();
        trainer.step(24).unwrap();
    }
    bits(&net)
}

#[test]
fn batch_norm_under_data_parallel_depends_on_shards_not_threads() {
    let one = bn_lenet_steps(3, 1);
    assert_eq!(one, bn_lenet_steps(3, 2), "2 threads");
    assert_eq!(one, bn_lenet_steps(3, 3), "3 threads");
    assert_ne!(
        one,
        bn_lenet_steps(1, 1),
        "one shard normalizes over the whole batch"
    );
}

#[test]
fn running_statistics_under_data_parallel_are_the_mean_of_the_shards_updates() {
    let make = || {
        Sequential::<f64>::new()
            .add(Dense::new(3))
            .add(BatchNorm::new())
    };
    let x = normal::<f64>(&[8, 5], 1.0, 9);
    let labels = [0usize, 1, 2, 0, 1, 2, 0, 1];
    let key = RandomKey::for_step(0);
    // each half on its own network, from the same start
    let halves: Vec<Vec<f64>> = (0..2)
        .map(|h| {
            let net = make();
            net.initialize(&Init::xavier(), 1).unwrap();
            let part = x.slice_axis(0, h * 4, h * 4 + 4).unwrap();
            kiln_nn::train::batch_gradient(
                &net,
                &SoftmaxCrossEntropyLoss,
                part,
                (&labels[h * 4..h * 4 + 4]).into(),
                key,
            )
            .unwrap();
            net.collect_params()
                .get("1.running_mean")
                .unwrap()
                .data()
                .unwrap()
                .data()
                .to_vec()
        })
        .collect();
    let net = make();
    net.initialize(&Init::xavier(), 1).unwrap();
    let parallel = DataParallel::new(&net, make, 2, 2).unwrap();
    parallel.gradient(x, &labels, key).unwrap();
    let mean = net
        .collect_params()
        .get("1.running_mean")
        .unwrap()
        .data()
        .unwrap();
    for (c, &m) in mean.data().iter().enumerate() {
        assert_eq!(m, (halves[0][c] + halves[1][c]) / 2.0, "channel {c}");
    }
}

fn dropout_net() -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(32).activation(Activation::Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(10))
}

fn dropout_steps(shards: usize, threads: usize) -> Vec<u32> {
    let net = dropout_net();
    net.initialize(&Init::xavier(), 5).unwrap();
    let parallel = DataParallel::new(&net, dropout_net, shards, threads).unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
    for step in 0..3 {
        let x = normal::<f32>(&[40, 20], 1.0, 30 + step);
        let labels: Vec<usize> = (0..40).map(|i| i % 10).collect();
        parallel.gradient(x, &labels, trainer.random_key()).unwrap();
        trainer.step(40).unwrap();
    }
    bits(&net)
}

#[test]
fn dropout_masks_are_the_same_on_any_number_of_threads_and_shards() {
    let reference = dropout_steps(4, 1);
    assert_eq!(reference, dropout_steps(4, 2));
    // other shard counts sum the same masked gradients in another order: equal to rounding
    let one_shard: Vec<f32> = dropout_steps(1, 1)
        .into_iter()
        .map(f32::from_bits)
        .collect();
    for (a, b) in reference.into_iter().map(f32::from_bits).zip(one_shard) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn the_books_blocks_have_the_books_shapes_and_counts() {
    let shape = |blk: &dyn Block<f32>, input: &[usize]| -> Vec<usize> {
        blk.call(&Var::constant(Tensor::zeros(input)))
            .unwrap()
            .dims()
            .to_vec()
    };
    // D2L 7.6
    let r = Residual::<f32>::new(3, false, 1);
    r.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&r, &[4, 3, 6, 6]), [4, 3, 6, 6]);
    // conv 3·3·9 + 3 twice, BatchNorm 4·3 twice
    assert_eq!(r.collect_params().count().unwrap(), 2 * 84 + 2 * 12);
    let r = Residual::<f32>::new(6, true, 2);
    r.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&r, &[4, 3, 6, 6]), [4, 6, 3, 3]);
    // conv1 6·3·9 + 6, conv2 6·6·9 + 6, conv3 6·3 + 6, BatchNorm 4·6 twice
    assert_eq!(r.collect_params().count().unwrap(), 168 + 330 + 24 + 48);
    // D2L 7.7
    let d = DenseBlock::<f32>::new(2, 10);
    d.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&d, &[4, 3, 8, 8]), [4, 23, 8, 8]);
    let t = transition_block::<f32>(10);
    t.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&t, &[4, 23, 8, 8]), [4, 10, 4, 4]);
    // D2L 7.4: the first Inception block of GoogLeNet, 64 + 128 + 32 + 32 channels
    let i = Inception::<f32>::new(64, (96, 128), (16, 32), 32);
    i.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&i, &[1, 192, 12, 12]), [1, 256, 12, 12]);
    let b = resnet_block::<f32>(128, 2, false);
    b.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(shape(&b, &[1, 64, 24, 24]), [1, 128, 12, 12]);
}

#[test]
fn inception_is_concatenate_of_its_four_paths_with_no_code_of_its_own() {
    use Activation::Relu;
    let paths = Concatenate::<f64>::new()
        .add(Conv2D::new(2, 1).activation(Relu))
        .add(
            Sequential::new()
                .add(Conv2D::new(2, 1).activation(Relu))
                .add(Conv2D::new(3, 3).padding(1).activation(Relu)),
        )
        .add(
            Sequential::new()
                .add(Conv2D::new(1, 1).activation(Relu))
                .add(Conv2D::new(2, 5).padding(2).activation(Relu)),
        )
        .add(
            Sequential::new()
                .add(MaxPool2D::new(3).strides(1).padding(1))
                .add(Conv2D::new(1, 1).activation(Relu)),
        );
    let block = Inception::<f64>::new(2, (2, 3), (1, 2), 1);
    paths.initialize(&Init::xavier(), 7).unwrap();
    block.initialize(&Init::xavier(), 7).unwrap();
    let x = normal::<f64>(&[2, 3, 6, 6], 1.0, 8);
    paths.predict(&x).unwrap();
    block.predict(&x).unwrap();
    // the same parameters in the same order: copy them across
    let (a, b) = (paths.collect_params(), block.collect_params());
    assert_eq!(a.len(), b.len());
    for ((_, p), (_, q)) in a.iter().zip(b.iter()) {
        q.set_data(p.data().unwrap().as_ref().clone()).unwrap();
    }
    assert_eq!(paths.predict(&x).unwrap(), block.predict(&x).unwrap());
    // its summary row counts its paths' parameters; the receptive field is the widest path's
    let s = paths.summary([1, 3, 6, 6]).unwrap();
    assert_eq!(s.total_params, a.count().unwrap() as u64);
    let top = s.rows.iter().filter(|r| r.depth == 0).count();
    assert_eq!(top, 4, "{s}");
}

#[test]
fn summaries_count_user_blocks_and_follow_the_widest_branch() {
    let net = Sequential::<f32>::new()
        .add(Conv2D::new(3, 3).padding(1))
        .add(Residual::new(3, false, 1))
        .add(Residual::new(6, true, 2))
        .add(GlobalAvgPool2D::new())
        .add(Dense::new(10));
    net.initialize(&Init::xavier(), 0).unwrap();
    let s = net.summary([1, 1, 8, 8]).unwrap();
    // conv 3·9 + 3; Residual(3) 192; Residual(6, 1×1, 2) 570; dense 6·10 + 10
    let total = 30 + 192 + 570 + 70;
    assert_eq!(s.total_params, total);
    // BatchNorm's running statistics (2 per channel, 4 BatchNorms of 3, 3, 6, 6) are not trained
    assert_eq!(s.trainable_params, total - 2 * (3 + 3 + 6 + 6));
    let top: Vec<(&str, u64)> = s
        .rows
        .iter()
        .filter(|r| r.depth == 0)
        .map(|r| (r.kind, r.params))
        .collect();
    assert_eq!(
        top,
        [
            ("Conv2D", 30),
            ("Residual", 192),
            ("Residual", 570),
            ("GlobalAvgPool2D", 0),
            ("Dense", 70)
        ]
    );
    // inside the first residual block: conv1 (3×3 on 3×3) then conv2: 3 + 2 + 2 = 7;
    // its output adds the shortcut (3), so 7 still
    let res0 = s.rows.iter().position(|r| r.kind == "Residual").unwrap();
    assert_eq!(
        s.rows[res0].receptive_field,
        ReceptiveField::Window(Hw::new(7, 7))
    );
    assert!(
        s.rows[res0 + 1].depth == 1,
        "its layers are nested under it"
    );
    let text = s.to_string();
    assert!(text.contains("Trainable params"), "{text}");
}

#[test]
fn grad_req_add_accumulates_and_null_freezes() {
    let net = Sequential::<f64>::new()
        .add(Dense::new(2))
        .add(Dense::new(2));
    net.initialize(&Init::xavier(), 1).unwrap();
    let x = normal::<f64>(&[3, 4], 1.0, 2);
    let grad_of = |net: &Sequential<f64>| {
        let tape = Tape::new();
        let l = SoftmaxCrossEntropyLoss
            .forward(&net.forward(&tape.constant(x.clone())).unwrap(), &[0, 1, 1])
            .unwrap()
            .sum()
            .unwrap();
        l.backward().unwrap();
        net.collect_params()
            .get("0.weight")
            .unwrap()
            .grad()
            .unwrap()
    };
    let once = grad_of(&net);
    net.collect_params().set_grad_req(GradReq::Add);
    let twice = grad_of(&net);
    for (a, b) in twice.data().iter().zip(once.data()) {
        assert!(
            (a - 2.0 * b).abs() < 1e-12,
            "a second backward adds to the first"
        );
    }
    net.collect_params().zero_grad();
    let again = grad_of(&net);
    assert_eq!(again.data(), once.data());
    // fine-tuning: the body frozen, the head trained
    net.collect_params().set_grad_req(GradReq::Write);
    net.collect_params()
        .filter(|path, _| path.starts_with("0."))
        .set_grad_req(GradReq::Null);
    let body = net
        .collect_params()
        .get("0.weight")
        .unwrap()
        .data()
        .unwrap();
    let head = net
        .collect_params()
        .get("1.weight")
        .unwrap()
        .data()
        .unwrap();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.5));
    grad_of_head(&net, &x);
    trainer.step(3).unwrap();
    assert_eq!(
        *net.collect_params()
            .get("0.weight")
            .unwrap()
            .data()
            .unwrap(),
        *body
    );
    assert_ne!(
        *net.collect_params()
            .get("1.weight")
            .unwrap()
            .data()
            .unwrap(),
        *head
    );
    assert!(net
        .collect_params()
        .get("0.weight")
        .unwrap()
        .grad()
        .is_none());
}

fn grad_of_head(net: &Sequential<f64>, x: &Tensor<f64>) {
    let tape = Tape::new();
    SoftmaxCrossEntropyLoss
        .forward(&net.forward(&tape.constant(x.clone())).unwrap(), &[0, 1, 1])
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
}

#[test]
fn a_hook_sees_a_fused_layer_and_fusion_changes_no_bit() {
    let net = kiln_nn::zoo::lenet::<f32>(Activation::Relu);
    net.initialize(&Init::xavier(), 3).unwrap();
    assert_eq!(net.fused_steps().len(), 2);
    let x = normal::<f32>(&[5, 1, 28, 28], 1.0, 4);
    let fused = net.predict(&x).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let handle = net[0]
        .register_forward_hook(move |b, _, y| log.borrow_mut().push((b.name(), y.value().clone())))
        .unwrap();
    let unfused = net.predict(&x).unwrap();
    assert_eq!(fused, unfused, "conv + pool fused or not: the same bits");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "conv0");
    assert_eq!(seen[0].1.dims(), &[5, 6, 24, 24]);
    handle.detach();
    // training gradients, fused and unfused (a hook forces the unfused path)
    let grads = |net: &Sequential<f32>| {
        let tape = Tape::new();
        SoftmaxCrossEntropyLoss
            .forward(
                &net.forward(&tape.constant(x.clone())).unwrap(),
                &[1, 2, 3, 4, 5],
            )
            .unwrap()
            .sum()
            .unwrap()
            .backward()
            .unwrap();
        net.collect_params()
            .iter()
            .map(|(path, p)| (path.to_string(), p.grad().unwrap().data().to_vec()))
            .collect::<Vec<_>>()
    };
    let fused = grads(&net);
    let h0 = net[0].register_forward_hook(|_, _, _| {}).unwrap();
    let h2 = net[2].register_forward_hook(|_, _, _| {}).unwrap();
    let unfused = grads(&net);
    h0.detach();
    h2.detach();
    for ((path, a), (_, b)) in fused.iter().zip(&unfused) {
        if path.ends_with("bias") && (path.starts_with("0.") || path.starts_with("2.")) {
            // the fused backward sums a convolution's bias gradient over the pooled
            // positions only (the others are 0): the same sum in another order
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
                    "{path}: {x} vs {y}"
                );
            }
        } else {
            assert_eq!(a, b, "{path}: fusion changes no bit");
        }
    }
}

#[test]
fn gradcheck_every_new_layer_in_f64() {
    use Activation::Tanh;
    let check = |name: &str, block: &dyn Block<f64>, x: Tensor<f64>| {
        block.initialize(&Init::xavier(), 0).unwrap();
        let report = gradcheck_block(&block, &x, Default::default()).unwrap();
        assert!(report.passed(1e-6), "{name}: {report}");
    };
    let x4 = || normal::<f64>(&[3, 2, 4, 4], 1.0, 11);
    // BatchNorm in training mode, through the whole batch, after a layer so gamma matters
    check(
        "BatchNorm",
        &Sequential::new()
            .add(Conv2D::new(3, 3))
            .add(BatchNorm::new())
            .add(Tanh),
        x4(),
    );
    check(
        "BatchNorm (N, C)",
        &Sequential::new()
            .add(Dense::new(4))
            .add(BatchNorm::new())
            .add(Tanh),
        normal(&[6, 3], 1.0, 12),
    );
    check(
        "Dropout",
        &Sequential::new().add(Dense::new(5)).add(Dropout::new(0.3)),
        normal(&[4, 3], 1.0, 13),
    );
    check(
        "PReLU",
        &Sequential::new()
            .add(Conv2D::new(2, 1))
            .add(PReLU::with_channels(2)),
        x4(),
    );
    check("LeakyReLU", &LeakyReLU::new(0.1), away_from_zero(x4()));
    check("ELU", &ELU::new(), away_from_zero(x4()));
    check("SELU", &SELU::new(), away_from_zero(x4()));
    check("GELU", &GELU::new(), x4());
    check("Swish", &Swish::with_beta(1.5), x4());
    check("GlobalAvgPool2D", &GlobalAvgPool2D::new(), x4());
    check("GlobalMaxPool2D", &GlobalMaxPool2D::new(), x4());
    check("Identity", &Identity::new(), x4());
    check(
        "Concatenate",
        &Concatenate::new()
            .add(Conv2D::new(2, 1))
            .add(Conv2D::new(1, 3).padding(1)),
        x4(),
    );
    check("Residual", &Residual::new(2, false, 1), x4());
    check("Residual 1×1", &Residual::new(3, true, 2), x4());
    check("DenseBlock", &DenseBlock::new(2, 2), x4());
}

/// Moves values within 0.05 of 0 away from it, so ±eps never crosses a kink.
fn away_from_zero(x: Tensor<f64>) -> Tensor<f64> {
    x.map(|v| {
        if v.abs() < 0.05 {
            v + 0.1f64.copysign(v)
        } else {
            v
        }
    })
}

#[test]
fn mistakes_are_errors_naming_the_layer_and_the_shapes() {
    let bn = BatchNorm::<f32>::new();
    bn.initialize(&Init::default(), 0).unwrap();
    bn.predict(&Tensor::zeros([2, 3, 4, 4])).unwrap();
    let err = bn
        .predict(&Tensor::zeros([2, 4, 4, 4]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("batchnorm0") || err.starts_with("BatchNorm"),
        "{err}"
    );
    assert!(
        err.contains("inferred shape [4]") || err.contains("4 channels"),
        "{err}"
    );
    let bad_axis = BatchNorm::<f32>::new().axis(5);
    bad_axis.initialize(&Init::default(), 0).unwrap();
    let err = bad_axis
        .predict(&Tensor::zeros([2, 3]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("axis 5 is out of range for input [2, 3]"),
        "{err}"
    );
    // one sample of (N, C) in training mode
    let net = Sequential::<f32>::new()
        .add(Dense::new(3))
        .add(BatchNorm::new());
    net.initialize(&Init::xavier(), 0).unwrap();
    let tape = Tape::new();
    let err = net
        .forward(&tape.constant(Tensor::ones([1, 5])))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("batchnorm0: batch_norm: training needs more than one value"),
        "{err}"
    );
    // dropout rate
    let d = Sequential::<f32>::new().add(Dropout::new(1.5));
    d.initialize(&Init::default(), 0).unwrap();
    let tape = Tape::new();
    let err = d
        .forward(&tape.constant(Tensor::ones([2, 2])))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "dropout0: dropout: the rate must be in [0, 1), got 1.5"
    );
    // paths of a Concatenate that disagree
    let c = Concatenate::<f32>::new()
        .add(Conv2D::new(2, 3))
        .add(Conv2D::new(2, 1));
    c.initialize(&Init::xavier(), 0).unwrap();
    let err = c
        .predict(&Tensor::zeros([1, 1, 5, 5]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("concatenate0: concat:") && err.contains("[1, 2, 3, 3], [1, 2, 5, 5]"),
        "{err}"
    );
    // a residual block whose shortcut does not fit
    let r = Residual::<f32>::new(4, false, 1);
    r.initialize(&Init::xavier(), 0).unwrap();
    let err = r
        .predict(&Tensor::zeros([1, 3, 5, 5]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("use the 1×1 convolution"), "{err}");
    let l = LeakyReLU::new(-0.5);
    let err = BlockExt::<f32>::call(&l, &Var::constant(Tensor::ones([2])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("alpha must be ≥ 0"), "{err}");
    let g = GlobalAvgPool2D::new();
    let err = BlockExt::<f32>::call(&g, &Var::constant(Tensor::ones([2, 3])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("input must be 4-d"), "{err}");
}
