//! What the ranks keep alike beyond one step: the optimizer state (rank 0's, broadcast),
//! checkpoints (written and read by rank 0 only, atomically, as `kiln_nn::checkpoint`
//! writes them), and a check that every rank still holds the same weights.

use crate::comm::{agree, check_same, Communicator, Element};
use crate::ddp::{fnv1a, DistDataParallel};
use crate::error::{DistError, Result};
use kiln_nn::checkpoint::{self, TrainingProgress};
use kiln_nn::{Block, BlockExt, ParamState, Trainer};
use kiln_tensor::{Float, Tensor};
use std::path::Path;

impl<T: Float + Element, B: Block<T>, C: Communicator> DistDataParallel<'_, '_, T, B, C> {
    /// Gives every rank rank 0's optimizer state (a collective): each parameter's update
    /// count and tensors, the counts `num_update` and `begin_num_update`, and the
    /// optimizer's learning rate (unless a schedule sets it). The ranks first check that
    /// their trainers use the same optimizer on the same parameters. Call it once the
    /// trainer is made, before training (a resumed run's state comes with
    /// [`DistDataParallel::load_training_state`]).
    pub fn sync_trainer(&self, trainer: &mut Trainer<T>) -> Result<()> {
        let keys = trainer.keys().join(";");
        let scheduler = trainer.scheduler().map_or("none", |s| s.name());
        check_same(
            self.comm,
            &[
                ("the optimizer", &trainer.optimizer().name()),
                ("the learning-rate schedule", &scheduler),
                (
                    "the trained parameters",
                    &format!("{} ({:016x})", trainer.keys().len(), fnv1a(keys.as_bytes())),
                ),
            ],
        )?;
        // the tensors are shaped as their parameters
        let dict = self.net.collect_params();
        let shapes = trainer
            .keys()
            .iter()
            .map(|k| {
                let p = dict.get(k).ok_or_else(|| {
                    DistError::invalid(
                        "sync_trainer",
                        format!("the trainer's parameter '{k}' is not the network's"),
                    )
                })?;
                Ok(p.data().map_err(DistError::from)?.shape().clone())
            })
            .collect::<Result<Vec<_>>>();
        let shapes = agree(self.comm, "sync_trainer", shapes)?;
        let n = shapes.len();
        // the counts: num_update, begin_num_update, the learning rate's bits, then per
        // parameter whether it was updated, how often, and how many tensors it has
        let mut header = vec![0u64; 3 + 3 * n];
        let mut values = Vec::new();
        let root = self.comm.rank() == 0;
        if root {
            header[0] = trainer.num_update();
            header[1] = trainer.begin_num_update();
            header[2] = trainer.optimizer().learning_rate().to_bits();
            for (i, s) in trainer.states().iter().enumerate() {
                header[3 + 3 * i] = s.count.is_some() as u64;
                header[4 + 3 * i] = s.count.unwrap_or(0);
                header[5 + 3 * i] = s.tensors.len() as u64;
                s.tensors
                    .iter()
                    .for_each(|t| values.extend_from_slice(t.data()));
            }
        }
        let header = self.comm.broadcast(0, header)?;
        let len = shapes
            .iter()
            .enumerate()
            .map(|(i, shape)| header[5 + 3 * i] as usize * shape.iter().product::<usize>())
            .sum();
        values.resize(len, T::ZERO);
        let values = self.comm.broadcast(0, values)?;
        let taken = match root {
            true => Ok(()),
            false => take_states(trainer, &header, &values, shapes),
        };
        agree(self.comm, "taking rank 0's optimizer state", taken)
    }

