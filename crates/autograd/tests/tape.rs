//! The tape's contract: what is recorded and when, what backward writes, what is released,
//! and the errors for misuse.

use kiln_autograd::{AutogradError, Leaf, Tape, Var};
use kiln_tensor::Tensor;

fn leaf(values: &[f64]) -> Leaf<f64> {
    Leaf::new(Tensor::from_f64s(values, [values.len()]).unwrap())
}

#[test]
fn backward_writes_gradients_and_releases_the_tape() {
    let x = leaf(&[1.0, 2.0, 3.0]);
    let tape = Tape::new();
    let y = tape.leaf(&x).square().unwrap().sum().unwrap();
    assert_eq!(tape.len(), 3, "leaf, square, sum");
    y.backward().unwrap();
    assert_eq!(x.grad().unwrap().data(), &[2.0, 4.0, 6.0]);
    assert!(x.is_fresh());
    assert_eq!(tape.len(), 0, "intermediate entries are released");
}

#[test]
fn a_gradient_read_is_a_snapshot_that_a_later_backward_leaves_alone() {
    // Leaf::grad() lent a RefCell borrow: a gradient held while the next backward wrote
    // one panicked ("already borrowed"). It is an Rc snapshot now, like Leaf::value().
    let x = leaf(&[1.0, 2.0]);
    let tape = Tape::new();
    tape.leaf(&x)
        .square()
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    let first = x.grad().unwrap();
    tape.leaf(&x)
        .mul_scalar(5.0)
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(first.data(), &[2.0, 4.0], "d Σx²/dx, as read");
    assert_eq!(
        x.grad().unwrap().data(),
        &[5.0, 5.0],
        "d Σ5x/dx, written after"
    );
    // zeroing in place leaves a held snapshot alone too
    let held = x.grad().unwrap();
    x.zero_grad();
    assert_eq!(
        (held.data(), x.grad().unwrap().data()),
        (&[5.0, 5.0][..], &[0.0, 0.0][..])
    );
}

#[test]
fn backward_twice_without_retaining_is_an_error() {
    let x = leaf(&[1.0]);
    let tape = Tape::new();
    let y = tape.leaf(&x).exp().unwrap();
    y.backward().unwrap();
    let err = y.backward().unwrap_err();
    assert_eq!(err, AutogradError::Released { op: "backward" });
    assert!(err.to_string().contains("already released"), "{err}");
}

#[test]
fn retain_graph_allows_a_second_walk() {
    let x = leaf(&[0.5]);
    let tape = Tape::new();
    let y = tape.leaf(&x).mul_scalar(3.0).unwrap();
    y.backward_with(None, true).unwrap();
    y.backward().unwrap();
    assert_eq!(
        x.grad().unwrap().data(),
        &[3.0],
        "each backward writes, it does not add"
    );
}

#[test]
fn backward_on_an_unrecorded_value_is_an_error() {
    let y = Var::constant(Tensor::<f64>::ones([1])).exp().unwrap();
    assert_eq!(y.backward().unwrap_err(), AutogradError::NoTape);
    // a constant on a tape is not recorded either
    let tape = Tape::new();
    let c = tape.constant(Tensor::<f64>::ones([1])).exp().unwrap();
    assert_eq!(tape.len(), 0, "ops on constants build nothing");
    assert_eq!(c.backward().unwrap_err(), AutogradError::NotRecorded);
}

#[test]
fn paused_and_unrecorded_ops_build_nothing() {
    let x = leaf(&[1.0, 2.0]);
    let tape = Tape::new();
    {
        let _pause = tape.pause();
        let y = tape.leaf(&x).sigmoid().unwrap();
        assert!(!y.requires_grad());
        assert_eq!(tape.len(), 0);
    }
    assert!(tape.is_recording());
}

#[test]
fn non_scalar_needs_a_head_gradient_of_its_shape() {
    let x = leaf(&[1.0, 2.0]);
    let tape = Tape::new();
    let y = tape.leaf(&x).mul_scalar(2.0).unwrap();
    let err = y.backward().unwrap_err();
    assert!(err.to_string().contains("pass a head gradient"), "{err}");
    let wrong = Tensor::ones([3]);
    assert!(y.backward_with(Some(&wrong), true).is_err());
    let head = Tensor::from_f64s(&[1.0, 10.0], [2]).unwrap();
    y.backward_with(Some(&head), false).unwrap();
    assert_eq!(x.grad().unwrap().data(), &[2.0, 20.0]);
}

