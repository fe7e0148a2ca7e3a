//! The shape walk-throughs of D2L chapter 7 (MXNet edition): `for layer in net: X =
//! layer(X); print(layer.name, 'output shape:', X.shape)` on one input at the book's
//! size, asserted on the top rows of `summary()` and on a forward pass through each
//! top-level block, with each block's parameter count. Every value is derived by hand
//! beside it, from out = ⌊(in + 2·padding − kernel) / stride⌋ + 1 for convolutions and
//! pooling, and the book's printouts where the book prints one.
//!
//! Names are kiln's for a freshly built network; Gluon names blocks when they are created,
//! so the book's printouts name some of them differently (its ResNet's stem is `conv5`,
//! after the five convolutions of the section's `Residual` examples): the shapes are the
//! book's.

use kiln_autograd::Var;
use kiln_nn::zoo::{
    alexnet, bn_lenet, densenet, googlenet, nin, resnet18, transition_block, vgg, vgg11_small,
    DenseBlock, Residual, VGG11_ARCH,
};
use kiln_nn::{BlockExt, Init, Sequential};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::Tensor;

/// One top-level block as the book prints it: its name, its output shape for one input,
/// and its parameters (Gluon's count, running statistics included).
type Step = (&'static str, &'static [usize], u64);

/// The top rows of `net`'s summary for a 1×1×side×side input are `book`, and the total is
/// their sum.
fn summary_walk(net: &Sequential<f32>, side: usize, book: &[Step]) {
    net.initialize(&Init::xavier(), 0).unwrap();
    let s = net.summary([1, 1, side, side]).unwrap();
    let top: Vec<Step> = s
        .rows
        .iter()
        .filter(|r| r.depth == 0)
        .map(|r| {
            let name: &'static str = Box::leak(r.name.clone().into_boxed_str());
            let dims: &'static [usize] = Box::leak(r.output.dims().to_vec().into_boxed_slice());
            (name, dims, r.params)
        })
        .collect();
    assert_eq!(top, book);
    assert_eq!(s.total_params, book.iter().map(|b| b.2).sum::<u64>());
}

/// The book's loop itself: a forward pass in predict mode through each top-level block,
/// whose outputs have the shapes of `book`.
fn forward_walk(net: &Sequential<f32>, side: usize, book: &[Step]) {
    net.initialize(&Init::xavier(), 0).unwrap();
    let mut x = Var::constant(Tensor::<f32>::rand_uniform(
        [1, 1, side, side],
        0.0,
        1.0,
        &mut StdRng::seed_from_u64(0),
    ));
    assert_eq!(net.len(), book.len());
    for (block, (name, shape, _)) in net.iter().zip(book) {
        x = block.call(&x).unwrap();
        assert_eq!(x.dims(), *shape, "after {name}");
    }
}

/// The rows at depth 1 of the given kind, which must be named `prefix0`, `prefix1`, … in
/// order: (output shape, parameters).
fn nested(net: &Sequential<f32>, side: usize, kind: &str, prefix: &str) -> Vec<(Vec<usize>, u64)> {
    let s = net.summary([1, 1, side, side]).unwrap();
    let rows: Vec<_> = s
        .rows
        .iter()
        .filter(|r| r.depth == 1 && r.kind == kind)
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let expected: Vec<String> = (0..rows.len()).map(|i| format!("{prefix}{i}")).collect();
    assert_eq!(names, expected);
    rows.iter()
        .map(|r| (r.output.dims().to_vec(), r.params))
        .collect()
}

/// D2L 7.1, AlexNet on 1×224×224.
const ALEXNET: [Step; 13] = [
    // (224 − 11)/4 = 53.25 → 53 + 1 = 54; 96·1·11·11 + 96
    ("conv0", &[1, 96, 54, 54], 11_712),
    // (54 − 3)/2 = 25.5 → 25 + 1 = 26
    ("pool0", &[1, 96, 26, 26], 0),
    // 5×5, padding 2 keeps 26; 256·96·25 + 256
    ("conv1", &[1, 256, 26, 26], 614_656),
    // (26 − 3)/2 = 11.5 → 12
    ("pool1", &[1, 256, 12, 12], 0),
    // 3×3, padding 1 keeps 12: 384·256·9 + 384, 384·384·9 + 384, 256·384·9 + 256
    ("conv2", &[1, 384, 12, 12], 885_120),
    ("conv3", &[1, 384, 12, 12], 1_327_488),
    ("conv4", &[1, 256, 12, 12], 884_992),
    // (12 − 3)/2 = 4.5 → 5
    ("pool2", &[1, 256, 5, 5], 0),
    // 256·5·5 = 6400 inputs: 6400·4096 + 4096
    ("dense0", &[1, 4096], 26_218_496),
    ("dropout0", &[1, 4096], 0),
    // 4096·4096 + 4096
    ("dense1", &[1, 4096], 16_781_312),
    ("dropout1", &[1, 4096], 0),
    // 4096·10 + 10; the whole: 46,764,746, the table
    ("dense2", &[1, 10], 40_970),
];

