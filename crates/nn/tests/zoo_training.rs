//! Every network of the zoo trains and round-trips: one SGD step in f32 at the book's
//! input size changes every trainable parameter and BatchNorm's running statistics (in
//! the forward and backward pass, as Gluon's do under `autograd.record`; the trainer leaves
//! them alone); a checkpoint loads into a fresh instance that predicts bit for bit the
//! same; a checkpoint of another network is refused, naming the first block that
//! differs; and an f64 gradient check of a narrow version of each (the same layers with
//! few channels, on a small input) passes, dropout included.

use kiln_autograd::{GradcheckOptions, RandomKey, Tape, Var};
use kiln_nn::train::batch_gradient;
use kiln_nn::zoo::{
    alexnet_narrow, bn_lenet, by_name, densenet, densenet_with, googlenet_narrow, input_side,
    nin_narrow, resnet18, resnet18_narrow, vgg_with, MODELS,
};
use kiln_nn::{
    gradcheck_block, Block, BlockExt, Init, NnError, Sequential, Sgd, SoftmaxCrossEntropyLoss,
    Trainer,
};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::{Float, Tensor};
use std::path::PathBuf;

fn uniform<T: Float>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::rand_uniform(shape, T::ZERO, T::ONE, &mut StdRng::seed_from_u64(seed))
}

/// A folder of this test process's own.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-zoo-training-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One parameter: its path, whether it is state (not trained), and its values' bits.
type Snapshot = Vec<(String, bool, Vec<u32>)>;

fn snapshot<B: Block<f32>>(net: &B) -> Snapshot {
    net.collect_params()
        .iter()
        .map(|(path, p)| {
            let bits = p
                .data()
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            (path.to_string(), p.is_state(), bits)
        })
        .collect()
}

/// The zoo network `name` at the book's input side: forward on a batch of 2 gives
/// (2, 10); one SGD step; then a checkpoint round trip.
fn step_and_round_trip(name: &str) {
    let side = input_side(name).unwrap();
    let net = by_name::<f32>(name).unwrap();
    net.initialize(&Init::xavier(), 0).unwrap();
    let x = uniform::<f32>(&[2, 1, side, side], 1);
    assert_eq!(net.predict(&x).unwrap().dims(), [2, 10], "{name}");
    let before = snapshot(&net);

    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.05));
    let labels = vec![3usize, 7];
    let out = batch_gradient(
        &net,
        &SoftmaxCrossEntropyLoss,
        x.clone(),
        (&labels).into(),
        trainer.random_key(),
    )
    .unwrap();
    assert!(out.loss.is_finite(), "{name}: loss {}", out.loss);
    let after_backward = snapshot(&net);
    // every trainable parameter has a gradient, not zero everywhere
    for (path, p) in net.collect_params().iter() {
        if p.is_trainable() {
            let g = p
                .grad()
                .unwrap_or_else(|| panic!("{name}: {path} has no gradient"));
            assert!(
                g.data().iter().any(|&v| v != 0.0),
                "{name}: {path}'s gradient is zero"
            );
        }
    }
    trainer.step(2).unwrap();
    let after_step = snapshot(&net);

    let mut states = 0;
    for ((b, ab), s) in before.iter().zip(&after_backward).zip(&after_step) {
        let (path, is_state) = (&b.0, b.1);
        if is_state {
            // BatchNorm's running mean and variance: updated by the training pass (Gluon
            // updates them in the forward under autograd.record), not by the trainer
            assert!(path.ends_with("running_mean") || path.ends_with("running_var"));
            assert_ne!(b.2, ab.2, "{name}: {path} did not change in training");
            assert_eq!(ab.2, s.2, "{name}: the trainer changed {path}");
            states += 1;
        } else {
            assert_eq!(b.2, ab.2, "{name}: {path} changed before the step");
            assert_ne!(ab.2, s.2, "{name}: the step did not change {path}");
        }
    }
    // the running statistics: 2 per BatchNorm (4 in BN-LeNet, 1 + 8·2 in ResNet-18,
    // 1 + 16 + 3 + 1 in DenseNet)
    let expected_states = match name {
        "bn_lenet" => 8,
        "resnet18" => 2 * 17,
        "densenet" => 2 * 21,
        _ => 0,
    };
    assert_eq!(states, expected_states, "{name}");

    // the checkpoint loads into a fresh, uninitialized instance, running statistics
    // included, which predicts the same bits
    let path = scratch().join(format!("{name}.params"));
    net.save_parameters(&path).unwrap();
    let fresh = by_name::<f32>(name).unwrap();
    fresh.load_parameters(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(snapshot(&fresh), after_step, "{name}");
    let bits = |t: Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(fresh.predict(&x).unwrap()),
        bits(net.predict(&x).unwrap()),
        "{name}"
    );
}

