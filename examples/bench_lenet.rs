//! The book's LeNet on synthetic data of the real shapes: training and inference throughput
//! and batch-1 latency, printed in the format of `../shared/bench` so that `compare.sh`
//! can set kiln beside MXNet and PyTorch.
//!
//!     cargo run --release --example bench_lenet -- --threads 1
//!
//! Prints medians over runs (and the best run, as the reference scripts do):
//! `train_img_per_s X`, `infer_img_per_s X`, `latency_b1_us X`.

mod common;

use common::{bench_network, Args, BenchSpec};
use kiln::nn::zoo::lenet;
use kiln::nn::Activation;
use std::error::Error;

const USAGE: &str = "\
Measures LeNet training and inference speed on synthetic data.

usage: bench_lenet [--threads N] [--shards N] [--batch-size 256] [--steps 20] [--runs 7]
                   [--latency-iters 200] [--only train|infer|latency]

Batches are split into --shards shards (default: 1 on one thread, else 4 per thread) that
the threads take as they free up, each with a replica of the network
(kiln::nn::DataParallel).";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "threads",
            "shards",
            "batch-size",
            "steps",
            "runs",
            "latency-iters",
            "only",
        ],
    );
    // The whole run executes on the kernels' pool (see examples/lenet.rs).
    let threads: usize = args.get("threads", 1);
    let outcome = kiln::tensor::parallel::with_threads(threads, || {
        run(&args, threads).map_err(|e| e.to_string())
    });
    if let Err(e) = outcome.map_err(|e| e.to_string()).and_then(|r| r) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let spec = BenchSpec {
        side: 28,
        batch: args.get("batch-size", 256),
        lr: 0.9,
        seed: 0,
        warm_up: 5,
        threads,
        // several shards per thread, so that a thread whose core is busier takes fewer
        shards: args.get("shards", if threads > 1 { 4 * threads } else { 1 }),
        steps: args.get("steps", 20),
        runs: args.get("runs", 7),
        latency_iters: args.get("latency-iters", 200),
        only: args.get("only", String::new()),
    };
    println!(
        "# kiln {} threads={threads} shards={} batch={}",
        env!("CARGO_PKG_VERSION"),
        spec.shards,
        spec.batch
    );
    bench_network(|| lenet::<f32>(Activation::Sigmoid), &spec)
}