#[test]
fn d2l_7_1_alexnet_shapes() {
    summary_walk(&alexnet(), 224, &ALEXNET);
    forward_walk(&alexnet(), 224, &ALEXNET);
}

/// D2L 7.2 prints the full VGG-11 (`vgg(conv_arch)`) on 1×224×224: each block halves the
/// side, 224 → 112 → 56 → 28 → 14 → 7. Gluon's `vgg` creates `net` first, so its blocks
/// are sequential1 … sequential5, as here.
const VGG11: [Step; 10] = [
    // 64·1·9 + 64
    ("sequential1", &[1, 64, 112, 112], 640),
    // 128·64·9 + 128
    ("sequential2", &[1, 128, 56, 56], 73_856),
    // 256·128·9 + 256 + 256·256·9 + 256
    ("sequential3", &[1, 256, 28, 28], 885_248),
    // 512·256·9 + 512 + 512·512·9 + 512
    ("sequential4", &[1, 512, 14, 14], 3_539_968),
    // 2·(512·512·9 + 512)
    ("sequential5", &[1, 512, 7, 7], 4_719_616),
    // 512·7·7 = 25,088 inputs: 25088·4096 + 4096
    ("dense0", &[1, 4096], 102_764_544),
    ("dropout0", &[1, 4096], 0),
    ("dense1", &[1, 4096], 16_781_312),
    ("dropout1", &[1, 4096], 0),
    // total 128,806,154: ImageNet's VGG-11 (132,863,336) less 2·64·9 weights of the
    // two missing input channels and 990·4097 of the missing classes
    ("dense2", &[1, 10], 40_970),
];

/// The VGG-11 the book trains: every channel count divided by 4.
const VGG11_SMALL: [Step; 10] = [
    ("sequential1", &[1, 16, 112, 112], 160),
    // 32·16·9 + 32
    ("sequential2", &[1, 32, 56, 56], 4_640),
    // 64·32·9 + 64 + 64·64·9 + 64
    ("sequential3", &[1, 64, 28, 28], 55_424),
    // 128·64·9 + 128 + 128·128·9 + 128
    ("sequential4", &[1, 128, 14, 14], 221_440),
    // 2·(128·128·9 + 128)
    ("sequential5", &[1, 128, 7, 7], 295_168),
    // 128·7·7 = 6272 inputs: 6272·4096 + 4096
    ("dense0", &[1, 4096], 25_694_208),
    ("dropout0", &[1, 4096], 0),
    ("dense1", &[1, 4096], 16_781_312),
    ("dropout1", &[1, 4096], 0),
    // total 43,093,322, the table
    ("dense2", &[1, 10], 40_970),
];

#[test]
fn d2l_7_2_vgg11_shapes() {
    // the full network's summary allocates no activation and draws no weight
    summary_walk(&vgg(&VGG11_ARCH), 224, &VGG11);
    summary_walk(&vgg11_small(), 224, &VGG11_SMALL);
    forward_walk(&vgg11_small(), 224, &VGG11_SMALL);
}

/// D2L 7.3, NiN on 1×224×224. Each block: its convolution, then two 1×1 ones of as many
/// channels (c·c + c each).
const NIN: [Step; 10] = [
    // as AlexNet's first layer, 54; 96·121 + 96 + 2·(96·96 + 96)
    ("sequential1", &[1, 96, 54, 54], 30_336),
    ("pool0", &[1, 96, 26, 26], 0),
    // 256·96·25 + 256 + 2·(256·256 + 256)
    ("sequential2", &[1, 256, 26, 26], 746_240),
    ("pool1", &[1, 256, 12, 12], 0),
    // 384·256·9 + 384 + 2·(384·384 + 384)
    ("sequential3", &[1, 384, 12, 12], 1_180_800),
    ("pool2", &[1, 384, 5, 5], 0),
    ("dropout0", &[1, 384, 5, 5], 0),
    // 10·384·9 + 10 + 2·(10·10 + 10)
    ("sequential4", &[1, 10, 5, 5], 34_790),
    // global average pooling (Gluon's prefix for it is pool's)
    ("pool3", &[1, 10, 1, 1], 0),
    // total 1,992,166, the table
    ("flatten0", &[1, 10], 0),
];

