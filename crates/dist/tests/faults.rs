//! What goes wrong across ranks becomes every rank's error, never a hang: a rank whose
//! step fails stops every rank at that step with its message, a rank that leaves or
//! hangs is named, and ranks started with different settings are refused at the start.
//! Also the in-process communicator's collectives themselves.

mod common;

use common::{data, fresh, make, on_ranks, trainer, BATCH, SEED, SHARDS};
use kiln_dist::{
    agree, check_same, Communicator, DistConfig, DistDataParallel, DistError, PartSource,
};
use kiln_nn::data::{Batch, DataLoader, Dataset, EpochKey, ImageDataset, Label, Sample};
use kiln_nn::{BlockExt, Dense, Init, NnError, Sequential};
use kiln_tensor::Tensor;
use std::ops::Range;
use std::time::{Duration, Instant};

#[test]
fn thread_ranks_run_mpis_collectives() {
    let results = on_ranks(3, |c| {
        let r = c.rank() as u64;
        // rank r sends r + 1 values
        let gathered = c.all_gather(vec![r; r as usize + 1], &[1, 2, 3]).unwrap();
        // rank r sends 10r + q to rank q, q + 1 times
        let send: Vec<u64> = (0..3)
            .flat_map(|q| vec![10 * r + q; q as usize + 1])
            .collect();
        let recv = vec![r as usize + 1; 3];
        let exchanged = c.all_to_all(send, &[1, 2, 3], &recv).unwrap();
        let sum = c.allreduce_sum(vec![0.1f32 * (r + 1) as f32]).unwrap();
        let root = c.broadcast(2, vec![r as f64; 2]).unwrap();
        c.barrier().unwrap();
        (gathered, exchanged, sum[0], root)
    });
    for (r, (gathered, exchanged, sum, root)) in results.into_iter().enumerate() {
        assert_eq!(gathered, [0, 1, 1, 2, 2, 2]);
        let expected: Vec<u64> = (0..3)
            .flat_map(|q| vec![10 * q + r as u64; r + 1])
            .collect();
        assert_eq!(exchanged, expected, "rank {r}");
        // in rank order: (0.1 + 0.2) + 0.3
        assert_eq!(sum.to_bits(), ((0.1f32 + 0.2f32) + 0.3f32).to_bits());
        assert_eq!(root, [2.0, 2.0]);
    }
}

#[test]
fn ranks_that_call_different_collectives_or_types_are_told() {
    let errors = on_ranks(2, |c| match c.rank() {
        0 => c.barrier().unwrap_err().to_string(),
        _ => c.broadcast(0, vec![1u8]).unwrap_err().to_string(),
    });
    assert!(
        errors.iter().any(
            |e| e.contains("called broadcast where another rank called barrier")
                || e.contains("called barrier where another rank called broadcast")
        ),
        "{errors:?}"
    );
    let errors = on_ranks(2, |c| match c.rank() {
        0 => c.allreduce_sum(vec![1.0f32]).map(|_| ()),
        _ => c.allreduce_sum(vec![1.0f64]).map(|_| ()),
    });
    let text = format!("{errors:?}");
    assert!(text.contains("another element type"), "{text}");
}

#[test]
fn a_rank_that_leaves_or_hangs_is_named_not_waited_for() {
    let start = Instant::now();
    let errors = on_ranks(3, |c| {
        let c = c.timeout(Duration::from_secs(20));
        c.barrier().unwrap();
        if c.rank() == 1 {
            return String::new(); // the thread ends: its communicator is dropped
        }
        c.barrier().unwrap_err().to_string()
    });
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "nobody waited for the timeout"
    );
    for r in [0, 2] {
        assert!(errors[r].contains("rank 1 left"), "rank {r}: {}", errors[r]);
    }
    let start = Instant::now();
    let errors = on_ranks(2, |c| {
        let c = c.timeout(Duration::from_millis(300));
        if c.rank() == 1 {
            std::thread::sleep(Duration::from_secs(2)); // hangs
            return String::new();
        }
        c.barrier().unwrap_err().to_string()
    });
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        errors[0].contains("waited") && errors[0].contains("for rank 1"),
        "{}",
        errors[0]
    );
}

