//! The training run the training examples share (`lenet`, `modern_cnn`): the book's epoch
//! lines, a progress bar, a training-state checkpoint at the end of every epoch, `--resume`,
//! and Ctrl-C that finishes the current step, saves, and exits non-zero.
//!
//! The files of a run are chosen and checked before any training ([`RunFiles`]): a
//! destination that cannot be written is found in the first second, not after the last
//! epoch.

use super::{line_chart_svg_labelled, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln::nn::checkpoint::{self, TrainingProgress};
use kiln::nn::data::{DataLoader, Dataset};
use kiln::nn::{Block, BlockExt, DataParallel, NnError, Trainer};
use std::error::Error;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The exit status of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const INTERRUPTED: i32 = 130;

/// Where a run writes: the final parameters (`--save`), the training state after every
/// epoch (`--checkpoint`), and the curves (`--plot`).
pub struct RunFiles {
    /// The parameters at the end of training.
    pub params: PathBuf,
    /// The training state (parameters, optimizer state, progress), rewritten atomically
    /// at the end of every epoch and when the run is interrupted.
    pub state: PathBuf,
    /// The training curves as SVG.
    pub plot: PathBuf,
}

impl RunFiles {
    /// `--save` (default `runs/NAME.params`), `--checkpoint` (default: `--save` with the
    /// extension `.state`) and `--plot` (default `runs/NAME.svg`), each folder created and
    /// each destination checked writable now: an error names the path and what failed.
    pub fn from_args(args: &Args, name: &str) -> Result<RunFiles, Box<dyn Error>> {
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
        for (flag, path) in [
            ("--save", &params),
            ("--checkpoint", &state),
            ("--plot", &plot),
        ] {
            check_writable(path).map_err(|e| format!("{flag}: {e}"))?;
        }
        Ok(RunFiles {
            params,
            state,
            plot,
        })
    }

    /// The file beside the training state that keeps the epoch lines of the run, so that a
    /// resumed run plots the whole curve.
    pub fn history(&self) -> PathBuf {
        history_path(&self.state)
    }
}

fn history_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".history");
    state.with_file_name(name)
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

/// Set by Ctrl-C (SIGINT) once [`install_interrupt`] ran.
static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C set a flag that the training loop reads between steps, instead of killing
/// the process: the current step finishes and the state is saved. A second Ctrl-C while
/// the flag is set kills the process at once, as a user pressing it again expects.
pub fn install_interrupt() -> &'static AtomicBool {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let installed = ctrlc::set_handler(|| {
            if INTERRUPT.swap(true, Ordering::SeqCst) {
                std::process::exit(INTERRUPTED);
            }
            eprintln!("\ninterrupted: finishing this step, then saving the training state");
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will stop the run without saving ({e})");
        }
    });
    &INTERRUPT
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

/// The epoch lines of a run (and its unfinished epoch), kept beside its training state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The finished epochs, in order.
    pub epochs: Vec<EpochLine>,
    partial: Partial,
}

impl History {
    /// Reads the history written by [`History::write`]; a missing file is an empty history
    /// (a checkpoint copied without it resumes with the earlier points missing).
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

/// What a training run does beyond its network: epochs, batch size, seed, files, and
/// whether it continues from a training state.
pub struct Fit<'a> {
    /// Epochs in all (a resumed run trains those not yet done).
    pub epochs: u64,
    /// The batch size (`trainer.step(batch_size)`).
    pub batch_size: usize,
    /// The seed of the data order (checked against a resumed state's).
    pub seed: u64,
    /// Where the run writes.
    pub files: &'a RunFiles,
    /// A training state to continue from (`--resume`).
    pub resume: Option<PathBuf>,
    /// The title of the curves' chart.
    pub title: String,
}

