//! The examples' side of `kiln::dist`: the communicator of the processes `mpirun`
//! started (one process without the feature `mpi`), the training run of `lenet_dist`
//! ([`DistFit`]: the book's epoch lines, a training state after every epoch, `--resume`,
//! Ctrl-C that finishes the step on every rank, saves and exits with status 130), and the
//! benchmarks' `--dist` mode.

use super::{bench, line_chart_svg, median, report, Args};
use kiln::dist::{agree, Communicator, DistConfig, DistDataParallel, Part, SkipBatches};
use kiln::nn::checkpoint::{self, TrainingProgress};
use kiln::nn::data::{DataLoader, Dataset, ImageDataset};
use kiln::nn::{Block, BlockExt, Init, Labels, NnError, Sgd, Trainer};
use kiln::tensor::Tensor;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The exit status of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell
/// reports Ctrl-C).
pub const INTERRUPTED: i32 = 130;

/// Set by SIGINT or SIGTERM once [`install_interrupt`] ran.
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether the signal handler says what it does (rank 0 only).
static SAY: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT (Ctrl-C, for a run without `mpirun`) and SIGTERM (what `mpirun` sends every
/// rank a second after it gets Ctrl-C, and SIGKILL a second later) set a flag instead of
/// ending the process: the ranks finish their step, agree to stop, save the training
/// state and exit with [`INTERRUPTED`]. A second signal ends the process at once. `say`:
/// whether this process prints that it was interrupted.
#[cfg(unix)]
pub fn install_interrupt(say: bool) -> &'static AtomicBool {
    mod sys {
        extern "C" {
            pub fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
            pub fn write(fd: i32, buf: *const u8, count: usize) -> isize;
            pub fn _exit(status: i32) -> !;
        }
    }
    // SIGINT and SIGTERM on every Unix
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    extern "C" fn on_signal(_: i32) {
        // only what a signal handler may call: atomics, write(2) and _exit(2)
        if STOP.swap(true, Ordering::SeqCst) {
            // SAFETY: _exit is async-signal-safe and ends the process
            unsafe { sys::_exit(INTERRUPTED) }
        }
        if SAY.load(Ordering::SeqCst) {
            let text = b"\ninterrupted: finishing this step on every rank, then saving the training state\n";
            // SAFETY: write(2) on stderr from a buffer that lives forever
            unsafe { sys::write(2, text.as_ptr(), text.len()) };
        }
    }
    SAY.store(say, Ordering::SeqCst);
    for sig in [SIGINT, SIGTERM] {
        // SAFETY: the handler only touches atomics and async-signal-safe calls
        if unsafe { sys::signal(sig, on_signal) } == usize::MAX {
            eprintln!("warning: signal {sig} will stop the run without saving");
        }
    }
    &STOP
}

/// Without Unix signals: a flag that nothing sets.
#[cfg(not(unix))]
pub fn install_interrupt(_say: bool) -> &'static AtomicBool {
    &STOP
}

/// Where a run writes: the final parameters (`--save`), the training state after every
/// epoch and at an interruption (`--checkpoint`), and the curves (`--plot`). Rank 0 writes
/// them all.
pub struct DistFiles {
    /// The parameters at the end of training.
    pub params: PathBuf,
    /// The training state (parameters, optimizer state, progress), rewritten atomically
    /// at the end of every epoch and when the run is interrupted.
    pub state: PathBuf,
    /// The training curves as SVG.
    pub plot: PathBuf,
}

impl DistFiles {
    /// `--save` (default `runs/NAME.params`), `--checkpoint` (default: `--save` with the
    /// extension `.state`) and `--plot` (default `runs/NAME.svg`), as the one-process
    /// examples choose them; rank 0 creates their folders and checks that it can write
    /// there before any training (a collective: a failure is every rank's, naming the
    /// flag and the path).
    pub fn from_args<C: Communicator>(
        comm: &C,
        args: &Args,
        name: &str,
    ) -> Result<DistFiles, Box<dyn Error>> {
        let params = PathBuf::from(
            args.opt("save")
                .unwrap_or_else(|| format!("runs/{name}.params")),
        );
        let state = args
            .opt("checkpoint")
            .map_or_else(|| params.with_extension("state"), PathBuf::from);
        let plot = PathBuf::from(
            args.opt("plot")
                .unwrap_or_else(|| format!("runs/{name}.svg")),
        );
        let checked = match comm.rank() {
            0 => [
                ("--save", &params),
                ("--checkpoint", &state),
                ("--plot", &plot),
            ]
            .into_iter()
            .try_for_each(|(flag, path)| {
                check_writable(path)
                    .map_err(|e| kiln::dist::DistError::invalid(flag, e.to_string()))
            }),
            _ => Ok(()),
        };
        agree(comm, "checking the output files", checked)?;
        Ok(DistFiles {
            params,
            state,
            plot,
        })
    }

