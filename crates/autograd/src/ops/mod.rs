//! The differentiable ops, one file each: the forward, the backward rule with its
//! derivation, the `Var` method, and the op's gradient checks. Ops that are compositions
//! of others (`sub`, `mean`, `flatten`, `convolve2d`, `split`, …) have no backward of
//! their own.

pub use batch_norm::BatchNormOptions;

mod activations;
mod add;
mod avg_pool2d;
mod batch_norm;
mod broadcast_to;
mod clip;
mod compensated_sum;
mod concat;
mod conv2d;
mod conv2d_max_pool2d;
mod dense;
mod div;
mod dropout;
mod flip;
mod matmul;
mod max_axes;
mod max_pool2d;
mod maximum;
mod mul;
mod permute;
mod pick;
mod prelu;
mod reshape;
mod scalar;
mod slice;
mod softmax;
mod softmax_cross_entropy;
mod sum;
mod unary;

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the ops' gradient checks.
    use crate::{gradcheck, Leaf, Result, Tape, Var};
    use kiln_tensor::Tensor;
    use rand::{rngs::StdRng, SeedableRng};

    /// A leaf of Uniform(−1, 1) values.
    pub fn leaf(shape: &[usize], seed: u64) -> Leaf<f64> {
        Leaf::new(Tensor::rand_uniform(
            shape,
            -1.0,
            1.0,
            &mut StdRng::seed_from_u64(seed),
        ))
    }

    /// Asserts that backward agrees with finite differences to 1e-6 (relative).
    pub fn assert_grads(leaves: &[&Leaf<f64>], f: impl Fn(&Tape<f64>) -> Result<Var<f64>>) {
        let leaves: Vec<Leaf<f64>> = leaves.iter().map(|&l| l.clone()).collect();
        let report = gradcheck(&leaves, f).unwrap();
        assert!(report.checked > 0);
        assert!(report.passed(1e-6), "{report}");
    }
}
