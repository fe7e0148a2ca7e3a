//! The MNIST directory loader (`Mnist::new`, `FashionMnist::new`): an images file and a
//! labels file, each raw or gzipped, under any of the names it looks for, written to a
//! folder of this process and read back. A dataset whose every sample and a batch of
//! the loader are consistent, or an error; never a panic.
#![no_main]
use kiln_fuzz::{gzip, scratch_dir};
use kiln_nn::data::{DataLoader, Dataset, EpochKey, FashionMnist, Mnist};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// One IDX file: whole bytes, or a header of the given dimensions and then the bytes
/// (so that headers agreeing with each other are reached often).
#[derive(Arbitrary, Debug)]
enum File {
    Bytes(Vec<u8>),
    Idx { dims: Vec<u16>, data: Vec<u8> },
}

impl File {
    fn bytes(&self) -> Vec<u8> {
        match self {
            File::Bytes(b) => b.clone(),
            File::Idx { dims, data } => {
                let mut out = vec![0, 0, 8, dims.len() as u8];
                dims.iter()
                    .for_each(|&d| out.extend_from_slice(&(d as u32).to_be_bytes()));
                out.extend_from_slice(data);
                out
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    images: File,
    labels: File,
    gzip_images: bool,
    gzip_labels: bool,
    dotted_names: bool,
    train: bool,
    fashion: bool,
}

fuzz_target!(|input: Input| {
    let dir = scratch_dir("mnist");
    let (images, labels) = if input.train {
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    } else {
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    };
    for (stem, file, zipped) in [
        (images, &input.images, input.gzip_images),
        (labels, &input.labels, input.gzip_labels),
    ] {
        let mut name = if input.dotted_names {
            stem.replace("-idx", ".idx")
        } else {
            stem.to_string()
        };
        let mut bytes = file.bytes();
        if zipped {
            name.push_str(".gz");
            bytes = gzip(&bytes);
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let data = if input.fashion {
        FashionMnist::new(&dir, input.train).map(FashionMnist::into_inner)
    } else {
        Mnist::new(&dir, input.train).map(Mnist::into_inner)
    };
    let Ok(data) = data else {
        return;
    };
    let [c, h, w] = data.image_shape();
    assert_eq!(c, 1);
    for i in 0..data.len().min(4) {
        assert_eq!(data.image(i).len(), h * w);
        assert!(data.label(i) < 10);
        data.sample(i, EpochKey::default()).unwrap();
    }
    assert!(data.sample(data.len(), EpochKey::default()).is_err());
    if h * w <= 1 << 16 {
        let n = data.len().clamp(1, 3);
        if let Ok(mut loader) = DataLoader::new(data, n) {
            if let Some(batch) = loader.try_epoch::<f32>(0).next() {
                let batch = batch.expect("a batch of a dataset that loaded");
                assert_eq!(batch.images.dims()[1..], [1, h, w]);
            }
        }
    }
});
