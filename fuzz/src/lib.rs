//! What kiln's fuzz targets share: the small networks whose checkpoints they decode, valid
//! files to mutate, a private folder for the loaders that read a directory, and the checks
//! that a value the decoders return is self-consistent.

use kiln_autograd::Tape;
use kiln_nn::checkpoint::{encode_parameters, encode_training_state, TrainingProgress};
use kiln_nn::{
    Adam, BatchNorm, Block, BlockExt, Conv2D, Dense, Init, MaxPool2D, Sequential, Trainer,
};
use kiln_tensor::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Counts live and peak heap bytes, so that targets can bound what a decoder allocates.
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

/// Runs `f` and asserts that the heap grew by at most `limit` bytes at its peak: a
/// decoder's memory follows the bytes it was given, not what they claim.
pub fn bounded<R>(what: &str, limit: usize, f: impl FnOnce() -> R) -> R {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        grew <= limit,
        "{what}: the heap grew by {grew} bytes (at most {limit})"
    );
    out
}

/// What decoding a checkpoint of `len` bytes may allocate: strings up to 64 KiB or twice
/// the body (bincode's limit), and the decoded records, a few times the bytes they came
/// from.
pub fn checkpoint_limit(len: usize) -> usize {
    (1 << 17) + 16 * len
}

/// A network of every kind of parameter a checkpoint holds (convolution, batch norm with
/// its running statistics, dense), its shapes deferred: a file it loads decides them.
pub fn tiny_net() -> Sequential<f32> {
    Sequential::new()
        .add(Conv2D::new(2, 3))
        .add(BatchNorm::new())
        .add(MaxPool2D::new(2))
        .add(Dense::new(3))
}

/// The input the seed files were made with: (1, 1, 6, 6).
pub fn input() -> Tensor<f32> {
    Tensor::from_vec((0..36).map(|i| i as f32 / 36.0).collect(), [1, 1, 6, 6]).unwrap()
}

/// A valid parameter file and a valid training-state file (Adam, after one step) of
/// [`tiny_net`].
pub fn seeds() -> &'static (Vec<u8>, Vec<u8>) {
    static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let net = tiny_net();
        net.initialize(&Init::xavier(), 0).unwrap();
        let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.01));
        let tape = Tape::new();
        let y = net.forward(&tape.constant(input())).unwrap();
        y.sum().unwrap().backward().unwrap();
        trainer.step(1).unwrap();
        let params = encode_parameters(&net.collect_params()).unwrap();
        let progress = TrainingProgress {
            epoch: 1,
            batches: 0,
            seed: 7,
        };
        let state = encode_training_state(&net.collect_params(), &trainer, progress).unwrap();
        (params, state)
    })
}

/// After a file loaded into `net`: its shapes are the ones the network's checks accept,
/// so a forward pass on an input of the loaded channel count is a value or an error,
/// never a panic.
pub fn exercise(net: &Sequential<f32>) {
    let params = net.collect_params();
    let Some(w) = params.get("0.weight") else {
        return;
    };
    let Ok(w) = w.data() else {
        return;
    };
    let c = w.dims().get(1).copied().unwrap_or(1);
    if c == 0 || c > 64 {
        return;
    }
    let _ = net.predict(&Tensor::<f32>::zeros([1, c, 6, 6]));
}

/// A folder of this process's own under the temporary folder (in memory where `/dev/shm`
/// exists), emptied of what the previous input left.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("kiln-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
