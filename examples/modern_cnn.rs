//! D2L chapter 7 (Modern Convolutional Networks): AlexNet, VGG, NiN, GoogLeNet, BN-LeNet,
//! ResNet-18 and DenseNet trained on Fashion-MNIST with the book's loop and settings.
//!
//!     cargo run --release --example modern_cnn -- --model bn_lenet
//!     cargo run --release --example modern_cnn -- --model resnet18 --limit 6000 --batch-size 32 --epochs 2
//!     cargo run --release --example modern_cnn -- --model densenet --epochs 0
//!     cargo run --release --example modern_cnn -- --model bn_lenet --eval runs/bn_lenet.state

mod common;

use common::fit::{Fit, RunFiles};
use common::Args;
use kiln::nn::checkpoint::load_weights;
use kiln::nn::data::transforms::{Compose, Resize};
use kiln::nn::data::{locate_fashion_mnist, DataLoader, Dataset, FashionMnist};
use kiln::nn::zoo::{by_name, input_side};
use kiln::nn::{BlockExt, DataParallel, Init, Sgd, Trainer};
use std::error::Error;
use std::path::PathBuf;

const USAGE: &str = "\
Trains a network of D2L chapter 7 on Fashion-MNIST with the book's settings.

usage: modern_cnn --model NAME [--resize N] [--epochs 10] [--batch-size B] [--lr LR]
                  [--limit N] [--test-limit N] [--seed 0] [--threads N] [--shards 1]
                  [--data-dir DIR] [--save runs/NAME.params] [--checkpoint runs/NAME.state]
                  [--plot runs/NAME.svg] [--resume STATE] [--eval CHECKPOINT]

Models, with the book's defaults (resize, batch size, learning rate; 10 epochs, SGD,
Xavier initialization, softmax cross-entropy):
  alexnet      (7.1)  224  128  0.01
  vgg11_small  (7.2)  224  128  0.05    VGG-11 with a quarter of the channels
  nin          (7.3)  224  128  0.1
  googlenet    (7.4)   96  128  0.1
  bn_lenet     (7.5)   28  256  1.0     LeNet with BatchNorm before each sigmoid
  resnet18     (7.6)   96  256  0.05
  densenet     (7.7)   96  256  0.1
  lenet        (6.6)   28  256  0.9

The images are resized as Gluon's Resize does (bit for bit as MXNet). --limit trains on
the first N training images (a quick CPU run), --test-limit tests on the first N test
images. --epochs 0 prints the summary only.

--shards S cuts each batch into S shards, each with its own BatchNorm statistics (as
Gluon on S devices); the default 1 is the book's single device. The shard count fixes
the arithmetic; --threads (default: all cores) never changes a bit.

The training state is saved to --checkpoint at the end of every epoch; Ctrl-C finishes
the current step, saves it, and exits with status 130; --resume STATE continues the run
bit for bit (with the same flags). --eval loads a parameter file or a training state and
reports its test accuracy.";

/// The book's (resize, batch size, learning rate) for each model.
fn book_settings(model: &str) -> Option<(usize, usize, f64)> {
    let side = input_side(model)?;
    Some(match model {
        "alexnet" => (side, 128, 0.01),
        "vgg11_small" | "vgg11" => (side, 128, 0.05),
        "nin" => (side, 128, 0.1),
        "googlenet" => (side, 128, 0.1),
        "bn_lenet" => (side, 256, 1.0),
        "resnet18" => (side, 256, 0.05),
        "densenet" => (side, 256, 0.1),
        "lenet" => (side, 256, 0.9),
        _ => return None,
    })
}

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "model",
            "resize",
            "epochs",
            "batch-size",
            "lr",
            "limit",
            "test-limit",
            "seed",
            "threads",
            "shards",
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
    let outcome = kiln::tensor::parallel::with_threads(threads, || {
        run(&args, threads).map_err(|e| e.to_string())
    });
    if let Err(e) = outcome.map_err(|e| e.to_string()).and_then(|r| r) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let model: String = args
        .opt("model")
        .ok_or("--model is needed (see --help for the models)")?;
    let (book_side, book_batch, book_lr) = book_settings(&model).ok_or_else(|| {
        format!(
            "--model: no model {model:?}; the models are {}",
            kiln::nn::zoo::MODELS.join(", ")
        )
    })?;
    let side: usize = args.get("resize", book_side);
    let epochs: u64 = args.get("epochs", 10);
    let batch_size: usize = args.get("batch-size", book_batch);
    let lr: f64 = args.get("lr", book_lr);
    let seed: u64 = args.get("seed", 0);
    let limit: usize = args.get("limit", usize::MAX);
    let test_limit: usize = args.get("test-limit", usize::MAX);
    let data_dir = args.opt("data-dir").map(PathBuf::from);

    let name = model.clone();
    let make = move || by_name::<f32>(&name).expect("the model's name was checked");
    let net = make();
    net.initialize(&Init::xavier(), seed)?;
    let parallel = DataParallel::new(&net, make, args.get("shards", 1), threads)?;
    // Resize only when the size differs from the images' 28 × 28 (as the book, which
    // passes resize=None for BN-LeNet)
    let transform = || -> Result<Compose, Box<dyn Error>> {
        Ok(match side {
            28 => Compose::new(),
            s => Compose::new().add(Resize::new(s)?),
        })
    };
    let dir = || locate_fashion_mnist(data_dir.as_deref());
    let test_set = || -> Result<_, Box<dyn Error>> {
        Ok(FashionMnist::new(dir()?, false)?
            .take(test_limit)
            .transform_first(transform()?))
    };

    if let Some(checkpoint) = args.opt("eval") {
        load_weights(&net.collect_params(), checkpoint.as_ref())?;
        let test = test_set()?;
        let acc =
            parallel.evaluate_accuracy(DataLoader::new(&test, batch_size)?.try_epoch::<f32>(0))?;
        println!("test acc {acc:.3}");
        return Ok(());
    }

    println!("{}", net.summary([1, 1, side, side])?);
    if epochs == 0 {
        return Ok(());
    }
    let files = RunFiles::from_args(args, &model)?;
    let train = FashionMnist::new(dir()?, true)?
        .take(limit)
        .transform_first(transform()?);
    let test = test_set()?;
    println!(
        "training {model} on {} train / {} test images of {side}×{side} from {}, batch \
         {batch_size}, lr {lr}, {} shards on {} threads",
        train.len(),
        test.len(),
        dir()?.display(),
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
        title: format!("{model} on Fashion-MNIST ({side}×{side}), lr {lr}, batch {batch_size}",),
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
