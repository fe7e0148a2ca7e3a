//! The examples' side of `kiln::dist`: the communicator of the processes `mpirun`
//! started (one process without the feature `mpi`), and the benchmarks' `--dist` mode.

use super::{bench, median, report};
use kiln::dist::{Communicator, DistConfig, DistDataParallel, Part};
use kiln::nn::{Block, BlockExt, Init, Labels, Sgd, Trainer};
use kiln::tensor::Tensor;
use std::error::Error;
use std::time::{Duration, Instant};

/// The ranks `mpirun` started.
#[cfg(feature = "mpi")]
pub type World = kiln::dist::Mpi;

/// One process: built without MPI.
#[cfg(not(feature = "mpi"))]
pub type World = kiln::dist::Local;

/// The communicator of this run, whose collectives give up after `timeout`.
#[cfg(feature = "mpi")]
pub fn world(timeout: Duration) -> kiln::dist::Result<World> {
    Ok(kiln::dist::Mpi::init()?.timeout(timeout))
}

/// One process; refused under a launcher that started several, since each would train
/// alone and write the same files.
#[cfg(not(feature = "mpi"))]
pub fn world(_: Duration) -> kiln::dist::Result<World> {
    let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok());
    match ranks {
        Some(n) if n > 1 => Err(kiln::dist::DistError::invalid(
            "kiln::dist",
            format!(
                "started as one of {n} ranks, but built without MPI: build the example with \
                 `cargo build --release --features mpi --example NAME`"
            ),
        )),
        _ => Ok(kiln::dist::Local),
    }
}

/// The cores of this machine divided among its ranks (Open MPI says how many there are).
pub fn cores_per_rank() -> usize {
    let local: usize = std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / local.max(1)).max(1)
}

/// Training throughput of `make`'s network across the ranks of `comm` on the batch `x`,
/// each rank holding only its shards' images, and where each step's time goes; rank 0
/// prints it all in the benchmarks' format. Also times `allreduce_sum` of a buffer the
/// size of the gradients.
#[allow(clippy::too_many_arguments)]
pub fn bench_train<C, B, F>(
    comm: &C,
    make: F,
    x: &Tensor<f32>,
    labels: &[usize],
    config: DistConfig,
    lr: f64,
    (steps, runs): (usize, usize),
    what: &str,
) -> Result<(), Box<dyn Error>>
where
    C: Communicator,
    B: Block<f32> + 'static,
    F: Fn() -> B + Send + Sync + 'static,
{
    let batch = x.dims()[0];
    let net = make();
    net.initialize(&Init::xavier(), 0)?;
    net.predict(&x.slice_axis(0, 0, 1)?)?;
    let dist = DistDataParallel::new(comm, &net, make, config)?;
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(lr));
    dist.sync_trainer(&mut trainer)?;
    let samples = dist.layout(batch).samples_of(comm.rank());
    let part = Part {
        images: x.slice_axis(0, samples.start, samples.end)?,
        labels: Labels::Classes(labels[samples.clone()].to_vec()),
        batch_len: batch,
    };
    let lead = comm.rank() == 0;
    if lead {
        println!(
            "# kiln {} {what} ranks={} threads={} shards={} batch={batch} reduction={} \
             (rank 0 computes samples {samples:?})",
            env!("CARGO_PKG_VERSION"),
            comm.size(),
            dist.threads(),
            dist.shards(),
            dist.reduction().name(),
        );
    }
    let mut step = || -> Result<(), Box<dyn Error>> {
        dist.gradient(part.clone(), trainer.random_key())?;
        trainer.step(batch)?;
        Ok(())
    };
    for _ in 0..3 {
        step()?;
    }
    dist.reset_step_times();
    let started = Instant::now();
    let per_step = bench(&mut step, steps, runs)?;
    let wall = started.elapsed();
    let t = dist.step_times();
    if lead {
        report("train_img_per_s", per_step, Some(batch));
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / t.steps.max(1) as f64;
        let step_ms = wall.as_secs_f64() * 1e3 / t.steps.max(1) as f64;
        println!(
            "step_ms {step_ms:.2}   # rank 0: compute {:.2}, exchange (and waiting) {:.2}, \
             reduce {:.2}, apply {:.2}, optimizer and rest {:.2}",
            ms(t.compute),
            ms(t.exchange),
            ms(t.reduce),
            ms(t.apply),
            step_ms - ms(t.compute) - ms(t.exchange) - ms(t.reduce) - ms(t.apply),
        );
    }
    // the plain collective on a buffer of the gradients' size
    let len: usize = net
        .collect_params()
        .iter()
        .map(|(_, p)| p.data().map(|d| d.data().len()))
        .sum::<Result<usize, _>>()?;
    let mut times = Vec::new();
    let mut buffer = vec![0.0f32; len];
    for _ in 0..runs.max(3) {
        comm.barrier()?;
        let start = Instant::now();
        for _ in 0..5 {
            buffer = comm.allreduce_sum(buffer)?;
        }
        times.push(start.elapsed().as_secs_f64() * 1e3 / 5.0);
    }
    if lead {
        println!(
            "allreduce_ms {:.3}   # allreduce_sum of {len} f32 ({:.1} MB) on {} ranks",
            median(times),
            len as f64 * 4.0 / 1e6,
            comm.size()
        );
    }
    comm.barrier()?;
    Ok(())
}
