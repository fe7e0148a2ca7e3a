//! The learning rate of each schedule at updates 0..=12, with and without warmup, against
//! values worked out by hand from `mxnet.lr_scheduler` (1.9); how a trainer drives them
//! (the first step uses the rate at update 1); and refused settings.

use kiln_nn::{
    BlockExt, CosineScheduler, Dense, FactorScheduler, Init, LrScheduler, MultiFactorScheduler,
    PolyScheduler, Sgd, Trainer, WarmupMode,
};
use kiln_tensor::Tensor;

/// The rates at 0..=12.
fn rates(s: &dyn LrScheduler) -> Vec<f64> {
    (0..=12).map(|n| s.learning_rate(n)).collect()
}

/// Equal up to one rounding of a hand formula (`cos`, `powf`).
fn close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len());
    for (n, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= 1e-15, "update {n}: {a} but by hand {e}");
    }
}

#[test]
fn factor_multiplies_every_step_updates_counting_warmup() {
    // k = (n − 1) div 3 multiplications by 0.5: MXNet decays once n > count + step
    let s = FactorScheduler::new(3, 0.5).base_lr(1.0);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
    // floored at stop_factor_lr: 0.125 < 0.2 becomes 0.2
    let s = FactorScheduler::new(3, 0.5)
        .base_lr(1.0)
        .stop_factor_lr(0.2);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]);
    // linear warmup over 4 updates from 0.25: 0.25 + 0.75·n/4; MXNet's count starts at 0,
    // so at n = 4 the rate has already been halved once: (4 − 1) div 3 = 1
    let s = FactorScheduler::new(3, 0.5)
        .base_lr(1.0)
        .warmup(4, 0.25, WarmupMode::Linear);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [0.25, 0.4375, 0.625, 0.8125, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
    let s = FactorScheduler::new(3, 0.5)
        .base_lr(1.0)
        .warmup(4, 0.25, WarmupMode::Constant);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
}

#[test]
fn factor_gives_the_same_rate_whatever_it_was_asked_before() {
    // MXNet's object changes as it is called; kiln's answer depends on n alone
    let s = FactorScheduler::new(2, 0.9).base_lr(0.1);
    let forward: Vec<f64> = (0..40).map(|n| s.learning_rate(n)).collect();
    let backward: Vec<f64> = (0..40).rev().map(|n| s.learning_rate(n)).collect();
    let fresh: Vec<f64> = (0..40)
        .map(|n| FactorScheduler::new(2, 0.9).base_lr(0.1).learning_rate(n))
        .collect();
    assert_eq!(forward, fresh);
    assert_eq!(backward.into_iter().rev().collect::<Vec<_>>(), fresh);
    // one multiplication at a time, as MXNet's `base_lr *= factor`: 0.1·0.9·0.9·0.9
    assert_eq!(s.learning_rate(7), 0.1 * 0.9 * 0.9 * 0.9);
    // a long run reaches the floor (1e-8) and stays there
    assert_eq!(s.learning_rate(1_000_000), 1e-8);
}

