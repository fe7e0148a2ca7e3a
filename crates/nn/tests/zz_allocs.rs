use kiln_autograd::Var;
use kiln_nn::zoo::lenet;
use kiln_nn::{Activation, Block, BlockExt, Init};
use kiln_tensor::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
struct Counting;
static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);
static BTON: AtomicBool = AtomicBool::new(false);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            if BTON.load(Ordering::Relaxed) {
                ON.store(false, Ordering::Relaxed);
                eprintln!(
                    "alloc {} {}",
                    layout.size(),
                    std::backtrace::Backtrace::force_capture()
                );
                ON.store(true, Ordering::Relaxed);
            }
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}
#[global_allocator]
static ALLOCATOR: Counting = Counting;
#[test]
fn count() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    let x = Tensor::<f32>::full([1, 1, 28, 28], 0.5);
    net.forward(&Var::constant(x.clone())).unwrap();
    net.forward(&Var::constant(x.clone())).unwrap();
    BTON.store(std::env::var("BT").is_ok(), Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    net.forward(&Var::constant(x.clone())).unwrap();
    ON.store(false, Ordering::Relaxed);
    eprintln!(
        "allocations {} bytes {}",
        COUNT.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed)
    );
}
