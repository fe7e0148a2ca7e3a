//! Parameter files: round trips bit for bit, refuse what is not theirs, survive crashes.

use kiln_nn::checkpoint::{
    atomic_write, encode_file, encode_parameters, load_training_state, save_training_state,
    TensorRecord, TrainingProgress, PARAMS_MAGIC,
};
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, BlockExt, Dense, Init, NnError, Sequential, Sgd, Trainer};
use kiln_tensor::rand::{rngs::StdRng, Rng, SeedableRng};
use kiln_tensor::Tensor;
use std::io::{self, Write};
use std::path::PathBuf;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trained_like_lenet(seed: u64) -> Sequential<f32> {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), seed).unwrap();
    net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap();
    net
}

fn images(seed: u64) -> Tensor<f32> {
    Tensor::rand_uniform([4, 1, 28, 28], 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

#[test]
fn save_then_load_into_a_fresh_network_gives_identical_outputs() {
    let dir = tmp_dir("roundtrip");
    let path = dir.join("lenet.params");
    let net = trained_like_lenet(1);
    net.save_parameters(&path).unwrap();
    // a fresh, never-initialized network: shapes come from the file
    let fresh = lenet::<f32>(Activation::Sigmoid);
    fresh.load_parameters(&path).unwrap();
    let (a, b) = (
        net.predict(&images(2)).unwrap(),
        fresh.predict(&images(2)).unwrap(),
    );
    assert_eq!(a.data(), b.data(), "bit-identical outputs");
    // identical parameters give byte-identical files
    let again = dir.join("again.params");
    fresh.save_parameters(&again).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn renaming_the_network_does_not_break_its_file() {
    let dir = tmp_dir("rename");
    let path = dir.join("net.params");
    let net = trained_like_lenet(3);
    net.save_parameters(&path).unwrap();
    // the same structure built after other blocks took the names conv0, dense0, …
    let _other = lenet::<f32>(Activation::Sigmoid).collect_params();
    let twin = lenet::<f32>(Activation::Sigmoid);
    twin.load_parameters(&path).unwrap();
    assert_eq!(
        net.predict(&images(4)).unwrap(),
        twin.predict(&images(4)).unwrap()
    );
}

/// Loads `bytes` into a LeNet whose shapes are fixed for 28×28 inputs.
fn load_err(bytes: &[u8], name: &str) -> String {
    let path = tmp_dir(name).join("bad.params");
    std::fs::write(&path, bytes).unwrap();
    let net = trained_like_lenet(0);
    let err = net.load_parameters(&path).unwrap_err();
    assert!(matches!(err, NnError::Checkpoint { .. }), "{err}");
    err.to_string()
}

#[test]
fn truncated_foreign_and_mismatched_files_are_clear_errors() {
    let good = encode_parameters(&trained_like_lenet(5).collect_params()).unwrap();
    let err = load_err(&good[..good.len() / 2], "truncated");
    assert!(err.contains("truncated"), "{err}");
    let mut noise = vec![0u8; 4096];
    StdRng::seed_from_u64(6).fill_bytes(&mut noise);
    let err = load_err(&noise, "random");
    assert!(err.contains("not a kiln file"), "{err}");
    // a file from another network: one convolution, without LeNet's sigmoid (the
    // first difference; its 3 input channels would be the next)
    let other = Sequential::<f32>::new().add(kiln_nn::Conv2D::new(6, 5).in_channels(3));
    other.initialize(&Init::default(), 0).unwrap();
    let err = load_err(
        &encode_parameters(&other.collect_params()).unwrap(),
        "other",
    );
    assert!(
        err.ends_with("its activation is none in the file and sigmoid in this network"),
        "{err}"
    );
    let wrong_shape = lenet::<f32>(Activation::Sigmoid);
    wrong_shape.initialize(&Init::default(), 0).unwrap();
    wrong_shape.predict(&Tensor::zeros([1, 1, 32, 32])).unwrap(); // dense0 gets 400 inputs
    let err = load_err(
        &encode_parameters(&wrong_shape.collect_params()).unwrap(),
        "wrongshape",
    );
    assert_eq!(
        err.rsplit_once(": ").map(|(_, m)| m).unwrap_or(&err),
        "parameter '4.weight' (dense0_weight) has shape [120, 400] in the file but [120, 256] in the network"
    );
}

#[test]
fn a_file_with_a_record_twice_is_refused_naming_it() {
    // every parameter of a LeNet, and its first weight a second time with other values:
    // which one loaded depended on the order of the records
    let net = trained_like_lenet(11);
    let mut records: Vec<TensorRecord> = net
        .collect_params()
        .iter()
        .map(|(path, p)| TensorRecord::new(path, &p.data().unwrap()))
        .collect();
    let mut twin = records[0].clone();
    twin.data.iter_mut().for_each(|b| *b = 0);
    records.push(twin);
    let architecture = net.collect_params().architecture();
    let file = encode_file(PARAMS_MAGIC, &(architecture, "float32", records)).unwrap();
    let err = load_err(&file, "twice");
    assert!(
        err.ends_with(": parameter '0.weight' appears more than once in the file"),
        "{err}"
    );
}

#[test]
fn a_file_loads_only_into_the_architecture_it_was_saved_from() {
    // issue 17: a sigmoid LeNet's parameters evaluated by a ReLU LeNet scored 0.593
    // without a word, the shapes being the same
    let dir = tmp_dir("architecture");
    let path = dir.join("sigmoid.params");
    trained_like_lenet(12).save_parameters(&path).unwrap();
    let relu = lenet::<f32>(Activation::Relu);
    let err = relu.load_parameters(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "was saved from another network: block 0 (conv0) is Conv2D(channels=6, \
             kernel_size=(5, 5), strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, \
             activation=sigmoid, use_bias=true) in the file and Conv2D(channels=6, \
             kernel_size=(5, 5), strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, \
             activation=relu, use_bias=true) in this network: its activation is sigmoid in \
             the file and relu in this network"
        ),
        "{err}"
    );
    // a layer of another kind with the same parameters (none): max pooling for average
    let avg = Sequential::<f32>::new()
        .add(kiln_nn::Conv2D::new(6, 5).activation(Activation::Sigmoid))
        .add(kiln_nn::AvgPool2D::new(2).strides(2));
    let max = Sequential::<f32>::new()
        .add(kiln_nn::Conv2D::new(6, 5).activation(Activation::Sigmoid))
        .add(kiln_nn::MaxPool2D::new(2).strides(2));
    max.initialize(&Init::default(), 0).unwrap();
    max.predict(&Tensor::zeros([1, 1, 8, 8])).unwrap();
    let pooled = dir.join("max.params");
    max.save_parameters(&pooled).unwrap();
    let err = avg.load_parameters(&pooled).unwrap_err().to_string();
    assert!(
        err.ends_with("its kind is MaxPool2D in the file and AvgPool2D in this network"),
        "{err}"
    );
    // a network with a layer more
    let longer = lenet::<f32>(Activation::Sigmoid).add(Activation::Sigmoid);
    let err = longer.load_parameters(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "this network has block 7 (sigmoid0: Activation(sigmoid)), which the file has not"
        ),
        "{err}"
    );
    // and training-state files check it as well
    let sigmoid = trained_like_lenet(13);
    let (params, trainer) = (
        sigmoid.collect_params(),
        Trainer::new(sigmoid.collect_params(), Sgd::new(0.1)),
    );
    let state = dir.join("sigmoid.state");
    save_training_state(
        &state,
        &params,
        &trainer,
        TrainingProgress {
            epoch: 1,
            batches: 0,
            seed: 0,
        },
    )
    .unwrap();
    let relu_params = relu.collect_params();
    let mut relu_trainer = Trainer::new(relu.collect_params(), Sgd::new(0.1));
    let err = load_training_state(&state, &relu_params, &mut relu_trainer).unwrap_err();
    assert!(
        err.to_string()
            .contains("its activation is sigmoid in the file and relu"),
        "{err}"
    );
}

#[test]
fn a_failed_load_changes_nothing() {
    let dir = tmp_dir("partial");
    let net = Sequential::<f32>::new()
        .add(Dense::new(3).in_units(2))
        .add(Dense::new(2).in_units(3));
    net.initialize(&Init::default(), 0).unwrap();
    let before = net.predict(&Tensor::ones([1, 2])).unwrap();
    // a file whose first parameter fits but whose second does not
    let other = Sequential::<f32>::new()
        .add(Dense::new(3).in_units(2))
        .add(Dense::new(2).in_units(4));
    other.initialize(&Init::default(), 9).unwrap();
    let path = dir.join("other.params");
    other.save_parameters(&path).unwrap();
    assert!(net.load_parameters(&path).is_err());
    assert_eq!(net.predict(&Tensor::ones([1, 2])).unwrap(), before);
}

/// A writer that fails after `left` bytes, as a crash or a full disk would.
struct FailAfter<'a> {
    inner: &'a mut dyn Write,
    left: usize,
}

