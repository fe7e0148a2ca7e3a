//! Who computes what: [`Layout`] cuts a batch into shards as `DataParallel` does and deals
//! them out to the ranks in contiguous runs; [`slice_of`] cuts a vector of gradients into
//! the slices whose sums each rank owns.

use std::ops::Range;

/// The shards of one batch and the ranks that compute them. A batch of `n` is cut into
/// shards of ⌈n / S⌉ images (the last may have fewer), as
/// [`kiln_nn::DataParallel::gradient`] cuts it, so there are `count` = ⌈n / size⌉ ≤ S of
/// them; rank `r` of `R` computes shards ⌊count·r / R⌋ up to ⌊count·(r + 1) / R⌋, so that
/// the ranks in order hold the shards in order.
///
/// ```
/// use kiln_dist::Layout;
/// // 10 images in 8 shards: shards of 2, so 5 of them; 2 ranks take 2 and 3
/// let layout = Layout::new(10, 8, 2);
/// assert_eq!((layout.shard_size(), layout.count()), (2, 5));
/// assert_eq!((layout.shards_of(0), layout.shards_of(1)), (0..2, 2..5));
/// assert_eq!(layout.samples_of(1), 4..10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    n: usize,
    size: usize,
    count: usize,
    ranks: usize,
}

impl Layout {
    /// The layout of a batch of `n` samples in `shards` shards over `ranks` ranks (each
    /// at least 1; a batch of 0 has no shards).
    pub fn new(n: usize, shards: usize, ranks: usize) -> Self {
        let size = n.div_ceil(shards.max(1)).max(1);
        Layout {
            n,
            size,
            count: n.div_ceil(size),
            ranks: ranks.max(1),
        }
    }

    /// The number of samples in the batch.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True for a batch of no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Samples per shard (the last shard may have fewer).
    pub fn shard_size(&self) -> usize {
        self.size
    }

    /// The number of shards.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The shards rank `rank` computes (empty when there are fewer shards than ranks).
    pub fn shards_of(&self, rank: usize) -> Range<usize> {
        let at = |r: usize| (self.count as u128 * r as u128 / self.ranks as u128) as usize;
        at(rank)..at(rank + 1)
    }

    /// The samples of the batch rank `rank` computes: those of its shards.
    pub fn samples_of(&self, rank: usize) -> Range<usize> {
        let shards = self.shards_of(rank);
        (shards.start * self.size).min(self.n)..(shards.end * self.size).min(self.n)
    }
}

/// The elements `[lo, hi)` of a vector of `len` whose sum rank `rank` of `ranks` owns:
/// the vector cut into `ranks` contiguous slices as equal as may be.
pub fn slice_of(len: usize, rank: usize, ranks: usize) -> Range<usize> {
    let at = |r: usize| (len as u128 * r as u128 / ranks.max(1) as u128) as usize;
    at(rank)..at(rank + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranks_hold_every_shard_once_in_order() {
        for n in [1, 2, 7, 10, 37, 256, 300] {
            for shards in [1, 2, 3, 8, 16] {
                for ranks in [1, 2, 3, 5] {
                    let l = Layout::new(n, shards, ranks);
                    // DataParallel's cut
                    assert_eq!(l.shard_size(), n.div_ceil(shards));
                    assert_eq!(l.count(), n.div_ceil(n.div_ceil(shards)));
                    assert!(l.count() <= shards);
                    let mut next_shard = 0;
                    let mut next_sample = 0;
                    for r in 0..ranks {
                        let s = l.shards_of(r);
                        assert_eq!(s.start, next_shard, "{n} {shards} {ranks}");
                        next_shard = s.end;
                        let samples = l.samples_of(r);
                        assert_eq!(samples.start, next_sample);
                        next_sample = samples.end;
                        // shards shared out evenly: at most one more than another rank
                        assert!(s.len() <= l.count().div_ceil(ranks));
                    }
                    assert_eq!((next_shard, next_sample), (l.count(), n));
                }
            }
        }
    }

    #[test]
    fn uneven_cases_by_hand() {
        // 9 in 4 shards: shards of 3, so 3 shards; 2 ranks hold 1 and 2
        let l = Layout::new(9, 4, 2);
        assert_eq!((l.shard_size(), l.count()), (3, 3));
        assert_eq!((l.samples_of(0), l.samples_of(1)), (0..3, 3..9));
        // 2 samples, 8 shards, 3 ranks: shards of 1, ranks 0, 1, 2 hold 0, 1, 1
        let l = Layout::new(2, 8, 3);
        assert_eq!(l.count(), 2);
        assert_eq!(
            (l.shards_of(0), l.shards_of(1), l.shards_of(2)),
            (0..0, 0..1, 1..2)
        );
        assert_eq!(l.samples_of(0), 0..0);
        assert!(Layout::new(0, 8, 2).shards_of(1).is_empty());
    }

    #[test]
    fn slices_cover_the_vector() {
        assert_eq!(
            (slice_of(10, 0, 3), slice_of(10, 1, 3), slice_of(10, 2, 3)),
            (0..3, 3..6, 6..10)
        );
        assert_eq!(slice_of(2, 0, 3), 0..0);
        assert_eq!(slice_of(5, 0, 1), 0..5);
    }
}
