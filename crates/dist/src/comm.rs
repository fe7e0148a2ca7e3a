//! [`Communicator`]: the collective operations a distributed run needs (MPI's names and
//! meanings), the element types they move, [`Local`] (one process), and the helpers built
//! on them: byte messages, and [`agree`], which turns one rank's failure into every
//! rank's error.

use crate::error::{DistError, Result};
use std::fmt::Display;

mod sealed {
    /// What an element type needs for the MPI communicator: an MPI datatype.
    #[cfg(feature = "mpi")]
    pub trait Wire: mpi::datatype::Equivalence {}
    #[cfg(feature = "mpi")]
    impl<E: mpi::datatype::Equivalence> Wire for E {}
    /// Without MPI, nothing.
    #[cfg(not(feature = "mpi"))]
    pub trait Wire {}
    #[cfg(not(feature = "mpi"))]
    impl<E> Wire for E {}

    /// Only the types below are elements.
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u64 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A type the communicators move: `u8`, `u64`, `f32` or `f64`.
pub trait Element: Copy + Default + Send + Sync + 'static + sealed::Sealed + sealed::Wire {
    /// The type's name, for error messages.
    const NAME: &'static str;
    /// `self + other` (wrapping for the integers), the sum of [`Communicator::allreduce_sum`].
    fn add(self, other: Self) -> Self;
}

impl Element for u8 {
    const NAME: &'static str = "u8";
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
}

impl Element for u64 {
    const NAME: &'static str = "u64";
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn add(self, other: Self) -> Self {
        self + other
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn add(self, other: Self) -> Self {
        self + other
    }
}

/// The collective operations of a group of `size` processes (ranks `0..size`), as MPI
/// defines them. Every rank calls the same operations in the same order with matching
/// sizes; buffers are moved in and out, so that an implementation can hand them to the
/// wire without copying. A failure (the library's error, a rank that left, no answer in
/// time) is an `Err`, never a panic.
pub trait Communicator {
    /// This process's rank, in `0..size`.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn size(&self) -> usize;

    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;

    /// `root`'s `data` on every rank (MPI's `Bcast`): every rank passes a buffer of the
    /// same length, whose contents are ignored except on `root`.
    fn broadcast<E: Element>(&self, root: usize, data: Vec<E>) -> Result<Vec<E>>;

    /// The elementwise sum over the ranks of `data` (MPI's `Allreduce` with `MPI_SUM`),
    /// on every rank. The order of the additions is the implementation's: fixed for a
    /// given number of ranks, but not that of any other rank count.
    fn allreduce_sum<E: Element>(&self, data: Vec<E>) -> Result<Vec<E>>;

    /// Every rank's `data` joined in rank order, on every rank (MPI's `Allgatherv`):
    /// rank `q` passes `counts[q]` elements.
    fn all_gather<E: Element>(&self, data: Vec<E>, counts: &[usize]) -> Result<Vec<E>>;