#[test]
fn multi_factor_decays_after_each_step() {
    // steps 2, 5, 9: the rate changes once n > step (at n = step it has not yet)
    let s = MultiFactorScheduler::new([2, 5, 9], 0.5).base_lr(1.0);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
    // linear warmup over 3 updates from 0.25: 0.25 + 0.75·n/3
    let s = MultiFactorScheduler::new([2, 5, 9], 0.5)
        .base_lr(1.0)
        .warmup(3, 0.25, WarmupMode::Linear);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [0.25, 0.5, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
    let s = MultiFactorScheduler::new([2, 5, 9], 0.5)
        .base_lr(1.0)
        .warmup(3, 0.25, WarmupMode::Constant);
    #[rustfmt::skip]
    assert_eq!(rates(&s), [0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]);
}

#[test]
fn poly_decays_to_the_final_rate_and_stays() {
    // (1 − n/10)²; from max_update = 10 on, the final rate 0
    let s = PolyScheduler::new(10).base_lr(1.0);
    #[rustfmt::skip]
    close(&rates(&s), &[1.0, 0.81, 0.64, 0.49, 0.36, 0.25, 0.16, 0.09, 0.04, 0.01, 0.0, 0.0, 0.0]);
    // power 1 towards 0.5: 0.5 + 0.5·(1 − n/10)
    let s = PolyScheduler::new(10).base_lr(1.0).pwr(1.0).final_lr(0.5);
    #[rustfmt::skip]
    close(&rates(&s), &[1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.5, 0.5]);
    // 2 warmup updates from 0.5 (0.5 + 0.5·n/2), then (1 − (n − 2)/10)² over 12 − 2
    let s = PolyScheduler::new(12)
        .base_lr(1.0)
        .warmup(2, 0.5, WarmupMode::Linear);
    #[rustfmt::skip]
    close(&rates(&s), &[0.5, 0.75, 1.0, 0.81, 0.64, 0.49, 0.36, 0.25, 0.16, 0.09, 0.04, 0.01, 0.0]);
}

#[test]
fn cosine_follows_half_a_period() {
    // (1 + cos(π·n/12))/2, with cos(kπ/12) from the half-angle formulas
    let (s2, s3, s6) = (2f64.sqrt(), 3f64.sqrt(), 6f64.sqrt());
    let cos12 = [
        1.0,
        (s6 + s2) / 4.0,
        s3 / 2.0,
        s2 / 2.0,
        0.5,
        (s6 - s2) / 4.0,
        0.0,
        -(s6 - s2) / 4.0,
        -0.5,
        -s2 / 2.0,
        -s3 / 2.0,
        -(s6 + s2) / 4.0,
        -1.0,
    ];
    let expected: Vec<f64> = cos12.iter().map(|c| (1.0 + c) / 2.0).collect();
    close(&rates(&CosineScheduler::new(12).base_lr(1.0)), &expected);
    // towards 0.2: 0.2 + 0.8·(1 + cos)/2
    let s = CosineScheduler::new(12).base_lr(1.0).final_lr(0.2);
    let expected: Vec<f64> = cos12.iter().map(|c| 0.2 + 0.8 * (1.0 + c) / 2.0).collect();
    close(&rates(&s), &expected);
    // constant warmup at 0 for 4 updates, then (1 + cos(π·(n − 4)/8))/2, 0 from 12 on
    let h = (2.0 + s2).sqrt() / 2.0; // cos(π/8)
    let l = (2.0 - s2).sqrt() / 2.0; // cos(3π/8)
    let cos8 = [1.0, h, s2 / 2.0, l, 0.0, -l, -s2 / 2.0, -h, -1.0];
    let mut expected = vec![0.0; 4];
    expected.extend(cos8.iter().map(|c| (1.0 + c) / 2.0));
    let s = CosineScheduler::new(12)
        .base_lr(1.0)
        .warmup(4, 0.0, WarmupMode::Constant);
    close(&rates(&s), &expected);
    assert_eq!(
        s.learning_rate(1000),
        0.0,
        "past max_update: the final rate"
    );
}

#[test]
fn the_first_step_uses_the_rate_at_update_one() {
    // one weight at 0 with gradient 1 each step: w = −Σ lr(n) over the steps n = 1, 2, …
    let d = Dense::<f64>::new(1).in_units(1).use_bias(false);
    d.initialize(&Init::Zero, 0).unwrap();
    let schedule = FactorScheduler::new(2, 0.5)
        .base_lr(1.0)
        .warmup(2, 0.0, WarmupMode::Linear);
    let mut trainer = Trainer::new(d.collect_params(), Sgd::new(123.0))
        .lr_scheduler(schedule)
        .unwrap();
    assert_eq!(trainer.learning_rate(), 0.0, "update 0: warmup starts at 0");
    let mut w = Vec::new();
    for _ in 0..4 {
        let g = Tensor::ones([1, 1]);
        d.weight().leaf().unwrap().set_grad(g).unwrap();
        trainer.step(1).unwrap();
        w.push(d.weight().data().unwrap().data()[0]);
    }
    // lr(1) = 0.5 (warmup), lr(2) = 1 · 0.5^((2−1) div 2 = 0), lr(3) = 0.5, lr(4) = 0.5
    assert_eq!(w, [-0.5, -1.5, -2.0, -2.5]);
    assert_eq!(
        trainer.learning_rate(),
        0.5,
        "the rate of the last step, lr(4)"
    );
    let err = trainer.set_learning_rate(0.1).unwrap_err().to_string();
    assert!(err.contains("FactorScheduler"), "{err}");
}

/// The schedule must be refused with a message naming every one of `parts`.
fn refused(s: impl LrScheduler + 'static, parts: &[&str]) {
    let message = s.validate().unwrap_err().to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "«{message}» does not mention «{part}»"
        );
    }
    let d = Dense::<f32>::new(1);
    assert!(Trainer::new(d.collect_params(), Sgd::default())
        .lr_scheduler(s)
        .is_err());
}

#[test]
fn bad_schedules_are_refused_naming_the_schedule_and_value() {
    refused(
        MultiFactorScheduler::new([5, 3], 0.5),
        &["MultiFactorScheduler", "increase", "[5, 3]"],
    );
    refused(
        MultiFactorScheduler::new([2, 2], 0.5),
        &["MultiFactorScheduler", "steps[1] = 2"],
    );
    refused(
        MultiFactorScheduler::new([0, 2], 0.5),
        &["MultiFactorScheduler", "≥ 1", "[0, 2]"],
    );
    refused(
        MultiFactorScheduler::new([], 0.5),
        &["MultiFactorScheduler", "at least one"],
    );
    refused(
        FactorScheduler::new(0, 0.5),
        &["FactorScheduler", "step", "0"],
    );
    refused(
        FactorScheduler::new(10, 1.5),
        &["FactorScheduler", "factor", "1.5"],
    );
    refused(
        FactorScheduler::new(10, f64::NAN),
        &["FactorScheduler", "factor", "NaN"],
    );
    refused(
        FactorScheduler::new(10, 0.5).base_lr(-0.1),
        &["FactorScheduler", "base_lr", "-0.1"],
    );
    refused(
        FactorScheduler::new(10, 0.5)
            .base_lr(0.1)
            .warmup(5, 0.2, WarmupMode::Linear),
        &["FactorScheduler", "warmup_begin_lr", "0.2", "0.1"],
    );
    refused(PolyScheduler::new(0), &["PolyScheduler", "max_update", "0"]);
    refused(
        PolyScheduler::new(10).warmup(10, 0.0, WarmupMode::Linear),
        &["PolyScheduler", "warmup_steps (10)", "max_update (10)"],
    );
    refused(
        PolyScheduler::new(10).pwr(f64::NAN),
        &["PolyScheduler", "pwr", "NaN"],
    );
    refused(
        CosineScheduler::new(10).final_lr(f64::NAN),
        &["CosineScheduler", "final_lr", "NaN"],
    );
    refused(
        CosineScheduler::new(10).base_lr(f64::INFINITY),
        &["CosineScheduler", "base_lr", "inf"],
    );
}
