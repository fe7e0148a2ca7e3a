//! A batch-1 forward of LeNet (the latency path) allocates only its results: per layer,
//! the output's values and the shared handle a `Var` keeps them in. Scratch buffers,
//! argmax tables and flattening copies are kept out of it (each one cost a few percent
//! of a 10 µs forward). Counted by a global allocator local to this test binary.

use kiln_autograd::Var;
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, Block, BlockExt, Init};
use kiln_tensor::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static COUNT: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_batch_1_forward_allocates_only_its_outputs() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let x = Var::constant(Tensor::<f32>::full([1, 1, 28, 28], 0.5));
    // shapes inferred, plans and scratch buffers made
    for _ in 0..2 {
        net.forward(&x).unwrap();
    }
    COUNT.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    let y = net.forward(&x);
    ON.store(false, Ordering::Relaxed);
    assert_eq!(y.unwrap().shape().dims(), &[1, 10]);
    let count = COUNT.load(Ordering::Relaxed);
    // 5 layers with parameters (two fused with their pooling), 2 allocations each (the
    // output's buffer and its Rc); the portable kernels (at the scalar level) also
    // allocate their im2col buffers
    if kiln_tensor::simd::level().is_vector() {
        assert_eq!(count, 10, "allocations in one batch-1 forward");
    } else {
        assert!(count >= 10, "{count} allocations");
    }
}
