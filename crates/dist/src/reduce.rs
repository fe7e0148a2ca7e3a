//! The sum of a batch's shard gradients across ranks, in two ways.
//!
//! [`Reduction::ShardOrder`]: the parameters' gradients and states, laid end to end, form
//! one vector per shard; each rank owns a slice of it and receives that slice of every
//! shard (all-to-all), adds them in shard order exactly as `DataParallel` adds whole
//! shards (the first shard's values are the sum, each next shard's are added; a shard
//! whose backward did not reach a parameter is skipped for it), and the owners' sums are
//! gathered back (all-gather). The rank that holds shard 0 adds its own run of shards
//! first and sends that one partial sum: the same additions, in the same order. The
//! result does not depend on the number of ranks, nor on how the vector is cut into the
//! owners' slices, so the slices are cut to even out what the ranks receive
//! (`owned_slices`): with 2 ranks and 8 shards, rank 1 (whose 4 shards must each be
//! sent) owns the whole vector, and the traffic is that of a reduce and a broadcast.
//!
//! [`Reduction::Allreduce`]: each rank adds its own shards in order, then one
//! `allreduce_sum` adds the ranks' sums in the MPI library's order: less traffic, but
//! reproducible only for a fixed number of ranks.

use crate::comm::{Communicator, Element};
use crate::error::{DistError, Result};
use kiln_nn::ShardGradient;
use kiln_tensor::Float;
use std::ops::Range;

/// How the shards' gradients are summed across ranks (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Owners of slices sum every shard's slice in shard order: bit-identical to a
    /// one-process `DataParallel` run with the same shards, for any number of ranks.
    #[default]
    ShardOrder,
    /// Each rank sums its shards, then MPI's allreduce sums the ranks: the least traffic,
    /// reproducible for a fixed number of ranks only (the library picks the order of the
    /// additions by the rank count and message size).
    Allreduce,
}

impl Reduction {
    /// The reduction's name, as the examples' `--reduction` flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::ShardOrder => "shard-order",
            Reduction::Allreduce => "allreduce",
        }
    }

    /// The reduction called `name` (`shard-order` or `allreduce`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "shard-order" => Some(Reduction::ShardOrder),
            "allreduce" => Some(Reduction::Allreduce),
            _ => None,
        }
    }
}

/// What a piece of the flat vector holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The gradient of parameter `i` (of `collect_params`).
    Grad(usize),
    /// The `k`-th state parameter's value.
    State(usize),
}

/// The parameters' gradients and states laid end to end: `(slot, range)` in order.
pub(crate) struct Flat {
    pub segments: Vec<(Slot, Range<usize>)>,
    pub len: usize,
}

impl Flat {
    /// The layout of `sizes`, each a parameter's element count and whether it is state.
    pub fn new(sizes: &[(usize, bool)]) -> Self {
        let (mut segments, mut at, mut k) = (Vec::new(), 0, 0);
        for (i, &(n, state)) in sizes.iter().enumerate() {
            let slot = if state {
                k += 1;
                Slot::State(k - 1)
            } else {
                Slot::Grad(i)
            };
            segments.push((slot, at..at + n));
            at += n;
        }
        Flat { segments, len: at }
    }

    /// Adds contributions `0..count` in order into `out`, elements `range` of the flat
    /// vector: per piece, the first contribution that has it is copied, each next one
    /// added. `get(c, slot, r, at)` is contribution `c`'s values `r` (within the piece)
    /// of `slot`, which are elements `at..at + r.len()` of the flat vector, or `None` if
    /// it does not have them. Pieces no contribution has are left as they are in `out`.
    pub fn fold<'a, T: Float>(
        &self,
        range: Range<usize>,
        count: usize,
        get: impl Fn(usize, Slot, Range<usize>, usize) -> Option<&'a [T]>,
        out: &mut [T],
    ) {
        debug_assert_eq!(out.len(), range.len());
        for (slot, piece) in &self.segments {
            let (lo, hi) = (piece.start.max(range.start), piece.end.min(range.end));
            if lo >= hi {
                continue;
            }
            let within = lo - piece.start..hi - piece.start;
            let dst = &mut out[lo - range.start..hi - range.start];
            let mut first = true;
            for c in 0..count {
                let Some(src) = get(c, *slot, within.clone(), lo) else {
                    continue;
                };
                if first {
                    dst.copy_from_slice(src);
                    first = false;
                } else {
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                }
            }
        }
    }

    /// Values `r` of `slot` in one shard's results.
    pub fn of_shard<T: Float>(
        shard: &ShardGradient<T>,
        slot: Slot,
        r: Range<usize>,
    ) -> Option<&[T]> {
        match slot {
            Slot::Grad(i) => shard.grads[i].as_ref().map(|g| &g.data()[r]),
            Slot::State(k) => Some(&shard.states[k].data()[r]),
        }
    }
}

