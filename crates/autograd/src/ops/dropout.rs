//! Dropout (MXNet's `Dropout`): in training, each element is kept with probability
//! 1 − rate and scaled by 1 / (1 − rate), or set to 0; in predict mode it is the identity.
//! The mask is drawn from the tape's counter-based generator, keyed by the sample's index
//! in the whole batch and the element's index in the sample, so a shard of the batch on
//! any thread draws the mask the whole batch would have.

use crate::random::RandomStream;
use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::parallel::for_each_image_task;
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y = x ⊙ mask, mask ∈ {0, 1/(1 − rate)}. d y / d x = mask.
struct Dropout<T: Float> {
    mask: Tensor<T>,
}

impl<T: Float> Backward<T> for Dropout<T> {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn backward(&self, mut grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        for (g, &m) in grad.data_mut().iter_mut().zip(self.mask.data()) {
            *g *= m;
        }
        Ok(smallvec![Some(grad)])
    }
}

/// The mask of a batch of `shape`: element `e` of sample `n` is kept when its draw is
/// below `keep`. Along `axes` the mask is shared: the draw is taken at index 0 of those
/// axes (and, when the batch axis is one of them, from the batch's sample 0).
fn mask<T: Float>(stream: &RandomStream, shape: &Shape, axes: &[usize], keep: f64) -> Tensor<T> {
    let scale = T::ONE / T::from_f64(keep);
    let n = shape[0];
    let per_sample = shape.numel() / n.max(1);
    // strides of one sample, and of its mask (0 on the shared axes)
    let sample_dims = &shape[1..];
    let mut shared_dims: Vec<usize> = sample_dims.to_vec();
    for &a in axes.iter().filter(|&&a| a > 0) {
        shared_dims[a - 1] = 1;
    }
    let shared_batch = axes.contains(&0);
    let mut out = vec![T::ZERO; shape.numel()];
    for_each_image_task(
        n,
        &mut out,
        per_sample,
        shape.numel() * 4,
        |images, part| {
            let mut index = vec![0usize; sample_dims.len()];
            for (image, row) in images.zip(part.chunks_exact_mut(per_sample.max(1))) {
                let draws = match shared_batch {
                    true => stream.global_sample(0),
                    false => stream.sample(image),
                };
                index.iter_mut().for_each(|i| *i = 0);
                for m in row.iter_mut() {
                    // the element's index in the shared mask
                    let mut e = 0;
                    for (&i, &d) in index.iter().zip(&shared_dims) {
                        e = e * d + if d == 1 { 0 } else { i };
                    }
                    *m = if draws.uniform(e) < keep {
                        scale
                    } else {
                        T::ZERO
                    };
                    // the next multi-index, last axis fastest
                    for (i, &d) in index.iter_mut().zip(sample_dims).rev() {
                        *i += 1;
                        if *i < d {
                            break;
                        }
                        *i = 0;
                    }
                }
            }
        },
    );
    Tensor::from_vec(out, shape.clone()).expect("the mask has the input's shape")
}

impl<T: Float> Var<T> {
    /// Dropout with probability `rate` (Gluon's `Dropout(rate, axes)`): in training mode
    /// each element is 0 with probability `rate`, else `x · (1/(1 − rate))` (MXNet's mask
    /// times the input, the scale computed in the element type); the mask is shared along
    /// `axes` (none: every element draws its own). In predict mode, or with rate 0, the
    /// identity. Each dropout op of a tape draws its own numbers (see
    /// [`crate::random`]).
    ///
    /// # Shapes
    /// x (N, …), the first axis the batch → the shape of x.
    pub fn dropout(&self, rate: f64, axes: &[usize]) -> Result<Var<T>> {
        if !(0.0..1.0).contains(&rate) {
            return Err(AutogradError::invalid(
                "dropout",
                format!("the rate must be in [0, 1), got {rate}"),
            ));
        }
        if let Some(&a) = axes.iter().find(|&&a| a >= self.shape().rank()) {
            return Err(AutogradError::Tensor(kiln_tensor::TensorError::Axis {
                op: "dropout",
                axis: a,
                shape: self.shape().clone(),
            }));
        }
        if self.shape().rank() == 0 {
            return Err(AutogradError::invalid(
                "dropout",
                "the input is a scalar, not a batch",
            ));
        }
        let Some(tape) = self.tape().filter(|_| self.is_training() && rate > 0.0) else {
            return Ok(self.clone());
        };
        let stream = tape.next_random_stream();
        let mask = mask::<T>(&stream, self.shape(), axes, 1.0 - rate);
        let mut y = self.value().clone();
        for (v, &m) in y.data_mut().iter_mut().zip(mask.data()) {
            *v *= m;
        }
        Var::record("dropout", &[self], y, |_| Dropout { mask })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, RandomKey, Tape, Var};
    use kiln_tensor::Tensor;

    fn key() -> RandomKey {
        RandomKey {
            seed: 11,
            step: 4,
            first_sample: 0,
        }
    }

