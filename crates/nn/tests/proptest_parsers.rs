//! The parsers of untrusted bytes (IDX and CIFAR-10 data files, the MNIST and CIFAR-10
//! folder loaders, checkpoints: raw, and bodies framed with a correct header and checksum)
//! and the constructors of datasets and images from claimed sizes, on random and mutated
//! input: every input gives a value or a clear error, never a panic, in bounded time and
//! memory (a counting allocator watches the peak). The fuzz targets in `fuzz/` run the
//! same decoders for longer; these always run, in a few seconds.

use flate2::{write::GzEncoder, Compression};
use kiln_autograd::Tape;
use kiln_nn::checkpoint::{
    decode_parameters, decode_training_state, decode_weights, encode_parameters,
    encode_training_state, frame, TrainingProgress, PARAMS_MAGIC, STATE_MAGIC,
};
use kiln_nn::data::{
    parse_cifar_batch, parse_idx, resize_linear, Cifar10, Image, ImageDataset, Mnist,
};
use kiln_nn::{
    Adam, BatchNorm, Block, BlockExt, Conv2D, Dense, Init, MaxPool2D, Sequential, Trainer,
};
use kiln_tensor::Tensor;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::sync::OnceLock;
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

/// A network of every kind of parameter a checkpoint holds, its shapes deferred (a file
/// it loads decides them), as the fuzz targets build it.
fn deferred_net() -> Sequential<f32> {
    Sequential::new()
        .add(Conv2D::new(2, 3))
        .add(BatchNorm::new())
        .add(MaxPool2D::new(2))
        .add(Dense::new(3))
}

/// The bodies (past the 28-byte header) of a valid parameter file and a valid
/// training-state file (Adam, after one step) of [`deferred_net`].
fn valid_bodies() -> &'static (Vec<u8>, Vec<u8>) {
    static BODIES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    BODIES.get_or_init(|| {
        let net = deferred_net();
        net.initialize(&Init::xavier(), 0).unwrap();
        let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.01));
        let x = Tensor::from_vec((0..36).map(|i| i as f32 / 36.0).collect(), [1, 1, 6, 6]);
        let tape = Tape::new();
        let y = net.forward(&tape.constant(x.unwrap())).unwrap();
        y.sum().unwrap().backward().unwrap();
        trainer.step(1).unwrap();
        let progress = TrainingProgress {
            epoch: 1,
            batches: 0,
            seed: 7,
        };
        let params = encode_parameters(&net.collect_params()).unwrap();
        let state = encode_training_state(&net.collect_params(), &trainer, progress).unwrap();
        (params[28..].to_vec(), state[28..].to_vec())
    })
}

/// Decodes `file` as a parameter file, as weights and as a training state into fresh
/// deferred networks; each network a file loaded into then runs a forward pass (a value
/// or an error). Returns whether the parameter and the state decoders accepted it.
fn decode_all(file: &[u8]) -> (bool, bool) {
    let run = |net: &Sequential<f32>| {
        let c = net
            .collect_params()
            .get("0.weight")
            .and_then(|w| w.data().ok())
            .map(|w| w.dims()[1]);
        if let Some(c) = c.filter(|&c| (1..=64).contains(&c)) {
            let _ = net.predict(&Tensor::zeros([1, c, 6, 6]));
        }
    };
    let net = deferred_net();
    let params = decode_parameters(&net.collect_params(), file).is_ok();
    if params {
        run(&net);
    }
    let net = deferred_net();
    if decode_weights(&net.collect_params(), file).is_ok() {
        run(&net);
    }
    let net = deferred_net();
    let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.01));
    let state = decode_training_state(file, &net.collect_params(), &mut trainer).is_ok();
    if state {
        run(&net);
    }
    (params, state)
}

/// Edits of `body`: positions overwritten, bytes inserted, then possibly truncated.
fn edited(body: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let len = body.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..6),
        prop::collection::vec((0..=len, any::<u8>()), 0..3),
        prop_oneof![Just(len), 0..=len],
    )
        .prop_map(move |(edits, inserts, keep)| {
            let mut b = body.to_vec();
            for (i, v) in edits {
                b[i] = v;
            }
            for (i, v) in inserts {
                b.insert(i.min(b.len()), v);
            }
            b.truncate(keep);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn checkpoint_random_bodies_with_a_correct_header(
        body in prop::collection::vec(any::<u8>(), 0..256),
        kind in 0usize..4,
    ) {
        // every version read, under both magics: the body reaches the decoder
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (magic, version) = [(PARAMS_MAGIC, 1), (PARAMS_MAGIC, 2), (STATE_MAGIC, 3), (STATE_MAGIC, 4)][kind];
        let file = frame(magic, version, &body);
        bounded(1 << 20, || decode_all(&file))?;
    }

    #[test]
    fn checkpoint_edited_bodies_with_a_correct_header(
        params in edited(&valid_bodies().0),
        state in edited(&valid_bodies().1),
    ) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (good_params, good_state) = valid_bodies();
        let (p, _) = bounded(1 << 22, || decode_all(&frame(PARAMS_MAGIC, 2, &params)))?;
        let (_, s) = bounded(1 << 22, || decode_all(&frame(STATE_MAGIC, 4, &state)))?;
        // the bodies as written load (an edit may leave a body valid: a weight's value)
        prop_assert!(p || params != *good_params);
        prop_assert!(s || state != *good_state);
    }
}

