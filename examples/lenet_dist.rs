//! D2L 6.6 across processes: the book's LeNet trained on Fashion-MNIST by the ranks
//! `mpirun` starts, each computing its shards of every batch, with the numbers of one
//! process (kiln::dist::DistDataParallel). Rank 0 prints the book's epoch lines.
//!
//!     cargo build --release --features mpi --example lenet_dist
//!     mpirun -np 2 target/release/examples/lenet_dist --epochs 1 --seed 3 --save X
//!
//! Built without `--features mpi` it runs as one process (the same numbers).

mod common;

use common::{line_chart_svg, Args};
use kiln::dist::{agree, check_same, Communicator, DistConfig, DistDataParallel, Reduction};
use kiln::nn::checkpoint::TrainingProgress;
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist, ImageDataset};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, Init, Sgd, Trainer};
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const USAGE: &str = "\
Trains the book's LeNet on Fashion-MNIST (D2L 6.6) across the ranks mpirun starts.

usage: mpirun -np N lenet_dist [--epochs 5] [--batch-size 256] [--lr LR] [--seed 0]
             [--threads T] [--shards 8] [--activation sigmoid|relu] [--data-dir DIR]
             [--save runs/lenet.params] [--plot runs/lenet.svg] [--eval CHECKPOINT]
             [--subset N] [--checkpoint STATE] [--resume STATE]
             [--reduction shard-order|allreduce] [--timeout 60]

The flags of lenet, and: each batch is cut into --shards shards, shared out to the ranks
in runs and, inside a rank, to its --threads threads (default: the cores divided among the
ranks of the machine). With the default --reduction shard-order the gradients are summed
in shard order, so any number of ranks gives lenet's numbers with the same --shards, bit
for bit; allreduce moves less data but is reproducible only for a fixed number of ranks.

--subset N trains and tests on the first N images of each set. --checkpoint writes the
training state (weights, optimizer state, epoch) after every epoch, from rank 0; --resume
continues such a run, on any number of ranks. --timeout is how long a rank waits for the
others in a step before it gives up. Every rank must be given the same flags: ranks that
disagree are refused at the start. Rank 0 reads --eval and --resume files and writes the
outputs; every rank reads the data.";

const FLAGS: &[&str] = &[
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
    "subset",
    "checkpoint",
    "resume",
    "reduction",
    "timeout",
];

fn main() {
    let args = Args::parse(USAGE, FLAGS);
    let timeout = Duration::from_secs_f64(args.get("timeout", 60.0));
    match common::dist::world(timeout) {
        Ok(comm) => start(comm, &args),
        Err(e) => fail(0, 1, &e.to_string()),
    }
}

/// Runs on this rank's share of the cores; on success closes the communicator
/// (finalizing MPI), on an error exits without, as a rank may be gone.
fn start<C: Communicator>(comm: C, args: &Args) {
    let threads: usize = match args.get("threads", 0) {
        0 => common::dist::cores_per_rank(),
        t => t,
    };
    // MPI is called from this thread only (MPI_THREAD_FUNNELED): the run stays on it,
    // and the kernels get a pool of this rank's size
    let outcome = kiln::tensor::parallel::set_num_threads(threads)
        .map_err(|e| e.to_string())
        .and_then(|()| run(&comm, args, threads).map_err(|e| e.to_string()));
    if let Err(e) = outcome {
        fail(comm.rank(), comm.size(), &e);
    }
}

/// Prints `error` as rank `rank`'s and exits with status 1.
fn fail(rank: usize, ranks: usize, error: &str) -> ! {
    // one write, so that the ranks' lines do not interleave
    let line = format!("rank {rank}: error: {error}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if ranks > 1 {
        // the first rank to exit makes mpirun end the others: give them a moment to say
        // why too (they learnt of the error at the same step)
        std::thread::sleep(Duration::from_millis(300));
    }
    std::process::exit(1)
}

