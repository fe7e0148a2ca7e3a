//! Gluon's losses against their closed forms, worked by hand beside the numbers (and
//! evaluated in f64 with the standard library's `exp`/`ln` as the independent source),
//! f64 gradient checks with respect to the prediction, large-logit stability, `weight`
//! and `batch_axis`, and the mistakes: each an error naming the loss, never a panic.

use kiln_autograd::{gradcheck, Leaf, Tape, Var};
use kiln_nn::{
    HingeLoss, HuberLoss, KLDivLoss, L1Loss, L2Loss, Labels, LabelsRef, Loss, NnError,
    SigmoidBinaryCrossEntropyLoss, SoftmaxCrossEntropyLoss,
};
use kiln_tensor::Tensor;
use proptest::prelude::*;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn tensor(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_f64s(values, shape).unwrap()
}

fn constant(values: &[f64], shape: &[usize]) -> Var<f64> {
    Var::constant(tensor(values, shape))
}

fn values(v: &Var<f64>) -> Vec<f64> {
    v.value().data().to_vec()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Asserts the gradient of `loss` with respect to `pred` matches central differences.
fn assert_gradcheck(loss: &dyn Loss<f64>, pred: &Tensor<f64>, labels: impl Fn() -> Labels<f64>) {
    let p = Leaf::new(pred.clone());
    let report = gradcheck(std::slice::from_ref(&p), |t: &Tape<f64>| {
        loss.loss(&t.leaf(&p), labels().as_ref())
    })
    .unwrap();
    assert!(report.checked > 0);
    assert!(report.passed(1e-6), "{}: {report}", loss.name());
}

/// The loss and the gradient of its sum with respect to `pred`.
fn loss_and_grad(
    loss: &dyn Loss<f32>,
    pred: Tensor<f32>,
    labels: LabelsRef<'_, f32>,
) -> (Vec<f32>, Vec<f32>) {
    let p = Leaf::new(pred);
    let tape = Tape::new();
    let l = loss.loss(&tape.leaf(&p), labels).unwrap();
    let out = l.value().data().to_vec();
    l.sum().unwrap().backward().unwrap();
    let grad = p.grad().unwrap().data().to_vec();
    (out, grad)
}

/// Runs `f`, which must return an error (not a value, not a panic); returns its message.
fn refused<R, E: Display>(f: impl FnOnce() -> Result<R, E>) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(_)) => panic!("the mistake was accepted"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("the mistake made kiln panic instead of returning an error"),
    }
}