    /// Personalized exchange (MPI's `Alltoallv`): `data` holds `send[q]` elements for
    /// each rank `q`, in rank order; the result holds `recv[q]` elements from each rank
    /// `q`, in rank order (what `q` sent to this rank).
    fn all_to_all<E: Element>(
        &self,
        data: Vec<E>,
        send: &[usize],
        recv: &[usize],
    ) -> Result<Vec<E>>;
}

/// Checks that `counts` has one entry per rank and that they add up to `len`.
pub(crate) fn check_counts(
    op: &'static str,
    size: usize,
    counts: &[usize],
    len: usize,
) -> Result<()> {
    if counts.len() != size {
        return Err(DistError::invalid(
            op,
            format!("{} counts for {size} ranks", counts.len()),
        ));
    }
    let total = counts
        .iter()
        .try_fold(0usize, |a, &c| a.checked_add(c))
        .ok_or_else(|| DistError::invalid(op, "the counts overflow"))?;
    if total != len {
        return Err(DistError::invalid(
            op,
            format!("the counts {counts:?} add up to {total}, the buffer holds {len}"),
        ));
    }
    Ok(())
}

/// Checks that `counts` of `all_gather` has one entry per rank and this rank's is `len`.
pub(crate) fn check_gather_counts(
    size: usize,
    rank: usize,
    counts: &[usize],
    len: usize,
) -> Result<()> {
    if counts.len() != size || counts[rank] != len {
        return Err(DistError::invalid(
            "all_gather",
            format!(
                "rank {rank} passes {len} elements but the counts are {counts:?} for {size} ranks"
            ),
        ));
    }
    counts
        .iter()
        .try_fold(0usize, |a, &c| a.checked_add(c))
        .ok_or_else(|| DistError::invalid("all_gather", "the counts overflow"))?;
    Ok(())
}

/// The one-process communicator: rank 0 of 1, every operation returns its input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn barrier(&self) -> Result<()> {
        Ok(())
    }

    fn broadcast<E: Element>(&self, root: usize, data: Vec<E>) -> Result<Vec<E>> {
        if root != 0 {
            return Err(DistError::invalid(
                "broadcast",
                format!("root {root} of 1 rank"),
            ));
        }
        Ok(data)
    }

    fn allreduce_sum<E: Element>(&self, data: Vec<E>) -> Result<Vec<E>> {
        Ok(data)
    }

    fn all_gather<E: Element>(&self, data: Vec<E>, counts: &[usize]) -> Result<Vec<E>> {
        check_gather_counts(1, 0, counts, data.len())?;
        Ok(data)
    }

    fn all_to_all<E: Element>(
        &self,
        data: Vec<E>,
        send: &[usize],
        recv: &[usize],
    ) -> Result<Vec<E>> {
        check_counts("all_to_all", 1, send, data.len())?;
        check_counts("all_to_all", 1, recv, data.len())?;
        Ok(data)
    }
}

/// Every rank's `bytes`, in rank order, on every rank (two collectives: the lengths,
/// then the bytes).
pub fn gather_bytes<C: Communicator>(comm: &C, bytes: Vec<u8>) -> Result<Vec<Vec<u8>>> {
    let size = comm.size();
    let lengths = comm.all_gather(vec![bytes.len() as u64], &vec![1; size])?;
    let counts = lengths
        .iter()
        .map(|&n| usize::try_from(n))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| DistError::comm("gather_bytes", "a rank sent a length beyond usize"))?;
    let all = comm.all_gather(bytes, &counts)?;
    let mut out = Vec::with_capacity(size);
    let mut at = 0;
    for n in counts {
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}

/// `root`'s `bytes` on every rank, whatever the others pass (two collectives: the
/// length, then the bytes).
pub fn broadcast_bytes<C: Communicator>(comm: &C, root: usize, bytes: Vec<u8>) -> Result<Vec<u8>> {
    let len = comm.broadcast(root, vec![bytes.len() as u64])?[0];
    let len = usize::try_from(len)
        .map_err(|_| DistError::comm("broadcast_bytes", "the length is beyond usize"))?;
    let mut buf = bytes;
    buf.resize(len, 0);
    comm.broadcast(root, buf)
}

/// Makes a rank's local `result` every rank's: a collective that every rank calls after
/// a step that can fail on some ranks only (loading data, writing a checkpoint). If
/// every rank succeeded, returns this rank's value; if this rank failed, its own error;
/// otherwise a [`DistError::Peer`] naming the lowest failed rank and what it said
/// (`what` prefixes the message: `loading Fashion-MNIST: …`).
pub fn agree<C: Communicator, R, E: Into<DistError>>(
    comm: &C,
    what: &str,
    result: std::result::Result<R, E>,
) -> Result<R> {
    let result = result.map_err(Into::into);
    let message = match &result {
        Ok(_) => Vec::new(),
        Err(e) => {
            let mut m = vec![1];
            m.extend_from_slice(format!("{what}: {e}").as_bytes());
            m
        }
    };
    let all = gather_bytes(comm, message)?;
    let failed = all.iter().position(|m| !m.is_empty());
    match (result, failed) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(rank)) => Err(DistError::Peer {
            rank,
            message: String::from_utf8_lossy(&all[rank][1..]).into_owned(),
        }),
        (Ok(value), None) => Ok(value),
    }
}

