//! Gradient checks of whole blocks through the autograd layer's public `gradcheck`.

use crate::block::{Block, BlockExt};
use crate::error::Result;
use kiln_autograd::{gradcheck_with, GradcheckOptions, GradcheckReport, Leaf};
use kiln_tensor::Tensor;

/// Checks the gradients of `block` at input `x` (in f64) with respect to the input and
/// every parameter, against central finite differences. The block must be initialized;
/// its gradients are overwritten. See [`kiln_autograd::gradcheck()`].
///
/// ```
/// use kiln_nn::{gradcheck_block, BlockExt, Dense, Init};
/// use kiln_tensor::Tensor;
/// let dense = Dense::<f64>::new(3);
/// dense.initialize(&Init::uniform(0.5), 0)?;
/// let report = gradcheck_block(&dense, &Tensor::ones([2, 4]), Default::default())?;
/// assert!(report.passed(1e-6), "{report}");
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn gradcheck_block<B: Block<f64>>(
    block: &B,
    x: &Tensor<f64>,
    options: GradcheckOptions,
) -> Result<GradcheckReport> {
    block.predict(x)?; // fixes deferred shapes
    let input = Leaf::new(x.clone());
    let mut leaves = vec![input.clone()];
    for (_, p) in block.collect_params().iter() {
        leaves.push(p.leaf()?);
    }
    gradcheck_with(&leaves, |tape| block.forward(&tape.leaf(&input)), options)
}