fn says(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

// ---------------------------------------------------------------- SoftmaxCrossEntropyLoss

/// ln Σ_c e^(x_c) − x_label for logits [1, 2, 3] and label 2: ln(e + e² + e³) − 3 =
/// ln(1 + e^−1 + e^−2) = 0.40760596; for [0, 0, 0], any label: ln 3 = 1.09861229.
fn ce_row0() -> f64 {
    (1.0 + (-1f64).exp() + (-2f64).exp()).ln()
}

#[test]
fn softmax_cross_entropy_on_class_indices() {
    let logits = constant(&[1., 2., 3., 0., 0., 0.], &[2, 3]);
    let l = SoftmaxCrossEntropyLoss.forward(&logits, &[2, 0]).unwrap();
    assert_eq!(l.dims(), &[2]);
    assert_close(&values(&l), &[ce_row0(), 3f64.ln()], 1e-15);
    assert_close(
        &values(&l),
        &[0.407_605_964_444_380_6, 1.098_612_288_668_11],
        1e-15,
    );
    // the same labels as a tensor of (N,) or (N, 1) integers, and Gluon's weight (×2)
    let as_tensor = tensor(&[2., 0.], &[2]);
    let t = SoftmaxCrossEntropyLoss
        .forward(&logits, &as_tensor)
        .unwrap();
    assert_eq!(values(&t), values(&l));
    let t = SoftmaxCrossEntropyLoss::new()
        .weight(2.0)
        .forward(&logits, &tensor(&[2., 0.], &[2, 1]))
        .unwrap();
    assert_close(&values(&t), &[2.0 * ce_row0(), 2.0 * 3f64.ln()], 1e-15);
}

#[test]
fn softmax_cross_entropy_along_other_axes() {
    // the classes on axis 0 and the samples on axis 1: the same two rows transposed
    let logits = constant(&[1., 0., 2., 0., 3., 0.], &[3, 2]);
    let l = SoftmaxCrossEntropyLoss::new()
        .axis(0)
        .batch_axis(1)
        .forward(&logits, &[2, 0])
        .unwrap();
    assert_close(&values(&l), &[ce_row0(), 3f64.ln()], 1e-15);
    // (N, T, C) = (1, 2, 3) with labels (1, 2): one sample, the mean over its two steps,
    // (0.40760596 + 1.09861229) / 2 = 0.75310913
    let seq = constant(&[1., 2., 3., 0., 0., 0.], &[1, 2, 3]);
    let l = SoftmaxCrossEntropyLoss
        .forward(&seq, &tensor(&[2., 0.], &[1, 2]))
        .unwrap();
    assert_eq!(l.dims(), &[1]);
    assert_close(&values(&l), &[0.753_109_126_556_245_2], 1e-15);
}

#[test]
fn softmax_cross_entropy_from_log_probabilities() {
    // from_logits: pred is ln p, the loss −ln p_label: −ln 0.5 = 0.69314718, −ln 0.2
    let p = [0.2f64, 0.3, 0.5, 0.2, 0.3, 0.5];
    let log_p: Vec<f64> = p.iter().map(|v| v.ln()).collect();
    let pred = constant(&log_p, &[2, 3]);
    let l = SoftmaxCrossEntropyLoss::new()
        .from_logits(true)
        .forward(&pred, &[2, 0])
        .unwrap();
    assert_close(&values(&l), &[-(0.5f64.ln()), -(0.2f64.ln())], 1e-15);
    // a class of probability 0 (ln 0 = −∞) does not poison the others: pick, not a mask
    let pred = constant(&[0.5f64.ln(), 0.5f64.ln(), f64::NEG_INFINITY], &[1, 3]);
    let l = SoftmaxCrossEntropyLoss::new()
        .from_logits(true)
        .forward(&pred, &[1])
        .unwrap();
    assert_eq!(values(&l), &[-(0.5f64.ln())]);
}

#[test]
fn softmax_cross_entropy_on_one_hot_and_probability_labels() {
    let logits = constant(&[1., 2., 3., 0., 0., 0.], &[2, 3]);
    let dense = SoftmaxCrossEntropyLoss::new().sparse_label(false);
    let onehot = tensor(&[0., 0., 1., 1., 0., 0.], &[2, 3]);
    let l = dense.forward(&logits, &onehot).unwrap();
    assert_close(&values(&l), &[ce_row0(), 3f64.ln()], 1e-15);
    // labels [0.25, 0.25, 0.5] on [1, 2, 3]: −Σ z_c (x_c − lse) = lse − (0.25 + 0.5 + 1.5)
    // = 3.40760596 − 2.25 = 1.15760596; on [0, 0, 0]: ln 3 whatever the distribution
    let probs = tensor(&[0.25, 0.25, 0.5, 0.5, 0.0, 0.5], &[6]);
    let l = dense.forward(&logits, &probs).unwrap();
    assert_close(&values(&l), &[3.0 + ce_row0() - 2.25, 3f64.ln()], 1e-15);
}

#[test]
fn gradcheck_softmax_cross_entropy_every_path() {
    let x = tensor(&[0.3, -1.2, 2.0, 0.7, 1.1, -0.4, 0.0, 0.9], &[2, 4]);
    let classes = || Labels::Classes(vec![2, 0]);
    assert_gradcheck(&SoftmaxCrossEntropyLoss, &x, classes);
    assert_gradcheck(&SoftmaxCrossEntropyLoss::new().weight(0.5), &x, classes);
    let probs = tensor(&[0.1, 0.2, 0.3, 0.4, 0.0, 1.0, 0.0, 0.0], &[2, 4]);
    let dense = SoftmaxCrossEntropyLoss::new().sparse_label(false);
    assert_gradcheck(&dense, &x, || Labels::Targets(probs.clone()));
    let log_p = x.log_softmax(1).unwrap();
    let from_logits = SoftmaxCrossEntropyLoss::new().from_logits(true);
    assert_gradcheck(&from_logits, &log_p, classes);
    let axis0 = SoftmaxCrossEntropyLoss::new().axis(0).batch_axis(1);
    assert_gradcheck(&axis0, &x.transpose(0, 1).unwrap(), classes);
    let seq = x.reshape([1, 2, 4]).unwrap();
    assert_gradcheck(&SoftmaxCrossEntropyLoss, &seq, || {
        Labels::Targets(tensor(&[2., 0.], &[1, 2]))
    });
}

#[test]
fn softmax_cross_entropy_survives_logits_of_a_thousand() {
    // label 0 on [1000, 0, −1000]: ln(1 + e^−1000 + e^−2000) = 0; label 2: 2000
    let x = Tensor::<f32>::from_f64s(&[1000., 0., -1000., 1000., 0., -1000.], [2, 3]).unwrap();
    let sparse = SoftmaxCrossEntropyLoss;
    let (l, g) = loss_and_grad(&sparse, x.clone(), LabelsRef::Classes(&[0, 2]));
    assert_eq!(l, &[0.0, 2000.0]);
    // d ℓ / d x = softmax(x) − onehot = [1, 0, 0] − onehot
    assert_eq!(g, &[0., 0., 0., 1., 0., -1.]);
    let onehot = Tensor::<f32>::from_f64s(&[1., 0., 0., 0., 0., 1.], [2, 3]).unwrap();
    let dense = SoftmaxCrossEntropyLoss::new().sparse_label(false);
    let (l, g) = loss_and_grad(&dense, x.clone(), LabelsRef::Targets(&onehot));
    assert_eq!(l, &[0.0, 2000.0]);
    // log_softmax's backward takes e^logp through the f32 exp kernel, which clamps its
    // input at about −88.4: e^−1000 comes out as 4.2e-39 rather than 0
    for (got, want) in g.iter().zip([0., 0., 0., 1., 0., -1.]) {
        assert!((got - want).abs() < 1e-38, "{g:?}");
    }
    let axis0 = SoftmaxCrossEntropyLoss::new().axis(0).batch_axis(1);
    let (l, g) = loss_and_grad(
        &axis0,
        x.transpose(0, 1).unwrap(),
        LabelsRef::Classes(&[0, 2]),
    );
    assert_eq!(l, &[0.0, 2000.0]);
    assert!(g.iter().all(|v| v.is_finite()));
}

/// MXNet's per-sample value, as its kernels compute it in f32: log_softmax's
/// (x − max) − ln Σ e^(x − max) with the sum accumulated in order (softmax-inl.h, without
/// MXNET_SAFE_ACCUMULATION), then −pick, then the mean over the kept axis of length 1,
/// a Kahan sum of one element, 0 + (v − 0) (which turns −0 into +0), divided by 1.
fn mxnet_softmax_ce(row: &[f32], label: usize) -> f32 {
    let m = row
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    let sum = row.iter().fold(0.0f32, |s, &v| s + (v - m).exp());
    let v = -((row[label] - m) - sum.ln());
    (0.0 + (v - 0.0)) / 1.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The fused op, the log_softmax + pick path (classes on axis 0) and the dense path
    /// on one-hot rows all give MXNet's numbers, bit for bit.
    #[test]
    fn every_softmax_path_matches_the_reference_bit_for_bit(
        (n, c, logits, labels) in (1usize..6, 2usize..8).prop_flat_map(|(n, c)| (
            Just(n),
            Just(c),
            proptest::collection::vec(-50.0f32..50.0, n * c),
            proptest::collection::vec(0..c, n),
        ))
    ) {
        let x = Tensor::from_vec(logits.clone(), [n, c]).unwrap();
        let want: Vec<u32> = logits
            .chunks(c)
            .zip(&labels)
            .map(|(row, &l)| mxnet_softmax_ce(row, l).to_bits())
            .collect();
        let bits = |v: Var<f32>| -> Vec<u32> { v.value().data().iter().map(|x| x.to_bits()).collect() };
        let fused = SoftmaxCrossEntropyLoss.forward(&Var::constant(x.clone()), &labels).unwrap();
        prop_assert_eq!(bits(fused), want.clone());
        let transposed = Var::constant(x.transpose(0, 1).unwrap());
        let axis0 = SoftmaxCrossEntropyLoss::new().axis(0).batch_axis(1);
        prop_assert_eq!(bits(axis0.forward(&transposed, &labels).unwrap()), want.clone());
        let mut onehot = Tensor::<f32>::zeros([n, c]);
        for (i, &l) in labels.iter().enumerate() {
            onehot.set(&[i, l], 1.0).unwrap();
        }
        let dense = SoftmaxCrossEntropyLoss::new().sparse_label(false);
        prop_assert_eq!(bits(dense.forward(&Var::constant(x), &onehot).unwrap()), want);
    }
}

// ----------------------------------------------------------- SigmoidBinaryCrossEntropyLoss

/// The textbook form −z ln σ(x) − (1 − z) ln(1 − σ(x)).
fn bce(x: f64, z: f64) -> f64 {
    -z * sigmoid(x).ln() - (1.0 - z) * (1.0 - sigmoid(x)).ln()
}

#[test]
fn sigmoid_bce_from_logits_and_from_probabilities() {
    let x = [0.5, -1.0, 2.0, -3.0];
    let z = [1.0, 0.0, 0.5, 1.0];
    // sample 0: (ln(1 + e^−0.5) + ln(1 + e^−1)) / 2 = (0.47407698 + 0.31326169) / 2
    // = 0.39366934; sample 1: (bce(2, 0.5) + bce(−3, 1)) / 2 = 2.08775768
    let want = [
        (bce(0.5, 1.0) + bce(-1.0, 0.0)) / 2.0,
        (bce(2.0, 0.5) + bce(-3.0, 1.0)) / 2.0,
    ];
    assert_close(
        &want,
        &[0.393_669_335_849_164_75, 2.087_757_681_308_357],
        1e-15,
    );
    let l = SigmoidBinaryCrossEntropyLoss
        .forward(&constant(&x, &[2, 2]), &tensor(&z, &[2, 2]))
        .unwrap();
    assert_close(&values(&l), &want, 1e-15);
    // from_sigmoid: the same from p = σ(x), up to ε = 1e-12 inside each logarithm
    let p: Vec<f64> = x.iter().map(|&v| sigmoid(v)).collect();
    let l = SigmoidBinaryCrossEntropyLoss::new()
        .from_sigmoid(true)
        .forward(&constant(&p, &[2, 2]), &tensor(&z, &[4]))
        .unwrap();
    assert_close(&values(&l), &want, 1e-10);
}

#[test]
fn sigmoid_bce_pos_weight_scales_the_positive_term() {
    // −(w z ln σ(x) + (1 − z) ln(1 − σ(x))) with w per column, [2, 0.5]
    let x = [0.5, -1.0, 2.0, -3.0];
    let z = [1.0, 0.0, 0.5, 1.0];
    let w = [2.0, 0.5];
    let weighted = |i: usize| {
        let s = sigmoid(x[i]);
        -(w[i % 2] * z[i] * s.ln() + (1.0 - z[i]) * (1.0 - s).ln())
    };
    let want = [
        (weighted(0) + weighted(1)) / 2.0,
        (weighted(2) + weighted(3)) / 2.0,
    ];
    let pos_weight = tensor(&w, &[1, 2]);
    let logits = SigmoidBinaryCrossEntropyLoss::new().pos_weight(pos_weight.clone());
    let l = logits
        .forward(&constant(&x, &[2, 2]), &tensor(&z, &[2, 2]))
        .unwrap();
    assert_close(&values(&l), &want, 1e-15);
    let p: Vec<f64> = x.iter().map(|&v| sigmoid(v)).collect();
    let probs = logits.clone().from_sigmoid(true);
    let l = probs
        .forward(&constant(&p, &[2, 2]), &tensor(&z, &[2, 2]))
        .unwrap();
    assert_close(&values(&l), &want, 1e-10);
    let x = tensor(&x, &[2, 2]);
    assert_gradcheck(&logits, &x, || Labels::Targets(tensor(&z, &[2, 2])));
    let p = tensor(&p, &[2, 2]);
    assert_gradcheck(&probs, &p, || Labels::Targets(tensor(&z, &[2, 2])));
}

#[test]
fn gradcheck_sigmoid_bce() {
    // logits away from 0, where relu and |·| have their kink
    let x = tensor(&[0.5, -1.0, 2.0, -3.0, 0.2, -0.7], &[3, 2]);
    let z = tensor(&[1.0, 0.0, 0.5, 1.0, 0.0, 0.3], &[3, 2]);
    assert_gradcheck(&SigmoidBinaryCrossEntropyLoss, &x, || {
        Labels::Targets(z.clone())
    });
    let p = x.sigmoid();
    let probs = SigmoidBinaryCrossEntropyLoss::new()
        .from_sigmoid(true)
        .weight(3.0);
    assert_gradcheck(&probs, &p, || Labels::Targets(z.clone()));
}

#[test]
fn sigmoid_bce_survives_logits_of_a_thousand() {
    // z = 0 at x = 1000: relu(1000) − 0 + softrelu(−1000) = 1000; z = 1 at x = −1000:
    // 0 + 1000 + 0 = 1000; the mean is 1000. d ℓ / d x = (σ(x) − z) / 2 = [1/2, −1/2]
    let x = Tensor::<f32>::from_f64s(&[1000., -1000.], [1, 2]).unwrap();
    let z = Tensor::<f32>::from_f64s(&[0., 1.], [1, 2]).unwrap();
    let (l, g) = loss_and_grad(&SigmoidBinaryCrossEntropyLoss, x.clone(), (&z).into());
    assert_eq!((l, g), (vec![1000.0], vec![0.5, -0.5]));
    // and right: z = 1 at 1000, z = 0 at −1000 cost nothing
    let right = Tensor::<f32>::from_f64s(&[1., 0.], [1, 2]).unwrap();
    let (l, g) = loss_and_grad(&SigmoidBinaryCrossEntropyLoss, x, (&right).into());
    assert_eq!((l, g), (vec![0.0], vec![0.0, 0.0]));
}

// --------------------------------------------------------------- L1, L2, Huber, Hinge, KL

#[test]
fn l1_and_l2_per_sample() {
    let pred = constant(&[1., 2., 3., 4.], &[2, 2]);
    let label = constant(&[1., 0., 0., 0.], &[4]);
    // L1: sample 0 (|0| + |−2|) / 2 = 1, sample 1 (3 + 4) / 2 = 3.5; weight 2 doubles
    assert_eq!(values(&L1Loss.forward(&pred, &label).unwrap()), &[1.0, 3.5]);
    let l = L1Loss::new().weight(2.0).forward(&pred, &label).unwrap();
    assert_eq!(values(&l), &[2.0, 7.0]);
    // L2: ½(0 + 4)/2 = 1, ½(9 + 16)/2 = 6.25; weight 3 → (3/2)(0 + 4)/2 = 3, 18.75
    assert_eq!(
        values(&L2Loss.forward(&pred, &label).unwrap()),
        &[1.0, 6.25]
    );
    let l = L2Loss::new().weight(3.0).forward(&pred, &label).unwrap();
    assert_eq!(values(&l), &[3.0, 18.75]);
}

#[test]
fn batch_axis_keeps_that_axis_and_averages_the_others() {
    // pred (2, 3) with the samples along axis 1: L1 of column j is (|p_0j| + |p_1j|) / 2
    let pred = constant(&[1., -2., 3., 5., 6., -7.], &[2, 3]);
    let zero = constant(&[0.; 6], &[2, 3]);
    let l = L1Loss::new().batch_axis(1).forward(&pred, &zero).unwrap();
    assert_eq!(values(&l), &[3.0, 4.0, 5.0]);
    let l = L1Loss::new().batch_axis(-1).forward(&pred, &zero).unwrap();
    assert_eq!(values(&l), &[3.0, 4.0, 5.0]);
    // (2, 2, 2) with batch_axis 1: sample j averages the four elements [·, j, ·]
    let cube = constant(&[1., 2., 3., 4., 5., 6., 7., 8.], &[2, 2, 2]);
    let l = L2Loss::new()
        .batch_axis(1)
        .forward(&cube, &constant(&[0.; 8], &[8]))
        .unwrap();
    // j = 0: ½(1 + 4 + 25 + 36)/4 = 8.25; j = 1: ½(9 + 16 + 49 + 64)/4 = 17.25
    assert_eq!(values(&l), &[8.25, 17.25]);
}

#[test]
fn huber_is_quadratic_inside_rho_and_linear_outside() {
    // ρ = 1, d = [0.5, 2]: ½·0.25 = 0.125 and 2 − ½ = 1.5, mean 0.8125
    let pred = constant(&[0.5, 2.0], &[1, 2]);
    let zero = constant(&[0., 0.], &[1, 2]);
    assert_eq!(values(&HuberLoss.forward(&pred, &zero).unwrap()), &[0.8125]);
    // ρ = 2, d = [0.5, 3, 2]: 0.25/4 = 0.0625; 3 − 1 = 2; at d = ρ the quadratic side,
    // 4/4 = 1 (= 2 − 1, the two sides meet); mean 3.0625/3
    let pred = constant(&[-0.5, 3.0, 2.0], &[1, 3]);
    let l = HuberLoss::new()
        .rho(2.0)
        .forward(&pred, &constant(&[0.; 3], &[1, 3]))
        .unwrap();
    assert_close(&values(&l), &[3.0625 / 3.0], 1e-15);
    let x = tensor(&[0.3, -1.7, 2.4, 0.9, -0.2, 1.5], &[2, 3]);
    let y = tensor(&[0.0, 0.2, 0.1, -0.5, 0.4, 1.0], &[2, 3]);
    assert_gradcheck(&HuberLoss, &x, || Labels::Targets(y.clone()));
    assert_gradcheck(&HuberLoss::new().rho(0.5).weight(2.0), &x, || {
        Labels::Targets(y.clone())
    });
}

#[test]
fn hinge_per_sample() {
    // relu(1 − p·z) for p = [0.5, −2, 3], z = [1, 1, −1]: 0.5, 3, 4 → mean 2.5;
    // margin 2: 1.5, 4, 5 → 3.5; a confident right answer costs 0: relu(1 − 3) = 0
    let pred = constant(&[0.5, -2.0, 3.0, 3.0], &[2, 2]);
    let z = constant(&[1., 1., -1., 1.], &[2, 2]);
    let l = HingeLoss.forward(&pred, &z).unwrap();
    assert_eq!(values(&l), &[1.75, 2.0]);
    let l = HingeLoss::new().margin(2.0).forward(&pred, &z).unwrap();
    assert_eq!(values(&l), &[2.75, 2.5]);
    let x = tensor(&[0.5, -2.0, 3.0, 0.25], &[2, 2]);
    assert_gradcheck(&HingeLoss, &x, || {
        Labels::Targets(tensor(&[1., 1., -1., 1.], &[2, 2]))
    });
}

#[test]
fn kl_divergence_sums_over_the_classes() {
    // z = [½, ½], q = [¼, ¾]: Σ z ln(z / q) = ½ ln 2 + ½ ln ⅔ = ½ ln(4/3) = 0.14384104
    // (MXNet 1.9 sums; 1.8's mean would be half of it). z = 0 adds 0·(ln 1e-12 − ln q) = 0.
    let log_q = constant(
        &[0.25f64.ln(), 0.75f64.ln(), 0.5f64.ln(), 0.5f64.ln()],
        &[2, 2],
    );
    let z = tensor(&[0.5, 0.5, 1.0, 0.0], &[2, 2]);
    let l = KLDivLoss.forward(&log_q, &z).unwrap();
    // sample 1: 1 · (ln(1 + 1e-12) − ln ½) = ln 2 + 1e-12
    assert_close(&values(&l), &[0.5 * (4f64 / 3.0).ln(), 2f64.ln()], 1e-11);
    assert_close(&values(&l)[..1], &[0.143_841_036_225_890_4], 1e-11);
    // not from_logits: log_softmax first; logits ln q (shifted by 5) give the same
    let logits = constant(&[0.25f64.ln() + 5.0, 0.75f64.ln() + 5.0, 0.0, 0.0], &[2, 2]);
    let l = KLDivLoss::new()
        .from_logits(false)
        .forward(&logits, &z)
        .unwrap();
    assert_close(&values(&l), &[0.5 * (4f64 / 3.0).ln(), 2f64.ln()], 1e-11);
    let x = tensor(&[-1.2, -0.4, -2.0, -0.1, -0.7, -1.5], &[2, 3]);
    let z = tensor(&[0.2, 0.3, 0.5, 0.0, 0.6, 0.4], &[2, 3]);
    assert_gradcheck(&KLDivLoss, &x, || Labels::Targets(z.clone()));
    assert_gradcheck(&KLDivLoss::new().from_logits(false).weight(2.0), &x, || {
        Labels::Targets(z.clone())
    });
}

#[test]
fn gradcheck_l1_l2_with_weight_and_batch_axis() {
    let x = tensor(&[0.3, -1.7, 2.4, 0.9, -0.2, 1.5], &[3, 2]);
    let y = tensor(&[0.0, 0.2, 0.1, -0.5, 0.4, 1.0], &[3, 2]);
    let targets = || Labels::Targets(y.clone());
    assert_gradcheck(&L1Loss, &x, targets);
    assert_gradcheck(&L1Loss::new().weight(-2.0).batch_axis(1), &x, targets);
    assert_gradcheck(&L2Loss, &x, targets);
    assert_gradcheck(&L2Loss::new().weight(0.5).batch_axis(1), &x, targets);
}

#[test]
fn f32_weight_is_rounded_then_applied_before_the_mean() {
    // Gluon multiplies by f32(weight) element-wise, then averages: with weight 0.1 and
    // |d| = [1, 6], (f32(0.1)·1 + f32(0.1)·6) / 2 = 0.35000002 in f32, where averaging
    // first, 3.5 · f32(0.1), would give 0.34999999
    let pred = Var::constant(Tensor::<f32>::from_f64s(&[1.0, 6.0], [1, 2]).unwrap());
    let zero = Tensor::<f32>::zeros([1, 2]);
    let l = L1Loss::new().weight(0.1).forward(&pred, &zero).unwrap();
    let w = 0.1f32;
    assert_eq!(l.value().data(), &[(w * 1.0 + w * 6.0) / 2.0]);
    assert_eq!(l.value().data(), &[0.350_000_02]);
    assert_ne!(3.5 * w, 0.350_000_02);
}

// ------------------------------------------------------------------------------ mistakes

#[test]
fn wrong_labels_are_errors_naming_the_loss() {
    let scores = Var::constant(Tensor::<f32>::zeros([4, 10]));
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&scores, &[1, 2, 3]));
    says(
        &m,
        &[
            "SoftmaxCrossEntropyLoss",
            "3 labels for 4 samples",
            "[4, 10]",
        ],
    );
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&scores, &[1, 2, 3, 10]));
    says(
        &m,
        &[
            "SoftmaxCrossEntropyLoss",
            "label 10 of sample 3",
            "10 classes",
        ],
    );
    let axis0 = SoftmaxCrossEntropyLoss::new().axis(0);
    let m = refused(|| axis0.forward(&scores, &[1, 2, 3]));
    says(
        &m,
        &["SoftmaxCrossEntropyLoss", "3 labels", "10 lanes", "[4, 10]"],
    );
    let m = refused(|| axis0.forward(&scores, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 4]));
    says(&m, &["label 4 of sample 9", "4 classes"]);
    // one-hot rows to the sparse loss, class indices to the dense one
    let onehot = Tensor::<f32>::zeros([4, 10]);
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&scores, &onehot));
    says(
        &m,
        &[
            "SoftmaxCrossEntropyLoss",
            "[4]",
            "[4, 10]",
            "sparse_label(false)",
        ],
    );
    let dense = SoftmaxCrossEntropyLoss::new().sparse_label(false);
    let m = refused(|| dense.forward(&scores, &[1, 2, 3, 4]));
    says(&m, &["SoftmaxCrossEntropyLoss", "class indices", "[4, 10]"]);
    let m = refused(|| dense.forward(&scores, &Tensor::<f32>::zeros([4, 3])));
    says(&m, &["SoftmaxCrossEntropyLoss", "[4, 10]", "[4, 3]"]);
    let mut probs = Tensor::<f32>::zeros([4, 10]);
    probs.set(&[2, 7], 1.5).unwrap();
    let m = refused(|| dense.forward(&scores, &probs));
    says(&m, &["SoftmaxCrossEntropyLoss", "1.5", "[2, 7]", "[0, 1]"]);
    let m = refused(|| {
        SoftmaxCrossEntropyLoss.forward(
            &scores,
            &Tensor::from_f64s(&[0., 1., 2.5, 3.], [4]).unwrap(),
        )
    });
    says(&m, &["2.5", "[2]", "class index in 0..10"]);
    let m = refused(|| {
        SoftmaxCrossEntropyLoss.forward(
            &scores,
            &Tensor::from_f64s(&[0., -1., 2., 3.], [4]).unwrap(),
        )
    });
    says(&m, &["-1", "[1]"]);
    let m = refused(|| {
        SoftmaxCrossEntropyLoss::new()
            .axis(2)
            .forward(&scores, &[1, 2, 3, 4])
    });
    says(&m, &["SoftmaxCrossEntropyLoss", "axis 2", "2 axes"]);
    let m = refused(|| {
        SoftmaxCrossEntropyLoss::new()
            .batch_axis(-3)
            .forward(&scores, &[1, 2, 3, 4])
    });
    says(&m, &["SoftmaxCrossEntropyLoss", "batch_axis -3"]);
    let empty = Var::constant(Tensor::<f32>::zeros([0, 10]));
    let m = refused(|| SoftmaxCrossEntropyLoss.forward(&empty, &[]));
    says(&m, &["SoftmaxCrossEntropyLoss", "empty batch", "[0, 10]"]);
    let m =
        refused(|| SoftmaxCrossEntropyLoss.forward(&Var::constant(Tensor::scalar(1.0f32)), &[0]));
    says(&m, &["SoftmaxCrossEntropyLoss", "scalar"]);
}