    /// The file beside the training state that keeps the epoch lines of the run, so that
    /// a resumed run prints and plots the whole curve.
    pub fn history(&self) -> PathBuf {
        let mut name = self.state.file_name().unwrap_or_default().to_os_string();
        name.push(".history");
        self.state.with_file_name(name)
    }
}

/// Creates the folder of `path` and checks that a file can be created in it (by creating
/// and removing a probe beside it) and that `path` is not a folder.
pub fn check_writable(path: &Path) -> Result<(), NnError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| NnError::io("creating the folder", &dir, e))?;
    if path.is_dir() {
        return Err(NnError::io(
            "writing",
            path,
            std::io::Error::other("it is a folder"),
        ));
    }
    let probe = dir.join(format!(".kiln-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| NnError::io("creating a file in", &dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One finished epoch's numbers, as the book prints them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochLine {
    /// Mean training loss per sample.
    pub loss: f64,
    /// Training accuracy.
    pub train_acc: f64,
    /// Test accuracy.
    pub test_acc: f64,
}

/// The part of an epoch done before an interruption: what its line will include.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Partial {
    /// The batches of the epoch it covers (those the training state says are done).
    batches: u64,
    samples: usize,
    loss_sum: f64,
    correct: f64,
}

/// The epoch lines of a run (and of its unfinished epoch), kept beside its training state
/// by rank 0, in the format of the one-process examples' history (so that either kind of
/// run can resume the other's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The finished epochs, in order.
    pub epochs: Vec<EpochLine>,
    partial: Partial,
}

impl History {
    /// Reads the history written by [`History::write`]; a missing file is an empty
    /// history (a training state copied without it resumes without the earlier points).
    fn read(path: &Path) -> Result<History, Box<dyn Error>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(NnError::io("reading", path, e).into()),
        };
        let bad = || format!("{}: not a history file of kiln's examples", path.display());
        let mut h = History::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or_else(bad);
            match f.first() {
                Some(&"epoch") => h.epochs.push(EpochLine {
                    loss: num(1)?,
                    train_acc: num(2)?,
                    test_acc: num(3)?,
                }),
                Some(&"partial") => {
                    h.partial = Partial {
                        batches: num(1)? as u64,
                        samples: num(2)? as usize,
                        loss_sum: num(3)?,
                        correct: num(4)?,
                    }
                }
                _ => return Err(bad().into()),
            }
        }
        Ok(h)
    }

    /// Writes the history atomically (exact values: Rust prints the shortest decimal that
    /// reads back to the same f64).
    fn write(&self, path: &Path) -> Result<(), NnError> {
        let mut text = String::from("# kiln training history: epoch loss train_acc test_acc\n");
        for e in &self.epochs {
            let _ = writeln!(text, "epoch {} {} {}", e.loss, e.train_acc, e.test_acc);
        }
        let p = self.partial;
        if p.samples > 0 {
            let _ = writeln!(
                text,
                "partial {} {} {} {}",
                p.batches, p.samples, p.loss_sum, p.correct
            );
        }
        checkpoint::atomic_write(path, |w| w.write_all(text.as_bytes()))
    }
}

/// How a [`DistFit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Every epoch was trained and the parameters and curves were saved.
    Done,
    /// A stop request (Ctrl-C, SIGTERM) ended the run after the training state was saved:
    /// exit with [`INTERRUPTED`] once the communicator is closed.
    Interrupted,
}