#[test]
fn d2l_7_3_nin_shapes() {
    summary_walk(&nin(), 224, &NIN);
    forward_walk(&nin(), 224, &NIN);
}

/// D2L 7.4, GoogLeNet on 1×96×96. The book names the stages sequential0 … sequential4
/// (its `b1` … `b5` are created before `net`); here `net` is sequential0.
const GOOGLENET: [Step; 6] = [
    // 7×7 stride 2 padding 3: (96 + 6 − 7)/2 = 47.5 → 48; pool 3, stride 2, padding 1:
    // (48 + 2 − 3)/2 = 23.5 → 24; 64·49 + 64
    ("sequential1", &[1, 64, 24, 24], 3_200),
    // 64·64 + 64 + 192·64·9 + 192; pool: (24 + 2 − 3)/2 = 11.5 → 12
    ("sequential2", &[1, 192, 12, 12], 114_944),
    // 64 + 128 + 32 + 32 = 256, then 128 + 192 + 96 + 64 = 480 channels; pool → 6
    ("sequential3", &[1, 480, 6, 6], 552_432),
    // … 256 + 320 + 128 + 128 = 832 channels; pool: (6 + 2 − 3)/2 = 2.5 → 3
    ("sequential4", &[1, 832, 3, 3], 2_809_168),
    // 384 + 384 + 128 + 128 = 1024, globally pooled
    ("sequential5", &[1, 1024, 1, 1], 2_487_536),
    // 1024·10 + 10; total 5,977,530, the table
    ("dense0", &[1, 10], 10_250),
];

/// An Inception block's parameters for `i` input channels: four paths of convolutions
/// (weights and biases).
const fn inception(i: u64, c1: u64, c2: (u64, u64), c3: (u64, u64), c4: u64) -> u64 {
    (i * c1 + c1)
        + (i * c2.0 + c2.0 + c2.0 * c2.1 * 9 + c2.1)
        + (i * c3.0 + c3.0 + c3.0 * c3.1 * 25 + c3.1)
        + (i * c4 + c4)
}

#[test]
fn d2l_7_4_googlenet_shapes() {
    let net = googlenet();
    summary_walk(&net, 96, &GOOGLENET);
    forward_walk(&googlenet(), 96, &GOOGLENET);
    // inside the stages, each Inception block's output: c1 + c2.1 + c3.1 + c4 channels
    let blocks = [
        (192, 64, (96, 128), (16, 32), 32, 12),
        (256, 128, (128, 192), (32, 96), 64, 12),
        (480, 192, (96, 208), (16, 48), 64, 6),
        (512, 160, (112, 224), (24, 64), 64, 6),
        (512, 128, (128, 256), (24, 64), 64, 6),
        (512, 112, (144, 288), (32, 64), 64, 6),
        (528, 256, (160, 320), (32, 128), 128, 6),
        (832, 256, (160, 320), (32, 128), 128, 3),
        (832, 384, (192, 384), (48, 128), 128, 3),
    ];
    let expected: Vec<(Vec<usize>, u64)> = blocks
        .iter()
        .map(|&(i, c1, c2, c3, c4, side)| {
            let out = (c1 + c2.1 + c3.1 + c4) as usize;
            (vec![1, out, side, side], inception(i, c1, c2, c3, c4))
        })
        .collect();
    // each stage's total is the sum of its blocks (the stems' convolutions aside)
    assert_eq!(expected[..2].iter().map(|e| e.1).sum::<u64>(), 552_432);
    assert_eq!(expected[2..7].iter().map(|e| e.1).sum::<u64>(), 2_809_168);
    assert_eq!(expected[7..].iter().map(|e| e.1).sum::<u64>(), 2_487_536);
    let channels: Vec<usize> = expected.iter().map(|e| e.0[1]).collect();
    assert_eq!(channels, [256, 480, 512, 512, 512, 528, 832, 832, 1024]);
    assert_eq!(nested(&net, 96, "Inception", "inception"), expected);
}