impl Fit<'_> {
    /// Trains `net` (through `parallel`) with `trainer` for the epochs left, printing the
    /// book's line after each (`epoch N, loss X, train acc Y, test acc Z, time T sec`)
    /// and saving the training state and history; then saves the parameters and the
    /// curves. On Ctrl-C, saves the state of the unfinished epoch and exits with status
    /// [`INTERRUPTED`] after saying how to resume; a resumed run is bit-identical to an
    /// uninterrupted one (its parameters and optimizer state; an interrupted epoch's
    /// printed loss may differ in the last digit, being recombined from two parts).
    pub fn run<B: Block<f32>, D: Dataset, E: Dataset>(
        &self,
        net: &B,
        parallel: &DataParallel<'_, f32, B>,
        trainer: &mut Trainer<f32>,
        train: &mut DataLoader<D>,
        test: &mut DataLoader<E>,
    ) -> Result<History, Box<dyn Error>> {
        let stop = install_interrupt();
        let mut history = History::default();
        let mut progress = TrainingProgress {
            epoch: 0,
            batches: 0,
            seed: self.seed,
        };
        if let Some(path) = &self.resume {
            progress = checkpoint::load_training_state(path, &net.collect_params(), trainer)?;
            if progress.seed != self.seed {
                return Err(format!(
                    "{} was saved by a run with --seed {}, this one has --seed {}",
                    path.display(),
                    progress.seed,
                    self.seed
                )
                .into());
            }
            history = History::read(&history_path(path))?;
            history.epochs.truncate(progress.epoch as usize);
            if history.partial.batches != progress.batches {
                // the state was written before its history: the part is not known
                history.partial = Partial::default();
            }
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
        for epoch in progress.epoch..self.epochs {
            let start = Instant::now();
            let skip = progress.batches as usize;
            let total = train.num_batches();
            let bar = progress_bar(total as u64, skip as u64);
            let yielded = std::cell::Cell::new(0usize);
            let batches = train
                .try_epoch::<f32>(epoch)
                .skip(skip)
                .take_while(|_| !stop.load(Ordering::SeqCst))
                .inspect(|_| yielded.set(yielded.get() + 1));
            let outcome = parallel.train_epoch(batches, trainer, self.batch_size, |s| {
                bar.set_position((skip + s.steps) as u64);
                let rate = s.samples as f64 / start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{rate:.0} img/s, loss {:.4}", s.loss));
            });
            bar.finish_and_clear();
            let part = match outcome {
                Ok(stats) => Partial {
                    batches: 0,
                    samples: stats.samples,
                    loss_sum: stats.loss * stats.samples as f64,
                    correct: (stats.train_acc() * stats.samples as f64).round(),
                },
                // stopped before the first step of this run's part of the epoch
                Err(_) if stop.load(Ordering::SeqCst) && yielded.get() == 0 => Partial::default(),
                Err(e) => return Err(e.into()),
            };
            let done = skip + yielded.get();
            let prior = history.partial;
            let all = Partial {
                batches: done as u64,
                samples: prior.samples + part.samples,
                loss_sum: prior.loss_sum + part.loss_sum,
                correct: prior.correct + part.correct,
            };
            if stop.load(Ordering::SeqCst) && done < total {
                history.partial = all;
                let at = TrainingProgress {
                    epoch,
                    batches: done as u64,
                    seed: self.seed,
                };
                self.save_state(net, trainer, at, &history)?;
                eprintln!(
                    "interrupted in epoch {} after batch {done} of {total}: the training state is \
                     in {}; continue with --resume {}",
                    epoch + 1,
                    self.files.state.display(),
                    self.files.state.display()
                );
                std::process::exit(INTERRUPTED);
            }
            let test_acc = parallel.evaluate_accuracy(test.try_epoch::<f32>(0))?;
            let line = EpochLine {
                loss: all.loss_sum / all.samples.max(1) as f64,
                train_acc: all.correct / all.samples.max(1) as f64,
                test_acc,
            };
            println!(
                "epoch {}, loss {:.4}, train acc {:.3}, test acc {:.3}, time {:.1} sec",
                epoch + 1,
                line.loss,
                line.train_acc,
                line.test_acc,
                start.elapsed().as_secs_f64()
            );
            history.epochs.push(line);
            history.partial = Partial::default();
            progress = TrainingProgress {
                epoch: epoch + 1,
                batches: 0,
                seed: self.seed,
            };
            self.save_state(net, trainer, progress, &history)?;
            if stop.load(Ordering::SeqCst) && epoch + 1 < self.epochs {
                eprintln!(
                    "interrupted after epoch {}: the training state is in {}; continue with \
                     --resume {}",
                    epoch + 1,
                    self.files.state.display(),
                    self.files.state.display()
                );
                std::process::exit(INTERRUPTED);
            }
        }
        net.save_parameters(&self.files.params)?;
        let svg = line_chart_svg_labelled(
            &self.title,
            "epoch",
            "loss / accuracy",
            &[
                (
                    "train loss",
                    "#1f77b4",
                    history.epochs.iter().map(|e| e.loss).collect(),
                ),
                (
                    "train acc",
                    "#ff7f0e",
                    history.epochs.iter().map(|e| e.train_acc).collect(),
                ),
                (
                    "test acc",
                    "#2ca02c",
                    history.epochs.iter().map(|e| e.test_acc).collect(),
                ),
            ],
        );
        checkpoint::atomic_write(&self.files.plot, |w| w.write_all(svg.as_bytes()))?;
        println!(
            "saved parameters to {}, the training state to {} and curves to {}",
            self.files.params.display(),
            self.files.state.display(),
            self.files.plot.display()
        );
        Ok(history)
    }

    fn save_state<B: Block<f32>>(
        &self,
        net: &B,
        trainer: &Trainer<f32>,
        progress: TrainingProgress,
        history: &History,
    ) -> Result<(), NnError> {
        // the history first: a state never points at a history that lacks its epochs
        history.write(&self.files.history())?;
        checkpoint::save_training_state(&self.files.state, &net.collect_params(), trainer, progress)
    }
}

/// A progress bar on stderr while an epoch runs (images per second and the running loss),
/// only when stderr is a terminal.
fn progress_bar(steps: u64, done: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(steps);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} batches, {msg}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar.set_position(done);
    bar
}
