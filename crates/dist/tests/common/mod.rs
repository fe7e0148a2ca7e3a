//! What the tests share: a small network with state and random draws, random data, and
//! ranks as threads.

#![allow(dead_code)]

use kiln_dist::{threads, ThreadComm};
use kiln_nn::data::ImageDataset;
use kiln_nn::{Activation, BatchNorm, BlockExt, Dense, Dropout, Init, Sequential, Sgd, Trainer};
use kiln_tensor::rand::{rngs::StdRng, RngExt, SeedableRng};
use kiln_tensor::Tensor;
use std::path::PathBuf;

pub const SHARDS: usize = 5;
pub const BATCH: usize = 32;
pub const SEED: u64 = 7;

/// A network with state (BatchNorm) and random draws (Dropout).
pub fn make() -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(24).activation(Activation::Relu))
        .add(BatchNorm::new())
        .add(Dropout::new(0.3))
        .add(Dense::new(10))
}

/// 104 random 1×6×6 images in 10 classes: batches of 32, 32, 32 and 8 (whose 4 shards
/// of 2 leave the last of 3 ranks with two).
pub fn data() -> ImageDataset {
    let mut rng = StdRng::seed_from_u64(1);
    let images = (0..104 * 36).map(|_| rng.random_range(0..=255u8)).collect();
    let labels = (0..104).map(|_| rng.random_range(0..10u8)).collect();
    ImageDataset::new(images, labels, [1, 6, 6], 10).unwrap()
}

/// The network initialized from `SEED`, its shapes fixed.
pub fn fresh() -> Sequential<f32> {
    let net = make();
    net.initialize(&Init::xavier(), SEED).unwrap();
    net.predict(&Tensor::zeros([1, 1, 6, 6])).unwrap();
    net
}

/// SGD with momentum, so that there is optimizer state to keep alike.
pub fn trainer(net: &Sequential<f32>) -> Trainer<f32> {
    Trainer::new(net.collect_params(), Sgd::new(0.2).momentum(0.9))
}

/// Every parameter's bits, in order.
pub fn bits(net: &Sequential<f32>) -> Vec<u32> {
    net.collect_params()
        .iter()
        .flat_map(|(_, p)| {
            let values = p.data().unwrap();
            values
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A fresh folder for a test's files.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-dist-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `f` on each of `ranks` ranks, each on its own thread; the results in rank order.
pub fn on_ranks<R: Send>(ranks: usize, f: impl Fn(ThreadComm) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = threads::world(ranks)
            .into_iter()
            .map(|comm| scope.spawn(|| f(comm)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
