//! D2L 6.6: LeNet trained on Fashion-MNIST with the book's loop, settings and output.
//!
//!     cargo run --release --example lenet
//!     cargo run --release --example lenet -- --epochs 10 --activation relu --lr 0.1
//!     cargo run --release --example lenet -- --eval runs/lenet.params

mod common;

use common::{line_chart_svg, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, DataParallel, Init, Sgd, Trainer};
use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "\
Trains the book's LeNet on Fashion-MNIST (D2L 6.6).

usage: lenet [--epochs 5] [--batch-size 256] [--lr LR] [--seed 0] [--threads N] [--shards 8]
             [--activation sigmoid|relu] [--data-dir DIR] [--save runs/lenet.params]
             [--plot runs/lenet.svg] [--eval CHECKPOINT]

Each batch is cut into --shards shards that --threads threads (default: all cores) share
(kiln::nn::DataParallel). The shard count fixes the arithmetic: any number of threads
gives the same numbers, bit for bit.

The learning rate defaults to the book's 0.9 for sigmoid and to 0.3 for the other
activations, which die at 0.9. --epochs 0 prints the network summary only; --eval loads a checkpoint and reports its
test accuracy. The data is looked for in --data-dir, $KILN_FASHION_MNIST, ./data/fashion-mnist,
kiln's repository and /usr/share/datasets/fashion-mnist.";

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
            "plot",
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
        net.load_parameters(&checkpoint)?;
        let test = FashionMnist::new(locate_fashion_mnist(data_dir.as_deref())?, false)?;
        // the same shards as in training, so the same scores to the last bit
        let acc =
            parallel.evaluate_accuracy(DataLoader::new(&test, batch_size)?.epoch::<f32>(0))?;
        println!("test acc {acc:.3}");
        return Ok(());
    }

    println!("{}", net.summary([1, 1, 28, 28])?);
    if epochs == 0 {
        return Ok(());
    }

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
    let mut train_iter = DataLoader::new(&train, batch_size)?.shuffle(seed);
    let mut test_iter = DataLoader::new(&test, batch_size)?;
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(lr));
    let mut history = (Vec::new(), Vec::new(), Vec::new());
    for epoch in 0..epochs {
        let start = Instant::now();
        let bar = progress_bar(train_iter.num_batches() as u64);
        let stats =
            parallel.train_epoch(train_iter.epoch(epoch), &mut trainer, batch_size, |s| {
                bar.set_position(s.steps as u64)
            })?;
        bar.finish_and_clear();
        let test_acc = parallel.evaluate_accuracy(test_iter.epoch(0))?;
        println!(
            "epoch {}, loss {:.4}, train acc {:.3}, test acc {:.3}, time {:.1} sec",
            epoch + 1,
            stats.loss,
            stats.train_acc(),
            test_acc,
            start.elapsed().as_secs_f64()
        );
        history.0.push(stats.loss);
        history.1.push(stats.train_acc());
        history.2.push(test_acc);
    }

    let save = PathBuf::from(
        args.opt("save")
            .unwrap_or_else(|| "runs/lenet.params".into()),
    );
    create_parent(&save)?;
    net.save_parameters(&save)?;
    let plot = PathBuf::from(args.opt("plot").unwrap_or_else(|| "runs/lenet.svg".into()));
    create_parent(&plot)?;
    let title = format!("LeNet ({name}) on Fashion-MNIST, lr {lr}, batch {batch_size}");
    let svg = line_chart_svg(
        &title,
        "epoch",
        &[
            ("train loss", "#1f77b4", history.0),
            ("train acc", "#ff7f0e", history.1),
            ("test acc", "#2ca02c", history.2),
        ],
    );
    std::fs::write(&plot, svg)?;
    println!(
        "saved parameters to {} and curves to {}",
        save.display(),
        plot.display()
    );
    Ok(())
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => std::fs::create_dir_all(p),
        _ => Ok(()),
    }
}

/// A progress bar on stderr while an epoch runs, only when stderr is a terminal.
fn progress_bar(steps: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(steps);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} batches, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