#[test]
fn lenet_steps_and_round_trips() {
    step_and_round_trip("lenet");
}

#[test]
fn bn_lenet_steps_and_round_trips() {
    step_and_round_trip("bn_lenet");
}

#[test]
fn alexnet_steps_and_round_trips() {
    step_and_round_trip("alexnet");
}

#[test]
fn vgg11_small_steps_and_round_trips() {
    step_and_round_trip("vgg11_small");
}

#[test]
fn nin_steps_and_round_trips() {
    step_and_round_trip("nin");
}

#[test]
fn googlenet_steps_and_round_trips() {
    step_and_round_trip("googlenet");
}

#[test]
fn resnet18_steps_and_round_trips() {
    step_and_round_trip("resnet18");
}

#[test]
fn densenet_steps_and_round_trips() {
    step_and_round_trip("densenet");
}

#[test]
fn every_model_is_covered() {
    // one test above per name of the zoo
    assert_eq!(
        MODELS,
        [
            "lenet",
            "bn_lenet",
            "alexnet",
            "vgg11_small",
            "nin",
            "googlenet",
            "resnet18",
            "densenet"
        ]
    );
}

#[test]
fn a_resnet18_checkpoint_does_not_load_into_a_densenet() {
    let resnet = resnet18::<f32>();
    resnet.initialize(&Init::xavier(), 0).unwrap();
    resnet.predict(&Tensor::zeros([1, 1, 96, 96])).unwrap();
    let path = scratch().join("resnet18.params");
    resnet.save_parameters(&path).unwrap();
    let net = densenet::<f32>();
    net.initialize(&Init::xavier(), 0).unwrap();
    let err = net.load_parameters(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, NnError::Checkpoint { .. }), "{err}");
    // Both begin with the same stem (blocks 0–3: Conv2D 64 7×7, BatchNorm, ReLU,
    // MaxPool2D); block 4 is ResNet's first stage, a Sequential of residual blocks, and
    // DenseNet's first dense block
    assert_eq!(
        err.to_string(),
        format!(
            "{}: was saved from another network: block 4 (denseblock0) is Sequential in the \
             file and DenseBlock(num_convs=4, num_channels=32) in this network: its kind is \
             Sequential in the file and DenseBlock in this network",
            path.display()
        )
    );
    // nothing was loaded: the DenseNet's shapes are still unknown
    let params = net.collect_params();
    assert!(!params.get("0.weight").unwrap().shape_is_known());
}

/// The gradient check of `net` at `x`, at most `per_leaf` elements of the input and of
/// each parameter, running statistics included (their gradient is 0 both ways).
fn gradcheck(what: &str, net: &Sequential<f64>, x: &Tensor<f64>, per_leaf: usize) {
    net.initialize(&Init::xavier(), 3).unwrap();
    net.predict(x).unwrap(); // fixes the deferred shapes
                             // Biases and BatchNorm's betas start at 0: a unit whose inputs are all 0 (a few
                             // channels, some of them dead after a ReLU) then sits exactly on the next ReLU's kink,
                             // where the finite difference sees half a slope and backward none (narrow NiN's third
                             // convolution: backward 0, finite difference 1.5e-2). Random ones move every unit off.
    let mut rng = StdRng::seed_from_u64(4);
    for (path, p) in net.collect_params().iter() {
        if path.ends_with("bias") || path.ends_with("beta") {
            p.set_data(Tensor::rand_uniform(p.shape(), -0.2, 0.2, &mut rng))
                .unwrap();
        }
    }
    let options = GradcheckOptions {
        max_elements_per_leaf: Some(per_leaf),
        ..Default::default()
    };
    let report = gradcheck_block(net, x, options).unwrap();
    // the tolerance of the block checks (gradcheck_blocks.rs): relative error 1e-6
    assert!(report.passed(1e-6), "{what}: {report}");
    let params = net.collect_params();
    let leaves = std::iter::once(x.numel()).chain(params.iter().map(|(_, p)| p.shape().numel()));
    let expected: usize = leaves.map(|n| n.min(per_leaf)).sum();
    assert_eq!(report.checked, expected, "{what}: every leaf is checked");
    eprintln!("{what}: {report}");
}

/// The key gradcheck gives every tape (`GradcheckOptions::seed`, step 0, sample 0): in a
/// network with dropout the training output under it is not the predict output, so the
/// check ran through the masks.
fn dropout_is_active(net: &Sequential<f64>, x: &Tensor<f64>) {
    let key = RandomKey {
        seed: GradcheckOptions::default().seed,
        step: 0,
        first_sample: 0,
    };
    let tape = Tape::with_key(key);
    let _pause = tape.pause();
    let train = net.forward(&tape.constant(x.clone())).unwrap();
    let predict = net.forward(&Var::constant(x.clone())).unwrap();
    assert_ne!(train.value().data(), predict.value().data());
}

