//! The book's LeNet (D2L 6.6) as kiln blocks: shapes, parameter count, names, summary.

use kiln_autograd::Var;
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, BlockExt, Conv2D, Dense, Init, ReceptiveField, Sequential};
use kiln_tensor::rand::SeedableRng;
use kiln_tensor::{Hw, Tensor};

#[test]
fn layer_shapes_and_parameter_count() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let mut x = Var::constant(Tensor::<f32>::zeros([1, 1, 28, 28]));
    let expected: [&[usize]; 7] = [
        &[1, 6, 24, 24],
        &[1, 6, 12, 12],
        &[1, 16, 8, 8],
        &[1, 16, 4, 4],
        &[1, 120],
        &[1, 84],
        &[1, 10],
    ];
    for (block, shape) in net.iter().zip(expected) {
        x = block.forward(&x).unwrap();
        assert_eq!(x.dims(), shape, "after {}", block.name());
    }
    assert_eq!(net.collect_params().count().unwrap(), 44_426);
}

#[test]
fn parameters_are_named_as_gluon_and_keyed_by_path() {
    let net = lenet::<f32>(Activation::Sigmoid);
    let params = net.collect_params();
    let names: Vec<String> = params.iter().map(|(_, p)| p.name()).collect();
    assert_eq!(
        names,
        [
            "conv0_weight",
            "conv0_bias",
            "conv1_weight",
            "conv1_bias",
            "dense0_weight",
            "dense0_bias",
            "dense1_weight",
            "dense1_bias",
            "dense2_weight",
            "dense2_bias"
        ]
    );
    let paths: Vec<&str> = params.iter().map(|(k, _)| k).collect();
    assert_eq!(
        paths,
        [
            "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "5.weight", "5.bias",
            "6.weight", "6.bias"
        ]
    );
    assert_eq!(net[0].name(), "conv0");
    assert_eq!(net[3].name(), "pool1");
}

#[test]
fn nested_sequentials_have_nested_paths() {
    let inner = Sequential::<f64>::new()
        .add(Dense::new(3))
        .add(Dense::new(2));
    let net = Sequential::new().add(Dense::new(4)).add(inner);
    let params = net.collect_params();
    let paths: Vec<&str> = params.iter().map(|(k, _)| k).collect();
    assert_eq!(
        paths,
        [
            "0.weight",
            "0.bias",
            "1.0.weight",
            "1.0.bias",
            "1.1.weight",
            "1.1.bias"
        ]
    );
    assert_eq!(params.get("1.1.weight").unwrap().name(), "dense2_weight");
    net.initialize(&Init::default(), 0).unwrap();
    let y = net.predict(&Tensor::ones([5, 7])).unwrap();
    assert_eq!(y.dims(), &[5, 2]);
}

#[test]
fn summary_has_shapes_counts_and_receptive_fields() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let s = net.summary([1, 1, 28, 28]).unwrap();
    assert_eq!(s.total_params, 44_426);
    let names: Vec<&str> = s.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["conv0", "pool0", "conv1", "pool1", "dense0", "dense1", "dense2"]
    );
    let params: Vec<u64> = s.rows.iter().map(|r| r.params).collect();
    assert_eq!(params, [156, 0, 2416, 0, 30840, 10164, 850]);
    // conv0: 6·24·24 outputs × 25 taps; conv1: 16·8·8 × 150; dense: 256·120, 120·84, 84·10
    let macs: Vec<u64> = s.rows.iter().map(|r| r.mult_adds).collect();
    assert_eq!(macs, [86_400, 0, 153_600, 0, 30_720, 10_080, 840]);
    // D2L 6.2.6: receptive fields grow 5, 6, 14, 16, then the whole image
    let rf: Vec<ReceptiveField> = s.rows.iter().map(|r| r.receptive_field).collect();
    let w = |n| ReceptiveField::Window(Hw::new(n, n));
    assert_eq!(
        rf,
        [
            w(5),
            w(6),
            w(14),
            w(16),
            ReceptiveField::Global,
            ReceptiveField::Global,
            ReceptiveField::Global
        ]
    );
    let text = s.to_string();
    assert!(
        text.contains("conv0 (Conv2D)")
            && text.contains("(1, 6, 24, 24)")
            && text.contains("44,426"),
        "{text}"
    );
}

#[test]
fn the_books_padding_and_stride_examples_as_layers() {
    // D2L 6.3, with Gluon's Conv2D on an 8×8 input
    let shape = |conv: Conv2D<f32>| {
        conv.initialize(&Init::default(), 0).unwrap();
        conv.predict(&Tensor::zeros([1, 1, 8, 8])).unwrap().dims()[2..].to_vec()
    };
    assert_eq!(shape(Conv2D::new(1, 3).padding(1)), [8, 8]);
    assert_eq!(shape(Conv2D::new(1, (5, 3)).padding((2, 1))), [8, 8]);
    assert_eq!(shape(Conv2D::new(1, 3).padding(1).strides(2)), [4, 4]);
    assert_eq!(
        shape(Conv2D::new(1, (3, 5)).padding((0, 1)).strides((3, 4))),
        [2, 2]
    );
}

#[test]
fn one_by_one_conv2d_is_a_dense_layer_over_channels() {
    // D2L 6.4.3: a 1×1 convolution is a fully connected layer applied at every pixel
    let conv = Conv2D::<f64>::new(2, 1);
    conv.initialize(&Init::normal(1.0), 3).unwrap();
    let x = Tensor::rand_uniform(
        [1, 3, 3, 3],
        -1.0,
        1.0,
        &mut kiln_tensor::rand::rngs::StdRng::seed_from_u64(1),
    );
    let y = conv.predict(&x).unwrap();
    let dense = Dense::<f64>::new(2).flatten(false);
    dense
        .weight()
        .set_data(conv.weight().data().unwrap().reshape([2, 3]).unwrap())
        .unwrap();
    dense
        .bias()
        .unwrap()
        .set_data((*conv.bias().unwrap().data().unwrap()).clone())
        .unwrap();
    // (1, 3, 3, 3) → pixels as rows (9, 3) → dense → (9, 2) → back to (1, 2, 3, 3)
    let pixels = x.reshape([3, 9]).unwrap().transpose(0, 1).unwrap();
    let z = dense
        .predict(&pixels)
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .reshape([1, 2, 3, 3])
        .unwrap();
    for (a, b) in y.data().iter().zip(z.data()) {
        assert!((a - b).abs() < 1e-12);
    }
}