    #[test]
    fn kept_elements_are_scaled_and_the_kept_fraction_is_one_minus_the_rate() {
        let x = Leaf::new(Tensor::<f32>::full([1000, 1000], 1.5));
        let tape = Tape::with_key(key());
        let y = tape.leaf(&x).dropout(0.3, &[]).unwrap();
        let scale = 1.0f32 / (1.0 - 0.3f64) as f32;
        let mut kept = 0usize;
        for &v in y.value().data() {
            assert!(v == 0.0 || v == 1.5 * scale, "{v}");
            kept += (v != 0.0) as usize;
        }
        let fraction = kept as f64 / 1e6;
        // within 0.3% of 1 − rate (the standard deviation is 0.00046)
        assert!((fraction - 0.7).abs() < 0.003 * 0.7, "kept {fraction}");
    }

    #[test]
    fn identity_in_predict_mode_and_at_rate_zero() {
        let x = Tensor::<f64>::arange(12).reshape([3, 4]).unwrap();
        let y = Var::constant(x.clone()).dropout(0.5, &[]).unwrap();
        assert_eq!(*y.value(), x);
        let tape = Tape::with_key(key());
        tape.set_training(false);
        assert_eq!(
            *tape.constant(x.clone()).dropout(0.5, &[]).unwrap().value(),
            x
        );
        let tape = Tape::with_key(key());
        assert_eq!(
            *tape.constant(x.clone()).dropout(0.0, &[]).unwrap().value(),
            x
        );
    }

    #[test]
    fn a_shard_draws_the_masks_the_whole_batch_draws_for_its_samples() {
        let x = Tensor::<f32>::full([8, 3, 5], 1.0);
        let whole = Tape::with_key(key())
            .constant(x.clone())
            .dropout(0.5, &[])
            .unwrap();
        let part = Tape::with_key(key().offset(5))
            .constant(x.slice_axis(0, 5, 8).unwrap())
            .dropout(0.5, &[])
            .unwrap();
        assert_eq!(
            whole.value().slice_axis(0, 5, 8).unwrap().data(),
            part.value().data()
        );
        // and on more threads the same bits
        let threaded = kiln_tensor::parallel::with_threads(2, || {
            let big = Tensor::<f32>::full([64, 32, 32], 1.0);
            let t = Tape::with_key(key());
            t.constant(big).dropout(0.5, &[]).unwrap().value().clone()
        })
        .unwrap();
        let t = Tape::with_key(key());
        let serial = kiln_tensor::parallel::serial(|| {
            t.constant(Tensor::<f32>::full([64, 32, 32], 1.0))
                .dropout(0.5, &[])
                .unwrap()
                .value()
                .clone()
        });
        assert_eq!(threaded, serial);
    }

    #[test]
    fn two_dropout_ops_and_two_steps_draw_differently() {
        let x = Tensor::<f32>::full([4, 50], 1.0);
        let tape = Tape::with_key(key());
        let a = tape.constant(x.clone()).dropout(0.5, &[]).unwrap();
        let b = tape.constant(x.clone()).dropout(0.5, &[]).unwrap();
        assert_ne!(a.value(), b.value());
        let next = Tape::with_key(RandomKey { step: 5, ..key() });
        assert_ne!(
            a.value(),
            next.constant(x).dropout(0.5, &[]).unwrap().value()
        );
    }

    #[test]
    fn shared_axes_share_the_mask() {
        // axes [2]: one draw per (sample, channel), shared along the last axis
        let tape = Tape::with_key(key());
        let y = tape
            .constant(Tensor::<f64>::full([6, 4, 7], 1.0))
            .dropout(0.5, &[2])
            .unwrap();
        for row in y.value().data().chunks(7) {
            assert!(row.iter().all(|&v| v == row[0]), "{row:?}");
        }
        // axes [0]: the same mask for every sample, also in a shard
        let y = Tape::with_key(key())
            .constant(Tensor::<f64>::full([3, 10], 1.0))
            .dropout(0.5, &[0])
            .unwrap();
        let rows: Vec<&[f64]> = y.value().data().chunks(10).collect();
        assert!(rows.iter().all(|r| *r == rows[0]));
        let shard = Tape::with_key(key().offset(2))
            .constant(Tensor::<f64>::full([1, 10], 1.0))
            .dropout(0.5, &[0])
            .unwrap();
        assert_eq!(shard.value().data(), rows[0]);
    }

    #[test]
    fn gradcheck_dropout_with_its_mask_fixed_by_the_key() {
        let a = leaf(&[4, 6], 1);
        // gradcheck gives every evaluation a tape with the same key, so the same mask
        assert_grads(&[&a], |t| t.leaf(&a).dropout(0.4, &[])?.tanh());
    }

    #[test]
    fn bad_rates_and_axes_are_errors() {
        let x = Tape::<f32>::with_key(key()).constant(Tensor::ones([2, 2]));
        for rate in [1.0, -0.1, f64::NAN] {
            let err = x.dropout(rate, &[]).unwrap_err().to_string();
            assert!(err.contains("rate must be in [0, 1)"), "{err}");
        }
        assert!(x.dropout(0.5, &[2]).is_err());
    }
}
