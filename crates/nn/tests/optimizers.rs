//! Every optimizer against MXNet's formulas: three updates of a Dense layer with fixed
//! gradients, in f64, with momentum, weight decay, clip_gradient, centered, clip_weights
//! and per-parameter lr_mult/wd_mult, compared bit for bit with the independent script
//! below (its output is pasted into the tests).
//!
//! The script keeps every value in float64 as the kernels do for f64 weights, and rounds
//! each hyper-parameter a kernel receives to float32 (`f32`), as MXNet's operator
//! parameter structs hold them; AdaGrad and AdaDelta, written with NDArray arithmetic,
//! take double scalars.

use kiln_nn::{
    AdaDelta, AdaGrad, Adam, AdamW, BlockExt, Dense, Init, Nag, Optimizer, RmsProp, Sgd, Trainer,
};
use kiln_tensor::Tensor;

// # Three updates of one Dense layer (weight [[0.5, -1.5], [2, 0.25]], bias [0.125, -0.75]),
// # batch size 2, with the fixed gradients below; the bias has lr_mult 2 and wd_mult 0.
// # Written from MXNet 1.9's kernels (src/operator/optimizer_op-inl.h,
// # src/operator/contrib/adamw-inl.h) and Python optimizers (optimizer.py): float64
// # arithmetic in the kernels' order, with every kernel hyper-parameter rounded to float32.
// import math, struct
//
// def f32(x):
//     return struct.unpack('f', struct.pack('f', x))[0]
//
// def clip(x, c):
//     return c if x > c else (-c if x < -c else x)
//
// W0 = [0.5, -1.5, 2.0, 0.25]
// B0 = [0.125, -0.75]
// GW = [[1.0, -2.0, 0.5, 3.0], [-0.5, 1.5, 2.0, -1.0], [2.5, 0.5, -3.0, 1.0]]
// GB = [[0.25, -1.0], [0.75, 0.5], [-0.25, 2.0]]
// RS = 1.0 / 2
//
// def run(step, nstate, lr, wd, o):
//     out = []
//     for w, grads, lr_mult, wd_mult in [(W0, GW, 1.0, 1.0), (B0, GB, 2.0, 0.0)]:
//         w = list(w)
//         st = [[0.0] * len(w) for _ in range(nstate)]
//         for t, g in enumerate(grads, 1):
//             for i in range(len(w)):
//                 s = [x[i] for x in st]
//                 w[i], s = step(w[i], g[i], s, lr * lr_mult, wd * wd_mult, t, o)
//                 for x, v in zip(st, s):
//                     x[i] = v
//         out.append((w, st))
//     return out
//
// def sgd(w, g, s, lr, wd, t, o):
//     lr_, wd_, rs, mom = f32(lr), f32(wd), f32(RS), f32(o.get('momentum', 0.0))
//     m = s[0] if s else 0.0
//     d = mom * m - (lr_ * wd_) * w
//     m = d - (lr_ * rs) * g if 'clip' not in o else d - lr_ * clip(rs * g, f32(o['clip']))
//     return w + m, ([m] if s else [])
//
// def nag(w, g, s, lr, wd, t, o):
//     lr_, wd_, rs, mom = f32(lr), f32(wd), f32(RS), f32(o.get('momentum', 0.0))
//     gg = rs * g if 'clip' not in o else clip(rs * g, f32(o['clip']))
//     if not s:  # sgd_update
//         if 'clip' in o:
//             return (1.0 - lr_ * wd_) * w - lr_ * gg, []
//         return (1.0 - lr_ * wd_) * w - (lr_ * rs) * g, []
//     m = mom * s[0]
//     w2 = w - m + (mom + 1) * (m - lr_ * (gg + wd_ * w))
//     m = m - lr_ * (gg + wd_ * w2)   # the kernel reads the weight it has just written
//     return w2, [m]
//
// def adam(w, g, s, lr, wd, t, o):
//     b1, b2 = o.get('beta1', 0.9), o.get('beta2', 0.999)
//     coef1, coef2 = 1. - b1 ** t, 1. - b2 ** t
//     lr = lr * (math.sqrt(coef2) / coef1)
//     lr_, wd_, rs, b1_, b2_, eps = f32(lr), f32(wd), f32(RS), f32(b1), f32(b2), f32(o.get('eps', 1e-8))
//     gg = g * rs + w * wd_
//     if 'clip' in o:
//         gg = clip(gg, f32(o['clip']))
//     m = b1_ * s[0] + (1.0 - b1_) * gg
//     v = b2_ * s[1] + (1.0 - b2_) * gg * gg
//     return w - lr_ * m / (math.sqrt(v) + eps), [m, v]
//
// def adamw(w, g, s, lr, wd, t, o):
//     b1, b2 = o.get('beta1', 0.9), o.get('beta2', 0.999)
//     if o.get('correct_bias', True):
//         coef1, coef2 = 1. - b1 ** t, 1. - b2 ** t
//         lr = lr * math.sqrt(coef2) / coef1
//     eta, wd_, rs, eps = f32(lr), f32(wd), f32(RS), f32(o.get('eps', 1e-6))
//     b1_, b2_ = f32(b1), f32(b2)
//     c1, c2 = f32(1.0 - b1_), f32(1.0 - b2_)   # 1.f - beta in float32
//     gg = rs * g
//     if 'clip' in o:
//         gg = clip(gg, f32(o['clip']))
//     m = b1_ * s[0] + c1 * gg
//     v = b2_ * s[1] + c2 * (gg * gg)
//     return w - eta * (1.0 * m / (math.sqrt(v) + eps) + wd_ * w), [m, v]
//
// def rmsprop(w, g, s, lr, wd, t, o):
//     lr_, wd_, rs, g1, eps = f32(lr), f32(wd), f32(RS), f32(o.get('gamma1', 0.9)), f32(o.get('eps', 1e-8))
//     gg = rs * g + wd_ * w
//     if 'clip' in o:
//         gg = clip(gg, f32(o['clip']))
//     cw = f32(o['clip_weights']) if 'clip_weights' in o else None
//     if not o.get('centered'):
//         n = (1.0 - g1) * (gg * gg) + g1 * s[0]
//         w2 = w - lr_ * (gg / math.sqrt(n + eps))
//         return (clip(w2, cw) if cw else w2), [n]
//     g2 = f32(o.get('gamma2', 0.9))
//     n = (1.0 - g1) * gg * gg + g1 * s[0]
//     mg = (1.0 - g1) * gg + g1 * s[1]
//     d = g2 * s[2] - lr_ * gg / math.sqrt(n - mg * mg + eps)
//     w2 = w + d
//     return (clip(w2, cw) if cw else w2), [n, mg, d]
//
// def adagrad(w, g, s, lr, wd, t, o):   # NDArray scalars: doubles, no float32
//     gg = g * RS
//     if 'clip' in o:
//         gg = clip(gg, f32(o['clip']))
//     h = s[0] + gg * gg
//     div = gg / math.sqrt(h + o.get('eps', 1e-7))
//     return w + (div + w * wd) * -lr, [h]
//
// def adadelta(w, g, s, lr, wd, t, o):  # no learning rate
//     rho, eps = o.get('rho', 0.9), o.get('eps', 1e-5)
//     gg = g * RS
//     if 'clip' in o:
//         gg = clip(gg, f32(o['clip']))
//     a = s[0] * rho + gg * (1. - rho) * gg
//     d = math.sqrt(s[1] + eps) / math.sqrt(a + eps) * gg
//     ad = s[1] * rho + d * (1. - rho) * d
//     return w - (d + w * wd), [a, ad]
//
// CASES = [
//     ('sgd_plain', sgd, 0, 0.1, 0.0, {}),
//     ('sgd_momentum_wd_clip', sgd, 1, 0.1, 0.01, {'momentum': 0.9, 'clip': 0.6}),
//     ('nag_plain_wd', nag, 0, 0.1, 0.01, {}),
//     ('nag_momentum_wd', nag, 1, 0.1, 0.01, {'momentum': 0.9}),
//     ('nag_momentum_wd_clip', nag, 1, 0.1, 0.01, {'momentum': 0.9, 'clip': 0.6}),
//     ('adam_defaults', adam, 2, 0.01, 0.0, {}),
//     ('adam_wd_clip', adam, 2, 0.01, 0.01, {'clip': 0.6, 'beta1': 0.8, 'eps': 1e-3}),
//     ('adamw_wd', adamw, 2, 0.01, 0.01, {}),
//     ('adamw_no_bias_correction_clip', adamw, 2, 0.01, 0.1, {'correct_bias': False, 'clip': 0.6}),
//     ('rmsprop_defaults', rmsprop, 1, 0.01, 0.0, {}),
//     ('rmsprop_centered_wd_clip', rmsprop, 3, 0.01, 0.01,
//      {'centered': True, 'gamma1': 0.95, 'gamma2': 0.8, 'clip': 0.6, 'clip_weights': 1.99}),
//     ('adagrad_plain', adagrad, 1, 0.1, 0.0, {}),
//     ('adagrad_wd_clip', adagrad, 1, 0.1, 0.01, {'clip': 0.6, 'eps': 1e-3}),
//     ('adadelta_defaults', adadelta, 2, 0.0, 0.0, {}),
//     ('adadelta_wd_clip', adadelta, 2, 0.0, 0.01, {'rho': 0.95, 'eps': 1e-6, 'clip': 0.6}),
// ]
// for name, step, nstate, lr, wd, o in CASES:
//     (w, sw), (b, sb) = run(step, nstate, lr, wd, o)
//     print(f'{name}: w {w!r} b {b!r}')
//     for k, (x, y) in enumerate(zip(sw, sb)):
//         print(f'  state {k}: w {x!r} b {y!r}')