/// D2L 7.5, LeNet with batch normalization on 1×28×28: LeNet's shapes (D2L 6.6), a
/// BatchNorm of 4 numbers per channel or unit (gamma, beta, running mean and variance)
/// after each convolution and hidden dense layer, each followed by its sigmoid.
const BN_LENET: [Step; 15] = [
    // 28 − 5 + 1 = 24; 6·25 + 6
    ("conv0", &[1, 6, 24, 24], 156),
    ("batchnorm0", &[1, 6, 24, 24], 24),
    ("sigmoid0", &[1, 6, 24, 24], 0),
    ("pool0", &[1, 6, 12, 12], 0),
    // 12 − 5 + 1 = 8; 16·6·25 + 16
    ("conv1", &[1, 16, 8, 8], 2_416),
    ("batchnorm1", &[1, 16, 8, 8], 64),
    ("sigmoid1", &[1, 16, 8, 8], 0),
    ("pool1", &[1, 16, 4, 4], 0),
    // 16·4·4 = 256 inputs: 256·120 + 120
    ("dense0", &[1, 120], 30_840),
    ("batchnorm2", &[1, 120], 480),
    ("sigmoid2", &[1, 120], 0),
    // 120·84 + 84
    ("dense1", &[1, 84], 10_164),
    ("batchnorm3", &[1, 84], 336),
    ("sigmoid3", &[1, 84], 0),
    // 84·10 + 10; total 44,426 + 4·(6 + 16 + 120 + 84) = 45,330, the table
    ("dense2", &[1, 10], 850),
];

#[test]
fn d2l_7_5_bn_lenet_shapes() {
    summary_walk(&bn_lenet(), 28, &BN_LENET);
    forward_walk(&bn_lenet(), 28, &BN_LENET);
    let s = bn_lenet::<f32>();
    s.initialize(&Init::xavier(), 0).unwrap();
    let s = s.summary([1, 1, 28, 28]).unwrap();
    // the running statistics are half of BatchNorm's 904 and not trained
    assert_eq!(s.total_params - s.trainable_params, 452);
}

/// D2L 7.6, ResNet-18 on 1×96×96 (the book's printout: conv5, batchnorm4, relu0, pool0,
/// sequential1 … sequential4, pool1, dense0).
const RESNET18: [Step; 10] = [
    // (96 + 6 − 7)/2 = 47.5 → 48; 64·49 + 64
    ("conv0", &[1, 64, 48, 48], 3_200),
    ("batchnorm0", &[1, 64, 48, 48], 256),
    ("relu0", &[1, 64, 48, 48], 0),
    // (48 + 2 − 3)/2 = 23.5 → 24
    ("pool0", &[1, 64, 24, 24], 0),
    // two Residual(64): 2·(2·(64·64·9 + 64) + 2·4·64)
    ("sequential1", &[1, 64, 24, 24], 148_736),
    // Residual(128, 1×1, stride 2): 128·64·9 + 128 + 128·128·9 + 128 + 128·64 + 128 +
    // 2·4·128 = 230,784; Residual(128): 2·(128·128·9 + 128) + 2·4·128 = 296,192
    ("sequential2", &[1, 128, 12, 12], 526_976),
    // 920,320 + 1,182,208, likewise
    ("sequential3", &[1, 256, 6, 6], 2_102_528),
    // 3,675,648 + 4,723,712
    ("sequential4", &[1, 512, 3, 3], 8_399_360),
    ("pool1", &[1, 512, 1, 1], 0),
    // 512·10 + 10; total 11,186,186, the table
    ("dense0", &[1, 10], 5_130),
];

#[test]
fn d2l_7_6_resnet18_shapes() {
    let net = resnet18();
    summary_walk(&net, 96, &RESNET18);
    forward_walk(&resnet18(), 96, &RESNET18);
    // each stage's two residual blocks; the first of stages 2–4 halves the side
    // (⌊(24 + 2 − 3)/2⌋ + 1 = 12, then 6, then 3) and has the 1×1 shortcut
    let residual = |c: u64, shortcut_in: Option<u64>| {
        let conv3 = |i: u64| i * c * 9 + c;
        let first_in = shortcut_in.unwrap_or(c);
        conv3(first_in) + conv3(c) + shortcut_in.map_or(0, |i| i * c + c) + 2 * 4 * c
    };
    let expected = vec![
        (vec![1, 64, 24, 24], residual(64, None)),
        (vec![1, 64, 24, 24], residual(64, None)),
        (vec![1, 128, 12, 12], residual(128, Some(64))),
        (vec![1, 128, 12, 12], residual(128, None)),
        (vec![1, 256, 6, 6], residual(256, Some(128))),
        (vec![1, 256, 6, 6], residual(256, None)),
        (vec![1, 512, 3, 3], residual(512, Some(256))),
        (vec![1, 512, 3, 3], residual(512, None)),
    ];
    assert_eq!(
        [expected[2].1, expected[3].1, expected[6].1, expected[7].1],
        [230_784, 296_192, 3_675_648, 4_723_712]
    );
    assert_eq!(nested(&net, 96, "Residual", "residual"), expected);
}