#[test]
fn values_from_two_tapes_do_not_mix() {
    let x = leaf(&[1.0]);
    let (t1, t2) = (Tape::new(), Tape::new());
    let err = t1.leaf(&x).add(&t2.leaf(&x)).unwrap_err();
    assert_eq!(err, AutogradError::MixedTapes { op: "add" });
}

#[test]
fn a_leaf_on_no_path_gets_a_zero_gradient() {
    let (x, unused) = (leaf(&[1.0]), leaf(&[5.0, 6.0]));
    let tape = Tape::new();
    let _ = tape.leaf(&unused);
    let y = tape.leaf(&x).exp().unwrap();
    y.backward().unwrap();
    assert_eq!(unused.grad().unwrap().data(), &[0.0, 0.0]);
}

#[test]
fn train_and_predict_modes() {
    let tape = Tape::<f32>::new();
    assert!(tape.constant(Tensor::zeros([1])).is_training());
    tape.set_training(false);
    assert!(!tape.constant(Tensor::zeros([1])).is_training());
    assert!(!Var::constant(Tensor::<f32>::zeros([1])).is_training());
}

#[test]
fn shape_errors_carry_the_tensor_message_unchanged() {
    let tape = Tape::new();
    let (a, b) = (leaf(&[1.0, 2.0]), leaf(&[1.0, 2.0, 3.0]));
    let err = tape.leaf(&a).add(&tape.leaf(&b)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "add: shapes [2] and [3] do not broadcast together"
    );
}

#[test]
fn tapes_on_two_threads_do_not_interfere() {
    let handles: Vec<_> = (0..2)
        .map(|k| {
            std::thread::spawn(move || {
                let x = leaf(&[k as f64 + 1.0]);
                let tape = Tape::new();
                for _ in 0..100 {
                    tape.leaf(&x)
                        .square()
                        .unwrap()
                        .sum()
                        .unwrap()
                        .backward()
                        .unwrap();
                }
                let g = x.grad().unwrap().data()[0];
                g
            })
        })
        .collect();
    let grads: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(grads, vec![2.0, 4.0]);
}

#[test]
fn thousands_of_steps_keep_the_tape_flat() {
    let w = leaf(&[0.5, -0.5]);
    let tape = Tape::new();
    for _ in 0..5000 {
        let x = tape.constant(Tensor::from_f64s(&[1.0, 2.0], [2]).unwrap());
        let loss = tape
            .leaf(&w)
            .mul(&x)
            .unwrap()
            .sigmoid()
            .unwrap()
            .sum()
            .unwrap();
        loss.backward().unwrap();
        assert_eq!(tape.len(), 0);
        w.update_with_grad(|v, g| {
            let g = g.unwrap();
            for (v, g) in v.data_mut().iter_mut().zip(g.data()) {
                *v -= 0.1 * g;
            }
        });
    }
}

#[test]
fn grad_req_add_accumulates_until_zero_grad() {
    use kiln_autograd::GradReq;
    let x = leaf(&[1.0, -2.0]);
    x.set_grad_req(GradReq::Add);
    for _ in 0..3 {
        let tape = Tape::new();
        // d/dx Σ 3x = 3 per backward
        tape.leaf(&x)
            .mul_scalar(3.0)
            .unwrap()
            .sum()
            .unwrap()
            .backward()
            .unwrap();
    }
    assert_eq!(
        x.grad().unwrap().data(),
        &[9.0, 9.0],
        "three backwards add up"
    );
    x.zero_grad();
    let tape = Tape::new();
    tape.leaf(&x)
        .square()
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    // after zero_grad: 0 + 2x
    assert_eq!(x.grad().unwrap().data(), &[2.0, -4.0]);
}

#[test]
fn grad_req_null_makes_the_leaf_a_constant() {
    use kiln_autograd::GradReq;
    let (w, x) = (leaf(&[2.0]), leaf(&[5.0]));
    w.set_grad_req(GradReq::Null);
    let tape = Tape::new();
    let y = tape.leaf(&w).mul(&tape.leaf(&x)).unwrap().sum().unwrap();
    y.backward().unwrap();
    assert!(w.grad().is_none(), "a frozen leaf gets no gradient");
    assert!(!w.is_fresh());
    // d(w·x)/dx = w = 2
    assert_eq!(x.grad().unwrap().data(), &[2.0]);
    // only frozen leaves: nothing is recorded at all
    let tape = Tape::new();
    let z = tape.leaf(&w).exp().unwrap();
    assert!(!z.requires_grad());
    assert_eq!(z.backward().unwrap_err(), AutogradError::NotRecorded);
}
