//! The bundled Fashion-MNIST as the provenance note describes it, and the MNIST-layout
//! reader on small files it makes itself: every malformed or mismatched file is an error
//! that names the file.

use flate2::{write::GzEncoder, Compression};
use kiln_nn::data::{locate_fashion_mnist, DataLoader, FashionMnist, Mnist};
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