const W0: [f64; 4] = [0.5, -1.5, 2.0, 0.25];
const B0: [f64; 2] = [0.125, -0.75];
const GW: [[f64; 4]; 3] = [
    [1.0, -2.0, 0.5, 3.0],
    [-0.5, 1.5, 2.0, -1.0],
    [2.5, 0.5, -3.0, 1.0],
];
const GB: [[f64; 2]; 3] = [[0.25, -1.0], [0.75, 0.5], [-0.25, 2.0]];

/// Three steps of batch size 2 with the script's gradients; then the weight, the bias
/// and each state tensor of both must be the script's, bit for bit.
fn check(
    optimizer: impl Optimizer<f64> + 'static,
    weight: &[f64],
    bias: &[f64],
    states: &[(&[f64], &[f64])],
) {
    let layer = Dense::<f64>::new(2).in_units(2);
    layer.initialize(&Init::default(), 0).unwrap();
    let (w, b) = (layer.weight(), layer.bias().unwrap());
    w.set_data(Tensor::from_f64s(&W0, [2, 2]).unwrap()).unwrap();
    b.set_data(Tensor::from_f64s(&B0, [2]).unwrap()).unwrap();
    b.set_lr_mult(2.0);
    b.set_wd_mult(0.0);
    let name = optimizer.name();
    let mut trainer = Trainer::new(layer.collect_params(), optimizer);
    for (gw, gb) in GW.iter().zip(&GB) {
        let set = |p: &kiln_nn::Parameter<f64>, g: &[f64], shape: &[usize]| {
            let g = Tensor::from_f64s(g, shape).unwrap();
            p.leaf().unwrap().set_grad(g).unwrap();
        };
        set(w, gw, &[2, 2]);
        set(b, gb, &[2]);
        trainer.step(2).unwrap();
    }
    assert_eq!(trainer.num_update(), 3);
    assert_eq!(w.data().unwrap().data(), weight, "{name}: weight");
    assert_eq!(b.data().unwrap().data(), bias, "{name}: bias");
    let kept = trainer.states();
    assert_eq!(kept.len(), 2);
    for (k, (sw, sb)) in states.iter().enumerate() {
        assert_eq!(kept[0].tensors[k].data(), *sw, "{name}: weight state {k}");
        assert_eq!(kept[1].tensors[k].data(), *sb, "{name}: bias state {k}");
    }
    for s in kept {
        assert_eq!(s.count, Some(3));
        assert_eq!(s.tensors.len(), states.len(), "{name}: state tensors");
    }
}

