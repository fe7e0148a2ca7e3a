//! # kiln-nn
//!
//! Gluon's neural-network layer for kiln: blocks ([`Conv2D`], [`MaxPool2D`],
//! [`AvgPool2D`], [`Dense`], [`Flatten`], [`Activation`], [`Sequential`]) with deferred
//! shape inference, initializers, a [`Trainer`] with Gluon's optimizers
//! ([`Sgd`], [`Adam`], …) and learning-rate schedules, losses, metrics, atomic
//! checkpoints, a network [`Summary`] with receptive fields, and [`DataParallel`], which
//! spreads each batch over several threads with results that do not depend on how many.
//!
//! ```
//! use kiln_nn::{Activation::Sigmoid, BlockExt, Conv2D, Dense, Init, MaxPool2D, Sequential};
//! // D2L 6.6: LeNet, in Gluon's words
//! let net = Sequential::<f32>::new()
//!     .add(Conv2D::new(6, 5).activation(Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Conv2D::new(16, 5).activation(Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Dense::new(120).activation(Sigmoid))
//!     .add(Dense::new(84).activation(Sigmoid))
//!     .add(Dense::new(10));
//! net.initialize(&Init::xavier(), 0)?;
//! let summary = net.summary([1, 1, 28, 28])?;
//! assert_eq!(summary.total_params, 44_426);
//! # Ok::<(), kiln_nn::NnError>(())
//! ```

#![warn(missing_docs)]

pub mod architecture;
pub mod block;
pub mod check;
pub mod checkpoint;
pub mod data;
pub mod data_parallel;
pub mod error;
pub mod hooks;
pub mod init;
pub mod labels;
pub mod layers;
pub mod loss;
pub mod lr_scheduler;
pub mod metric;
pub mod optim;
pub mod parameter;
pub mod shape_pass;
pub mod summary;
pub mod train;
pub mod trainer;
pub mod zoo;

pub use block::{Block, BlockExt, Geometry, ParameterDict};
pub use check::gradcheck_block;
pub use data::{ArrayDataset, DataLoader, Dataset, SimpleDataset};
pub use data_parallel::{DataParallel, ShardGradient};
pub use error::{NnError, Result};
pub use hooks::{call, BlockCell, HookHandle};
pub use init::{FactorType, Init, RndType};
pub use labels::{Labels, LabelsRef};
pub use layers::{
    Activation, AvgPool2D, BatchNorm, Concatenate, Conv2D, Dense, Dropout, Flatten,
    GlobalAvgPool2D, GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, PReLU, Sequential, Swish,
    ELU, GELU, SELU,
};
pub use loss::{
    HingeLoss, HuberLoss, KLDivLoss, L1Loss, L2Loss, Loss, SigmoidBCELoss,
    SigmoidBinaryCrossEntropyLoss, SoftmaxCELoss, SoftmaxCrossEntropyLoss,
};
pub use lr_scheduler::{
    CosineScheduler, FactorScheduler, LrScheduler, MultiFactorScheduler, PolyScheduler, Warmup,
    WarmupMode,
};
pub use metric::{
    accuracy, Accuracy, CompositeEvalMetric, CrossEntropy, EvalMetric, F1Average,
    Loss as LossMetric, Metric, MetricUpdate, Perplexity, TopKAccuracy, F1, MAE, MSE, RMSE,
};
pub use optim::{
    clip_global_norm, AdaDelta, AdaGrad, Adam, AdamW, Nag, Optimizer, ParamState, RmsProp, Sgd,
    UpdateArgs,
};
pub use parameter::Parameter;
pub use shape_pass::ShapeOnly;
pub use summary::{ReceptiveField, Summary};
pub use trainer::Trainer;