impl Write for FailAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("simulated crash"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        self.inner.write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_crash_mid_write_leaves_the_previous_checkpoint_loadable() {
    let dir = tmp_dir("crash");
    let path = dir.join("lenet.params");
    let good = trained_like_lenet(7);
    good.save_parameters(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let newer = encode_parameters(&trained_like_lenet(8).collect_params()).unwrap();
    for cut in [0, 10, newer.len() / 2, newer.len() - 1] {
        let err = atomic_write(&path, |w| {
            FailAfter {
                inner: w,
                left: cut,
            }
            .write_all(&newer)
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated crash"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "cut at {cut}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files are removed");
    let restored = lenet::<f32>(Activation::Sigmoid);
    restored.load_parameters(&path).unwrap();
    assert_eq!(
        restored.predict(&images(9)).unwrap(),
        good.predict(&images(9)).unwrap()
    );
}

#[test]
fn a_network_of_another_dtype_is_refused() {
    let dir = tmp_dir("dtype");
    let path = dir.join("f64.params");
    let net = lenet::<f64>(Activation::Sigmoid);
    net.initialize(&Init::default(), 0).unwrap();
    net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap();
    net.save_parameters(&path).unwrap();
    let err = lenet::<f32>(Activation::Sigmoid)
        .load_parameters(&path)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("holds float64 parameters but the network is float32"),
        "{err}"
    );
}
