//! Gluon's metrics against hand-counted examples (and the examples of MXNet 1.9's own
//! docstrings in python/mxnet/metric.py), their names, how they count instances across
//! updates, and the mistakes: each an error naming the metric, never a panic.

use kiln_nn::metric::{
    Accuracy, CompositeEvalMetric, CrossEntropy, F1Average, Loss, Perplexity, TopKAccuracy, F1,
    MAE, MSE, RMSE,
};
use kiln_nn::{LabelsRef, Metric, MetricUpdate};
use kiln_tensor::Tensor;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn t64(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_f64s(values, shape).unwrap()
}

fn t32(values: &[f64], shape: &[usize]) -> Tensor<f32> {
    Tensor::from_f64s(values, shape).unwrap()
}

fn classes<T: kiln_tensor::Float>(c: &[usize]) -> LabelsRef<'_, T> {
    LabelsRef::Classes(c)
}

fn assert_close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "{got} vs {want}");
}

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

#[test]
fn names_are_gluons() {
    let names = [
        Accuracy::new().name(),
        TopKAccuracy::new(5).name(),
        CrossEntropy::new().name(),
        Perplexity::new().name(),
        MAE::new().name(),
        MSE::new().name(),
        RMSE::new().name(),
        F1::new().name(),
        Loss::new().name(),
        CompositeEvalMetric::new().name(),
    ];
    assert_eq!(
        names,
        [
            "accuracy",
            "top_k_accuracy_5",
            "cross-entropy",
            "perplexity",
            "mae",
            "mse",
            "rmse",
            "f1",
            "loss",
            "composite"
        ]
    );
    // nothing counted yet: NaN, as Gluon's get() with num_inst == 0
    assert!(Accuracy::new().get().is_nan());
    assert!(F1::new().get().is_nan());
    assert!(MAE::new().get().is_nan());
    assert!(Perplexity::new().get().is_nan());
}

#[test]
fn accuracy_counts_first_maxima_per_sample() {
    // rows [0.1, 0.9], [0.5, 0.5], [2, 1] predict 1, 0 (the first of a tie), 0
    let s = t32(&[0.1, 0.9, 0.5, 0.5, 2.0, 1.0], &[3, 2]);
    let mut acc = Accuracy::new();
    acc.update(classes(&[0, 1, 0]), &s).unwrap();
    assert_eq!((acc.correct, acc.total), (1, 3));
    // one-hot rows: classes 1, 1, 0 → rows 0 and 2 right; running total 3 of 6
    let onehot = t32(&[0., 1., 0., 1., 1., 0.], &[3, 2]);
    acc.update(LabelsRef::Targets(&onehot), &s).unwrap();
    assert_eq!((acc.correct, acc.total), (3, 6));
    assert_eq!(acc.get(), 0.5);
    // labels as a tensor of integers: [1, 0, 0] are all right
    acc.reset();
    acc.update(LabelsRef::Targets(&t32(&[1., 0., 0.], &[3])), &s)
        .unwrap();
    assert_eq!(acc.get(), 1.0);
    // predictions that are classes already (pred and label shapes agree in MXNet):
    // int32(2.9) = 2, so [1, 0, 2] are right against labels [1, 0, 2]; 1 of [1, 1, 1]
    let predicted = t32(&[1., 0., 2.9], &[3]);
    acc.reset();
    acc.update(classes(&[1, 0, 2]), &predicted).unwrap();
    acc.update(classes(&[1, 1, 1]), &predicted).unwrap();
    assert_eq!((acc.correct, acc.total), (4, 6));
}

#[test]
fn top_k_counts_labels_among_the_k_highest() {
    // row 0: label 2 (0.3) is below only 0.5 → 2nd, in the top 2
    // row 1: label 2 (0.2) is below 0.4 and 0.3 → 3rd, out
    // row 2: all tie; label 1 ranks after class 0 only → 2nd, in
    let s = t64(
        &[
            0.1, 0.5, 0.3, 0.2, //
            0.4, 0.1, 0.2, 0.3, //
            0.25, 0.25, 0.25, 0.25,
        ],
        &[3, 4],
    );
    let mut top2 = TopKAccuracy::new(2);
    top2.update(classes(&[2, 2, 1]), &s).unwrap();
    assert_eq!((top2.correct(), top2.total()), (2, 3));
    // with the tied row labelled 3, it ranks 4th: out
    top2.update(classes(&[2, 2, 3]), &s).unwrap();
    assert_eq!((top2.correct(), top2.total()), (3, 6));
    assert_eq!(top2.get(), 0.5);
    let mut top3 = TopKAccuracy::new(3);
    top3.update(classes(&[2, 2, 3]), &s).unwrap();
    assert_eq!((top3.correct(), top3.total()), (2, 3));
    // NaN ranks above every number (NumPy's order): label 1 is 2nd, label 2 is 3rd
    let nan = t64(&[f64::NAN, 0.9, 0.1, f64::NAN, 0.9, 0.1], &[2, 3]);
    let mut top2 = TopKAccuracy::new(2);
    top2.update(classes(&[1, 2]), &nan).unwrap();
    assert_eq!(top2.correct(), 1);
    top2.reset();
    assert_eq!(top2.total(), 0);
}

