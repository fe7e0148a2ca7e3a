//! [`ThreadComm`]: several ranks in one process, one thread each, for tests: the same
//! collectives as MPI's, through shared memory. A rank whose communicator is dropped
//! (its thread ended, or panicked) has left: the others' next collective is an error
//! naming it, as is a collective the others do not join in time.

use crate::comm::{check_counts, check_gather_counts, Communicator, Element};
use crate::error::{DistError, Result};
use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a rank contributed to one collective: its buffer, and its send counts for
/// `all_to_all`.
struct Posted<E> {
    data: Vec<E>,
    counts: Vec<usize>,
}

/// One collective in progress: the operation the first rank called, what each rank
/// posted, and how many have taken the result.
struct Round {
    op: &'static str,
    posted: Vec<Option<Arc<dyn Any + Send + Sync>>>,
    taken: usize,
}

struct Hub {
    size: usize,
    state: Mutex<HubState>,
    changed: Condvar,
}

struct HubState {
    /// Rounds by their sequence number (every rank counts its collectives).
    rounds: HashMap<u64, Round>,
    /// Per rank, why it left, once it has.
    left: Vec<Option<String>>,
}

/// One rank of a group of threads (see the [module docs](self)); made by [`world`].
pub struct ThreadComm {
    rank: usize,
    hub: Arc<Hub>,
    /// The sequence number of this rank's next collective.
    round: Cell<u64>,
    timeout: Duration,
}

/// The communicators of a group of `size` ranks, rank `r` at index `r`: move each into
/// its own thread. A collective that the others do not join within 30 seconds fails
/// (see [`ThreadComm::timeout`]).
pub fn world(size: usize) -> Vec<ThreadComm> {
    let hub = Arc::new(Hub {
        size,
        state: Mutex::new(HubState {
            rounds: HashMap::new(),
            left: vec![None; size],
        }),
        changed: Condvar::new(),
    });
    (0..size)
        .map(|rank| ThreadComm {
            rank,
            hub: Arc::clone(&hub),
            round: Cell::new(0),
            timeout: Duration::from_secs(30),
        })
        .collect()
}

