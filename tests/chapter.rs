//! The chapter's examples, run as tests: each example's own code must print the book's
//! results (D2L 6.2–6.5, MXNet edition).

// Each example includes `examples/common` itself, as it does when built on its own.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/channels.rs"]
mod channels;
#[path = "../examples/cross_correlation.rs"]
mod cross_correlation;
#[path = "../examples/learn_kernel.rs"]
mod learn_kernel;
#[path = "../examples/padding_stride.rs"]
mod padding_stride;
#[path = "../examples/pooling.rs"]
mod pooling;

#[test]
fn cross_correlation_prints_the_books_numbers() {
    let out = cross_correlation::run().unwrap();
    assert!(out.contains("corr2d(X, K) =\n[[19 25]\n [37 43]]"), "{out}");
    assert!(out.contains("[[ 5 11]\n [23 29]]"), "{out}");
    assert!(out.contains("[[ 0  1  0  0  0 -1  0]"), "{out}");
    assert!(out.contains("all zero = true"), "{out}");
}

#[test]
fn learn_kernel_recovers_the_edge_detector() {
    let (losses, kernel) = learn_kernel::learn_kernel(0, 10, 3e-2).unwrap();
    let (first, last) = (losses[0], losses[9]);
    assert!(last < 0.01 * first, "loss fell from {first} only to {last}");
    assert!((kernel.data()[0] - 1.0).abs() < 0.1, "kernel {kernel:?}");
    assert!((kernel.data()[1] + 1.0).abs() < 0.1, "kernel {kernel:?}");
    // same seed, same run
    assert_eq!(learn_kernel::learn_kernel(0, 10, 3e-2).unwrap().0, losses);
}

#[test]
fn padding_and_stride_shapes() {
    let out = padding_stride::run().unwrap();
    let shapes: Vec<&str> = out
        .lines()
        .map(|l| l.rsplit("→ ").next().unwrap())
        .collect();
    assert_eq!(shapes, ["(8, 8)", "(8, 8)", "(4, 4)", "(2, 2)"]);
}

#[test]
fn channels_prints_the_books_numbers() {
    let out = channels::run().unwrap();
    assert!(out.contains("[[ 56  72]\n [104 120]]"), "{out}");
    assert!(out.contains("[[ 76 100]\n  [148 172]]"), "{out}");
    assert!(out.contains("[[ 96 128]\n  [192 224]]]"), "{out}");
    let diff: f64 = out
        .rsplit("largest difference ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(diff < 1e-6, "{out}");
}

#[test]
fn pooling_prints_the_books_numbers() {
    let out = pooling::run().unwrap();
    assert!(out.contains("2×2 max pooling =\n[[4 5]\n [7 8]]"), "{out}");
    assert!(
        out.contains("2×2 average pooling =\n[[2 3]\n [5 6]]"),
        "{out}"
    );
    assert!(out.contains("=\n[[10]]"), "{out}");
    assert!(out.contains("[[ 5  7]\n [13 15]]"), "{out}");
    assert!(out.contains("[[ 0  3]\n [ 8 11]\n [12 15]]"), "{out}");
    assert!(out.contains("[[ 6  8]\n  [14 16]]]"), "{out}");
}
