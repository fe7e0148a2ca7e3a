//! The parsers of untrusted bytes (IDX and CIFAR-10 data files, checkpoints) and the
//! constructors of datasets and images from claimed sizes, on random and mutated input:
//! every input gives a value or a clear error, never a panic, in bounded time and memory (a
//! counting allocator watches the peak).

use flate2::{write::GzEncoder, Compression};
use kiln_nn::checkpoint::{decode_parameters, encode_parameters};
use kiln_nn::data::{parse_cifar_batch, parse_idx, resize_linear, Image, ImageDataset};
use kiln_nn::{BlockExt, Conv2D, Dense, Init, Sequential};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this file measure memory one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f`, asserting it neither panics, takes over a second, nor grows the heap by more
/// than `limit` bytes at its peak.
fn bounded<R>(limit: usize, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let (elapsed, grew) = (
        start.elapsed(),
        PEAK.load(Ordering::Relaxed).saturating_sub(base),
    );
    prop_assert!(out.is_ok(), "the parser panicked");
    prop_assert!(elapsed < Duration::from_secs(1), "took {:?}", elapsed);
    prop_assert!(grew <= limit, "peak heap growth {} bytes", grew);
    Ok(out.unwrap())
}

fn idx_file(dims: &[u32], fill: u8) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter()
        .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
    out.extend(std::iter::repeat_n(
        fill,
        dims.iter().map(|&d| d as usize).product(),
    ));
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A mutation of `bytes`: some positions overwritten, then possibly truncated.
fn mutated(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = bytes.len();
    (prop::collection::vec((0..len, any::<u8>()), 0..8), 0..=len).prop_map(move |(edits, keep)| {
        let mut b = bytes.clone();
        for (i, v) in edits {
            b[i] = v;
        }
        b.truncate(keep.max(1));
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = bounded(1 << 20, || parse_idx(&bytes[..]))?;
        if let Ok(a) = out {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn idx_mutated_files(bytes in mutated(idx_file(&[3, 4, 5], 7))) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        bounded(1 << 20, || parse_idx(&bytes[..]))?.ok();
        let zipped = gzip(&bytes);
        bounded(1 << 20, || parse_idx(flate2::read::GzDecoder::new(&zipped[..])))?.ok();
    }

    #[test]
    fn idx_headers_claiming_huge_sizes(dims in prop::collection::vec(1u32..u32::MAX, 1..4)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
        bytes.extend_from_slice(&[1, 2, 3]);
        let out = bounded(1 << 20, || parse_idx(&bytes[..]))?;
        let claimed: u128 = dims.iter().map(|&d| d as u128).product();
        prop_assert!(claimed == 3 || out.is_err());
    }
}

fn small_net() -> Sequential<f32> {
    let net = Sequential::new()
        .add(Conv2D::new(2, 3).in_channels(1))
        .add(Dense::new(3).in_units(8));
    net.initialize(&Init::default(), 1).unwrap();
    net
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn checkpoint_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let params = small_net().collect_params();
        prop_assert!(bounded(1 << 20, || decode_parameters(&params, &bytes))?.is_err());
    }

    #[test]
    fn checkpoint_mutated_files(bytes in mutated(encode_parameters(&small_net().collect_params()).unwrap())) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let params = small_net().collect_params();
        let good = encode_parameters(&params).unwrap();
        let out = bounded(1 << 20, || decode_parameters(&params, &bytes))?;
        // any change to a file is caught, unless it changed nothing
        prop_assert_eq!(out.is_ok(), bytes == good);
    }

    #[test]
    fn checkpoint_with_a_valid_checksum_but_a_lying_body(len in 0u64..u64::MAX, tail in prop::collection::vec(any::<u8>(), 0..64)) {
        // a body that claims a huge vector, with a header and checksum made to match it
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut body = Vec::new();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(b"float32");
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(&tail);
        let checksum = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        let mut file = b"KILNPARM".to_vec();
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&(body.len() as u64).to_le_bytes());
        file.extend_from_slice(&checksum.to_le_bytes());
        file.extend_from_slice(&body);
        let params = small_net().collect_params();
        prop_assert!(bounded(4 << 20, || decode_parameters(&params, &file))?.is_err());
    }
}

/// `n` CIFAR-10 records with labels `i % 10`.
fn cifar_file(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| std::iter::once((i % 10) as u8).chain(std::iter::repeat_n(9, 3072)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cifar_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..8000)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = bounded(1 << 20, || parse_cifar_batch(&bytes[..]))?;
        if let Ok(b) = out {
            prop_assert_eq!(b.images.len(), 3072 * b.labels.len());
            prop_assert_eq!(bytes.len(), 3073 * b.labels.len());
        }
    }

    #[test]
    fn cifar_mutated_files(bytes in mutated(cifar_file(3))) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = bounded(1 << 20, || parse_cifar_batch(&bytes[..]))?;
        let whole = bytes.len() % 3073 == 0;
        let labels_ok = bytes.chunks(3073).all(|r| r[0] < 10);
        prop_assert_eq!(out.is_ok(), whole && labels_ok);
    }

    #[test]
    fn datasets_and_images_from_claimed_sizes(
        dims in prop::collection::vec(prop_oneof![0usize..4, Just(usize::MAX / 2), Just(1usize << 40)], 4),
        bytes in 0usize..64,
        classes in 0usize..3,
    ) {
        // sizes a crafted header could claim: a value or an error, never a wrap-around or
        // an allocation for the claim
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (n, c, h, w) = (dims[0].min(8), dims[1], dims[2], dims[3]);
        let ok = bounded(1 << 16, || ImageDataset::new(vec![0; bytes], vec![0; n], [c, h, w], classes).is_ok())?;
        // the element count, if no partial product overflows a usize (a dimension of
        // 2^63 beside a 0 is refused rather than counted as 0 elements)
        let numel = |d: &[usize]| {
            d.iter()
                .try_fold(1u128, |a, &x| Some(a * x as u128).filter(|&p| p <= usize::MAX as u128))
        };
        let fits = numel(&[n, c, h, w]) == Some(bytes as u128);
        prop_assert_eq!(ok, fits && classes > 0 && c.min(1) * h.min(1) * w.min(1) > 0);
        let ok = bounded(1 << 16, || Image::new(vec![0; bytes], [c, h, w]).is_ok())?;
        prop_assert_eq!(ok, numel(&[c, h, w]) == Some(bytes as u128));
        if let Ok(image) = Image::new(vec![7; bytes], [h, w, c]) {
            let out = bounded(1 << 22, || resize_linear(&image, dims[0], dims[1]).map(|i| i.hwc()))?;
            if let Ok(hwc) = out {
                prop_assert_eq!(hwc, [dims[0], dims[1], c]);
            }
        }
    }
}
