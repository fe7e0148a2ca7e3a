//! The book's LeNet on synthetic data of the real shapes: training and inference throughput
//! and batch-1 latency, printed in the format of `../shared/bench` so that `compare.sh`
//! can set kiln beside MXNet and PyTorch.
//!
//!     cargo run --release --example bench_lenet -- --threads 1
//!     mpirun -np 2 target/release/examples/bench_lenet --dist shard-order  # --features mpi
//!
//! Prints medians over runs (and the best run, as the reference scripts do):
//! `train_img_per_s X`, `infer_img_per_s X`, `latency_b1_us X`.

mod common;

use common::{bench_network, Args, BenchSpec};
use kiln::dist::{DistConfig, Reduction};
use kiln::nn::zoo::lenet;
use kiln::nn::Activation;
use kiln::tensor::rand::{rngs::StdRng, RngExt, SeedableRng};
use kiln::tensor::Tensor;
use std::error::Error;
use std::time::Duration;

const USAGE: &str = "\
Measures LeNet training and inference speed on synthetic data.

usage: bench_lenet [--threads N] [--shards N] [--batch-size 256] [--steps 20] [--runs 7]
                   [--latency-iters 200] [--only train|infer|latency]
                   [--dist shard-order|allreduce]

Batches are split into --shards shards (default: 1 on one thread, else 4 per thread) that
the threads take as they free up, each with a replica of the network
(kiln::nn::DataParallel).

--dist trains across the ranks mpirun starts (kiln::dist::DistDataParallel, built with
--features mpi; default 8 shards, --threads per rank, default 1) and prints the training
throughput, where rank 0's step time goes, and the time of an allreduce of the gradients.";

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
            "dist",
        ],
    );
    let threads: usize = args.get("threads", 1);
    if let Some(reduction) = args.opt("dist") {
        return dist(&args, &reduction, threads);
    }
    // The whole run executes on the kernels' pool (see examples/lenet.rs).
    let outcome = kiln::tensor::parallel::with_threads(threads, || {
        run(&args, threads).map_err(|e| e.to_string())
    });
    if let Err(e) = outcome.map_err(|e| e.to_string()).and_then(|r| r) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `--dist`: on this thread, which alone calls MPI.
fn dist(args: &Args, reduction: &str, threads: usize) {
    let outcome = (|| -> Result<(), Box<dyn Error>> {
        let reduction = Reduction::from_name(reduction).ok_or(format!(
            "--dist: {reduction:?} is not shard-order or allreduce"
        ))?;
        kiln::tensor::parallel::set_num_threads(threads)?;
        let comm = common::dist::world(Duration::from_secs(60))?;
        let batch: usize = args.get("batch-size", 256);
        let mut rng = StdRng::seed_from_u64(0);
        let x = Tensor::<f32>::rand_normal([batch, 1, 28, 28], 0.0, 1.0, &mut rng)?;
        let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
        let config = DistConfig::new(args.get("shards", 8))
            .threads(threads)
            .reduction(reduction);
        let runs = (args.get("steps", 20), args.get("runs", 7));
        let make = || lenet::<f32>(Activation::Sigmoid);
        common::dist::bench_train(&comm, make, &x, &labels, config, 0.9, runs, "lenet")
    })();
    if let Err(e) = outcome {
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
