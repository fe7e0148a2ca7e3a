//! CIFAR-10 in its binary format (Krizhevsky, `cifar-10-binary.tar.gz`): files
//! `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a sequence of
//! records of one label byte and 3,072 pixel bytes (a 32×32 image, red plane, green plane,
//! blue plane). Untrusted input: sizes are checked before anything is allocated for them.

use super::dataset::{check_index, Dataset, EpochKey};
use super::sample::{Label, Sample};
use super::vision::{named_image_dataset, ImageDataset};
use crate::error::{NnError, Result};
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Bytes of one image: 3 × 32 × 32.
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one record: the label and the image.
pub const CIFAR_RECORD_BYTES: usize = 1 + CIFAR_IMAGE_BYTES;
/// Records in each official file; a file may hold fewer (a subset) but not more.
pub const CIFAR_RECORDS_PER_FILE: usize = 10_000;

/// The records of one CIFAR-10 binary file: labels and images (N, 3, 32, 32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarBatch {
    /// One label per record.
    pub labels: Vec<u8>,
    /// The images, record after record, each 3,072 bytes (channel planes).
    pub images: Vec<u8>,
}

/// Parses one CIFAR-10 binary file from any reader; errors are plain messages (the caller
/// names the file). A file must hold 1 to 10,000 whole records with labels below 10; it is
/// never read further than one byte past the 10,000th record.
pub fn parse_cifar_batch(reader: impl Read) -> std::result::Result<CifarBatch, String> {
    let limit = (CIFAR_RECORDS_PER_FILE * CIFAR_RECORD_BYTES) as u64;
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading failed: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "oversized: record {} begins after the {CIFAR_RECORDS_PER_FILE} records a CIFAR-10 \
             file holds",
            CIFAR_RECORDS_PER_FILE + 1
        ));
    }
    if bytes.is_empty() {
        return Err("empty: no records".to_string());
    }
    let (whole, rest) = (
        bytes.len() / CIFAR_RECORD_BYTES,
        bytes.len() % CIFAR_RECORD_BYTES,
    );
    if rest != 0 {
        return Err(format!(
            "truncated: record {} ends after {rest} of its {CIFAR_RECORD_BYTES} bytes ({} bytes in all)",
            whole + 1,
            bytes.len()
        ));
    }
    let mut batch = CifarBatch {
        labels: Vec::with_capacity(whole),
        images: Vec::with_capacity(whole * CIFAR_IMAGE_BYTES),
    };
    for (i, record) in bytes.chunks_exact(CIFAR_RECORD_BYTES).enumerate() {
        if record[0] >= 10 {
            return Err(format!(
                "record {} has label {}, not a class (0..10)",
                i + 1,
                record[0]
            ));
        }
        batch.labels.push(record[0]);
        batch.images.extend_from_slice(&record[1..]);
    }
    Ok(batch)
}

/// Reads one CIFAR-10 binary file.
pub fn read_cifar_batch(path: &Path) -> Result<CifarBatch> {
    let file = std::fs::File::open(path).map_err(|source| NnError::io("reading", path, source))?;
    parse_cifar_batch(std::io::BufReader::new(file)).map_err(|message| NnError::Data {
        path: path.to_path_buf(),
        message,
    })
}

/// CIFAR-10 (Krizhevsky, 2009): 32×32 colour images in 10 classes; 50,000 for training
/// (five files) and 10,000 for testing. Dereferences to its [`ImageDataset`] (N, 3, 32,
/// 32); as a [`Dataset`] it yields images (32, 32, 3) as Gluon's `CIFAR10` does.
#[derive(Clone, Debug)]
pub struct Cifar10(ImageDataset);

impl Cifar10 {
    /// The class names, by label.
    pub const CLASSES: [&'static str; 10] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// The file names of a split: `data_batch_1.bin` … `data_batch_5.bin`, or
    /// `test_batch.bin`.
    pub fn files(train: bool) -> Vec<String> {
        if train {
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
        } else {
            vec!["test_batch.bin".to_string()]
        }
    }

    /// Reads the training (`train = true`) or test split from `dir`, or from
    /// `dir/cifar-10-batches-bin` (where the archive unpacks).
    pub fn new(dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        let dir = dir.as_ref();
        let names = Cifar10::files(train);
        let base = [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
            .into_iter()
            .find(|d| d.join(&names[0]).is_file())
            .ok_or_else(|| NnError::Data {
                path: dir.join(&names[0]),
                message: "not found (also looked in cifar-10-batches-bin/)".to_string(),
            })?;
        let (mut labels, mut images) = (Vec::new(), Vec::new());
        for name in &names {
            let path: PathBuf = base.join(name);
            let batch = read_cifar_batch(&path)?;
            labels.extend(batch.labels);
            images.extend(batch.images);
        }
        Ok(Cifar10(ImageDataset::new(images, labels, [3, 32, 32], 10)?))
    }

    /// The dataset.
    pub fn into_inner(self) -> ImageDataset {
        self.0
    }
}

named_image_dataset!(Cifar10, "Cifar10");

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, CIFAR_IMAGE_BYTES));
        r
    }

    #[test]
    fn parses_whole_records_and_refuses_the_rest() {
        let mut bytes = record(3, 7);
        bytes.extend(record(9, 1));
        let b = parse_cifar_batch(&bytes[..]).unwrap();
        assert_eq!(b.labels, [3, 9]);
        assert_eq!(b.images.len(), 2 * CIFAR_IMAGE_BYTES);
        assert_eq!((b.images[0], b.images[CIFAR_IMAGE_BYTES]), (7, 1));
        let e = parse_cifar_batch(&bytes[..bytes.len() - 5]).unwrap_err();
        assert_eq!(
            e,
            "truncated: record 2 ends after 3068 of its 3073 bytes (6141 bytes in all)"
        );
        let mut bad = bytes.clone();
        bad[CIFAR_RECORD_BYTES] = 10;
        let e = parse_cifar_batch(&bad[..]).unwrap_err();
        assert_eq!(e, "record 2 has label 10, not a class (0..10)");
        assert!(parse_cifar_batch(&[][..]).unwrap_err().starts_with("empty"));
        // one byte past 10,000 records: refused after reading at most that byte
        let big = std::io::repeat(0).take((CIFAR_RECORDS_PER_FILE * CIFAR_RECORD_BYTES) as u64 + 1);
        let e = parse_cifar_batch(big).unwrap_err();
        assert!(e.starts_with("oversized: record 10001"), "{e}");
    }
}