/// The batches of a loader, with the pixels of `rank`'s part of batch `step` made NaN.
struct Poisoned<S> {
    inner: S,
    rank: usize,
    me: usize,
    step: usize,
    seen: usize,
}

impl<S: PartSource<f32>> PartSource<f32> for Poisoned<S> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<f32>>)> {
        let (n, mut batch) = self.inner.next_part(part)?;
        self.seen += 1;
        if self.seen == self.step && self.me == self.rank {
            if let Ok(b) = &mut batch {
                b.images.data_mut()[0] = f32::NAN;
            }
        }
        Some((n, batch))
    }
}

#[test]
fn a_step_that_fails_on_one_rank_stops_every_rank_at_that_step() {
    let data = data();
    let errors = on_ranks(3, |comm| {
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        let mut trainer = trainer(&net);
        let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
        let batches = Poisoned {
            inner: loader.epoch(0),
            rank: 1,
            me: comm.rank(),
            step: 2,
            seen: 0,
        };
        let err = dist
            .train_epoch(batches, &mut trainer, BATCH, |_| {})
            .unwrap_err();
        // every rank took the first step, none the second
        assert_eq!(trainer.num_update(), 1);
        // and the ranks are still in step: the next collective works
        dist.verify_in_sync(&trainer).unwrap();
        err
    });
    assert!(
        matches!(&errors[1], DistError::Nn(NnError::Invalid { message, .. })
            if message == "batch 2 has NaN or infinite pixels"),
        "rank 1: {}",
        errors[1]
    );
    for r in [0, 2] {
        assert_eq!(
            errors[r].to_string(),
            "rank 1 failed: train_epoch: batch 2 has NaN or infinite pixels",
            "rank {r}"
        );
    }
}

/// The test data with sample `bad` unreadable (as if its bytes were corrupt).
struct Corrupt {
    inner: ImageDataset,
    bad: usize,
}

impl Dataset for Corrupt {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn name(&self) -> String {
        "Corrupt".into()
    }

    fn sample(&self, index: usize, key: EpochKey) -> kiln_nn::Result<(Sample<'_>, Label)> {
        if index == self.bad {
            return Err(NnError::invalid(
                "Corrupt",
                "the record's bytes are damaged",
            ));
        }
        self.inner.sample(index, key)
    }
}

#[test]
fn a_sample_one_rank_cannot_read_mid_epoch_stops_every_rank_with_its_error() {
    // sample 77 is read by the one rank whose shards hold it, in some batch after the first
    let results = on_ranks(3, |comm| {
        let data = Corrupt {
            inner: data(),
            bad: 77,
        };
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        let mut trainer = trainer(&net);
        let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
        let err = dist
            .train_epoch(loader.try_epoch(0), &mut trainer, BATCH, |_| {})
            .unwrap_err();
        dist.verify_in_sync(&trainer).unwrap();
        (err.to_string(), trainer.num_update())
    });
    let own: Vec<usize> = (0..3)
        .filter(|&r| !results[r].0.starts_with("rank "))
        .collect();
    assert_eq!(own.len(), 1, "one rank read sample 77: {results:?}");
    let (reader, (text, steps)) = (own[0], &results[own[0]]);
    assert!(
        text.contains("Corrupt sample 77") && text.contains("the record's bytes are damaged"),
        "{text}"
    );
    // every rank stopped at the same step, with the reader's message
    for (r, (e, n)) in results.iter().enumerate() {
        assert_eq!(n, steps, "rank {r} took another number of steps");
        if r != reader {
            assert_eq!(e, &format!("rank {reader} failed: {text}"), "rank {r}");
        }
    }
}