#[test]
fn gradcheck_bn_lenet() {
    // the book's network itself (45,330 parameters) on 4 images of 28×28
    let x = uniform(&[4, 1, 28, 28], 5);
    gradcheck("bn_lenet", &bn_lenet(), &x, 40);
}

#[test]
fn gradcheck_narrow_alexnet() {
    // ratio 32: 3, 8, 12, 12, 8 channels, dense layers of 128, dropout 0.5; 67×67 gives
    // 15, 7, 7, 3, 3, 3, 1 (the book's 54, 26, 26, 12, 12, 12, 5 at 224)
    let net = alexnet_narrow(32).unwrap();
    let x = uniform(&[2, 1, 67, 67], 6);
    gradcheck("alexnet", &net, &x, 30);
    dropout_is_active(&net, &x);
}

#[test]
fn gradcheck_narrow_vgg11() {
    // VGG-11's blocks with 2 to 16 channels, dense layers of 32; 32 → 16 → 8 → 4 → 2 → 1
    let net = vgg_with(&[(1, 2), (1, 4), (2, 8), (2, 16), (2, 16)], 32);
    let x = uniform(&[2, 1, 32, 32], 7);
    gradcheck("vgg11", &net, &x, 30);
    dropout_is_active(&net, &x);
}

#[test]
fn gradcheck_narrow_nin() {
    // ratio 32: blocks of 3, 8, 12 and 10 channels; 67×67 gives 15, 7, 7, 3, 3, 1, 1
    let net = nin_narrow(32).unwrap();
    let x = uniform(&[2, 1, 67, 67], 8);
    gradcheck("nin", &net, &x, 30);
    dropout_is_active(&net, &x);
}

#[test]
fn gradcheck_narrow_googlenet() {
    // ratio 16: stems of 4 and 12 channels, Inception paths of 1 to 24; 32 → 16 → 8 →
    // 4 → 2 → 1
    let net = googlenet_narrow(16).unwrap();
    let x = uniform(&[2, 1, 32, 32], 9);
    gradcheck("googlenet", &net, &x, 10);
}

#[test]
fn gradcheck_narrow_resnet18() {
    // ratio 16: stages of 4, 8, 16, 32 channels; 32 → 16 → 8, then 8, 4, 2, 1; a batch
    // of 4 so that BatchNorm normalizes over more than two values at 1×1
    let net = resnet18_narrow(16).unwrap();
    let x = uniform(&[4, 1, 32, 32], 10);
    gradcheck("resnet18", &net, &x, 10);
}

#[test]
fn gradcheck_narrow_densenet() {
    // a stem of 8, growth rate 4, the book's four blocks of 4 convolutions: 24 → 12,
    // 28 → 14, 30 → 15, 31 channels; 32 → 16 → 8 → 4 → 2 → 1
    let net = densenet_with(8, 4, &[4, 4, 4, 4]);
    let x = uniform(&[4, 1, 32, 32], 11);
    gradcheck("densenet", &net, &x, 10);
}

#[test]
fn narrow_networks_refuse_a_ratio_of_zero() {
    let e = alexnet_narrow::<f32>(0).err().unwrap().to_string();
    assert_eq!(
        e,
        "alexnet_narrow: the ratio that divides the channel counts must be at least 1, got 0"
    );
    assert!(nin_narrow::<f32>(0).is_err());
    assert!(googlenet_narrow::<f32>(0).is_err());
    assert!(resnet18_narrow::<f32>(0).is_err());
}

#[test]
fn ratio_one_is_the_books_network() {
    // the same architecture record and parameter count as the book's functions
    let same = |a: &Sequential<f32>, b: &Sequential<f32>, side: usize| {
        a.initialize(&Init::xavier(), 0).unwrap();
        b.initialize(&Init::xavier(), 0).unwrap();
        let (sa, sb) = (
            a.summary([1, 1, side, side]).unwrap(),
            b.summary([1, 1, side, side]).unwrap(),
        );
        assert_eq!(sa, sb);
        assert_eq!(
            a.collect_params().architecture(),
            b.collect_params().architecture()
        );
    };
    use kiln_nn::zoo::{alexnet, googlenet, nin, vgg, VGG11_ARCH};
    same(&alexnet(), &alexnet_narrow(1).unwrap(), 224);
    same(&nin(), &nin_narrow(1).unwrap(), 224);
    same(&googlenet(), &googlenet_narrow(1).unwrap(), 96);
    same(&resnet18(), &resnet18_narrow(1).unwrap(), 96);
    same(&densenet(), &densenet_with(64, 32, &[4, 4, 4, 4]), 96);
    same(&vgg(&VGG11_ARCH), &vgg_with(&VGG11_ARCH, 4096), 224);
}