fn run<C: Communicator>(comm: &C, args: &Args, threads: usize) -> Result<(), Box<dyn Error>> {
    let lead = comm.rank() == 0;
    let epochs: u64 = args.get("epochs", 5);
    let batch_size: usize = args.get("batch-size", 256);
    let seed: u64 = args.get("seed", 0);
    let shards: usize = args.get("shards", 8);
    let subset: usize = args.get("subset", usize::MAX);
    let name: String = args.get("activation", "sigmoid".to_string());
    let activation =
        Activation::from_name(&name).ok_or(format!("--activation: unknown function {name:?}"))?;
    let default_lr = if activation == Activation::Sigmoid {
        0.9
    } else {
        0.3
    };
    let lr: f64 = args.get("lr", default_lr);
    let reduction: String = args.get("reduction", "shard-order".to_string());
    let reduction = Reduction::from_name(&reduction).ok_or(format!(
        "--reduction: {reduction:?} is not shard-order or allreduce"
    ))?;
    let data_dir = args.opt("data-dir").map(PathBuf::from);

    let make = move || lenet::<f32>(activation);
    let net = make();
    net.initialize(&Init::xavier(), seed)?;
    // fixes every shape, so that the ranks can compare networks and share weights
    let summary = net.summary([1, 1, 28, 28])?;

    // every rank reads the data; a rank that cannot stops them all
    let loaded = (|| {
        let dir = locate_fashion_mnist(data_dir.as_deref())?;
        let train = FashionMnist::new(&dir, true)?.take(subset);
        let test = FashionMnist::new(&dir, false)?.take(subset);
        Ok::<_, kiln::nn::NnError>((dir, train, test))
    })();
    let (dir, train, test) = agree(comm, "loading Fashion-MNIST", loaded)?;
    let optional = |flag: &str| args.opt(flag).unwrap_or_default();
    check_same(
        comm,
        &[
            ("--epochs", &epochs),
            ("--batch-size", &batch_size),
            ("--lr", &lr),
            ("--seed", &seed),
            ("--activation", &name),
            ("--subset", &subset),
            ("--eval", &optional("eval")),
            ("--resume", &optional("resume")),
            ("the training images", &fingerprint(&train)),
            ("the test images", &fingerprint(&test)),
        ],
    )?;
    let config = DistConfig::new(shards)
        .threads(threads)
        .reduction(reduction);
    let dist = DistDataParallel::new(comm, &net, make, config)?;
    let mut test_iter = DataLoader::new(&test, batch_size)?;

    if let Some(checkpoint) = args.opt("eval") {
        let loaded = match lead {
            true => net.load_parameters(&checkpoint),
            false => Ok(()),
        };
        agree(comm, "loading the checkpoint", loaded)?;
        dist.broadcast_parameters()?;
        let acc = dist.evaluate_accuracy(test_iter.epoch::<f32>(0))?;
        if lead {
            println!("test acc {acc:.3}");
        }
        return Ok(());
    }

    if lead {
        println!("{summary}");
    }
    if epochs == 0 {
        return Ok(());
    }
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(lr));
    dist.sync_trainer(&mut trainer)?;
    let mut first = 0;
    if let Some(state) = args.opt("resume") {
        let progress = dist.load_training_state(Path::new(&state), &mut trainer)?;
        if progress.seed != seed {
            return Err(format!(
                "{state} was saved by a run with --seed {}, this one has --seed {seed}",
                progress.seed
            )
            .into());
        }
        first = progress.epoch;
    }
    if lead {
        println!(
            "training on {} train / {} test images from {}, batch {batch_size}, lr {lr}, \
             {shards} shards on {} ranks × {} threads, {} reduction",
            train.len(),
            test.len(),
            dir.display(),
            comm.size(),
            dist.threads(),
            reduction.name(),
        );
    }
    let mut train_iter = DataLoader::new(&train, batch_size)?.shuffle(seed);
    let mut history = (Vec::new(), Vec::new(), Vec::new());
    for epoch in first..epochs {
        let start = Instant::now();
        let stats = dist.train_epoch(
            train_iter.epoch::<f32>(epoch),
            &mut trainer,
            batch_size,
            |_| {},
        )?;
        let test_acc = dist.evaluate_accuracy(test_iter.epoch::<f32>(0))?;
        if lead {
            println!(
                "epoch {}, loss {:.4}, train acc {:.3}, test acc {:.3}, time {:.1} sec",
                epoch + 1,
                stats.loss,
                stats.train_acc(),
                test_acc,
                start.elapsed().as_secs_f64()
            );
        }
        history.0.push(stats.loss);
        history.1.push(stats.train_acc());
        history.2.push(test_acc);
        if let Some(state) = args.opt("checkpoint") {
            let progress = TrainingProgress {
                epoch: epoch + 1,
                batches: 0,
                seed,
            };
            make_parent(comm, Path::new(&state))?;
            dist.save_training_state(Path::new(&state), &trainer, progress)?;
        }
    }

    let save = PathBuf::from(
        args.opt("save")
            .unwrap_or_else(|| "runs/lenet.params".into()),
    );
    make_parent(comm, &save)?;
    dist.save_parameters(&save)?;
    if lead {
        let plot = PathBuf::from(args.opt("plot").unwrap_or_else(|| "runs/lenet.svg".into()));
        create_parent(&plot)?;
        let title = format!(
            "LeNet ({name}) on Fashion-MNIST, lr {lr}, batch {batch_size}, {} ranks",
            comm.size()
        );
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
    }
    // no rank leaves before rank 0 has written its files
    comm.barrier()?;
    Ok(())
}

/// The dataset's size and an FNV-1a hash of its pixels and labels, so that ranks on
/// machines with different copies of the data are refused.
fn fingerprint(data: &ImageDataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    for i in 0..data.len() {
        data.image(i).iter().for_each(|&b| eat(b));
        eat(data.label(i) as u8);
    }
    format!("{} images, {h:016x}", data.len())
}

/// Rank 0 creates the folder of `path`; a failure is every rank's.
fn make_parent<C: Communicator>(comm: &C, path: &Path) -> kiln::dist::Result<()> {
    let made = match comm.rank() {
        0 => create_parent(path).map_err(|e| {
            kiln::dist::DistError::invalid(format!("{}", path.display()), e.to_string())
        }),
        _ => Ok(()),
    };
    agree(comm, "creating the output folder", made)
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => std::fs::create_dir_all(p),
        _ => Ok(()),
    }
}