#[rustfmt::skip]
#[test]
fn sgd_plain() {
    check(
        Sgd::new(0.1),
        &[0.3499999977648258, -1.5, 2.025000000372529, 0.09999999776482582],
        &[0.04999999888241291, -0.9000000022351742],
        &[],
    );
}

#[rustfmt::skip]
#[test]
fn sgd_momentum_wd_clip() {
    check(
        Sgd::new(0.1).momentum(0.9).wd(0.01).clip_gradient(0.6),
        &[0.34936234771723995, -1.4681601389955432, 1.86719457240636, 0.13117663439041138],
        &[-0.060249999303370674, -0.694000009417534],
        &[
            (&[-0.07923815245486102, -0.026448640444480007, -0.019532424294679163, -0.05415861157066243],
             &[-0.06274999807402488, -0.08400000911951072]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn nag_plain_wd() {
    check(
        Nag::new(0.1).wd(0.01),
        &[0.34857644727653814, -1.495629398534392, 2.019155973418261, 0.09950059752226523],
        &[0.04999999888241291, -0.9000000022351742],
        &[],
    );
}

#[rustfmt::skip]
#[test]
fn nag_momentum_wd() {
    check(
        Nag::new(0.1).momentum(0.9).wd(0.01),
        &[0.15484949649988344, -1.3958052753337222, 1.912826538310417, -0.22553530029233348],
        &[-0.11672499607391655, -0.9216000069200991],
        &[
            (&[-0.14385109006741106, -0.007816809151846023, 0.034698878552581996, -0.12619003562156167],
             &[-0.06274999807402488, -0.16400000554323196]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn nag_momentum_wd_clip() {
    check(
        Nag::new(0.1).momentum(0.9).wd(0.01).clip_gradient(0.6),
        &[0.2783494922605031, -1.492237936246505, 1.8500205749402927, 0.08272690282418488],
        &[-0.11672499607391655, -0.7696000156223773],
        &[
            (&[-0.07897459147786187, -0.026487091005284978, -0.019306716998196617, -0.05395590543358002],
             &[-0.06274999807402488, -0.08400000911951072]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adam_defaults() {
    check(
        Adam::new(0.01),
        &[0.4806642240288766, -1.4896834350475967, 1.9825515612515494, 0.23112045931349426],
        &[0.07697029433206662, -0.7338198009249925],
        &[
            (&[0.1430000325441357, 0.01150000524520928, -0.039750012934208726, 0.12650002491474036],
             &[0.03137500604987111, 0.08200002110004459]),
            (&[0.0018744136245930456, 0.0016224176447129776, 0.00331133244434192, 0.0027452169670620446],
             &[0.0001717009322275756, 0.0013119208665573858]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adam_wd_clip() {
    check(
        Adam::new(0.01).wd(0.01).clip_gradient(0.6).beta1(0.8).epsilon(1e-3),
        &[0.48243478279151686, -1.4941489280192286, 1.9813462970594196, 0.237056178539215],
        &[0.08344449606606036, -0.7351990202442602],
        &[
            (&[0.14542494018842606, 0.06621685244668943, 0.010560000820159898, 0.09766614135780215],
             &[0.05099999833106987, 0.09599999773502328]),
            (&[0.0006745176071289261, 0.000774175083556992, 0.000792384134598316, 0.0008590350210433014],
             &[0.0001717009322275756, 0.0006719291349133413]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adamw_wd() {
    check(
        AdamW::new(0.01).wd(0.01),
        &[0.4806279661820865, -1.4895711811950954, 1.9824029665916754, 0.23110251920633937],
        &[0.0769774867365562, -0.7338211015460036],
        &[
            (&[0.1430000325441357, 0.01150000524520928, -0.039750012934208726, 0.12650002491474036],
             &[0.03137500604987111, 0.08200002110004459]),
            (&[0.0018744136245930456, 0.0016224176447129776, 0.00331133244434192, 0.0027452169670620446],
             &[0.0001717009322275756, 0.0013119208665573858]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adamw_no_bias_correction_clip() {
    check(
        AdamW::new(0.01).wd(0.1).correct_bias(false).clip_gradient(0.6),
        &[0.425547783735272, -1.4770554441488561, 1.917256880067142, 0.19778702585845834],
        &[-0.06411258786351, -0.6965268563519416],
        &[
            (&[0.07800001943111443, 0.030400008606911045, 0.014250000655650394, 0.05360001332759863],
             &[0.03137500604987111, 0.042000013947487785]),
            (&[0.0006719291349133413, 0.0007814103705519233, 0.0007820050577999249, 0.0008590193413565231],
             &[0.0001717009322275756, 0.0006719291349133413]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn rmsprop_defaults() {
    check(
        RmsProp::new(0.01),
        &[0.45383103502326155, -1.4947216623758863, 1.964121939308079, 0.21842868534626655],
        &[0.021543020196375096, -0.7726144267037004],
        &[
            (&[0.18212504220008824, 0.13787502723932138, 0.32006257365643914, 0.22975004452466732],
             &[0.015484378289431238, 0.12587502878904316]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn rmsprop_centered_wd_clip() {
    check(
        RmsProp::new(0.01).centered(true).gamma1(0.95).gamma2(0.8).wd(0.01).clip_gradient(0.6).clip_weights(1.99),
        &[0.3898774745765891, -1.458115051253518, 1.8416274049915675, 0.1650858050411152],
        &[-0.23022613908025552, -0.6670983009114685],
        &[
            (&[0.032369888742189275, 0.036118155730260976, 0.03838962413426664, 0.040621650659068954],
             &[0.008166017470415657, 0.03225000879913598]),
            (&[0.04112884107973081, 0.013200285032452056, 0.010683751804027516, 0.02852016796950279],
             &[0.017203128736466084, 0.019312506213784598]),
            (&[-0.0475819065819177, -0.008678032396280904, -0.03295735285179087, -0.03132412765438493],
             &[-0.1014376501288708, -0.04127940143924648]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adagrad_plain() {
    check(
        AdaGrad::new(0.1),
        &[0.35343428191136866, -1.479611615990384, 1.8854021716759402, 0.15147164428187648],
        &[-0.20443370752439066, -0.8140170503274923],
        &[
            (&[1.875, 1.625, 3.3125, 2.75],
             &[0.171875, 1.3125]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adagrad_wd_clip() {
    check(
        AdaGrad::new(0.1).wd(0.01).clip_gradient(0.6).epsilon(1e-3),
        &[0.3703947742998812, -1.4946773132146631, 1.870673107504564, 0.15960596933988405],
        &[-0.19789647884958692, -0.7859206678021471],
        &[
            (&[0.6725000286102301, 0.7825000572204601, 0.7825000572204601, 0.8600000286102301],
             &[0.171875, 0.6725000286102301]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adadelta_defaults() {
    check(
        AdaDelta::new(),
        &[0.4824432011690428, -1.5022488033633283, 1.992576999236106, 0.23988558135188018],
        &[0.10768654622533191, -0.7602109728774696],
        &[
            (&[0.18212499999999998, 0.13787499999999997, 0.3200624999999999, 0.22974999999999995],
             &[0.015484374999999996, 0.12587499999999996]),
            (&[3.2032169097644234e-05, 1.6231264503295217e-05, 5.175820320427845e-05, 1.2383987486480508e-05],
             &[2.8086302887974747e-05, 3.054986087739493e-05]),
        ],
    );
}

#[rustfmt::skip]
#[test]
fn adadelta_wd_clip() {
    check(
        AdaDelta::new().rho(0.95).epsilon(1e-6).wd(0.01).clip_gradient(0.6),
        &[0.47848457348773527, -1.4578072992121598, 1.9363145157843964, 0.23811336707723874],
        &[0.11719879023958579, -0.7535543331169139],
        &[
            (&[0.03225000143051153, 0.03647000265002259, 0.037920315289497464, 0.04062000129103667],
             &[0.008166015625000007, 0.03225000143051153]),
            (&[2.6190410251715935e-06, 2.131710893605386e-06, 4.273086360691556e-06, 2.5646929546248255e-06],
             &[2.9779579790615876e-06, 2.6190410251715935e-06]),
        ],
    );
}

/// A layer with a fresh gradient, ready for a step.
fn layer_with_grad() -> Dense<f32> {
    let d = Dense::<f32>::new(2).in_units(2);
    d.initialize(&Init::default(), 0).unwrap();
    for p in [d.weight(), d.bias().unwrap()] {
        let g = Tensor::ones(p.shape());
        p.leaf().unwrap().set_grad(g).unwrap();
    }
    d
}

/// `optimizer`'s step must be refused with a message naming every one of `parts`, and
/// change nothing.
fn refused(optimizer: impl Optimizer<f32> + 'static, parts: &[&str]) {
    let d = layer_with_grad();
    let before = d.weight().data().unwrap().data().to_vec();
    let mut trainer = Trainer::new(d.collect_params(), optimizer);
    let message = trainer.step(1).unwrap_err().to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "«{message}» does not mention «{part}»"
        );
    }
    assert_eq!(d.weight().data().unwrap().data(), before, "{message}");
    assert_eq!(trainer.num_update(), 0);
}

#[test]
fn bad_hyper_parameters_are_refused_naming_the_optimizer_and_value() {
    refused(Sgd::new(-0.1), &["SGD", "learning rate", "-0.1"]);
    refused(
        Sgd::new(0.1).clip_gradient(-1.0),
        &["SGD", "clip_gradient", "-1"],
    );
    refused(Nag::new(0.1).momentum(1.5), &["NAG", "momentum", "1.5"]);
    refused(Adam::new(f64::NAN), &["Adam", "learning rate", "NaN"]);
    refused(
        Adam::default().beta1(1.0),
        &["Adam", "beta1", "[0, 1)", "1"],
    );
    refused(Adam::default().beta2(-0.5), &["Adam", "beta2", "-0.5"]);
    refused(
        Adam::default().epsilon(-1e-8),
        &["Adam", "epsilon", "-0.00000001"],
    );
    refused(
        Adam::default().epsilon(f64::NAN),
        &["Adam", "epsilon", "NaN"],
    );
    refused(AdamW::default().beta2(1.0), &["AdamW", "beta2", "1"]);
    refused(
        AdamW::default().wd(-0.01),
        &["AdamW", "weight decay", "-0.01"],
    );
    refused(RmsProp::default().gamma1(1.0), &["RMSProp", "gamma1", "1"]);
    refused(RmsProp::default().gamma2(2.0), &["RMSProp", "gamma2", "2"]);
    refused(
        RmsProp::default().clip_weights(0.0),
        &["RMSProp", "clip_weights", "0"],
    );
    refused(
        RmsProp::default().epsilon(0.0),
        &["RMSProp", "epsilon", "0"],
    );
    refused(
        AdaGrad::new(f64::INFINITY),
        &["AdaGrad", "learning rate", "inf"],
    );
    refused(
        AdaGrad::default().epsilon(-1.0),
        &["AdaGrad", "epsilon", "-1"],
    );
    refused(AdaDelta::new().rho(1.0), &["AdaDelta", "rho", "1"]);
    refused(
        AdaDelta::new().epsilon(1e-60),
        &["AdaDelta", "epsilon", "float32"],
    );
}

// The script of `adam_in_float32_is_the_kernels_float32_arithmetic`:
//
// # Adam on float32 weights as MXNet 1.9 computes it: the bias-corrected rate in double,
// # every hyper-parameter rounded to float32, every kernel operation rounded to float32
// # (an operation on two float32 values done in double and rounded once is the float32
// # operation, exactly).
// import math, struct
// def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
// def bits(x): return hex(struct.unpack('I', struct.pack('f', x))[0])
// w, m, v = [f32(0.3), f32(-1.7)], [0.0, 0.0], [0.0, 0.0]
// grads = [[0.37, -2.9], [1.3, 0.11], [-0.7, 4.1]]
// lr0, b1, b2, eps, wd, rs = 0.002, 0.9, 0.999, 1e-8, 0.01, 1.0 / 3
// for t, g in enumerate(grads, 1):
//     lr = f32(lr0 * (math.sqrt(1. - b2 ** t) / (1. - b1 ** t)))
//     B1, B2, E, WD, RS = f32(b1), f32(b2), f32(eps), f32(wd), f32(rs)
//     for i in range(2):
//         gi = f32(g[i])
//         gg = f32(f32(gi * RS) + f32(w[i] * WD))
//         m[i] = f32(f32(B1 * m[i]) + f32(f32(1.0 - B1) * gg))
//         v[i] = f32(f32(B2 * v[i]) + f32(f32(f32(1.0 - B2) * gg) * gg))
//         w[i] = f32(w[i] - f32(f32(lr * m[i]) / f32(f32(math.sqrt(v[i])) + E)))
// print([bits(x) for x in w], [bits(x) for x in m], [bits(x) for x in v])
// -> w ['0x3e975031', '0xbfd93b72'] m ['0x3cd8cb2d', '0x3d69bcc6'] v ['0x3987e1da', '0x3b36b1f5']

#[test]
fn adam_in_float32_is_the_kernels_float32_arithmetic() {
    let d = Dense::<f32>::new(1).in_units(2).use_bias(false);
    d.initialize(&Init::default(), 0).unwrap();
    let w = d.weight();
    w.set_data(Tensor::from_vec(vec![0.3, -1.7], [1, 2]).unwrap())
        .unwrap();
    let mut trainer = Trainer::new(d.collect_params(), Adam::new(0.002).wd(0.01));
    for g in [[0.37f32, -2.9], [1.3, 0.11], [-0.7, 4.1]] {
        let g = Tensor::from_vec(g.to_vec(), [1, 2]).unwrap();
        w.leaf().unwrap().set_grad(g).unwrap();
        trainer.step(3).unwrap();
    }
    let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&w.data().unwrap()), [0x3e97_5031, 0xbfd9_3b72]);
    let state = &trainer.states()[0].tensors;
    assert_eq!(bits(&state[0]), [0x3cd8_cb2d, 0x3d69_bcc6], "mean");
    assert_eq!(bits(&state[1]), [0x3987_e1da, 0x3b36_b1f5], "var");
}
