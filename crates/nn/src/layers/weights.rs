//! [`Weights`]: the weight and optional bias of a `Conv2D` or `Dense`, declared from the
//! layer's options, with the options that concern them (Gluon's `use_bias`,
//! `weight_initializer`, `bias_initializer`).

use crate::error::Result;
use crate::init::Init;
use crate::parameter::Parameter;
use kiln_autograd::{Tape, Var};
use kiln_tensor::{Float, Shape};

/// A layer's weight and bias parameters and the options that shape them.
pub(crate) struct Weights<T: Float> {
    pub(crate) use_bias: bool,
    pub(crate) weight_init: Option<Init>,
    pub(crate) bias_init: Init,
    weight: Parameter<T>,
    bias: Option<Parameter<T>>,
}

impl<T: Float> Weights<T> {
    /// Gluon's defaults: a bias, initialized to zero; the weight takes `initialize`'s
    /// initializer. Nothing is declared until [`Weights::declare`].
    pub(crate) fn new() -> Self {
        Weights {
            use_bias: true,
            weight_init: None,
            bias_init: Init::Zero,
            weight: Parameter::new("weight", [0], None),
            bias: None,
        }
    }

    /// (Re)declares the parameters for a weight of `shape` (0 for dimensions still unknown)
    /// and `outputs` bias values; they hold no values until initialized.
    pub(crate) fn declare(&mut self, shape: impl Into<Shape>, outputs: usize) {
        self.weight = Parameter::new("weight", shape, self.weight_init);
        self.bias = self
            .use_bias
            .then(|| Parameter::new("bias", [outputs], Some(self.bias_init)));
    }

    pub(crate) fn weight(&self) -> &Parameter<T> {
        &self.weight
    }

    pub(crate) fn bias(&self) -> Option<&Parameter<T>> {
        self.bias.as_ref()
    }

    /// Both as values of a computation on `tape` (or constants with no tape).
    pub(crate) fn vars(&self, tape: Option<&Tape<T>>) -> Result<(Var<T>, Option<Var<T>>)> {
        let w = self.weight.var(tape)?;
        let b = self.bias.as_ref().map(|b| b.var(tape)).transpose()?;
        Ok((w, b))
    }

    /// `("weight", …)` and, if there is one, `("bias", …)`.
    pub(crate) fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        let mut out = vec![("weight", self.weight.clone())];
        out.extend(self.bias.iter().map(|b| ("bias", b.clone())));
        out
    }
}