/// Whether contribution `c` (its presence per parameter) has `slot`.
fn has(present: &[bool], slot: Slot) -> bool {
    match slot {
        Slot::Grad(i) => present[i],
        Slot::State(_) => true,
    }
}

/// The sum in shard order, on every rank, of the shards' flat vectors: `mine` are this
/// rank's shards, `held[q]` the shards rank `q` holds (in order, covering `0..count`),
/// `present[s]` which parameters shard `s`'s backward reached.
pub(crate) fn shard_order<T: Float + Element, C: Communicator>(
    comm: &C,
    flat: &Flat,
    mine: &[ShardGradient<T>],
    held: &[Range<usize>],
    present: &[Vec<bool>],
) -> Result<Vec<T>> {
    let (rank, ranks) = (comm.rank(), comm.size());
    let params = present.first().map_or(0, Vec::len);
    // what each rank sends: one partial sum from the holder of shard 0, else its shards
    let folded = |q: usize| held[q].start == 0 && !held[q].is_empty();
    let contributions: Vec<(usize, Vec<bool>)> = (0..ranks)
        .flat_map(|q| {
            let shards = held[q].clone();
            let list: Vec<Vec<bool>> = match folded(q) {
                true => vec![(0..params)
                    .map(|i| shards.clone().any(|s| present[s][i]))
                    .collect()],
                false => shards.map(|s| present[s].clone()).collect(),
            };
            list.into_iter().map(move |p| (q, p))
        })
        .collect();
    let sent_by = |q: usize| contributions.iter().filter(|(r, _)| *r == q).count();

    let prefix = match folded(rank) {
        true => {
            let mut sum = vec![T::ZERO; flat.len];
            flat.fold(
                0..flat.len,
                mine.len(),
                |c, slot, r, _| Flat::of_shard(&mine[c], slot, r),
                &mut sum,
            );
            Some(sum)
        }
        false => None,
    };
    let prefix = match (prefix, ranks) {
        // one rank: the partial sum is the sum
        (Some(sum), 1) => return Ok(sum),
        (prefix, _) => prefix,
    };
    let counts: Vec<usize> = (0..ranks).map(sent_by).collect();
    let slices = owned_slices(flat.len, &counts);
    // each other owner gets this rank's contributions of its slice; this rank's own
    // are read where they are
    let mut send = Vec::new();
    let mut send_counts = vec![0; ranks];
    for (q, slice) in slices.iter().enumerate().filter(|&(q, _)| q != rank) {
        match &prefix {
            Some(sum) => send.extend_from_slice(&sum[slice.clone()]),
            None => {
                for shard in mine {
                    copy_range(flat, shard, slice.clone(), &mut send);
                }
            }
        }
        send_counts[q] = counts[rank] * slice.len();
    }
    let own = slices[rank].clone();
    let recv_counts: Vec<usize> = (0..ranks)
        .map(|q| if q == rank { 0 } else { counts[q] * own.len() })
        .collect();
    let received = comm.all_to_all(send, &send_counts, &recv_counts)?;

    // the contributions in order: those of the ranks before this one, its own, then
    // those of the ranks after it (`received` holds the others', in that order)
    let first_own: usize = counts[..rank].iter().sum();
    let width = own.len();
    let mut sum = vec![T::ZERO; width];
    flat.fold(
        own.clone(),
        contributions.len(),
        |c, slot, r, at| {
            if !has(&contributions[c].1, slot) {
                return None;
            }
            if (first_own..first_own + counts[rank]).contains(&c) {
                return match &prefix {
                    Some(p) => Some(&p[at..at + r.len()]),
                    None => Flat::of_shard(&mine[c - first_own], slot, r),
                };
            }
            let k = if c < first_own { c } else { c - counts[rank] };
            let at = k * width + at - own.start;
            Some(&received[at..at + r.len()])
        },
        &mut sum,
    );
    drop((received, prefix));
    let counts: Vec<usize> = slices.iter().map(Range::len).collect();
    let all = comm.all_gather(sum, &counts)?;
    check_len("all_gather", &all, flat.len)?;
    Ok(all)
}

