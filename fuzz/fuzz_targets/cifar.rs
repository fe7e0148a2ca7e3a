//! The CIFAR-10 reader: `parse_cifar_batch` on the bytes, and `Cifar10::new` on a folder
//! holding them as `test_batch.bin` (or under `cifar-10-batches-bin/`). Records whose
//! count is the bytes' and whose labels are classes, or an error; never a panic, and
//! memory within a few times the file.
//!
//! The first byte chooses the folder (bit 0) and how the rest makes the file (bit 1):
//! the bytes themselves, or whole records of 2 bytes each (a label and a pixel value,
//! at most 12 records), of which an odd last byte cuts that many bytes off the end (so
//! that files of whole records, which random bytes of 3,073·k long seldom are, are
//! reached at once).
#![no_main]
use kiln_fuzz::{bounded, scratch_dir};
use kiln_nn::data::{parse_cifar_batch, Cifar10, Dataset, EpochKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes: Vec<u8> = if mode & 2 == 0 {
        rest.to_vec()
    } else {
        let mut out = Vec::new();
        for pair in rest.chunks_exact(2).take(12) {
            out.push(pair[0]);
            out.extend(std::iter::repeat_n(pair[1], 3072));
        }
        if rest.len() % 2 == 1 {
            let cut = rest[rest.len() - 1] as usize;
            out.truncate(out.len().saturating_sub(cut));
        }
        out
    };
    let limit = (1 << 16) + 3 * bytes.len();
    let parsed = bounded("parse_cifar_batch", limit, || parse_cifar_batch(&bytes[..]));
    if let Ok(b) = &parsed {
        assert_eq!(b.labels.len() * 3073, bytes.len());
        assert_eq!(b.images.len(), b.labels.len() * 3072);
        assert!(b.labels.iter().all(|&l| l < 10));
    }
    let dir = scratch_dir("cifar");
    let at = if mode & 1 == 1 {
        dir.join("cifar-10-batches-bin")
    } else {
        dir.clone()
    };
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(at.join("test_batch.bin"), &bytes).unwrap();
    let loaded = Cifar10::new(&dir, false);
    assert_eq!(
        loaded.is_ok(),
        parsed.is_ok(),
        "{:?}",
        loaded.as_ref().err()
    );
    if let Ok(set) = loaded {
        assert_eq!(set.image_shape(), [3, 32, 32]);
        for i in 0..set.len().min(2) {
            set.sample(i, EpochKey::default()).unwrap();
        }
    }
});