#[test]
fn d2l_7_6_residual_examples() {
    // blk = Residual(3); X = np.random.uniform(size=(4, 3, 6, 6)); blk(X).shape → (4, 3, 6, 6)
    // blk = Residual(6, use_1x1conv=True, strides=2) → (4, 6, 3, 3)
    let x = Tensor::<f32>::ones([4, 3, 6, 6]);
    let blk = Residual::<f32>::new(3, false, 1);
    blk.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(blk.predict(&x).unwrap().dims(), [4, 3, 6, 6]);
    let blk = Residual::<f32>::new(6, true, 2);
    blk.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(blk.predict(&x).unwrap().dims(), [4, 6, 3, 3]);
}

/// DenseNet on 1×96×96 (D2L 7.7 prints no walk-through of the whole network; these follow
/// from its definition): a ResNet stem, dense blocks of 4 convolutions adding 32 channels
/// each (c → c + 128), and transitions halving the channels (⌊c/2⌋) and the side (2×2
/// average pooling, stride 2). Names count depth first: each dense block holds a
/// Sequential of four conv blocks (Sequential, BatchNorm, ReLU, Conv2D), so the
/// transitions are sequential6, 12 and 18, and the last BatchNorm and ReLU the 21st of
/// their kind (one in the stem, 16 in the conv blocks, 3 in the transitions before them).
const DENSENET: [Step; 15] = [
    ("conv0", &[1, 64, 48, 48], 3_200),
    ("batchnorm0", &[1, 64, 48, 48], 256),
    ("relu0", &[1, 64, 48, 48], 0),
    ("pool0", &[1, 64, 24, 24], 0),
    // 64 + 4·32 = 192. Conv block k sees 64 + 32k channels (k = 0…3, 448 in all): BatchNorm
    // 4·448, convolutions 32·9·448 + 4·32
    ("denseblock0", &[1, 192, 24, 24], 130_944),
    // 192/2 = 96, (24 − 2)/2 + 1 = 12: BatchNorm 4·192, 1×1 conv 96·192 + 96
    ("sequential6", &[1, 96, 12, 12], 19_296),
    // 96 + 128 = 224; inputs 96 + 32k sum to 576: 4·576 + 288·576 + 128
    ("denseblock1", &[1, 224, 12, 12], 168_320),
    // 112, 6: 4·224 + 112·224 + 112
    ("sequential12", &[1, 112, 6, 6], 26_096),
    // 112 + 128 = 240; inputs sum to 640: 4·640 + 288·640 + 128
    ("denseblock2", &[1, 240, 6, 6], 187_008),
    // 120, 3: 4·240 + 120·240 + 120
    ("sequential18", &[1, 120, 3, 3], 29_880),
    // 120 + 128 = 248; inputs sum to 672: 4·672 + 288·672 + 128
    ("denseblock3", &[1, 248, 3, 3], 196_352),
    ("batchnorm20", &[1, 248, 3, 3], 992),
    ("relu20", &[1, 248, 3, 3], 0),
    ("pool4", &[1, 248, 1, 1], 0),
    // 248·10 + 10; total 764,834, the table
    ("dense0", &[1, 10], 2_490),
];

#[test]
fn d2l_7_7_densenet_shapes() {
    summary_walk(&densenet(), 96, &DENSENET);
    forward_walk(&densenet(), 96, &DENSENET);
}

#[test]
fn d2l_7_7_dense_and_transition_block_examples() {
    // blk = DenseBlock(2, 10); X = np.random.uniform(size=(4, 3, 8, 8)); Y = blk(X)
    // Y.shape → (4, 23, 8, 8): 3 + 2·10 channels
    let blk = DenseBlock::<f32>::new(2, 10);
    blk.initialize(&Init::xavier(), 0).unwrap();
    let y = blk.predict(&Tensor::ones([4, 3, 8, 8])).unwrap();
    assert_eq!(y.dims(), [4, 23, 8, 8]);
    // blk = transition_block(10); blk(Y).shape → (4, 10, 4, 4)
    let t = transition_block::<f32>(10);
    t.initialize(&Init::xavier(), 0).unwrap();
    assert_eq!(t.predict(&y).unwrap().dims(), [4, 10, 4, 4]);
}
