//! The mistakes users make (many from peers' issue trackers), fed to every public
//! constructor and forward path: each must come back as an error that names the layer or
//! op and the shapes or values, and nothing may panic.

use kiln_autograd::{Tape, Var};
use kiln_nn::data::{DataLoader, ImageDataset};
use kiln_nn::zoo::lenet;
use kiln_nn::{
    accuracy, Activation, AvgPool2D, BlockExt, Conv2D, Dense, FactorType, Init, L2Loss, MaxPool2D,
    RndType, Sequential, Sgd, SoftmaxCrossEntropyLoss, Trainer,
};
use kiln_tensor::conv2d::{conv2d, Conv2dParams};
use kiln_tensor::pool2d::max_pool2d;
use kiln_tensor::{Pool2dParams, Tensor};
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, which must return an error (not a value, not a panic); returns its message.
fn refused<R, E: Display>(f: impl FnOnce() -> Result<R, E>) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(_)) => panic!("the mistake was accepted"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("the mistake made kiln panic instead of returning an error"),
    }
}

/// Asserts the message mentions every one of `parts`.
fn says(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "«{message}» does not mention «{part}»"
        );
    }
}

fn net(blocks: Sequential<f32>) -> Sequential<f32> {
    blocks.initialize(&Init::default(), 0).unwrap();
    blocks
}

fn images(shape: [usize; 4]) -> Tensor<f32> {
    Tensor::full(shape, 0.5)
}

#[test]
fn layer_shape_mistakes() {
    let m = refused(|| {
        net(Sequential::new().add(Conv2D::new(6, 5).in_channels(3)))
            .predict(&images([2, 1, 28, 28]))
    });
    says(
        &m,
        &[
            "conv0",
            "input has 1 channels, weight expects 3",
            "[2, 1, 28, 28]",
            "[6, 3, 5, 5]",
        ],
    );
    let m = refused(|| {
        net(Sequential::new().add(Dense::new(120).in_units(400))).predict(&images([2, 16, 4, 4]))
    });
    says(&m, &["dense0", "[2, 256]", "[120, 400]"]);
    let m =
        refused(|| net(Sequential::new().add(Conv2D::new(6, 30))).predict(&images([1, 1, 28, 28])));
    says(
        &m,
        &[
            "conv0",
            "kernel 30×30",
            "larger than the padded input 28×28",
        ],
    );
    let m =
        refused(|| net(Sequential::new().add(MaxPool2D::new(30))).predict(&images([1, 1, 28, 28])));
    says(&m, &["pool0", "window 30×30", "28×28"]);
    let m =
        refused(|| net(Sequential::new().add(Conv2D::new(6, 5))).predict(&Tensor::zeros([28, 28])));
    says(&m, &["conv0", "4-d", "[28, 28]"]);
    let m = refused(|| {
        net(Sequential::new().add(AvgPool2D::new(2).padding(2))).predict(&images([1, 1, 8, 8]))
    });
    says(&m, &["pool0", "padding (2, 2)", "window (2, 2)"]);
}

#[test]
fn zero_strides_sizes_and_groups() {
    let m = refused(|| {
        net(Sequential::new().add(Conv2D::new(6, 5).strides((0, 1))))
            .predict(&images([1, 1, 28, 28]))
    });
    says(&m, &["conv0", "stride must be ≥ 1", "(0, 1)"]);
    let m = refused(|| {
        net(Sequential::new().add(MaxPool2D::new(2).strides(0))).predict(&images([1, 1, 8, 8]))
    });
    says(&m, &["pool0", "stride must be ≥ 1"]);
    let m =
        refused(|| net(Sequential::new().add(AvgPool2D::new(0))).predict(&images([1, 1, 8, 8])));
    says(&m, &["pool0", "window must be ≥ 1"]);
    let m =
        refused(|| net(Sequential::new().add(Conv2D::new(0, 5))).predict(&images([1, 1, 8, 8])));
    says(&m, &["conv0", "channels and kernel size must be ≥ 1"]);
    let m =
        refused(|| net(Sequential::new().add(Conv2D::new(4, 0))).predict(&images([1, 1, 8, 8])));
    says(&m, &["conv0", "kernel"]);
    let m = refused(|| net(Sequential::new().add(Dense::new(0))).predict(&images([1, 1, 8, 8])));
    says(&m, &["dense0", "units must be ≥ 1"]);
    let m = refused(|| {
        net(Sequential::new().add(Conv2D::new(4, 3).groups(2))).predict(&images([1, 3, 8, 8]))
    });
    says(&m, &["conv0", "input has 3 channels", "2 groups"]);
    let m = refused(|| {
        net(Sequential::new().add(Conv2D::new(3, 3).groups(2).in_channels(2)))
            .predict(&images([1, 2, 8, 8]))
    });
    says(
        &m,
        &["conv0", "3 output channels do not split into 2 groups"],
    );
}

