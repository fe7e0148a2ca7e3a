//! What the ranks tell each other at every step, as bytes: whether the rank failed (and
//! why) or has no batch left, whether it was asked to stop, and for each of its shards
//! the loss, which parameters its backward reached, its scores and its labels, so that
//! every rank ends the step with the whole batch's.

use kiln_nn::Labels;
use kiln_tensor::{Float, Tensor};

/// One shard's results, except its gradient.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ShardReport<T: Float> {
    /// The shard's summed loss.
    pub loss: f64,
    /// Per parameter, whether the backward reached it.
    pub present: Vec<bool>,
    pub scores: Tensor<T>,
    pub labels: Labels<T>,
}

/// A rank's message for one step: its shards' reports, or the error that stopped it.
pub(crate) type Report<T> = Result<Vec<ShardReport<T>>, String>;

/// What a rank says at one step of a loop over batches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Message<T: Float> {
    /// Its report, or `None` when its batches have run out.
    pub report: Option<Report<T>>,
    /// Whether it was asked to stop (its stop flag is set).
    pub stop: bool,
}

/// A bounds-checked little-endian reader; `None` once the bytes run out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }

    /// A count of items that take at least one byte each: a larger one than the bytes
    /// left is a damaged message (and is not allocated for).
    fn count(&mut self) -> Option<usize> {
        let n = self.usize()?;
        (n <= self.0.len()).then_some(n)
    }

    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }

    fn tensor<T: Float>(&mut self) -> Option<Tensor<T>> {
        let rank = self.count()?;
        let dims = (0..rank)
            .map(|_| self.usize())
            .collect::<Option<Vec<_>>>()?;
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        if n > self.0.len() / 8 {
            return None;
        }
        let values = (0..n)
            .map(|_| self.f64().map(T::from_f64))
            .collect::<Option<Vec<_>>>()?;
        Tensor::from_vec(values, dims).ok()
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A tensor as its rank, dims and values (each as the f64 of it: exact for f32 and f64).
fn put_tensor<T: Float>(out: &mut Vec<u8>, t: &Tensor<T>) {
    put_u64(out, t.dims().len() as u64);
    t.dims().iter().for_each(|&d| put_u64(out, d as u64));
    t.data()
        .iter()
        .for_each(|v| put_u64(out, v.to_f64().to_bits()));
}

/// The bytes of `message`: its kind (0 shards, 1 an error, 2 no batch), its stop flag,
/// then the shards or the error's text.
pub(crate) fn encode<T: Float>(message: &Message<T>) -> Vec<u8> {
    let mut out = Vec::new();
    let kind = match &message.report {
        Some(Ok(_)) => 0,
        Some(Err(_)) => 1,
        None => 2,
    };
    out.push(kind);
    out.push(message.stop as u8);
    match &message.report {
        None => {}
        Some(Err(text)) => out.extend_from_slice(text.as_bytes()),
        Some(Ok(shards)) => {
            put_u64(&mut out, shards.len() as u64);
            for s in shards {
                put_u64(&mut out, s.loss.to_bits());
                put_u64(&mut out, s.present.len() as u64);
                out.extend(s.present.iter().map(|&p| p as u8));
                put_tensor(&mut out, &s.scores);
                match &s.labels {
                    Labels::Classes(c) => {
                        out.push(0);
                        put_u64(&mut out, c.len() as u64);
                        c.iter().for_each(|&c| put_u64(&mut out, c as u64));
                    }
                    Labels::Targets(t) => {
                        out.push(1);
                        put_tensor(&mut out, t);
                    }
                }
            }
        }
    }
    out
}

/// The message in `bytes`; `None` if they are not one.
pub(crate) fn decode<T: Float>(bytes: &[u8]) -> Option<Message<T>> {
    let mut r = Reader(bytes);
    let kind = r.u8()?;
    let stop = match r.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let report = match kind {
        0 => Some(Ok(shards(&mut r)?)),
        1 => Some(Err(
            String::from_utf8_lossy(std::mem::take(&mut r.0)).into_owned()
        )),
        2 => None,
        _ => return None,
    };
    r.0.is_empty().then_some(Message { report, stop })
}

/// The shards of a report.
fn shards<T: Float>(r: &mut Reader<'_>) -> Option<Vec<ShardReport<T>>> {
    let count = r.count()?;
    let mut shards = Vec::with_capacity(count);
    for _ in 0..count {
        let loss = r.f64()?;
        let n = r.count()?;
        let present = r.take(n)?.iter().map(|&b| b != 0).collect();
        let scores = r.tensor()?;
        let labels = match r.u8()? {
            0 => {
                let n = r.count()?;
                let classes = (0..n)
                    .map(|_| r.u64().and_then(|c| usize::try_from(c).ok()))
                    .collect::<Option<Vec<_>>>()?;
                Labels::Classes(classes)
            }
            1 => Labels::Targets(r.tensor()?),
            _ => return None,
        };
        shards.push(ShardReport {
            loss,
            present,
            scores,
            labels,
        });
    }
    Some(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_bit_for_bit_and_damage_is_refused() {
        let scores = Tensor::<f32>::from_vec(vec![0.1, -3.5e-39, f32::MAX, 1.0], [2, 2]).unwrap();
        let report: Report<f32> = Ok(vec![
            ShardReport {
                loss: 4.25,
                present: vec![true, false, true],
                scores: scores.clone(),
                labels: Labels::Classes(vec![3, 9]),
            },
            ShardReport {
                loss: -0.0,
                present: vec![],
                scores: Tensor::zeros([0, 2]),
                labels: Labels::Targets(scores),
            },
        ]);
        let message = Message {
            report: Some(report),
            stop: false,
        };
        let bytes = encode(&message);
        let back = decode::<f32>(&bytes).unwrap();
        assert_eq!(back, message);
        let shards = back.report.unwrap().unwrap();
        assert_eq!(shards[1].loss.to_bits(), (-0.0f64).to_bits());
        for cut in [1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode::<f32>(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<f32>(&longer).is_none());
        // a stop flag other than 0 or 1, or an unknown kind, is damage
        for (at, byte) in [(1, 2), (0, 3)] {
            let mut bad = bytes.clone();
            bad[at] = byte;
            assert!(decode::<f32>(&bad).is_none(), "byte {at} = {byte}");
        }
        let failed = Message::<f64> {
            report: Some(Err("rank 1: corrupt".into())),
            stop: true,
        };
        assert_eq!(encode(&failed)[..2], [1, 1]);
        assert_eq!(decode::<f64>(&encode(&failed)).unwrap(), failed);
        // no batch left: the kind and the flag only
        let ended = Message::<f32> {
            report: None,
            stop: true,
        };
        assert_eq!(encode(&ended), [2, 1]);
        assert_eq!(decode::<f32>(&[2, 1]).unwrap(), ended);
        assert!(decode::<f32>(&[2, 0, 0]).is_none());
    }
}
