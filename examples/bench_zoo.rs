//! A network of the zoo on synthetic data of the real shapes: training and inference
//! throughput and batch-1 latency, printed as `bench_lenet` prints them, so that
//! `../shared/bench/compare_zoo.sh` can set kiln beside MXNet and PyTorch.
//!
//!     cargo run --release --example bench_zoo -- --model resnet18 --threads 1
//!     mpirun -np 2 target/release/examples/bench_zoo --model resnet18 --dist shard-order
//!
//! Defaults are those of the reference scripts: the book's input side for the model (28,
//! 96 or 224), batch 256 for the LeNets and 32 otherwise, the book's learning rate.

mod common;

use common::{bench_network, Args, BenchSpec};
use kiln::dist::{DistConfig, Reduction};
use kiln::nn::zoo::{self, by_name, input_side};
use kiln::tensor::rand::{rngs::StdRng, RngExt, SeedableRng};
use kiln::tensor::Tensor;
use std::error::Error;
use std::time::Duration;

const USAGE: &str = "\
Measures the speed of a network of the zoo (D2L chapter 7) on synthetic data.

usage: bench_zoo --model NAME [--threads N] [--shards N] [--batch-size B] [--resize SIDE]
                 [--lr LR] [--steps 20] [--runs 7] [--latency-iters 200] [--seed 0]
                 [--only train|infer|latency] [--dist shard-order|allreduce]

NAME: lenet bn_lenet alexnet vgg11_small (or vgg11) nin googlenet resnet18 densenet.
Prints train_img_per_s (forward, loss, backward and SGD step), infer_img_per_s and
latency_b1_us (one image, forward only): medians over runs, after warm-up steps.

--dist trains across the ranks mpirun starts (kiln::dist::DistDataParallel, built with
--features mpi; default 8 shards, --threads per rank, default 1) and prints the training
throughput, where rank 0's step time goes, and the time of an allreduce of the gradients.";

/// The book's learning rate for `model` (the reference scripts' defaults).
fn book_lr(model: &str) -> f64 {
    match model {
        "lenet" => 0.9,
        "bn_lenet" => 1.0,
        "resnet18" | "vgg11_small" | "vgg11" => 0.05,
        "alexnet" => 0.01,
        _ => 0.1,
    }
}

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "model",
            "threads",
            "shards",
            "batch-size",
            "resize",
            "lr",
            "steps",
            "runs",
            "latency-iters",
            "seed",
            "only",
            "dist",
        ],
    );
    let threads: usize = args.get("threads", 1);
    if args.opt("dist").is_some() {
        if let Err(e) = dist(&args, threads) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let outcome = kiln::tensor::parallel::with_threads(threads, || {
        run(&args, threads).map_err(|e| e.to_string())
    });
    if let Err(e) = outcome.map_err(|e| e.to_string()).and_then(|r| r) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `--dist`: on this thread, which alone calls MPI.
fn dist(args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let reduction: String = args.get("dist", String::new());
    let reduction = Reduction::from_name(&reduction).ok_or(format!(
        "--dist: {reduction:?} is not shard-order or allreduce"
    ))?;
    let model: String = args
        .opt("model")
        .ok_or_else(|| format!("--model is required\n{USAGE}"))?;
    let side = args.get(
        "resize",
        input_side(&model).ok_or_else(|| format!("--model: unknown network {model:?}"))?,
    );
    let lenets = model == "lenet" || model == "bn_lenet";
    let batch: usize = args.get("batch-size", if lenets { 256 } else { 32 });
    kiln::tensor::parallel::set_num_threads(threads)?;
    let comm = common::dist::world(Duration::from_secs(600))?;
    let mut rng = StdRng::seed_from_u64(args.get("seed", 0));
    let x = Tensor::<f32>::rand_normal([batch, 1, side, side], 0.0, 1.0, &mut rng)?;
    let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let config = DistConfig::new(args.get("shards", 8))
        .threads(threads)
        .reduction(reduction);
    let runs = (args.get("steps", 20), args.get("runs", 7));
    let lr = args.get("lr", book_lr(&model));
    let name = model.clone();
    let make = move || by_name::<f32>(&name).expect("the model's name was checked");
    common::dist::bench_train(&comm, make, &x, &labels, config, lr, runs, &model)
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let model: String = args
        .opt("model")
        .ok_or_else(|| format!("--model is required\n{USAGE}"))?;
    let side = args.get(
        "resize",
        input_side(&model).ok_or_else(|| {
            format!(
                "--model: unknown network {model:?} (one of {})",
                zoo::MODELS.join(", ")
            )
        })?,
    );
    let lenets = model == "lenet" || model == "bn_lenet";
    let batch: usize = args.get("batch-size", if lenets { 256 } else { 32 });
    let lr: f64 = args.get("lr", book_lr(&model));

    let spec = BenchSpec {
        side,
        batch,
        lr,
        seed: args.get("seed", 0),
        warm_up: 3,
        threads,
        shards: args.get("shards", if threads > 1 { 4 * threads } else { 1 }),
        steps: args.get("steps", 20),
        runs: args.get("runs", 7),
        latency_iters: args.get("latency-iters", 200),
        only: args.get("only", String::new()),
    };
    println!(
        "# kiln {} model={model} threads={threads} shards={} batch={batch} input={side}x{side} lr={lr}",
        env!("CARGO_PKG_VERSION"),
        spec.shards
    );
    bench_network(
        move || by_name::<f32>(&model).expect("the model's name was checked"),
        &spec,
    )
}