#[test]
fn empty_batches_and_bad_values() {
    let lenet = || {
        let n = lenet::<f32>(Activation::Sigmoid);
        n.initialize(&Init::xavier(), 0).unwrap();
        n
    };
    let m = refused(|| lenet().predict(&Tensor::zeros([0, 1, 28, 28])));
    says(&m, &["conv0", "empty batch", "[0, 1, 28, 28]"]);
    let mut x = images([2, 1, 28, 28]);
    x.set(&[1, 0, 3, 4], f32::NAN).unwrap();
    let m = refused(|| lenet().predict(&x));
    says(&m, &["conv0", "NaN", "[1, 0, 3, 4]"]);
    let m = refused(|| {
        net(Sequential::new().add(Dense::new(3))).predict(&Tensor::full([2, 4], f32::INFINITY))
    });
    says(&m, &["dense0", "inf", "[0, 0]"]);
}

#[test]
fn losses_and_metrics_with_mismatched_labels() {
    let scores = Var::constant(Tensor::<f32>::zeros([4, 10]));
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&scores, &[1, 2, 3]));
    says(
        &m,
        &["softmax_cross_entropy", "3 labels for 4 samples", "[4, 10]"],
    );
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&scores, &[1, 2, 3, 10]));
    says(&m, &["label 10 of sample 3", "10 classes"]);
    let m = refused(|| {
        SoftmaxCrossEntropyLoss.forward(&Var::constant(Tensor::<f32>::zeros([0, 10])), &[])
    });
    says(&m, &["empty batch"]);
    let m = refused(|| L2Loss.forward(&scores, &Var::constant(Tensor::zeros([4, 3]))));
    says(&m, &["L2Loss", "[4, 10]", "[4, 3]"]);
    let m = refused(|| accuracy(&Tensor::<f32>::zeros([4, 10]), &[1, 2]));
    says(&m, &["accuracy", "[4, 10]", "2 labels"]);
    let m = refused(|| ImageDataset::new(vec![0; 3 * 4], vec![0, 1], [1, 2, 2], 10));
    says(&m, &["ImageDataset", "12 image bytes for 2 labels"]);
    let m = refused(|| ImageDataset::new(vec![0; 8], vec![0, 12], [1, 2, 2], 10));
    says(&m, &["label 12 of sample 1"]);
    let m = refused(|| ImageDataset::new(vec![0; 8], vec![0, 0], [1, 2, 2], 0));
    says(&m, &["ImageDataset", "0 classes"]);
    let data = ImageDataset::new(vec![0; 8], vec![0, 1], [1, 2, 2], 10).unwrap();
    let m = refused(|| DataLoader::new(&data, 0).map(|_| ()));
    says(&m, &["DataLoader", "batch_size"]);
}

#[test]
fn lifecycle_and_optimizer_mistakes() {
    let m = refused(|| {
        Sequential::<f32>::new()
            .add(Conv2D::new(6, 5))
            .predict(&images([1, 1, 28, 28]))
    });
    says(&m, &["Conv2D", "not initialized", "initialize()"]);
    let d = Dense::<f32>::new(3).bias_initializer(Init::xavier());
    let m = refused(|| d.initialize(&Init::default(), 0));
    says(&m, &["dense0_bias", "Xavier", "[3]"]);
    let m = refused(|| {
        Dense::<f32>::new(3)
            .in_units(2)
            .initialize(&Init::normal(-1.0), 0)
    });
    says(&m, &["Normal sigma", "-1"]);
    let nan_xavier = Init::Xavier {
        rnd_type: RndType::Uniform,
        factor_type: FactorType::Avg,
        magnitude: f64::NAN,
    };
    let m = refused(|| Dense::<f32>::new(3).in_units(2).initialize(&nan_xavier, 0));
    says(&m, &["Xavier magnitude", "NaN"]);

    let d = Dense::<f32>::new(2).in_units(2);
    d.initialize(&Init::default(), 0).unwrap();
    let backward = |d: &Dense<f32>| {
        let t = Tape::new();
        kiln_nn::Block::forward(d, &t.constant(Tensor::ones([1, 2])))
            .unwrap()
            .sum()
            .unwrap()
            .backward()
            .unwrap();
    };
    for (sgd, what) in [
        (Sgd::new(f64::NAN), "learning rate"),
        (Sgd::new(0.1).momentum(1.0), "momentum"),
        (Sgd::new(0.1).wd(-1.0), "weight decay"),
    ] {
        backward(&d);
        let m = refused(|| Trainer::new(d.collect_params(), sgd).step(1));
        says(&m, &["Trainer.step", what]);
    }
    backward(&d);
    let m = refused(|| Trainer::new(d.collect_params(), Sgd::new(0.1)).step(0));
    says(&m, &["batch_size must be ≥ 1"]);
}