#[test]
fn targets_losses_refuse_class_indices_and_bad_targets() {
    let pred = Var::constant(Tensor::<f32>::zeros([4, 2]));
    let losses: [(&dyn Loss<f32>, &str); 6] = [
        (&L1Loss, "L1Loss"),
        (&L2Loss, "L2Loss"),
        (&HuberLoss, "HuberLoss"),
        (&HingeLoss, "HingeLoss"),
        (
            &SigmoidBinaryCrossEntropyLoss,
            "SigmoidBinaryCrossEntropyLoss",
        ),
        (&KLDivLoss, "KLDivLoss"),
    ];
    for (loss, name) in losses {
        assert_eq!(loss.name(), name);
        let m = refused(|| loss.loss(&pred, LabelsRef::Classes(&[0, 1, 1, 0])));
        says(&m, &[name, "class indices"]);
        let short = Tensor::<f32>::zeros([4, 3]);
        let m = refused(|| loss.loss(&pred, (&short).into()));
        says(&m, &[name, "[4, 2]", "[4, 3]"]);
        let mut nan = Tensor::<f32>::ones([4, 2]);
        nan.set(&[3, 1], f32::NAN).unwrap();
        let m = refused(|| loss.loss(&pred, (&nan).into()));
        says(&m, &[name, "NaN", "[3, 1]"]);
        let m = refused(|| loss.loss(&Var::constant(Tensor::zeros([0, 2])), (&short).into()));
        says(&m, &[name, "empty"]);
    }
    let mut z = Tensor::<f32>::zeros([4, 2]);
    z.set(&[1, 0], 1.5).unwrap();
    let m = refused(|| SigmoidBinaryCrossEntropyLoss.forward(&pred, &z));
    says(
        &m,
        &["SigmoidBinaryCrossEntropyLoss", "1.5", "[1, 0]", "[0, 1]"],
    );
    let m = refused(|| KLDivLoss.forward(&pred, &z));
    says(&m, &["KLDivLoss", "1.5", "[1, 0]"]);
    let m = refused(|| KLDivLoss.forward(&pred, &Tensor::<f32>::zeros([8])));
    says(&m, &["KLDivLoss", "[4, 2]", "[8]"]);
    let m = refused(|| HingeLoss.forward(&pred, &Tensor::<f32>::zeros([4, 2])));
    says(&m, &["HingeLoss", "label 0 at [0, 0]", "−1 or 1"]);
    let m = refused(|| HuberLoss::new().rho(0.0).forward(&pred, &z));
    says(&m, &["HuberLoss", "rho", "0"]);
    let m = refused(|| HingeLoss::new().margin(f64::NAN).forward(&pred, &z));
    says(&m, &["HingeLoss", "margin", "NaN"]);
    let bad_weight = SigmoidBinaryCrossEntropyLoss::new().pos_weight(Tensor::ones([3]));
    let m = refused(|| bad_weight.forward(&pred, &Tensor::<f32>::zeros([4, 2])));
    says(
        &m,
        &[
            "SigmoidBinaryCrossEntropyLoss",
            "pos_weight",
            "[3]",
            "[4, 2]",
        ],
    );
    let m = refused(|| L1Loss::new().batch_axis(2).forward(&pred, &z));
    says(&m, &["L1Loss", "batch_axis 2", "2 axes"]);
}

#[test]
fn losses_are_values_and_builders() {
    // the unit-struct spelling of earlier versions still reads as Gluon's `L2Loss()`
    assert_eq!(L2Loss, L2Loss::new());
    assert_eq!(L2Loss::default(), L2Loss::new());
    assert_ne!(L2Loss::new().weight(2.0), L2Loss);
    assert_eq!(SoftmaxCrossEntropyLoss, SoftmaxCrossEntropyLoss::default());
    let err: NnError = L2Loss
        .forward(&Var::constant(Tensor::<f32>::zeros([2])), &[0usize, 1])
        .unwrap_err();
    says(&err.to_string(), &["L2Loss", "class indices"]);
}