/// Checks that every rank runs the same configuration: `settings` are (name, value)
/// pairs in the same order on every rank (batch size, seed, learning rate, a checksum
/// of the data, …). On every rank, the first setting whose value differs from rank
/// 0's is a [`DistError::Mismatch`] naming both values and the rank.
pub fn check_same<C: Communicator>(comm: &C, settings: &[(&str, &dyn Display)]) -> Result<()> {
    let mine: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let all = gather_bytes(comm, encode_pairs(&mine))?;
    let decoded = all
        .iter()
        .enumerate()
        .map(|(rank, bytes)| {
            decode_pairs(bytes).ok_or_else(|| {
                DistError::comm(
                    "check_same",
                    format!("rank {rank} sent an unreadable configuration"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let root = &decoded[0];
    for (rank, theirs) in decoded.iter().enumerate().skip(1) {
        for i in 0..root.len().max(theirs.len()) {
            let (a, b) = (root.get(i), theirs.get(i));
            if a != b {
                let what = a.or(b).map_or(String::new(), |(k, _)| k.clone());
                let value = |p: Option<&(String, String)>| match p {
                    Some((k, v)) if *k == what => v.clone(),
                    Some((k, v)) => format!("{v} (as {k})"),
                    None => "not set".to_string(),
                };
                let (expected, found) = (value(a), value(b));
                return Err(DistError::Mismatch {
                    what,
                    expected,
                    rank,
                    found,
                });
            }
        }
    }
    Ok(())
}

/// (name, value) pairs as bytes: each string as its length (u32) and its UTF-8.
fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in pairs.iter().flat_map(|(k, v)| [k, v]) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn decode_pairs(mut bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut strings = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let s = bytes.get(4..4 + len)?;
        strings.push(String::from_utf8(s.to_vec()).ok()?);
        bytes = &bytes[4 + len..];
    }
    if strings.len() % 2 != 0 {
        return None;
    }
    let mut it = strings.into_iter();
    let mut pairs = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_is_one_rank_whose_collectives_return_their_input() {
        let c = Local;
        assert_eq!((c.rank(), c.size()), (0, 1));
        assert_eq!(c.allreduce_sum(vec![1.5f32, -2.0]).unwrap(), [1.5, -2.0]);
        assert_eq!(c.broadcast(0, vec![7u64]).unwrap(), [7]);
        assert!(c.broadcast(1, vec![7u64]).is_err());
        assert_eq!(c.all_gather(vec![1u8, 2], &[2]).unwrap(), [1, 2]);
        let err = c.all_gather(vec![1u8, 2], &[3]).unwrap_err().to_string();
        assert!(
            err.contains("passes 2 elements but the counts are [3]"),
            "{err}"
        );
        assert_eq!(c.all_to_all(vec![3.0f64], &[1], &[1]).unwrap(), [3.0]);
        assert_eq!(
            gather_bytes(&c, b"abc".to_vec()).unwrap(),
            [b"abc".to_vec()]
        );
        assert_eq!(broadcast_bytes(&c, 0, b"xy".to_vec()).unwrap(), b"xy");
        c.barrier().unwrap();
    }

    #[test]
    fn agree_returns_the_local_error_itself() {
        let ok: std::result::Result<u8, DistError> = Ok(4);
        assert_eq!(agree(&Local, "loading", ok).unwrap(), 4);
        let failed: std::result::Result<u8, DistError> = Err(DistError::invalid("x", "bad"));
        let err = agree(&Local, "loading", failed).unwrap_err();
        assert!(matches!(err, DistError::Invalid { .. }), "{err}");
    }

    #[test]
    fn pairs_round_trip_and_truncation_is_refused() {
        let pairs = vec![
            ("batch size".to_string(), "256".to_string()),
            ("é".to_string(), String::new()),
        ];
        let bytes = encode_pairs(&pairs);
        assert_eq!(decode_pairs(&bytes).unwrap(), pairs);
        assert!(decode_pairs(&bytes[..bytes.len() - 1]).is_none());
        check_same(&Local, &[("seed", &3)]).unwrap();
    }
}