#[test]
fn ranks_whose_batches_run_out_at_different_steps_are_told_not_left_waiting() {
    let data = data();
    let start = Instant::now();
    let errors = on_ranks(2, |comm| {
        let net = fresh();
        let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS)).unwrap();
        let mut trainer = trainer(&net);
        let mut loader = DataLoader::new(&data, BATCH).unwrap().shuffle(SEED);
        // rank 1 has one batch fewer (104 samples: 4 batches)
        let batches = loader.try_epoch::<f32>(0).take(4 - comm.rank());
        let taken = kiln_dist::WholeBatches(batches.map(Result::unwrap));
        let err = dist
            .train_epoch(taken, &mut trainer, BATCH, |_| {})
            .unwrap_err();
        (err.to_string(), trainer.num_update())
    });
    assert!(start.elapsed() < Duration::from_secs(10));
    for (e, steps) in &errors {
        assert_eq!(
            e,
            "exchange: rank 1's batches ran out before rank 0's: every rank must read as many \
             batches of the same sizes (the same data and batch size)"
        );
        assert_eq!(*steps, 3);
    }
}

#[test]
fn a_rank_that_cannot_load_its_data_stops_every_rank_with_its_message() {
    let results = on_ranks(3, |c| {
        let loaded = match c.rank() {
            2 => Err(NnError::invalid(
                "FashionMnist",
                "train-images-idx3-ubyte is truncated",
            )),
            _ => Ok(7),
        };
        agree(&c, "loading Fashion-MNIST", loaded).map_err(|e| e.to_string())
    });
    for r in [0, 1] {
        assert_eq!(
            results[r].as_ref().unwrap_err(),
            "rank 2 failed: loading Fashion-MNIST: FashionMnist: train-images-idx3-ubyte is truncated"
        );
    }
    assert_eq!(
        results[2].as_ref().unwrap_err(),
        "FashionMnist: train-images-idx3-ubyte is truncated"
    );
}

#[test]
fn ranks_started_with_different_settings_are_refused_at_the_start() {
    // shard counts
    let errors = on_ranks(3, |comm| {
        let net = fresh();
        let shards = if comm.rank() == 2 { 4 } else { SHARDS };
        DistDataParallel::new(&comm, &net, make, DistConfig::new(shards))
            .err()
            .unwrap()
            .to_string()
    });
    for e in &errors {
        assert_eq!(
            e,
            "the ranks run different configurations: the shard count is 5 on rank 0 but 4 on \
             rank 2; start every rank with the same settings"
        );
    }
    // networks
    let errors = on_ranks(2, |comm| {
        let other = || Sequential::<f32>::new().add(Dense::new(10));
        let result = match comm.rank() {
            0 => DistDataParallel::new(&comm, &fresh(), make, DistConfig::new(SHARDS)).map(|_| ()),
            _ => {
                let net = other();
                net.initialize(&Init::xavier(), SEED).unwrap();
                net.predict(&Tensor::zeros([1, 1, 6, 6])).unwrap();
                DistDataParallel::new(&comm, &net, other, DistConfig::new(SHARDS)).map(|_| ())
            }
        };
        result.unwrap_err().to_string()
    });
    assert!(
        errors[0].contains("the network is 8 parameters"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("but 2 parameters"), "{}", errors[0]);
    // the example's own settings
    let errors = on_ranks(2, |comm| {
        let batch = [256, 128][comm.rank()];
        check_same(&comm, &[("the seed", &3), ("the batch size", &batch)])
            .unwrap_err()
            .to_string()
    });
    assert!(errors[1].contains("the batch size is 256 on rank 0 but 128 on rank 1"));
    // a network whose shapes are still deferred is refused on every rank
    let errors = on_ranks(2, |comm| {
        let net = make();
        net.initialize(&Init::xavier(), SEED).unwrap();
        DistDataParallel::new(&comm, &net, make, DistConfig::new(SHARDS))
            .err()
            .unwrap()
            .to_string()
    });
    assert!(errors[0].contains("has no values yet"), "{}", errors[0]);
    assert!(errors[1].contains("has no values yet"), "{}", errors[1]);
    assert_eq!(fresh().collect_params().len(), 8);
}
