//! `DistDataParallel` on ranks that are threads of this process (`ThreadComm`): the
//! same bits as one process's `DataParallel` with the same shards, for 1, 2 and 3 ranks
//! and any threads per rank; checkpoints written with 2 ranks resume on 1 or 3 as if
//! never stopped, and so do runs stopped mid-epoch by a stop request on one rank; the
//! plain-allreduce mode is close, and the same for a fixed rank count.

mod common;

use common::{bits, data, fresh, make, on_ranks, temp, trainer, BATCH, SEED, SHARDS};
use kiln_dist::{Communicator, DistConfig, DistDataParallel, Reduction, ThreadComm};
use kiln_nn::checkpoint::{save_training_state, TrainingProgress};
use kiln_nn::data::DataLoader;
use kiln_nn::train::EpochStats;
use kiln_nn::{BlockExt, DataParallel};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a run ends with: the weights' bits, every epoch's stats, the checkpoint's bytes.
type Run = (Vec<u32>, Vec<EpochStats>, Vec<u8>);

/// The one-process reference: `DataParallel` with the same shards on 2 threads.
fn reference(epochs: u64, dir: &Path) -> Run {
    let data = data();
    let net = fresh();
    let parallel = DataParallel::new(&net, make, SHARDS, 2).unwrap();
    let mut trainer = trainer(&net);
    let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
    let stats = (0..epochs)
        .map(|e| {
            parallel
                .train_epoch(loader.epoch(e), &mut trainer, BATCH, |_| {})
                .unwrap()
        })
        .collect();
    let path = dir.join("reference.state");
    let progress = TrainingProgress {
        batches: 0,
        epoch: epochs,
        seed: SEED,
    };
    save_training_state(&path, &net.collect_params(), &trainer, progress).unwrap();
    (bits(&net), stats, std::fs::read(path).unwrap())
}

/// Each rank's run: epochs `from..to`, resuming from `resume` if given, saving to `save`.
fn rank_run(
    comm: &ThreadComm,
    config: DistConfig,
    (from, to): (u64, u64),
    resume: Option<&Path>,
    save: &Path,
) -> Run {
    let data = data();
    let net = fresh();
    let dist = DistDataParallel::new(comm, &net, make, config).unwrap();
    let mut trainer = trainer(&net);
    dist.sync_trainer(&mut trainer).unwrap();
    if let Some(path) = resume {
        let progress = dist.load_training_state(path, &mut trainer).unwrap();
        assert_eq!(
            progress,
            TrainingProgress {
                batches: 0,
                epoch: from,
                seed: SEED
            }
        );
    }
    let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
    let stats = (from..to)
        .map(|e| {
            dist.train_epoch(loader.epoch(e), &mut trainer, BATCH, |_| {})
                .unwrap()
        })
        .collect();
    let progress = TrainingProgress {
        batches: 0,
        epoch: to,
        seed: SEED,
    };
    dist.save_training_state(save, &trainer, progress).unwrap();
    comm.barrier().unwrap();
    (bits(&net), stats, std::fs::read(save).unwrap())
}

