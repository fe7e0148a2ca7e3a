//! D2L 6.6: LeNet trained on Fashion-MNIST with the book's loop, settings and output.
//!
//!     cargo run --release --example lenet
//!     cargo run --release --example lenet -- --epochs 10 --activation relu --lr 0.1
//!     cargo run --release --example lenet -- --eval runs/lenet.params
//!     cargo run --release --example lenet -- --epochs 20 --resume runs/lenet.state

mod common;

use common::fit::{Fit, RunFiles};
use common::Args;
use kiln::nn::checkpoint::load_weights;
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, DataParallel, Init, Sgd, Trainer};
use std::error::Error;
use std::path::PathBuf;

const USAGE: &str = "\
Trains the book's LeNet on Fashion-MNIST (D2L 6.6).

usage: lenet [--epochs 5] [--batch-size 256] [--lr LR] [--seed 0] [--threads N] [--shards 8]
             [--activation sigmoid|relu] [--data-dir DIR] [--save runs/lenet.params]
             [--checkpoint runs/lenet.state] [--plot runs/lenet.svg] [--resume STATE]
             [--eval CHECKPOINT]

Each batch is cut into --shards shards that --threads threads (default: all cores) share
(kiln::nn::DataParallel). The shard count fixes the arithmetic: any number of threads
gives the same numbers, bit for bit.

The learning rate defaults to the book's 0.9 for sigmoid and to 0.3 for the other
activations, which die at 0.9. --epochs 0 prints the network summary only.

The training state (parameters, optimizer state, progress) is saved to --checkpoint at
the end of every epoch; Ctrl-C finishes the current step, saves it, and exits with status
130. --resume STATE continues such a run bit for bit (with the same flags; --epochs is the
total). --eval loads a parameter file or a training state and reports its test accuracy.
--save, --checkpoint and --plot are checked writable before training starts.

The data is looked for in --data-dir, $KILN_FASHION_MNIST, ./data/fashion-mnist, kiln's
repository and /usr/share/datasets/fashion-mnist.";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "epochs",
            "batch-size",
            "lr",
            "seed",
            "threads",
            "shards",
            "activation",
            "data-dir",
            "save",
            "checkpoint",
            "plot",
            "resume",
            "eval",
        ],
    );
    let threads: usize = args.get("threads", 0);
    let threads = if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    // The whole run executes on the kernels' pool, so that each parallel kernel starts on
    // a pool thread instead of waking the pool from outside.
    let outcome = kiln::tensor::parallel::with_threads(threads, || {
        run(&args, threads).map_err(|e| e.to_string())
    });
    if let Err(e) = outcome.map_err(|e| e.to_string()).and_then(|r| r) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let epochs: u64 = args.get("epochs", 5);
    let batch_size: usize = args.get("batch-size", 256);
    let seed: u64 = args.get("seed", 0);
    let name: String = args.get("activation", "sigmoid".to_string());
    let activation =
        Activation::from_name(&name).ok_or(format!("--activation: unknown function {name:?}"))?;
    let lr: f64 = args.get(
        "lr",
        if activation == Activation::Sigmoid {
            0.9
        } else {
            0.3
        },
    );
    let data_dir = args.opt("data-dir").map(PathBuf::from);

    let make = move || lenet::<f32>(activation);
    let net = make();
    net.initialize(&Init::xavier(), seed)?;
    let parallel = DataParallel::new(&net, make, args.get("shards", 8), threads)?;

    if let Some(checkpoint) = args.opt("eval") {
        load_weights(&net.collect_params(), checkpoint.as_ref())?;
        let test = FashionMnist::new(locate_fashion_mnist(data_dir.as_deref())?, false)?;
        // the same shards as in training, so the same scores to the last bit
        let acc =
            parallel.evaluate_accuracy(DataLoader::new(&test, batch_size)?.try_epoch::<f32>(0))?;
        println!("test acc {acc:.3}");
        return Ok(());
    }

    println!("{}", net.summary([1, 1, 28, 28])?);
    if epochs == 0 {
        return Ok(());
    }
    let files = RunFiles::from_args(args, "lenet")?;
    let dir = locate_fashion_mnist(data_dir.as_deref())?;
    let (train, test) = (
        FashionMnist::new(&dir, true)?,
        FashionMnist::new(&dir, false)?,
    );
    println!(
        "training on {} train / {} test images from {}, batch {batch_size}, lr {lr}, \
         {} shards on {} threads",
        train.len(),
        test.len(),
        dir.display(),
        parallel.shards(),
        parallel.threads(),
    );
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(lr));
    let fit = Fit {
        epochs,
        batch_size,
        seed,
        files: &files,
        resume: args.opt("resume").map(PathBuf::from),
        title: format!("LeNet ({name}) on Fashion-MNIST, lr {lr}, batch {batch_size}"),
    };
    fit.run(
        &net,
        &parallel,
        &mut trainer,
        &mut DataLoader::new(&train, batch_size)?.shuffle(seed),
        &mut DataLoader::new(&test, batch_size)?,
    )?;
    Ok(())
}
