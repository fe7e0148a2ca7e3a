//! D2L 6.2.4 as a test: the code of `examples/learn_kernel.rs` recovers [[1, −1]].

#[path = "../examples/learn_kernel.rs"]
mod example;

#[test]
fn learns_the_edge_detector_from_data() {
    let (losses, kernel) = example::learn_kernel(0, 10, 3e-2).unwrap();
    let (first, last) = (losses[0], losses[9]);
    assert!(last < 0.01 * first, "loss fell from {first} only to {last}");
    assert!((kernel.data()[0] - 1.0).abs() < 0.1, "kernel {kernel:?}");
    assert!((kernel.data()[1] + 1.0).abs() < 0.1, "kernel {kernel:?}");
}

#[test]
fn learning_is_reproducible_for_a_seed() {
    let a = example::learn_kernel(3, 10, 3e-2).unwrap();
    let b = example::learn_kernel(3, 10, 3e-2).unwrap();
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
}
