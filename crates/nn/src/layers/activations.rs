//! The activation layers Gluon keeps beside `Activation` (`gluon.nn.activations`):
//! [`LeakyReLU`], [`PReLU`] (with a learned slope), [`ELU`], [`SELU`], [`GELU`] and
//! [`Swish`], each a block of its own as in Gluon. Their functions and gradients are the
//! autograd layer's (`Var::leaky_relu`, …), which follow MXNet's `LeakyReLU` operator.

use crate::block::Block;
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::init::Init;
use crate::parameter::Parameter;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::elementwise::prelu_alpha_shape;
use kiln_tensor::Float;

/// Runs `f` on `x`, naming errors after `block`.
fn run<T: Float>(
    block: &dyn Block<T>,
    x: &Var<T>,
    f: impl FnOnce(&Var<T>) -> kiln_autograd::Result<Var<T>>,
) -> Result<Var<T>> {
    f(x).map_err(|e| NnError::from(e).in_layer(block.name()))
}

/// The block boilerplate of a parameterless activation layer: its forward runs `$body`,
/// its description is `$describe` (the kind alone if not given) and its shape-only pass
/// keeps the shape, after `$valid` (if given) checks the options as the forward would.
macro_rules! activation_block {
    ($ty:ident, $kind:literal, $prefix:literal, |$s:ident, $x:ident| $body:expr) => {
        activation_block!($ty, $kind, $prefix, |$s, $x| $body, describe: |_d| $kind.into());
    };
    ($ty:ident, $kind:literal, $prefix:literal, |$s:ident, $x:ident| $body:expr,
     describe: |$d:ident| $describe:expr) => {
        activation_block!($ty, $kind, $prefix, |$s, $x| $body, valid: |_v| Ok(()),
            describe: |$d| $describe);
    };
    ($ty:ident, $kind:literal, $prefix:literal, |$s:ident, $x:ident| $body:expr,
     valid: |$v:ident| $valid:expr, describe: |$d:ident| $describe:expr) => {
        impl<T: Float> Block<T> for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn prefix(&self) -> &'static str {
                $prefix
            }

            fn cell(&self) -> Option<&BlockCell> {
                Some(&self.cell)
            }

            fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
                let $s = self;
                run(self, x, |$x| $body)
            }

            fn describe(&self) -> String {
                let $d = self;
                $describe
            }

            fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
                let $v = self;
                let valid: kiln_autograd::Result<()> = $valid;
                Some(
                    valid
                        .map(|()| x.clone())
                        .map_err(|e| NnError::from(e).in_layer(Block::<T>::name(self))),
                )
            }
        }
    };
}

/// y = x for x > 0, else alpha·x (Gluon's `nn.LeakyReLU(alpha)`, alpha ≥ 0).
#[derive(Debug)]
pub struct LeakyReLU {
    cell: BlockCell,
    alpha: f64,
}

impl LeakyReLU {
    /// The slope `alpha` for negative inputs (Gluon requires alpha ≥ 0; checked at the
    /// first forward).
    pub fn new(alpha: f64) -> Self {
        LeakyReLU {
            cell: BlockCell::new(),
            alpha,
        }
    }
}

impl LeakyReLU {
    /// Gluon's rule for the slope: alpha ≥ 0.
    fn check_alpha(&self) -> kiln_autograd::Result<()> {
        if self.alpha >= 0.0 {
            return Ok(());
        }
        Err(kiln_autograd::AutogradError::invalid(
            "leaky_relu",
            format!("the slope alpha must be ≥ 0, got {}", self.alpha),
        ))
    }
}

activation_block!(
    LeakyReLU,
    "LeakyReLU",
    "leakyrelu",
    |s, x| s.check_alpha().and_then(|()| x.leaky_relu(T::from_f64(s.alpha))),
    valid: |s| s.check_alpha(),
    describe: |s| format!("LeakyReLU(alpha={})", s.alpha)
);