#[test]
fn any_number_of_ranks_and_threads_gives_the_one_process_bits() {
    let dir = temp("bits");
    let expected = reference(2, &dir);
    for (ranks, threads) in [(1, 1), (2, 1), (3, 1), (2, 2)] {
        let save = dir.join(format!("{ranks}x{threads}.state"));
        let config = DistConfig::new(SHARDS).threads(threads);
        let runs = on_ranks(ranks, |comm| rank_run(&comm, config, (0, 2), None, &save));
        for (rank, run) in runs.iter().enumerate() {
            let what = format!("{ranks} ranks × {threads} threads, rank {rank}");
            assert_eq!(run.0, expected.0, "{what}: weights");
            assert_eq!(run.1, expected.1, "{what}: stats");
            assert!(
                run.2 == expected.2,
                "{what}: the checkpoint differs from one process's"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_run_saved_on_two_ranks_resumes_on_one_or_three_as_if_never_stopped() {
    let dir = temp("resume");
    let expected = reference(2, &dir);
    let half = dir.join("half.state");
    let config = DistConfig::new(SHARDS);
    on_ranks(2, |comm| rank_run(&comm, config, (0, 1), None, &half));
    for ranks in [1, 3] {
        let save = dir.join(format!("resumed-{ranks}.state"));
        let runs = on_ranks(ranks, |comm| {
            rank_run(&comm, config, (1, 2), Some(&half), &save)
        });
        for run in &runs {
            assert_eq!(run.0, expected.0, "resumed on {ranks} ranks: weights");
            assert_eq!(
                run.1[..],
                expected.1[1..],
                "resumed on {ranks} ranks: epoch 2"
            );
            assert!(
                run.2 == expected.2,
                "resumed on {ranks} ranks: the checkpoint differs"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn allreduce_is_close_and_the_same_for_a_fixed_number_of_ranks() {
    let dir = temp("allreduce");
    let expected = reference(1, &dir);
    let config = DistConfig::new(SHARDS).reduction(Reduction::Allreduce);
    let save = dir.join("a.state");
    let first = on_ranks(3, |comm| rank_run(&comm, config, (0, 1), None, &save));
    let again = on_ranks(3, |comm| rank_run(&comm, config, (0, 1), None, &save));
    assert_eq!(first[0].0, again[0].0, "3 ranks twice");
    assert_eq!(first[0].0, first[2].0, "every rank holds the same weights");
    assert_ne!(
        first[0].0, expected.0,
        "3 partial sums are added in another order"
    );
    let worst = first[0]
        .0
        .iter()
        .zip(&expected.0)
        .map(|(&a, &b)| (f32::from_bits(a) - f32::from_bits(b)).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-4,
        "allreduce on 3 ranks is {worst} from the shard-order sum"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn evaluation_across_ranks_is_data_parallels() {
    let data = data();
    let net = fresh();
    let parallel = DataParallel::new(&net, make, SHARDS, 1).unwrap();
    let expected = parallel
        .evaluate_accuracy(DataLoader::new(&data, BATCH).unwrap().epoch::<f32>(0))
        .unwrap();
    let got = on_ranks(3, |comm| {
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        assert_eq!(
            dist.layout(BATCH).samples_of(comm.rank()).len(),
            [7, 14, 11][comm.rank()]
        );
        dist.evaluate_accuracy(DataLoader::new(&data, BATCH).unwrap().epoch::<f32>(0))
            .unwrap()
    });
    assert_eq!(got, vec![expected; 3]);
}

/// A stop flag of its own for one rank (a signal handler's is a static).
fn flag() -> &'static AtomicBool {
    Box::leak(Box::new(AtomicBool::new(false)))
}

#[test]
fn a_stop_asked_on_one_rank_ends_every_rank_after_the_same_step_and_resumes_exactly() {
    let dir = temp("stop");
    let expected = reference(2, &dir);
    let stopped = dir.join("stopped.state");
    // 2 ranks; rank 1 alone is asked to stop during step 2 of the second epoch (4 batches
    // of 32, 32, 32, 8): the ranks hear of it at step 3 and end the epoch after it
    let done = on_ranks(2, |comm| {
        let data = data();
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        let stop = flag();
        dist.stop_on(stop);
        let mut trainer = trainer(&net);
        dist.sync_trainer(&mut trainer).unwrap();
        let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
        let first = dist
            .train_epoch(loader.try_epoch(0), &mut trainer, BATCH, |_| {})
            .unwrap();
        assert_eq!(first.steps, 4);
        assert!(!dist.stopping() && !dist.agree_to_stop().unwrap());
        let rank = comm.rank();
        let second = dist
            .train_epoch(loader.try_epoch(1), &mut trainer, BATCH, |s| {
                if rank == 1 && s.steps == 2 {
                    stop.store(true, Ordering::SeqCst);
                }
            })
            .unwrap();
        assert!(dist.stopping() && dist.agree_to_stop().unwrap());
        let progress = TrainingProgress {
            epoch: 1,
            batches: second.steps as u64,
            seed: SEED,
        };
        dist.save_training_state(&stopped, &trainer, progress)
            .unwrap();
        // once agreed, a loop ends before its first step
        let none = dist
            .train_epoch(loader.try_epoch(1), &mut trainer, BATCH, |_| {})
            .unwrap();
        assert_eq!((none.steps, none.samples), (0, 0));
        (second.steps, second.samples, trainer.num_update())
    });
    assert_eq!(done, vec![(3, 96, 7); 2], "every rank stopped after step 3");
    // resumed on 1 and 3 ranks: batch 4 of the second epoch, then the uninterrupted bits
    for ranks in [1, 3] {
        let save = dir.join(format!("resumed-{ranks}.state"));
        let runs = on_ranks(ranks, |comm| {
            let data = data();
            let net = fresh();
            let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
            let mut trainer = trainer(&net);
            dist.sync_trainer(&mut trainer).unwrap();
            let progress = dist.load_training_state(&stopped, &mut trainer).unwrap();
            assert_eq!((progress.epoch, progress.batches), (1, 3));
            let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
            let rest = kiln_dist::SkipBatches::new(loader.try_epoch(1), 3);
            let last = dist.train_epoch(rest, &mut trainer, BATCH, |_| {}).unwrap();
            assert_eq!((last.steps, last.samples), (1, 8));
            let progress = TrainingProgress {
                epoch: 2,
                batches: 0,
                seed: SEED,
            };
            dist.save_training_state(&save, &trainer, progress).unwrap();
            comm.barrier().unwrap();
            (bits(&net), std::fs::read(&save).unwrap())
        });
        for (rank, run) in runs.iter().enumerate() {
            assert_eq!(
                run.0, expected.0,
                "resumed on {ranks} ranks, rank {rank}: weights"
            );
            assert!(
                run.1 == expected.2,
                "resumed on {ranks} ranks: the checkpoint differs from the uninterrupted run's"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_flag_set_between_steps_on_one_rank_is_agreed_on_by_all() {
    let answers = on_ranks(3, |comm| {
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        let stop = flag();
        dist.stop_on(stop);
        let before = dist.agree_to_stop().unwrap();
        if comm.rank() == 2 {
            stop.store(true, Ordering::SeqCst);
        }
        (before, dist.agree_to_stop().unwrap(), dist.stopping())
    });
    assert_eq!(answers, vec![(false, true, true); 3]);
}