#[test]
fn tensor_layer_mistakes() {
    let m = refused(|| Tensor::<f32>::from_vec(vec![1.0; 5], [2, 3]));
    says(&m, &["from_vec", "[2, 3]", "6", "5"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).reshape([4, 2]));
    says(&m, &["reshape", "[4, 2]"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).matmul(&Tensor::zeros([4, 5])));
    says(&m, &["matmul", "[2, 3]", "[4, 5]"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).mul(&Tensor::zeros([2])));
    says(&m, &["mul", "[2, 3]", "[2]"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).sum(&[2], false));
    says(&m, &["sum", "axis 2", "[2, 3]"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).permute(&[0, 0]));
    says(&m, &["permute", "[0, 0]"]);
    let m = refused(|| {
        conv2d(
            &Tensor::<f32>::zeros([1, 1, 4, 4]),
            &Tensor::zeros([1, 1, 3]),
            None,
            &Conv2dParams::default(),
        )
    });
    says(&m, &["conv2d", "weight must be 4-d", "[1, 1, 3]"]);
    let m = refused(|| max_pool2d(&Tensor::<f32>::zeros([1, 4, 4]), &Pool2dParams::new(2)));
    says(&m, &["max_pool2d", "4-d", "[1, 4, 4]"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).softmax(2));
    says(&m, &["softmax", "axis 2"]);
    let m = refused(|| Tensor::<f32>::zeros([2, 3]).slice_axis(1, 2, 5));
    says(&m, &["slice_axis", "2..5"]);
}

#[test]
fn shape_and_activation_op_mistakes() {
    let x = Var::constant(Tensor::<f32>::zeros([2, 3]));
    let wide = Var::constant(Tensor::<f32>::zeros([3, 4]));
    let m = refused(|| Var::concat(&[&x, &wide], 1));
    says(&m, &["concat", "[2, 3]", "[3, 4]", "axis 1"]);
    let m = refused(|| Var::concat(&[&x, &x], 2));
    says(&m, &["concat", "axis 2", "[2, 3]"]);
    let m = refused(|| x.slice_axis(1, 2, 5));
    says(&m, &["slice_axis", "2..5", "[2, 3]"]);
    let m = refused(|| x.split(1, 2));
    says(&m, &["split", "axis 1", "[2, 3]", "2 equal sections"]);
    let m = refused(|| x.permute(&[1, 1]));
    says(&m, &["permute", "[1, 1]", "[2, 3]"]);
    let m = refused(|| x.transpose(0, 3));
    says(&m, &["transpose", "axis 3", "[2, 3]"]);
    let m = refused(|| x.broadcast_to([4, 3]));
    says(&m, &["broadcast_to", "[2, 3]", "[4, 3]"]);
    let m = refused(|| x.maximum(&wide));
    says(&m, &["maximum", "[2, 3]", "[3, 4]"]);
    let m = refused(|| x.minimum(&wide));
    says(&m, &["minimum", "[2, 3]", "[3, 4]"]);
    let m = refused(|| x.clip(1.0, 0.0));
    says(&m, &["clip", "lo = 1", "hi = 0"]);
    let m = refused(|| x.max_axes(&[2], false));
    says(&m, &["max", "axis 2", "[2, 3]"]);
    let m = refused(|| x.prelu(&Var::constant(Tensor::zeros([2]))));
    says(&m, &["prelu", "[2]", "[2, 3]", "3 channels"]);
}