/// y = x for x > 0, else alpha·(eˣ − 1) (Gluon's `nn.ELU`, alpha default 1).
#[derive(Debug)]
pub struct ELU {
    cell: BlockCell,
    alpha: f64,
}

impl ELU {
    /// Gluon's default, alpha 1.
    pub fn new() -> Self {
        Self::with_alpha(1.0)
    }

    /// With `alpha`.
    pub fn with_alpha(alpha: f64) -> Self {
        ELU {
            cell: BlockCell::new(),
            alpha,
        }
    }
}

impl Default for ELU {
    fn default() -> Self {
        Self::new()
    }
}

activation_block!(ELU, "ELU", "elu", |s, x| x.elu(T::from_f64(s.alpha)),
    describe: |s| format!("ELU(alpha={})", s.alpha));

/// λ·x for x > 0, else λ·α·(eˣ − 1), with MXNet's λ and α (Gluon's `nn.SELU`).
#[derive(Debug, Default)]
pub struct SELU {
    cell: BlockCell,
}

impl SELU {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

activation_block!(SELU, "SELU", "selu", |_s, x| x.selu());

/// 0.5·x·(1 + erf(x/√2)), the erf form MXNet computes (Gluon's `nn.GELU`).
#[derive(Debug, Default)]
pub struct GELU {
    cell: BlockCell,
}

impl GELU {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

activation_block!(GELU, "GELU", "gelu", |_s, x| x.gelu());

/// x·sigmoid(beta·x) (Gluon's `nn.Swish`, beta default 1).
#[derive(Debug)]
pub struct Swish {
    cell: BlockCell,
    beta: f64,
}

impl Swish {
    /// Gluon's default, beta 1.
    pub fn new() -> Self {
        Self::with_beta(1.0)
    }

    /// With `beta`.
    pub fn with_beta(beta: f64) -> Self {
        Swish {
            cell: BlockCell::new(),
            beta,
        }
    }
}

impl Default for Swish {
    fn default() -> Self {
        Self::new()
    }
}

activation_block!(Swish, "Swish", "swish", |s, x| x.swish(T::from_f64(s.beta)),
    describe: |s| format!("Swish(beta={})", s.beta));

/// y = x for x > 0, else alpha·x with a learned slope per channel (Gluon's `nn.PReLU`):
/// parameter `alpha` of shape (in_channels), initialized to 0.25, broadcast along axis 1.
/// Gluon's default `in_channels = 1` shares one slope among all channels.
///
/// # Shapes
/// (N, C, …) → the same shape; alpha (C) or (1).
pub struct PReLU<T: Float> {
    cell: BlockCell,
    alpha: Parameter<T>,
}

impl<T: Float> Default for PReLU<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> PReLU<T> {
    /// One slope shared by every channel, initialized to 0.25 (Gluon's defaults).
    pub fn new() -> Self {
        Self::with_channels(1)
    }

    /// One slope per channel.
    pub fn with_channels(in_channels: usize) -> Self {
        PReLU {
            cell: BlockCell::new(),
            alpha: Parameter::new("alpha", [in_channels], Some(Init::Constant(0.25))),
        }
    }

    /// The slope parameter.
    pub fn alpha(&self) -> &Parameter<T> {
        &self.alpha
    }
}

impl<T: Float> Block<T> for PReLU<T> {
    fn kind(&self) -> &'static str {
        "PReLU"
    }

    fn prefix(&self) -> &'static str {
        "prelu"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let alpha = self
            .alpha
            .var(x.tape())
            .map_err(|e| e.in_layer(self.name()))?;
        run(self, x, |x| x.prelu(&alpha))
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        vec![("alpha", self.alpha.clone())]
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let fits = prelu_alpha_shape(x.shape(), &self.alpha.shape());
        Some(
            fits.map(|_| x.clone())
                .map_err(|e| NnError::from(e).in_layer(self.name())),
        )
    }
}