/// The slices of a vector of `len` that the ranks own, in rank order, when rank `q` sends
/// `counts[q]` contributions of every slice to its owner: owner `o` receives
/// `(C - counts[o])` contributions of its slice and, in the all-gather, the `len - |o|`
/// elements it does not own, where `C` is the sum of the counts; that is `len + k_o |o|`
/// with `k_o = C - counts[o] - 1`. The slices are sized as `1 / k_o` so that the ranks
/// receive alike; owners with `k_o = 0` (for whom owning costs nothing more) share the
/// whole vector. Integer arithmetic only: every rank cuts the same slices.
pub(crate) fn owned_slices(len: usize, counts: &[usize]) -> Vec<Range<usize>> {
    let total: usize = counts.iter().sum();
    let extra: Vec<usize> = counts
        .iter()
        .map(|&c| total.saturating_sub(c + 1))
        .collect();
    let free = extra.iter().filter(|&&k| k == 0).count();
    // each owner's weight, in units of 2^-20
    let weights: Vec<u128> = extra
        .iter()
        .map(|&k| match (free, k) {
            (0, k) => (1u128 << 20) / k as u128,
            (_, 0) => 1,
            _ => 0,
        })
        .collect();
    let sum: u128 = weights.iter().sum::<u128>().max(1);
    let mut at = 0u128;
    let mut slices = Vec::with_capacity(counts.len());
    for w in weights {
        let start = (len as u128 * at / sum) as usize;
        at += w;
        slices.push(start..(len as u128 * at / sum) as usize);
    }
    slices
}

/// Each rank's shards added in order, then the ranks' sums added by `allreduce_sum`.
pub(crate) fn allreduce<T: Float + Element, C: Communicator>(
    comm: &C,
    flat: &Flat,
    mine: &[ShardGradient<T>],
) -> Result<Vec<T>> {
    let mut sum = vec![T::ZERO; flat.len];
    flat.fold(
        0..flat.len,
        mine.len(),
        |c, slot, r, _| Flat::of_shard(&mine[c], slot, r),
        &mut sum,
    );
    let all = comm.allreduce_sum(sum)?;
    check_len("allreduce_sum", &all, flat.len)?;
    Ok(all)
}

/// Appends elements `range` of `shard`'s flat vector to `out`: zeros for a gradient
/// its backward did not reach.
fn copy_range<T: Float>(
    flat: &Flat,
    shard: &ShardGradient<T>,
    range: Range<usize>,
    out: &mut Vec<T>,
) {
    for (slot, piece) in &flat.segments {
        let (lo, hi) = (piece.start.max(range.start), piece.end.min(range.end));
        if lo >= hi {
            continue;
        }
        match Flat::of_shard(shard, *slot, lo - piece.start..hi - piece.start) {
            Some(values) => out.extend_from_slice(values),
            None => out.resize(out.len() + (hi - lo), T::ZERO),
        }
    }
}