/// An empty folder of this test process's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-proptest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX header of `dims` then `data`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter()
        .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
    out.extend_from_slice(data);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mnist_folders(
        image_dims in prop::collection::vec(0u32..5, 1..5),
        label_dims in prop::collection::vec(0u32..5, 1..3),
        image_bytes in prop::collection::vec(any::<u8>(), 0..120),
        labels in prop::collection::vec(0u8..12, 0..6),
        (gzip_images, gzip_labels, dotted, train) in any::<(bool, bool, bool, bool)>(),
    ) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = scratch("mnist");
        let (images, label_stem) = if train {
            ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
        } else {
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        };
        for (stem, bytes, zipped) in [
            (images, idx_bytes(&image_dims, &image_bytes), gzip_images),
            (label_stem, idx_bytes(&label_dims, &labels), gzip_labels),
        ] {
            let name = if dotted { stem.replace("-idx", ".idx") } else { stem.to_string() };
            let (name, bytes) = if zipped { (name + ".gz", gzip(&bytes)) } else { (name, bytes) };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let out = bounded(1 << 20, || Mnist::new(&dir, train).map(Mnist::into_inner))?;
        // the loader's contract, independently: two whole files, images (N, H, W) with
        // H, W > 0, N labels below 10
        let product = |d: &[u32]| d.iter().map(|&x| x as usize).product::<usize>();
        let expected = image_dims.len() == 3
            && image_dims[1] > 0
            && image_dims[2] > 0
            && product(&image_dims) == image_bytes.len()
            && label_dims.len() == 1
            && product(&label_dims) == labels.len()
            && label_dims[0] == image_dims[0]
            && labels.iter().all(|&l| l < 10);
        prop_assert_eq!(out.is_ok(), expected, "{:?}", out.as_ref().err());
        if let Ok(data) = out {
            prop_assert_eq!(data.len(), labels.len());
            prop_assert_eq!(data.image_shape(), [1, image_dims[1] as usize, image_dims[2] as usize]);
            for i in 0..data.len() {
                prop_assert_eq!(data.label(i), labels[i] as usize);
                let size = data.image(i).len();
                prop_assert_eq!(data.image(i), &image_bytes[i * size..(i + 1) * size]);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cifar_folders(bytes in mutated(cifar_file(2)), nested in any::<bool>()) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = scratch("cifar");
        let at = if nested { dir.join("cifar-10-batches-bin") } else { dir.clone() };
        std::fs::create_dir_all(&at).unwrap();
        std::fs::write(at.join("test_batch.bin"), &bytes).unwrap();
        let out = bounded(1 << 20, || Cifar10::new(&dir, false).map(Cifar10::into_inner))?;
        let parsed = parse_cifar_batch(&bytes[..]);
        prop_assert_eq!(out.is_ok(), parsed.is_ok());
        if let (Ok(set), Ok(batch)) = (out, parsed) {
            prop_assert_eq!(set.len(), batch.labels.len());
            prop_assert_eq!(set.image(0), &batch.images[..3072]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_length_field_reserves_no_memory_for_what_it_claims() {
    // found by `checkpoint_random_bodies_with_a_correct_header`: 8 bytes claiming 2⁵⁶
    // architecture records made serde reserve 1 MiB (its cap), from a 36-byte file
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let huge = (1u64 << 56).to_le_bytes();
    let string = |s: &str| [&(s.len() as u64).to_le_bytes()[..], s.as_bytes()].concat();
    let claims: [(u32, Vec<u8>); 3] = [
        // the architecture's vector
        (2, huge.to_vec()),
        // version 1: the dtype, then the parameters' vector
        (1, [string("float32"), huge.to_vec()].concat()),
        // version 1: one record named "w", then its shape's vector
        (
            1,
            [
                string("float32"),
                1u64.to_le_bytes().to_vec(),
                string("w"),
                huge.to_vec(),
            ]
            .concat(),
        ),
    ];
    for (version, body) in claims {
        let file = frame(PARAMS_MAGIC, version, &body);
        let params = deferred_net().collect_params();
        let out = bounded(16 << 10, || decode_parameters(&params, &file));
        let out = out.unwrap_or_else(|e| panic!("version {version}, {} bytes: {e}", file.len()));
        assert!(out.unwrap_err().starts_with("undecodable body"));
    }
}
