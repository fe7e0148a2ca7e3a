//! Sizes that cannot exist, from a user's options or a crafted file: each is an error
//! naming the layer or the record and the shape, never a count that wraps around, a panic
//! or an abort (issue 17, defects 1 and 2).

use kiln_nn::checkpoint::{decode_parameters, encode_file, TensorRecord, PARAMS_MAGIC};
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, BlockExt, Conv2D, Dense, Init, MaxPool2D, Sequential};
use kiln_tensor::Tensor;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, which must return an error (not a value, not a panic); returns its message.
fn refused<R, E: Display>(f: impl FnOnce() -> Result<R, E>) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(_)) => panic!("the impossible size was accepted"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("the impossible size made kiln panic instead of returning an error"),
    }
}

fn says(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "«{message}» does not mention «{part}»"
        );
    }
}

#[test]
fn a_checkpoint_record_whose_count_wraps_around_is_refused() {
    // a trained LeNet's records, the first weight's shape replaced by [6, 2⁶³, 5, 5] and
    // its data by nothing: 6 · 2⁶³ · 5 · 5 wraps to 0, and the file loaded "successfully"
    // into a fresh LeNet (whose first weight waits for its input channels)
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap();
    let mut records: Vec<TensorRecord> = net
        .collect_params()
        .iter()
        .map(|(path, p)| TensorRecord::new(path, &p.data().unwrap()))
        .collect();
    records[0].shape = vec![6, 1 << 63, 5, 5];
    records[0].data.clear();
    let fresh = lenet::<f32>(Activation::Sigmoid);
    let architecture = fresh.collect_params().architecture();
    let file = encode_file(PARAMS_MAGIC, &(architecture, "float32", records)).unwrap();
    let m = refused(|| decode_parameters(&fresh.collect_params(), &file));
    says(
        &m,
        &[
            "'0.weight'",
            "impossible shape [6, 9223372036854775808, 5, 5]",
        ],
    );
}

#[test]
fn a_layer_too_large_for_memory_is_an_error_when_initialized() {
    // 2⁶¹ weights: more than any tensor can hold
    let m = refused(|| {
        Sequential::<f32>::new()
            .add(Dense::new(1 << 30).in_units(1 << 31))
            .initialize(&Init::default(), 0)
    });
    says(
        &m,
        &["dense0_weight", "[1073741824, 2147483648]", "more elements"],
    );
    // 2⁵⁸ weights are a possible shape, but 2⁶⁰ bytes are more than any machine maps:
    // the allocation fails, and that is an error too
    let m = refused(|| {
        Sequential::<f32>::new()
            .add(Dense::new(1 << 29).in_units(1 << 29))
            .initialize(&Init::default(), 0)
    });
    says(
        &m,
        &[
            "dense0_weight",
            "could not allocate 1152921504606846976 bytes",
        ],
    );
}

#[test]
fn layer_options_whose_sizes_overflow_are_errors() {
    let x = Tensor::<f32>::zeros([1, 1, 8, 8]);
    // 2 · 2⁶³ wraps to 0: the 3×3 kernel seemed to fit the padded 8×8 input
    let conv = Sequential::new().add(Conv2D::new(2, 3).padding(1usize << 63));
    conv.initialize(&Init::default(), 0).unwrap();
    let m = refused(|| conv.predict(&x));
    says(
        &m,
        &[
            "conv0",
            "larger than the padded input 18446744073709551624×18446744073709551624",
        ],
    );
    // an output of 2⁶¹ elements
    let conv = Sequential::new().add(Conv2D::new(1 << 20, 1).padding(1 << 19));
    conv.initialize(&Init::default(), 0).unwrap();
    let m = refused(|| conv.predict(&x));
    says(
        &m,
        &["conv0", "conv2d", "more elements than a tensor can hold"],
    );
    let pool = Sequential::new().add(MaxPool2D::new((1usize << 63) + 1).padding(1 << 63));
    pool.initialize(&Init::default(), 0).unwrap();
    let m = refused(|| pool.predict(&x));
    says(&m, &["pool0", "larger than the padded input"]);
}

#[test]
fn tensors_of_impossible_shapes_cannot_be_made() {
    // 2³² · 2³² wraps to 0: an empty vector was taken for such a tensor, which later
    // panicked in the reductions and in max pooling ("capacity overflow")
    let m = refused(|| Tensor::<f32>::from_vec(vec![], [1 << 32, 1 << 32]));
    says(
        &m,
        &["from_vec", "[4294967296, 4294967296]", "more elements"],
    );
    let m = refused(|| Tensor::<f32>::try_zeros([1 << 32, 1 << 32]));
    says(&m, &["zeros", "[4294967296, 4294967296]"]);
    let panic = catch_unwind(|| Tensor::<f32>::zeros([1 << 32, 1 << 32])).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    says(
        message,
        &["zeros: shape [4294967296, 4294967296]", "try_zeros"],
    );
}