fn check_len<T>(op: &'static str, v: &[T], len: usize) -> Result<()> {
    if v.len() != len {
        return Err(DistError::comm(
            op,
            format!("returned {} elements, expected {len}", v.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads;
    use kiln_nn::train::BatchOutcome;
    use kiln_tensor::rand::{rngs::StdRng, SeedableRng};
    use kiln_tensor::Tensor;

    /// Parameter sizes: three gradients and a state, the second gradient missing from
    /// some shards (a backward that did not reach it).
    const SIZES: [(usize, bool); 4] = [(7, false), (5, false), (3, true), (11, false)];

    fn shard(s: usize) -> ShardGradient<f32> {
        let mut rng = StdRng::seed_from_u64(s as u64);
        let t =
            |n: usize, rng: &mut StdRng| Tensor::<f32>::rand_normal([n], 0.0, 1.0, rng).unwrap();
        let grads = SIZES
            .iter()
            .enumerate()
            .map(|(i, &(n, state))| {
                let g = t(n, &mut rng);
                // shards 1, 4, 7 lack gradient 1
                let lacks = i == 1 && s % 3 == 1;
                (!state && !lacks).then_some(g)
            })
            .collect();
        ShardGradient {
            outcome: BatchOutcome {
                loss: 0.0,
                scores: Tensor::zeros([0, 1]),
            },
            grads,
            states: vec![t(3, &mut rng)],
        }
    }

    /// DataParallel's sum: the first shard's values, then each next one added.
    fn in_order(shards: &[ShardGradient<f32>]) -> Vec<u32> {
        let flat = Flat::new(&SIZES);
        let mut sum = vec![0.0; flat.len];
        flat.fold(
            0..flat.len,
            shards.len(),
            |c, slot, r, _| Flat::of_shard(&shards[c], slot, r),
            &mut sum,
        );
        sum.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn the_fold_adds_in_order_and_skips_what_a_shard_lacks() {
        let shards: Vec<_> = (0..3).map(shard).collect();
        let flat = Flat::new(&SIZES);
        let mut sum = vec![0.0f32; flat.len];
        flat.fold(
            0..flat.len,
            3,
            |c, slot, r, _| Flat::of_shard(&shards[c], slot, r),
            &mut sum,
        );
        // element 0 of gradient 1 (at 7): shards 0 and 2 only (shard 1 lacks it)
        let g = |s: usize, i: usize| shards[s].grads[i].as_ref().unwrap().data()[0];
        assert_eq!(sum[7].to_bits(), (g(0, 1) + g(2, 1)).to_bits());
        // element 0 of gradient 0: ((g0 + g1) + g2), in that order
        assert_eq!(sum[0].to_bits(), ((g(0, 0) + g(1, 0)) + g(2, 0)).to_bits());
        // the state (at 12) is summed too (divided by the count later)
        let st = |s: usize| shards[s].states[0].data()[0];
        assert_eq!(sum[12].to_bits(), ((st(0) + st(1)) + st(2)).to_bits());
    }

    #[test]
    fn shard_order_gives_the_one_process_sum_on_any_number_of_ranks() {
        for count in [1usize, 2, 5, 8] {
            let all: Vec<_> = (0..count).map(shard).collect();
            let expected = in_order(&all);
            let present: Vec<Vec<bool>> = all
                .iter()
                .map(|s| s.grads.iter().map(Option::is_some).collect())
                .collect();
            for ranks in 1..=4 {
                let results: Vec<Vec<u32>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = threads::world(ranks)
                        .into_iter()
                        .map(|comm| {
                            let present = present.clone();
                            scope.spawn(move || {
                                let layout = crate::Layout::new(count, count, ranks);
                                let held: Vec<_> =
                                    (0..ranks).map(|q| layout.shards_of(q)).collect();
                                let mine: Vec<_> = held[comm.rank()].clone().map(shard).collect();
                                let flat = Flat::new(&SIZES);
                                let sum =
                                    shard_order(&comm, &flat, &mine, &held, &present).unwrap();
                                sum.iter().map(|v| v.to_bits()).collect()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                for (rank, got) in results.iter().enumerate() {
                    assert_eq!(got, &expected, "{count} shards, {ranks} ranks, rank {rank}");
                }
            }
        }
    }

    #[test]
    fn the_owners_slices_even_out_what_the_ranks_receive() {
        // 2 ranks, 8 shards: rank 0 sends one partial sum, rank 1 its 4 shards; owning
        // costs rank 1 nothing more (k = 5 - 4 - 1 = 0), rank 0 three contributions per
        // element (k = 3): rank 1 owns it all
        assert_eq!(owned_slices(1000, &[1, 4]), [0..0, 0..1000]);
        // 3 ranks, 8 shards in runs of 3, 3, 2: counts 1, 3, 2, so k = 4, 2, 3 and the
        // slices go as 1/4 : 1/2 : 1/3 = 3 : 6 : 4 (of 1300: 300, 600, 400)
        assert_eq!(
            owned_slices(1300, &[1, 3, 2]),
            [0..300, 300..900, 900..1300]
        );
        // 2 ranks of one shard each: k = 0 for both, an even cut
        assert_eq!(owned_slices(11, &[1, 1]), [0..5, 5..11]);
        // one rank; and a rank with no shards (k = C - 1) owns the least
        assert_eq!(
            owned_slices(7, &[1]),
            std::iter::once(0..7).collect::<Vec<_>>()
        );
        let three = owned_slices(100, &[1, 1, 0]);
        assert_eq!(three, [0..50, 50..100, 100..100]);
        // the slices always cover the vector in order
        for counts in [&[1, 4, 3][..], &[1, 2, 2, 2], &[1, 0, 0, 5]] {
            let s = owned_slices(12345, counts);
            assert_eq!(s.first().unwrap().start, 0);
            assert_eq!(s.last().unwrap().end, 12345);
            assert!(
                s.windows(2).all(|w| w[0].end == w[1].start),
                "{counts:?}: {s:?}"
            );
        }
    }

    #[test]
    fn allreduce_sums_the_ranks_sums() {
        let all: Vec<_> = (0..4).map(shard).collect();
        let results: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = threads::world(2)
                .into_iter()
                .map(|comm| {
                    scope.spawn(move || {
                        let mine: Vec<_> =
                            (2 * comm.rank()..2 * comm.rank() + 2).map(shard).collect();
                        allreduce(&comm, &Flat::new(&SIZES), &mine).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results[0], results[1]);
        let g = |s: usize| all[s].grads[0].as_ref().unwrap().data()[0];
        // (g0 + g1) + (g2 + g3): another order than the shards'
        assert_eq!(
            results[0][0].to_bits(),
            ((g(0) + g(1)) + (g(2) + g(3))).to_bits()
        );
        assert_eq!(
            Reduction::from_name("allreduce"),
            Some(Reduction::Allreduce)
        );
        assert_eq!(
            Reduction::from_name(Reduction::ShardOrder.name()),
            Some(Reduction::ShardOrder)
        );
    }
}
