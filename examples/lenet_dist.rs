//! D2L 6.6 across processes: the book's LeNet trained on Fashion-MNIST by the ranks
//! `mpirun` starts, each computing its shards of every batch, with the numbers of one
//! process (kiln::dist::DistDataParallel). Rank 0 prints the book's epoch lines.
//!
//!     cargo build --release --features mpi --example lenet_dist
//!     mpirun -np 2 target/release/examples/lenet_dist --epochs 1 --seed 3 --save X
//!
//! Built without `--features mpi` it runs as one process (the same numbers).

mod common;

use common::dist::{fingerprint, DistFiles, DistFit, Finished, INTERRUPTED};
use common::Args;
use kiln::dist::{agree, check_same, Communicator, DistConfig, DistDataParallel, Reduction};
use kiln::nn::checkpoint::load_weights;
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, Init, Sgd, Trainer};
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "\
Trains the book's LeNet on Fashion-MNIST (D2L 6.6) across the ranks mpirun starts.

usage: mpirun -np N lenet_dist [--epochs 5] [--batch-size 256] [--lr LR] [--seed 0]
             [--threads T] [--shards 8] [--activation sigmoid|relu] [--data-dir DIR]
             [--save runs/lenet.params] [--checkpoint runs/lenet.state]
             [--plot runs/lenet.svg] [--resume STATE] [--eval CHECKPOINT]
             [--subset N] [--reduction shard-order|allreduce] [--timeout 60]

The flags of lenet, and: each batch is cut into --shards shards, shared out to the ranks
in runs and, inside a rank, to its --threads threads (default: the cores divided among the
ranks of the machine). With the default --reduction shard-order the gradients are summed
in shard order, so any number of ranks gives lenet's numbers with the same --shards, bit
for bit; allreduce moves less data but is reproducible only for a fixed number of ranks.

As in lenet, the training state (parameters, optimizer state, progress) is saved to
--checkpoint (default: --save with the extension .state) at the end of every epoch, and
--resume STATE continues such a run bit for bit, on any number of ranks (with the same
flags; --epochs is the total). Ctrl-C finishes the current step on every rank, saves the
state of the unfinished epoch and exits with status 130: under mpirun, Ctrl-C reaches the
ranks as SIGTERM a second later and is followed by SIGKILL a second after that (Open MPI's
odls_base_sigkill_timeout), enough for LeNet's steps; SIGTERM to any one rank does the
same. --eval loads a parameter file or a training state and reports its test accuracy.

--subset N trains and tests on the first N images of each set. --timeout is how long a
rank waits for the others in a step before it gives up. Every rank must be given the same
flags: ranks that disagree are refused at the start. Rank 0 reads --eval and --resume
files and writes the outputs (checked writable before training); every rank reads the
data.";

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
    match outcome {
        Err(e) => fail(comm.rank(), comm.size(), &e),
        Ok(Finished::Done) => {}
        Ok(Finished::Interrupted) => {
            // every rank saved and agreed: close the communicator, then say so
            drop(comm);
            std::process::exit(INTERRUPTED)
        }
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

fn run<C: Communicator>(comm: &C, args: &Args, threads: usize) -> Result<Finished, Box<dyn Error>> {
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
            true => load_weights(&net.collect_params(), checkpoint.as_ref()),
            false => Ok(()),
        };
        agree(comm, "loading the checkpoint", loaded)?;
        dist.broadcast_parameters()?;
        let acc = dist.evaluate_accuracy(test_iter.try_epoch::<f32>(0))?;
        if lead {
            println!("test acc {acc:.3}");
        }
        return Ok(Finished::Done);
    }

    if lead {
        println!("{summary}");
    }
    if epochs == 0 {
        return Ok(Finished::Done);
    }
    let files = DistFiles::from_args(comm, args, "lenet")?;
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(lr));
    dist.sync_trainer(&mut trainer)?;
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
    let fit = DistFit {
        epochs,
        batch_size,
        seed,
        files: &files,
        resume: args.opt("resume").map(PathBuf::from),
        title: format!(
            "LeNet ({name}) on Fashion-MNIST, lr {lr}, batch {batch_size}, {} ranks",
            comm.size()
        ),
    };
    let finished = fit.run(
        &dist,
        &mut trainer,
        &mut DataLoader::new(&train, batch_size)?.shuffle(seed),
        &mut test_iter,
    )?;
    // no rank leaves before rank 0 has written its files
    comm.barrier()?;
    Ok(finished)
}
