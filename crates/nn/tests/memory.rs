//! Long runs keep memory flat: after every training step the tape is empty and the heap's
//! live bytes (counted by a wrapping allocator) return to the same level.

use kiln_autograd::Tape;
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, Block, BlockExt, Init, Sgd, SoftmaxCrossEntropyLoss, Trainer};
use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
use kiln_tensor::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
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

#[test]
fn live_bytes_and_tape_stay_flat_over_many_steps() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let x = Tensor::<f32>::rand_uniform([32, 1, 28, 28], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..32).map(|i| i % 10).collect();
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.5).momentum(0.9));
    let tape = Tape::new();
    let mut live = Vec::new();
    for _ in 0..200 {
        {
            let scores = net.forward(&tape.constant(x.clone())).unwrap();
            let loss = SoftmaxCrossEntropyLoss
                .forward(&scores, &labels)
                .unwrap()
                .sum()
                .unwrap();
            loss.backward().unwrap();
            trainer.step(32).unwrap();
        }
        assert_eq!(tape.len(), 0, "the tape keeps entries after backward");
        live.push(LIVE.load(Ordering::Relaxed));
    }
    // after a few warm-up steps (momentum buffers, gradients, the thread pool) the level
    // is the same after every step
    let settled = &live[5..];
    let (lo, hi) = (settled.iter().min().unwrap(), settled.iter().max().unwrap());
    assert!(
        hi - lo <= 4096,
        "live bytes vary by {} over {} steps: {settled:?}",
        hi - lo,
        settled.len()
    );
    assert!(
        live[199] <= live[5] + 4096,
        "live bytes grew from {} to {}",
        live[5],
        live[199]
    );
}