/// What a training run across ranks does beyond its network: epochs, batch size, seed,
/// files, and whether it continues from a training state. The ranks must agree on all of
/// it (check it with `kiln::dist::check_same`).
pub struct DistFit<'a> {
    /// Epochs in all (a resumed run trains those not yet done).
    pub epochs: u64,
    /// The batch size (`trainer.step(batch_size)`).
    pub batch_size: usize,
    /// The seed of the data order (checked against a resumed state's).
    pub seed: u64,
    /// Where rank 0 writes.
    pub files: &'a DistFiles,
    /// A training state to continue from (`--resume`; only rank 0 reads it).
    pub resume: Option<PathBuf>,
    /// The title of the curves' chart.
    pub title: String,
}

impl DistFit<'_> {
    /// Trains through `dist` with `trainer` for the epochs left, rank 0 printing the
    /// book's line after each (`epoch N, loss X, train acc Y, test acc Z, time T sec`) and
    /// saving the training state and history; then saves the parameters and the curves.
    /// A collective: every rank calls it with the same settings and its own loaders over
    /// the same data (each reads only its shards).
    ///
    /// On Ctrl-C or SIGTERM on any rank, every rank finishes the same step; the state of
    /// the unfinished epoch (`progress.batches` batches done) is saved and the run returns
    /// [`Finished::Interrupted`] after rank 0 says how to resume. A resumed run, on any
    /// number of ranks, skips the batches done without reading them and is bit-identical
    /// to an uninterrupted one (its parameters and optimizer state; an interrupted epoch's
    /// printed loss may differ in the last digit, being recombined from two parts).
    pub fn run<C, B, D, E>(
        &self,
        dist: &DistDataParallel<'_, '_, f32, B, C>,
        trainer: &mut Trainer<f32>,
        train: &mut DataLoader<D>,
        test: &mut DataLoader<E>,
    ) -> Result<Finished, Box<dyn Error>>
    where
        C: Communicator,
        B: Block<f32>,
        D: Dataset,
        E: Dataset,
    {
        let comm = dist.comm();
        let lead = comm.rank() == 0;
        dist.stop_on(install_interrupt(lead));
        let mut history = History::default();
        let mut progress = TrainingProgress {
            epoch: 0,
            batches: 0,
            seed: self.seed,
        };
        let total = train.num_batches();
        if let Some(path) = &self.resume {
            progress = dist.load_training_state(path, trainer)?;
            if progress.seed != self.seed {
                return Err(format!(
                    "{} was saved by a run with --seed {}, this one has --seed {}",
                    path.display(),
                    progress.seed,
                    self.seed
                )
                .into());
            }
            if progress.batches as usize >= total {
                return Err(format!(
                    "{} says {} batches of epoch {} are done, but an epoch here has {total}: \
                     resume with the run's --batch-size and --subset",
                    path.display(),
                    progress.batches,
                    progress.epoch + 1
                )
                .into());
            }
            let read = match lead {
                true => History::read(&self.files.history())
                    .map_err(|e| kiln::dist::DistError::invalid("--resume", e.to_string())),
                false => Ok(History::default()),
            };
            history = agree(comm, "reading the history", read)?;
            history.epochs.truncate(progress.epoch as usize);
            if history.partial.batches != progress.batches {
                // the state was written before its history: the part is not known
                history.partial = Partial::default();
            }
            if lead {
                println!(
                    "resuming from {} at epoch {}{}",
                    path.display(),
                    progress.epoch + 1,
                    match progress.batches {
                        0 => String::new(),
                        b => format!(", batch {}", b + 1),
                    }
                );
            }
        }
        for epoch in progress.epoch..self.epochs {
            let start = Instant::now();
            let skip = std::mem::take(&mut progress.batches) as usize;
            let batches = SkipBatches::new(train.try_epoch::<f32>(epoch), skip);
            let stats = dist.train_epoch(batches, trainer, self.batch_size, |_| {})?;
            let done = skip + stats.steps;
            let prior = history.partial;
            let part = Partial {
                batches: done as u64,
                samples: stats.samples,
                loss_sum: stats.loss * stats.samples as f64,
                correct: match stats.samples {
                    0 => 0.0,
                    n => (stats.train_acc() * n as f64).round(),
                },
            };
            let all = Partial {
                batches: done as u64,
                samples: prior.samples + part.samples,
                loss_sum: prior.loss_sum + part.loss_sum,
                correct: prior.correct + part.correct,
            };
            if dist.stopping() && done < total {
                history.partial = all;
                let at = TrainingProgress {
                    epoch,
                    batches: done as u64,
                    seed: self.seed,
                };
                self.save_state(dist, trainer, at, &history)?;
                if lead {
                    eprintln!(
                        "interrupted in epoch {} after batch {done} of {total}: the training \
                         state is in {}; continue with --resume {}",
                        epoch + 1,
                        self.files.state.display(),
                        self.files.state.display()
                    );
                }
                return Ok(Finished::Interrupted);
            }
            let test_acc = dist.evaluate_accuracy(test.try_epoch::<f32>(0))?;
            // an epoch trained in one go prints its own numbers, unrecombined
            let line = match prior.samples {
                0 => EpochLine {
                    loss: stats.loss,
                    train_acc: stats.train_acc(),
                    test_acc,
                },
                _ => EpochLine {
                    loss: all.loss_sum / all.samples.max(1) as f64,
                    train_acc: all.correct / all.samples.max(1) as f64,
                    test_acc,
                },
            };
            if lead {
                println!(
                    "epoch {}, loss {:.4}, train acc {:.3}, test acc {:.3}, time {:.1} sec",
                    epoch + 1,
                    line.loss,
                    line.train_acc,
                    line.test_acc,
                    start.elapsed().as_secs_f64()
                );
            }
            history.epochs.push(line);
            history.partial = Partial::default();
            let at = TrainingProgress {
                epoch: epoch + 1,
                batches: 0,
                seed: self.seed,
            };
            self.save_state(dist, trainer, at, &history)?;
            if epoch + 1 < self.epochs && dist.agree_to_stop()? {
                if lead {
                    eprintln!(
                        "interrupted after epoch {}: the training state is in {}; continue \
                         with --resume {}",
                        epoch + 1,
                        self.files.state.display(),
                        self.files.state.display()
                    );
                }
                return Ok(Finished::Interrupted);
            }
        }
        dist.save_parameters(&self.files.params)?;
        let plotted = match lead {
            true => {
                let pick = |f: fn(&EpochLine) -> f64| history.epochs.iter().map(f).collect();
                let svg = line_chart_svg(
                    &self.title,
                    "epoch",
                    &[
                        ("train loss", "#1f77b4", pick(|e| e.loss)),
                        ("train acc", "#ff7f0e", pick(|e| e.train_acc)),
                        ("test acc", "#2ca02c", pick(|e| e.test_acc)),
                    ],
                );
                checkpoint::atomic_write(&self.files.plot, |w| w.write_all(svg.as_bytes()))
            }
            false => Ok(()),
        };
        agree(comm, "writing the curves", plotted)?;
        if lead {
            println!(
                "saved parameters to {}, the training state to {} and curves to {}",
                self.files.params.display(),
                self.files.state.display(),
                self.files.plot.display()
            );
        }
        Ok(Finished::Done)
    }

    /// The history (rank 0), then the training state (a collective): a state never points
    /// at a history that lacks its epochs.
    fn save_state<C: Communicator, B: Block<f32>>(
        &self,
        dist: &DistDataParallel<'_, '_, f32, B, C>,
        trainer: &Trainer<f32>,
        progress: TrainingProgress,
        history: &History,
    ) -> Result<(), Box<dyn Error>> {
        let written = match dist.comm().rank() {
            0 => history.write(&self.files.history()),
            _ => Ok(()),
        };
        agree(dist.comm(), "writing the history", written)?;
        dist.save_training_state(&self.files.state, trainer, progress)?;
        Ok(())
    }
}

/// The dataset's size and an FNV-1a hash of its pixels and labels, for
/// `kiln::dist::check_same`, so that ranks on machines with different copies of the data
/// are refused.
pub fn fingerprint(data: &ImageDataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    for i in 0..data.len() {
        data.image(i).iter().for_each(|&b| eat(b));
        eat(data.label(i) as u8);
    }
    format!("{} images, {h:016x}", data.len())
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