    /// An error on every rank unless every rank holds the same weights and optimizer
    /// state, bit for bit (a collective; one hash per rank is exchanged).
    pub fn verify_in_sync(&self, trainer: &Trainer<T>) -> Result<()> {
        let mut bytes = Vec::new();
        for p in &self.params {
            p.data()?
                .data()
                .iter()
                .for_each(|v| bytes.extend_from_slice(&v.to_f64().to_bits().to_le_bytes()));
        }
        for s in trainer.states() {
            bytes.extend_from_slice(&s.count.unwrap_or(u64::MAX).to_le_bytes());
            for t in &s.tensors {
                t.data()
                    .iter()
                    .for_each(|v| bytes.extend_from_slice(&v.to_f64().to_bits().to_le_bytes()));
            }
        }
        bytes.extend_from_slice(&trainer.num_update().to_le_bytes());
        let hash = fnv1a(&bytes);
        let all = self
            .comm
            .all_gather(vec![hash], &vec![1; self.comm.size()])?;
        match all.iter().position(|&h| h != all[0]) {
            None => Ok(()),
            Some(rank) => Err(DistError::comm(
                "verify_in_sync",
                format!(
                    "rank {rank}'s weights or optimizer state differ from rank 0's (hash {:016x} vs {:016x})",
                    all[rank], all[0]
                ),
            )),
        }
    }

    /// Saves the training state (parameters, optimizer state, update counts, `progress`)
    /// to `path` from rank 0 only, atomically, as [`checkpoint::save_training_state`]
    /// writes it (a collective). First checks that every rank holds the same state; a
    /// failure to write is every rank's error.
    pub fn save_training_state(
        &self,
        path: &Path,
        trainer: &Trainer<T>,
        progress: TrainingProgress,
    ) -> Result<()> {
        self.verify_in_sync(trainer)?;
        let written = match self.comm.rank() {
            0 => {
                checkpoint::save_training_state(path, &self.net.collect_params(), trainer, progress)
            }
            _ => Ok(()),
        };
        agree(self.comm, "writing the training state", written)
    }

    /// Loads a training state saved by [`DistDataParallel::save_training_state`] (or
    /// [`checkpoint::save_training_state`], with any number of ranks) on rank 0, then
    /// gives every rank its parameters and optimizer state (a collective). Returns the
    /// progress to continue from. Only rank 0 needs the file.
    pub fn load_training_state(
        &self,
        path: &Path,
        trainer: &mut Trainer<T>,
    ) -> Result<TrainingProgress> {
        let loaded = match self.comm.rank() {
            0 => {
                checkpoint::load_training_state(path, &self.net.collect_params(), trainer).map(Some)
            }
            _ => Ok(None),
        };
        let progress = agree(self.comm, "loading the training state", loaded)?;
        self.broadcast_parameters()?;
        self.sync_trainer(trainer)?;
        let p = progress.unwrap_or_default();
        let all = self.comm.broadcast(0, vec![p.epoch, p.batches, p.seed])?;
        Ok(TrainingProgress {
            epoch: all[0],
            batches: all[1],
            seed: all[2],
        })
    }

    /// Saves the parameters to `path` from rank 0 only, atomically, as
    /// `net.save_parameters` writes them (a collective; a failure is every rank's).
    pub fn save_parameters(&self, path: &Path) -> Result<()> {
        let written = match self.comm.rank() {
            0 => self.net.save_parameters(path),
            _ => Ok(()),
        };
        agree(self.comm, "writing the parameters", written)
    }
}

/// Sets `trainer`'s state from what rank 0 broadcast (see `sync_trainer`).
fn take_states<T: Float>(
    trainer: &mut Trainer<T>,
    header: &[u64],
    values: &[T],
    shapes: Vec<kiln_tensor::Shape>,
) -> Result<()> {
    let names = trainer.optimizer().state_names().len();
    let mut at = 0;
    let mut states = Vec::with_capacity(shapes.len());
    for (i, shape) in shapes.into_iter().enumerate() {
        let count = header[5 + 3 * i] as usize;
        if count != 0 && count != names {
            return Err(DistError::comm(
                "sync_trainer",
                format!("rank 0 keeps {count} optimizer tensors for parameter {i}, this optimizer {names}"),
            ));
        }
        let size = shape.iter().product::<usize>();
        let mut tensors = Vec::with_capacity(count);
        for _ in 0..count {
            tensors.push(Tensor::from_vec(
                values[at..at + size].to_vec(),
                shape.clone(),
            )?);
            at += size;
        }
        states.push(ParamState {
            count: (header[3 + 3 * i] == 1).then_some(header[4 + 3 * i]),
            tensors,
        });
    }
    trainer.set_states(states, header[0], header[1])?;
    if trainer.scheduler().is_none() {
        trainer.set_learning_rate(f64::from_bits(header[2]))?;
    }
    Ok(())
}
