//! The bundled Fashion-MNIST as the provenance note describes it, and the MNIST-layout and
//! CIFAR-10 readers on small files they make themselves: every malformed or mismatched file
//! is an error that names the file.

use flate2::{write::GzEncoder, Compression};
use kiln_nn::data::{
    locate_fashion_mnist, Cifar10, DataLoader, Dataset, FashionMnist, Label, Mnist, Sample,
};
use std::io::Write;
use std::path::{Path, PathBuf};

#[test]
fn bundled_fashion_mnist_is_the_official_release() {
    let dir = locate_fashion_mnist(None).unwrap();
    let train = FashionMnist::new(&dir, true).unwrap();
    let test = FashionMnist::new(&dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.image_shape(), [1, 28, 28]);
    // data/fashion-mnist/README.md: the first train labels are 9 0 0 3 0 2 7 2 5 5
    let first: Vec<usize> = (0..10).map(|i| train.label(i)).collect();
    assert_eq!(first, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    for split in [&train, &test] {
        let mut per_class = [0usize; 10];
        (0..split.len()).for_each(|i| per_class[split.label(i)] += 1);
        assert!(
            per_class.iter().all(|&c| c == split.len() / 10),
            "{per_class:?}"
        );
    }
    let batch = DataLoader::new(&test, 256)
        .unwrap()
        .epoch::<f32>(0)
        .next()
        .unwrap();
    assert!(batch
        .images
        .data()
        .iter()
        .all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(FashionMnist::CLASSES[9], "ankle boot");
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter()
        .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a split of `n` 4×3 images with labels `labels`, gzipped or raw, with the dotted
/// file names MNIST's other distributions use when `dotted`.
fn write_split(dir: &Path, n: u32, labels: &[u8], zipped: bool, dotted: bool) {
    let (images, labs) = if dotted {
        ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")
    } else {
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    };
    let pixels: Vec<u8> = (0..n * 12).map(|i| (i * 7) as u8).collect();
    let files = [
        (images, idx(&[n, 4, 3], &pixels)),
        (labs, idx(&[labels.len() as u32], labels)),
    ];
    for (name, bytes) in files {
        let (name, bytes) = if zipped {
            (format!("{name}.gz"), gz(&bytes))
        } else {
            (name.to_string(), bytes)
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn reads_raw_gzip_and_dotted_names() {
    for (zipped, dotted) in [(true, false), (false, false), (false, true), (true, true)] {
        let dir = folder(&format!("ok-{zipped}-{dotted}"));
        write_split(&dir, 3, &[4, 0, 9], zipped, dotted);
        let data = Mnist::new(&dir, false).unwrap();
        assert_eq!((data.len(), data.image_shape()), (3, [1, 4, 3]));
        assert_eq!(data.label(2), 9);
        assert_eq!(data.image(1)[0], (12 * 7) as u8);
    }
}

#[test]
fn mismatched_truncated_and_missing_files_are_errors_naming_them() {
    let dir = folder("mismatch");
    write_split(&dir, 3, &[1, 2], true, false);
    let e = Mnist::new(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("2 labels but 3 images"),
        "{e}"
    );

    let dir = folder("range");
    write_split(&dir, 2, &[1, 10], false, false);
    let e = FashionMnist::new(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte") && e.contains("label 10 of sample 1"),
        "{e}"
    );

    let dir = folder("truncated");
    write_split(&dir, 3, &[1, 2, 3], false, false);
    let path = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let e = Mnist::new(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("t10k-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );

    let dir = folder("corrupt-gzip");
    write_split(&dir, 3, &[1, 2, 3], true, false);
    let path = dir.join("t10k-images-idx3-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(Mnist::new(&dir, false).is_err());

    let e = Mnist::new(folder("empty"), true).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("not found"),
        "{e}"
    );
    let e = locate_fashion_mnist(Some(&folder("nowhere")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no IDX files found") && e.contains("--data-dir"),
        "{e}"
    );
}

/// A CIFAR-10 record: label, then 32×32 bytes of red, of green, of blue; pixel p of
/// channel c holds `(label + 3p + c) % 256`.
fn cifar_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3 {
        r.extend((0..1024).map(|p| ((label as usize + 3 * p + c) % 256) as u8));
    }
    r
}

/// Writes the six CIFAR-10 files with `per_file` records each into `dir`; file f's
/// record i has label (f + i) % 10.
fn write_cifar(dir: &Path, per_file: usize) {
    let mut names: Vec<String> = Cifar10::files(true);
    names.extend(Cifar10::files(false));
    for (f, name) in names.iter().enumerate() {
        let bytes: Vec<u8> = (0..per_file)
            .flat_map(|i| cifar_record(((f + i) % 10) as u8))
            .collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn cifar10_reads_records_as_hwc_images() {
    let dir = folder("cifar");
    let sub = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&sub).unwrap();
    write_cifar(&sub, 3);
    let train = Cifar10::new(&dir, true).unwrap();
    let test = Cifar10::new(&dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (15, 3));
    assert_eq!(train.image_shape(), [3, 32, 32]);
    // file 2 (data_batch_3.bin), record 1: sample 7 with label 3
    assert_eq!(train.label(7), 3);
    let (sample, label) = train.get(7).unwrap();
    assert_eq!(label, Label::Class(3));
    let Sample::Image(image) = sample else {
        panic!()
    };
    assert_eq!(image.hwc(), [32, 32, 3]);
    // HWC, as Gluon's CIFAR10 yields it: pixel 5's channels are (3 + 15 + c) % 256
    assert_eq!(&image.pixels()[15..18], &[18, 19, 20]);
    // the loader turns it back into CHW floats
    let b = DataLoader::new(&train, 15)
        .unwrap()
        .epoch::<f32>(0)
        .next()
        .unwrap();
    assert_eq!(b.images.dims(), [15, 3, 32, 32]);
    assert_eq!(b.images.get(&[7, 2, 0, 5]).unwrap(), 20.0 / 255.0);
    assert_eq!(Cifar10::CLASSES[3], "cat");
}

#[test]
fn cifar10_truncated_oversized_and_damaged_files_name_the_file_and_record() {
    let dir = folder("cifar-bad");
    write_cifar(&dir, 2);
    let path = dir.join("data_batch_4.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = Cifar10::new(&dir, true).unwrap_err().to_string();
    assert!(
        e.contains("data_batch_4.bin")
            && e.contains("truncated: record 2 ends after 2973 of its 3073 bytes"),
        "{e}"
    );
    std::fs::write(&path, &bytes).unwrap();
    let test = dir.join("test_batch.bin");
    let mut bad = std::fs::read(&test).unwrap();
    bad[3073] = 200;
    std::fs::write(&test, &bad).unwrap();
    let e = Cifar10::new(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("record 2 has label 200"),
        "{e}"
    );
    // 10,001 records: one more than the format's files hold
    let big: Vec<u8> = (0..10_001).flat_map(|_| cifar_record(1)).collect();
    std::fs::write(&test, big).unwrap();
    let e = Cifar10::new(&dir, false).unwrap_err().to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("oversized: record 10001"),
        "{e}"
    );
    std::fs::remove_file(dir.join("data_batch_5.bin")).unwrap();
    let e = Cifar10::new(&dir, true).unwrap_err().to_string();
    assert!(e.contains("data_batch_5.bin"), "{e}");
    let e = Cifar10::new(folder("cifar-none"), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data_batch_1.bin") && e.contains("not found"),
        "{e}"
    );
}
