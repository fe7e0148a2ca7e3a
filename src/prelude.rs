//! What the book's code needs, in one import: `use kiln::prelude::*;`.
//!
//! The blocks and layers with [`Block`] (for `net.forward`) and [`BlockExt`] (for
//! `initialize`, `summary`, `predict`, checkpoints), [`Init`]; [`Tape`] and [`Var`] (the
//! book's `autograd.record()` and its values); the losses with their [`Loss`] trait, the
//! metrics with [`Metric`] and [`MetricUpdate`] (and [`LabelsRef`], what they are fed); [`Trainer`], the optimizers and the
//! learning-rate schedules; [`DataParallel`]; the data loader and the datasets; the zoo;
//! [`Tensor`]; and what seeded random data needs from `rand` 0.10: [`StdRng`],
//! [`SeedableRng`] (`StdRng::seed_from_u64`), [`Rng`] and [`RngExt`] (`random_range`).
//! Nothing named `Result` is brought in, so `std`'s stays in scope.
//!
//! ```
//! use kiln::prelude::*;
//! // D2L 6.6: LeNet, one training step on a batch of seeded noise, and its accuracy
//! let net = Sequential::<f32>::new()
//!     .add(Conv2D::new(6, 5).activation(Activation::Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Conv2D::new(16, 5).activation(Activation::Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Dense::new(120).activation(Activation::Sigmoid))
//!     .add(Dense::new(84).activation(Activation::Sigmoid))
//!     .add(Dense::new(10));
//! net.initialize(&Init::xavier(), 0)?;
//! let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.9));
//! let mut rng = StdRng::seed_from_u64(0);
//! let x = Tensor::rand_uniform([8, 1, 28, 28], 0.0, 1.0, &mut rng);
//! let y: Vec<usize> = (0..8).map(|_| rng.random_range(0..10)).collect();
//! let tape = Tape::new(); // autograd.record()
//! let l = SoftmaxCrossEntropyLoss.forward(&net.forward(&tape.constant(x.clone()))?, &y)?;
//! l.sum()?.backward()?;
//! trainer.step(8)?;
//! let mut acc = Accuracy::new();
//! acc.update((&y).into(), &net.predict(&x)?)?;
//! assert!((0.0..=1.0).contains(&acc.get()));
//! # Ok::<(), NnError>(())
//! ```

pub use kiln_autograd::{GradReq, Leaf, Tape, Var};
pub use kiln_nn::data::{DataLoader, FashionMnist, Mnist};
pub use kiln_nn::zoo;
pub use kiln_nn::{
    accuracy, Accuracy, Activation, AdaDelta, AdaGrad, Adam, AdamW, AvgPool2D, BatchNorm, Block,
    BlockCell, BlockExt, CompositeEvalMetric, Concatenate, Conv2D, CosineScheduler, CrossEntropy,
    DataParallel, Dense, Dropout, FactorScheduler, Flatten, GlobalAvgPool2D, GlobalMaxPool2D,
    HingeLoss, HuberLoss, Identity, Init, KLDivLoss, L1Loss, L2Loss, Labels, LabelsRef, LeakyReLU,
    Loss, LossMetric, LrScheduler, MaxPool2D, Metric, MetricUpdate, MultiFactorScheduler, Nag,
    NnError, Optimizer, PReLU, Parameter, Perplexity, PolyScheduler, RmsProp, Sequential, Sgd,
    SigmoidBCELoss, SigmoidBinaryCrossEntropyLoss, SoftmaxCELoss, SoftmaxCrossEntropyLoss, Swish,
    TopKAccuracy, Trainer, Warmup, ELU, F1, GELU, MAE, MSE, RMSE, SELU,
};
pub use kiln_tensor::rand::rngs::StdRng;
pub use kiln_tensor::rand::{Rng, RngExt, SeedableRng};
pub use kiln_tensor::{Hw, Shape, Tensor};