#[test]
fn f1_macro_averages_batches_and_micro_pools_them() {
    // batch 1: predicted [1, 1, 0, 0] (argmax of each row), labels [1, 0, 1, 0]:
    // tp = fp = fn = tn = 1, precision = recall = ½, f1 = ½
    let b1 = t64(&[0., 1., 0., 1., 1., 0., 1., 0.], &[4, 2]);
    let l1 = [1, 0, 1, 0];
    // batch 2: predicted [0, 0], labels [1, 1]: tp = 0, so precision = recall = 0, f1 = 0
    let b2 = t64(&[1., 0., 1., 0.], &[2, 2]);
    let l2 = [1, 1];
    let mut macro_f1 = F1::new();
    macro_f1.update(classes(&l1), &b1).unwrap();
    assert_eq!(macro_f1.get(), 0.5);
    macro_f1.update(classes(&l2), &b2).unwrap();
    // the mean of the batches' scores: (½ + 0) / 2
    assert_eq!(macro_f1.get(), 0.25);
    // micro: tp = 1, fp = 1, fn = 3 over all six: precision ½, recall ¼,
    // f1 = 2 · ⅛ / ¾ = ⅓, stored as (⅓ · 6) / 6 as MXNet does
    let mut micro_f1 = F1::new().average(F1Average::Micro);
    micro_f1.update(classes(&l1), &b1).unwrap();
    micro_f1.update(classes(&l2), &b2).unwrap();
    let third = 2.0 * (0.5 * 0.25) / (0.5 + 0.25);
    assert_eq!(micro_f1.get(), third * 6.0 / 6.0);
    assert_close(micro_f1.get(), 1.0 / 3.0, 1e-15);
    micro_f1.reset();
    assert!(micro_f1.get().is_nan());
    micro_f1.update(classes(&l1), &b1).unwrap();
    assert_eq!(micro_f1.get(), 0.5);
}

#[test]
fn cross_entropy_and_perplexity_from_probabilities() {
    // −(ln(0.75 + 1e-12) + ln(0.5 + 1e-12)) / 2 = (0.28768207 + 0.69314718) / 2 = 0.49041462
    let p = t64(&[0.25, 0.75, 0.5, 0.5], &[2, 2]);
    let mut ce = CrossEntropy::new();
    ce.update(classes(&[1, 0]), &p).unwrap();
    assert_close(ce.get(), -(0.75f64.ln() + 0.5f64.ln()) / 2.0, 1e-11);
    assert_close(ce.get(), 0.490_414_626_505_863_6, 1e-11);
    // counted per sample: with −ln 0.1 = 2.30258509 added, the mean over 3
    ce.update(classes(&[0]), &t64(&[0.1, 0.9], &[1, 2]))
        .unwrap();
    assert_close(
        ce.get(),
        -(0.75f64.ln() + 0.5f64.ln() + 0.1f64.ln()) / 3.0,
        1e-11,
    );
    // MXNet's CrossEntropy docstring: the same probabilities in f32 give 0.57159948348999023,
    // the f32 sum −ln 0.3 − ln 1 − ln 0.6 = 1.7147985 divided by 3 in f64
    let docstring = t32(&[0.3, 0.7, 0.0, 1.0, 0.4, 0.6], &[3, 2]);
    let mut ce = CrossEntropy::new();
    ce.update(classes(&[0, 1, 1]), &docstring).unwrap();
    assert_eq!(ce.get(), 0.571_599_483_489_990_2);
    // MXNet's Perplexity docstring: labels [0, 1, 1], q = 0.3, 1.0, 0.6 →
    // exp(−(ln 0.3 + ln 1 + ln 0.6) / 3) = 1.7710976285155853: the f32 logarithms summed
    // in f32 (in f64 throughout it would be 1.7710976153043518)
    let q = t32(&[0.3, 0.7, 0.0, 1.0, 0.4, 0.6], &[3, 2]);
    let mut ppl = Perplexity::new();
    ppl.update(classes(&[0, 1, 1]), &q).unwrap();
    assert_eq!(ppl.get(), 1.771_097_628_515_585_3);
    // ignoring label −1 leaves samples 0 and 1: exp(−ln 0.3 / 2) = 1/√0.3 = 1.82574186
    let labels = t32(&[0., 1., -1.], &[3]);
    let mut ppl = Perplexity::new().ignore_label(-1);
    ppl.update(LabelsRef::Targets(&labels), &q).unwrap();
    assert_close(ppl.get(), 1.0 / 0.3f64.sqrt(), 1e-6);
    // a probability of 0 is floored at 1e-10: exp(−ln 1e-10) = 1e10
    let mut ppl = Perplexity::new();
    ppl.update(classes(&[0]), &t64(&[0.0, 1.0], &[1, 2]))
        .unwrap();
    assert_close(ppl.get() / 1e10, 1.0, 1e-12);
}