impl ThreadComm {
    /// Waits at most `timeout` for the other ranks in each collective.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // a rank that panicked while holding the lock left the state consistent: every
        // change under it is a single insertion or removal
        self.hub.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts `mine` to this rank's next collective `op` and returns every rank's post,
    /// in rank order, once all are in.
    fn exchange<E: Element>(
        &self,
        op: &'static str,
        data: Vec<E>,
        counts: Vec<usize>,
    ) -> Result<Vec<Arc<dyn Any + Send + Sync>>> {
        let size = self.hub.size;
        let round = self.round.get();
        self.round.set(round + 1);
        let deadline = Instant::now() + self.timeout;
        let mut state = self.lock();
        let entry = state.rounds.entry(round).or_insert_with(|| Round {
            op,
            posted: vec![None; size],
            taken: 0,
        });
        if entry.op != op {
            return Err(DistError::comm(
                op,
                format!(
                    "rank {} called {op} where another rank called {} (collective {round})",
                    self.rank, entry.op
                ),
            ));
        }
        entry.posted[self.rank] = Some(Arc::new(Posted { data, counts }));
        self.hub.changed.notify_all();
        loop {
            let entry = &state.rounds[&round];
            if entry.posted.iter().all(Option::is_some) {
                break;
            }
            let missing = (0..size).find(|&q| entry.posted[q].is_none());
            if let Some(q) = missing {
                if let Some(why) = &state.left[q] {
                    return Err(DistError::comm(op, format!("rank {q} left: {why}")));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DistError::comm(
                    op,
                    format!(
                        "rank {} waited {:?} for rank {} to join",
                        self.rank,
                        self.timeout,
                        missing.unwrap_or(0)
                    ),
                ));
            }
            state = self
                .hub
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let entry = state
            .rounds
            .get_mut(&round)
            .expect("the round is in the table");
        let posts = entry.posted.iter().flatten().cloned().collect();
        entry.taken += 1;
        if entry.taken == size {
            state.rounds.remove(&round);
        }
        Ok(posts)
    }
}

/// The buffer rank `q` posted, as `E`.
fn posted<'p, E: Element>(
    op: &'static str,
    q: usize,
    p: &'p Arc<dyn Any + Send + Sync>,
) -> Result<&'p Posted<E>> {
    p.downcast_ref::<Posted<E>>().ok_or_else(|| {
        DistError::comm(
            op,
            format!("rank {q} passed another element type than {}", E::NAME),
        )
    })
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.hub.size
    }

    fn barrier(&self) -> Result<()> {
        self.exchange::<u8>("barrier", Vec::new(), Vec::new())?;
        Ok(())
    }

    fn broadcast<E: Element>(&self, root: usize, data: Vec<E>) -> Result<Vec<E>> {
        if root >= self.size() {
            return Err(DistError::invalid(
                "broadcast",
                format!("root {root} of {} ranks", self.size()),
            ));
        }
        let len = data.len();
        let posts = self.exchange("broadcast", data, Vec::new())?;
        let root_data = &posted::<E>("broadcast", root, &posts[root])?.data;
        if root_data.len() != len {
            return Err(DistError::comm(
                "broadcast",
                format!(
                    "rank {root} sent {} elements, rank {} expected {len}",
                    root_data.len(),
                    self.rank
                ),
            ));
        }
        Ok(root_data.clone())
    }

    fn allreduce_sum<E: Element>(&self, data: Vec<E>) -> Result<Vec<E>> {
        let len = data.len();
        let posts = self.exchange("allreduce_sum", data, Vec::new())?;
        let mut sum: Vec<E> = Vec::new();
        for (q, p) in posts.iter().enumerate() {
            let d = &posted::<E>("allreduce_sum", q, p)?.data;
            if d.len() != len {
                return Err(DistError::comm(
                    "allreduce_sum",
                    format!(
                        "rank {q} passed {} elements, rank {} {len}",
                        d.len(),
                        self.rank
                    ),
                ));
            }
            // in rank order
            match q {
                0 => sum = d.clone(),
                _ => sum.iter_mut().zip(d).for_each(|(s, &v)| *s = s.add(v)),
            }
        }
        Ok(sum)
    }

    fn all_gather<E: Element>(&self, data: Vec<E>, counts: &[usize]) -> Result<Vec<E>> {
        check_gather_counts(self.size(), self.rank, counts, data.len())?;
        let posts = self.exchange("all_gather", data, Vec::new())?;
        let mut out = Vec::with_capacity(counts.iter().sum());
        for (q, p) in posts.iter().enumerate() {
            let d = &posted::<E>("all_gather", q, p)?.data;
            if d.len() != counts[q] {
                return Err(DistError::comm(
                    "all_gather",
                    format!(
                        "rank {q} sent {} elements, rank {} expected {}",
                        d.len(),
                        self.rank,
                        counts[q]
                    ),
                ));
            }
            out.extend_from_slice(d);
        }
        Ok(out)
    }

    fn all_to_all<E: Element>(
        &self,
        data: Vec<E>,
        send: &[usize],
        recv: &[usize],
    ) -> Result<Vec<E>> {
        let size = self.size();
        check_counts("all_to_all", size, send, data.len())?;
        let total = recv.iter().try_fold(0usize, |a, &c| a.checked_add(c));
        check_counts("all_to_all", size, recv, total.unwrap_or(usize::MAX))?;
        let posts = self.exchange("all_to_all", data, send.to_vec())?;
        let mut out = Vec::with_capacity(total.unwrap_or(0));
        for (q, p) in posts.iter().enumerate() {
            let Posted { data, counts } = posted::<E>("all_to_all", q, p)?;
            let start: usize = counts[..self.rank].iter().sum();
            let n = counts[self.rank];
            if n != recv[q] {
                return Err(DistError::comm(
                    "all_to_all",
                    format!(
                        "rank {q} sent {n} elements, rank {} expected {}",
                        self.rank, recv[q]
                    ),
                ));
            }
            out.extend_from_slice(&data[start..start + n]);
        }
        Ok(out)
    }
}

impl Drop for ThreadComm {
    fn drop(&mut self) {
        let why = match std::thread::panicking() {
            true => "its thread panicked",
            false => "its communicator was dropped",
        };
        let mut state = self.lock();
        state.left[self.rank] = Some(why.to_string());
        self.hub.changed.notify_all();
    }
}
