//! [`gradcheck`]: compares the gradients that `backward` computes with central finite
//! differences, in f64, for any function of leaves: an op, a composition, or a whole layer.
//! PyTorch has one; Gluon does not; kiln's is part of the API.

use crate::error::AutogradError;
use crate::leaf::Leaf;
use crate::random::RandomKey;
use crate::tape::Tape;
use crate::var::Var;
use kiln_tensor::Tensor;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use std::fmt;

/// Settings of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step: each element is moved by ±eps.
    pub eps: f64,
    /// Seed of the random projection that turns a non-scalar output into a scalar, and
    /// of the choice of elements when not all are checked.
    pub seed: u64,
    /// Check at most this many elements of each leaf, chosen at random (every element
    /// when `None`): a large network costs two forward passes per element checked.
    pub max_elements_per_leaf: Option<usize>,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            seed: 0,
            max_elements_per_leaf: None,
        }
    }
}

/// The flat indices of a leaf to check: all, or a seeded random subset in order.
fn chosen_elements(numel: usize, options: &GradcheckOptions, leaf: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..numel).collect();
    match options.max_elements_per_leaf {
        Some(max) if max < numel => {
            let mut rng = StdRng::seed_from_u64(
                options.seed ^ (leaf as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            all.shuffle(&mut rng);
            all.truncate(max);
            all.sort_unstable();
            all
        }
        _ => all,
    }
}

/// Where a gradient check found its largest error.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckWorst {
    /// Which leaf (its position in the slice given to [`gradcheck`]).
    pub leaf: usize,
    /// The element's multi-index within that leaf.
    pub index: Vec<usize>,
    /// The gradient from backward.
    pub analytic: f64,
    /// The central finite difference.
    pub numeric: f64,
}

/// The outcome of [`gradcheck`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// The largest relative error over all elements of all leaves:
    /// `|analytic − numeric| / max(|analytic|, |numeric|, 1)`.
    pub max_rel_error: f64,
    /// The element where it occurred (`None` if no element was checked).
    pub worst: Option<GradcheckWorst>,
    /// How many elements were checked.
    pub checked: usize,
}

impl GradcheckReport {
    /// True when the worst relative error is at most `tolerance`.
    pub fn passed(&self, tolerance: f64) -> bool {
        self.max_rel_error <= tolerance
    }
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worst relative error {:.3e} over {} elements",
            self.max_rel_error, self.checked
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                " (leaf {} at {:?}: backward {:.12e}, finite difference {:.12e})",
                w.leaf, w.index, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// Checks the gradients of `f` with respect to `leaves` against central finite
/// differences, with default options. `f` builds its output from `tape.leaf(..)` of the
/// leaves (and anything else it likes); a non-scalar output is reduced to a scalar by a
/// fixed random projection. Every tape it is given has the same [`RandomKey`], so random
/// ops (dropout) draw the same numbers each time. The leaves' gradients are overwritten.
///
/// ```
/// use kiln_autograd::{gradcheck, Leaf};
/// use kiln_tensor::Tensor;
/// let x = Leaf::new(Tensor::<f64>::from_f64s(&[0.3, -1.2, 2.0], [3])?);
/// let report = gradcheck(&[x.clone()], |tape| tape.leaf(&x).sigmoid()?.mul(&tape.leaf(&x)))?;
/// assert!(report.passed(1e-6), "{report}");
/// # Ok::<(), kiln_autograd::AutogradError>(())
/// ```
pub fn gradcheck<E, F>(leaves: &[Leaf<f64>], f: F) -> Result<GradcheckReport, E>
where
    E: From<AutogradError>,
    F: Fn(&Tape<f64>) -> Result<Var<f64>, E>,
{
    gradcheck_with(leaves, f, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit options.
pub fn gradcheck_with<E, F>(
    leaves: &[Leaf<f64>],
    f: F,
    options: GradcheckOptions,
) -> Result<GradcheckReport, E>
where
    E: From<AutogradError>,
    F: Fn(&Tape<f64>) -> Result<Var<f64>, E>,
{
    // Every evaluation draws the same random numbers (dropout masks): one fixed key.
    let key = RandomKey {
        seed: options.seed,
        step: 0,
        first_sample: 0,
    };
    // Analytic: backward of Σ out · r.
    let tape = Tape::with_key(key);
    let out = f(&tape)?;
    let r = Tensor::rand_uniform(
        out.shape().clone(),
        -1.0,
        1.0,
        &mut StdRng::seed_from_u64(options.seed),
    );
    let projected = out.mul(&tape.constant(r.clone()))?.sum()?;
    projected.backward()?;
    let analytic: Vec<Tensor<f64>> = leaves
        .iter()
        .map(|l| {
            l.grad().map_or_else(
                || Tensor::zeros(l.value().shape().clone()),
                |g| (*g).clone(),
            )
        })
        .collect();

    // Numeric: the same projection, evaluated without recording, training mode kept.
    let evaluate = || -> Result<f64, E> {
        let t = Tape::with_key(key);
        let _pause = t.pause();
        let out = f(&t)?;
        Ok(out
            .value()
            .data()
            .iter()
            .zip(r.data())
            .map(|(a, b)| a * b)
            .sum())
    };
    let mut report = GradcheckReport {
        max_rel_error: 0.0,
        worst: None,
        checked: 0,
    };
    for (k, leaf) in leaves.iter().enumerate() {
        let shape = leaf.value().shape().clone();
        let strides = shape.strides();
        for j in chosen_elements(shape.numel(), &options, k) {
            let original = leaf.value().data()[j];
            leaf.update(|t| t.data_mut()[j] = original + options.eps);
            let plus = evaluate()?;
            leaf.update(|t| t.data_mut()[j] = original - options.eps);
            let minus = evaluate()?;
            leaf.update(|t| t.data_mut()[j] = original);
            let numeric = (plus - minus) / (2.0 * options.eps);
            let a = analytic[k].data()[j];
            let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(1.0);
            report.checked += 1;
            if err > report.max_rel_error || report.worst.is_none() || err.is_nan() {
                report.max_rel_error = if err.is_nan() { f64::INFINITY } else { err };
                let index = strides
                    .iter()
                    .zip(shape.iter())
                    .map(|(s, d)| (j / s) % d)
                    .collect();
                report.worst = Some(GradcheckWorst {
                    leaf: k,
                    index,
                    analytic: a,
                    numeric,
                });
            }
        }
    }
    Ok(report)
}