#[test]
fn regression_metrics_average_per_update() {
    // MXNet's docstrings: predicts [3, −0.5, 2, 7], labels [2.5, 0, 2, 8]:
    // MAE (0.5 + 0.5 + 0 + 1) / 4 = 0.5, MSE (0.25 + 0.25 + 0 + 1) / 4 = 0.375,
    // RMSE √0.375 = 0.612372457981: the f32 square root (0.6123724579811096), where
    // the f64 one is 0.6123724356957945, so MXNet's value was computed in f32, as here
    let pred = t32(&[3.0, -0.5, 2.0, 7.0], &[4, 1]);
    let label = t32(&[2.5, 0.0, 2.0, 8.0], &[4]);
    let (mut mae, mut mse, mut rmse) = (MAE::new(), MSE::new(), RMSE::new());
    mae.update(LabelsRef::Targets(&label), &pred).unwrap();
    mse.update(LabelsRef::Targets(&label), &pred).unwrap();
    rmse.update(LabelsRef::Targets(&label), &pred).unwrap();
    assert_eq!((mae.get(), mse.get()), (0.5, 0.375));
    assert_close(rmse.get(), 0.612_372_457_981, 1e-12);
    // a second update of one sample, |d| = 2: one more instance, not one more sample:
    // MAE (0.5 + 2) / 2 = 1.25 (a per-sample mean would be 4 / 5 = 0.8),
    // MSE (0.375 + 4) / 2 = 2.1875, RMSE (0.61237246 + 2) / 2
    let (p2, l2) = (t32(&[2.0], &[1]), t32(&[0.0], &[1]));
    mae.update(LabelsRef::Targets(&l2), &p2).unwrap();
    mse.update(LabelsRef::Targets(&l2), &p2).unwrap();
    rmse.update(LabelsRef::Targets(&l2), &p2).unwrap();
    assert_eq!((mae.get(), mse.get()), (1.25, 2.1875));
    assert_eq!(rmse.get(), (f64::from(0.375f32.sqrt()) + 2.0) / 2.0);
    mse.reset();
    assert!(mse.get().is_nan());
}

#[test]
fn loss_metric_is_the_mean_per_element() {
    let mut loss = Loss::new();
    loss.update_losses(&t32(&[1., 2., 3.], &[3]));
    MetricUpdate::<f32>::update(&mut loss, classes(&[]), &t32(&[4.], &[1])).unwrap();
    // (1 + 2 + 3 + 4) / 4
    assert_eq!(loss.get(), 2.5);
}

#[test]
fn composite_updates_each_child_and_lists_them() {
    let mut metrics = CompositeEvalMetric::new()
        .add(Accuracy::new())
        .add(TopKAccuracy::new(2))
        .add(CrossEntropy::new());
    let p = t64(&[0.2, 0.5, 0.3, 0.6, 0.3, 0.1], &[2, 3]);
    metrics.update(classes(&[2, 0]), &p).unwrap();
    let got = metrics.name_values();
    // accuracy: predicted [1, 0] → ½; top-2: label 2 (0.3) is 2nd, label 0 1st → 1;
    // cross-entropy: −(ln 0.3 + ln 0.6) / 2
    assert_eq!(got[0], ("accuracy".to_string(), 0.5));
    assert_eq!(got[1], ("top_k_accuracy_2".to_string(), 1.0));
    assert_eq!(got[2].0, "cross-entropy");
    assert_close(got[2].1, -(0.3f64.ln() + 0.6f64.ln()) / 2.0, 1e-11);
    assert_eq!(metrics.get(), 0.5);
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics.get_metric(1).unwrap().name(), "top_k_accuracy_2");
    // the same composite takes f32 batches too; nested composites flatten
    metrics
        .update(
            classes(&[1, 0]),
            &t32(&[0.2, 0.5, 0.3, 0.6, 0.3, 0.1], &[2, 3]),
        )
        .unwrap();
    assert_eq!(metrics.name_values()[0].1, 0.75);
    let mut outer = CompositeEvalMetric::new().add(metrics).add(F1::new());
    assert_eq!(outer.name_values().len(), 4);
    outer.reset();
    assert!(outer.name_values().iter().all(|(_, v)| v.is_nan()));
    assert!(CompositeEvalMetric::new().get().is_nan());
}

#[test]
fn wrong_batches_are_errors_naming_the_metric() {
    let s = t32(&[0.0; 8], &[4, 2]);
    let m = refused(|| Accuracy::new().update(classes(&[0, 1]), &s));
    says(&m, &["accuracy", "2 labels for 4"]);
    let m = refused(|| Accuracy::new().update(classes(&[0, 1, 2, 1]), &s));
    says(&m, &["accuracy", "label 2 of sample 2", "have 2"]);
    let m = refused(|| Accuracy::new().update(LabelsRef::Targets(&t32(&[0.0; 12], &[4, 3])), &s));
    says(&m, &["accuracy", "[4, 3]", "[4, 2]"]);
    let m =
        refused(|| Accuracy::new().update(LabelsRef::Targets(&t32(&[0., 1.5, 0., 0.], &[4])), &s));
    says(&m, &["accuracy", "1.5", "sample 1"]);
    let m = refused(|| Accuracy::new().update(classes(&[0]), &t32(&[0.0; 8], &[1, 2, 4])));
    says(&m, &["accuracy", "[1, 2, 4]"]);
    // top-k: k must be within 1 < k < C
    let m = refused(|| TopKAccuracy::new(2).update(classes(&[0, 1, 1, 0]), &s));
    says(&m, &["top_k_accuracy_2", "k = 2", "2 classes", "[4, 2]"]);
    let m = refused(|| TopKAccuracy::new(1).update(classes(&[0]), &t32(&[0.0; 5], &[1, 5])));
    says(&m, &["top_k_accuracy_1", "above 1"]);
    let m = refused(|| TopKAccuracy::new(2).update(classes(&[0]), &t32(&[0.0; 5], &[5])));
    says(&m, &["top_k_accuracy_2", "(N, C)", "[5]"]);
    // F1 is binary
    let m = refused(|| F1::new().update(classes(&[0, 1, 2, 0]), &s));
    says(&m, &["f1", "label 2 of sample 2"]);
    let m = refused(|| F1::new().update(classes(&[0, 1]), &t32(&[0.0; 6], &[2, 3])));
    says(&m, &["f1", "binary", "[2, 3]"]);
    let m = refused(|| CrossEntropy::new().update(classes(&[0, 1, 5, 0]), &s));
    says(&m, &["cross-entropy", "label 5 of sample 2"]);
    let m = refused(|| Perplexity::new().update(classes(&[0, 1, 2]), &s));
    says(&m, &["perplexity", "3 labels for 4 rows"]);
    let m = refused(|| Perplexity::new().update(classes(&[0, 1, 2, 0]), &s));
    says(&m, &["perplexity", "label 2 of sample 2"]);
    let m = refused(|| Perplexity::new().update(classes(&[0]), &t32(&[0.5], &[1])));
    says(&m, &["perplexity", "[1]"]);
    // regression metrics compare values of the same shape
    let m = refused(|| MAE::new().update(classes(&[0, 1, 1, 0]), &s));
    says(&m, &["mae", "class indices"]);
    let m = refused(|| MSE::new().update(LabelsRef::Targets(&t32(&[0.0; 4], &[4])), &s));
    says(&m, &["mse", "[4]", "[4, 2]"]);
    let m = refused(|| RMSE::new().update(LabelsRef::Targets(&t32(&[], &[0])), &t32(&[], &[0])));
    says(&m, &["rmse", "empty"]);
}

#[test]
fn composite_docstring_example_of_mxnet() {
    // metric.py, CompositeEvalMetric: predicts [[0.3, 0.7], [0, 1], [0.4, 0.6]],
    // labels [0, 1, 1] → (['accuracy', 'f1'], [0.6666666666666666, 0.8]): every row
    // predicts 1, so accuracy 2/3; tp = 2, fp = 1, fn = 0 → precision ⅔, recall 1,
    // f1 = 2 · ⅔ / (5/3) = 0.8
    let predicts = t32(&[0.3, 0.7, 0.0, 1.0, 0.4, 0.6], &[3, 2]);
    let labels = t32(&[0., 1., 1.], &[3]);
    let mut eval_metrics = CompositeEvalMetric::new()
        .add(Accuracy::new())
        .add(F1::new());
    eval_metrics
        .update(LabelsRef::Targets(&labels), &predicts)
        .unwrap();
    assert_eq!(
        eval_metrics.name_values(),
        [
            ("accuracy".to_string(), 0.666_666_666_666_666_6),
            ("f1".to_string(), 0.8)
        ]
    );
}
