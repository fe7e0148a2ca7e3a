//! [`Dense`]: Gluon's fully connected layer, with deferred inference of its input size.

use super::input::{check_batch, check_input};
use super::weights::Weights;
use super::{activation_name, Activation};
use crate::block::{Block, Geometry};
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::init::Init;
use crate::parameter::Parameter;
use crate::shape_pass::ShapeOnly;
use kiln_autograd::Var;
use kiln_tensor::{Float, Shape};

/// Fully connected layer: `y = x · Wᵀ + b` (Gluon's `nn.Dense`).
///
/// # Shapes
/// With `flatten` (the default): (N, …) → (N, units), the input flattened to
/// (N, in_units). Without: (…, in_units) → (…, units). Weight (units, in_units), bias (units).
pub struct Dense<T: Float> {
    cell: BlockCell,
    units: usize,
    activation: Option<Activation>,
    flatten: bool,
    in_units: usize,
    weights: Weights<T>,
}

impl<T: Float> Dense<T> {
    /// `units` outputs, with a zero-initialized bias, flattening its input, and the input
    /// size inferred at the first forward.
    pub fn new(units: usize) -> Self {
        Dense {
            cell: BlockCell::new(),
            units,
            activation: None,
            flatten: true,
            in_units: 0,
            weights: Weights::new(),
        }
        .rebuild()
    }

    fn rebuild(mut self) -> Self {
        self.weights
            .declare([self.units, self.in_units], self.units);
        self
    }

    /// Applies an activation to the output.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = Some(a);
        self
    }

    /// With `false`, no bias.
    pub fn use_bias(mut self, on: bool) -> Self {
        self.weights.use_bias = on;
        self.rebuild()
    }

    /// With `false`, acts on the last axis instead of flattening (N, …).
    pub fn flatten(mut self, on: bool) -> Self {
        self.flatten = on;
        self
    }

    /// Declares the input size instead of inferring it.
    pub fn in_units(mut self, n: usize) -> Self {
        self.in_units = n;
        self.rebuild()
    }

    /// The weight's own initializer (otherwise `initialize`'s).
    pub fn weight_initializer(mut self, init: Init) -> Self {
        self.weights.weight_init = Some(init);
        self.rebuild()
    }

    /// The bias's initializer (zeros by default).
    pub fn bias_initializer(mut self, init: Init) -> Self {
        self.weights.bias_init = init;
        self.rebuild()
    }

    /// The weight parameter.
    pub fn weight(&self) -> &Parameter<T> {
        self.weights.weight()
    }

    /// The bias parameter, if the layer has one.
    pub fn bias(&self) -> Option<&Parameter<T>> {
        self.weights.bias()
    }

    /// The output shape for an input of shape `x`, with the deferred input size fixed:
    /// the shape-only twin of the forward, with the op's message for a misfit.
    fn output_shape(&self, x: &Shape) -> Result<Shape> {
        if self.units == 0 {
            return Err(NnError::invalid("dense", "units must be ≥ 1"));
        }
        check_batch("dense", x)?;
        let dims = x.dims();
        let (n, in_units, lead) = match (self.flatten, dims.split_last()) {
            (true, _) => (dims[0], dims[1..].iter().product(), &dims[..1]),
            (false, Some((&last, lead))) => (lead.iter().product(), last, lead),
            (false, None) => return Err(NnError::invalid("dense", "input is a scalar")),
        };
        let weight = self.weights.weight();
        if !weight.shape_is_known() {
            weight.infer_shape(&[self.units, in_units])?;
        }
        let w = weight.shape();
        if w[1] != in_units {
            let read_as = match x.rank() == 2 && self.flatten {
                true => String::new(),
                false => format!(" (read as [{n}, {in_units}])"),
            };
            return Err(NnError::invalid(
                "dense",
                format!(
                    "input {x}{read_as} does not fit weight {w} (expected input (N, {}))",
                    w[1]
                ),
            ));
        }
        let mut out = lead.to_vec();
        out.push(self.units);
        Ok(Shape::from(out))
    }

    fn forward_unnamed(&self, x: &Var<T>) -> Result<Var<T>> {
        if self.units == 0 {
            return Err(NnError::invalid("dense", "units must be ≥ 1"));
        }
        check_input("dense", x.value())?;
        let dims = x.dims();
        // flattening: the op reads (N, C, H, W) as (N, C·H·W) itself, without a copy
        let x2 = match (self.flatten, dims.split_last()) {
            (true, _) if dims.len() >= 2 => x.clone(),
            (true, _) => x.flatten()?,
            (false, Some((&last, lead))) => x.reshape([lead.iter().product(), last])?,
            (false, None) => return Err(NnError::invalid("dense", "input is a scalar")),
        };
        if !self.weights.weight().shape_is_known() {
            let in_units = x2.dims().iter().skip(1).product();
            self.weights.weight().infer_shape(&[self.units, in_units])?;
        }
        let (w, b) = self.weights.vars(x.tape())?;
        let y = x2.dense_activation(&w, b.as_ref(), self.activation)?;
        if self.flatten {
            return Ok(y);
        }
        let mut shape = dims[..dims.len() - 1].to_vec();
        shape.push(self.units);
        Ok(y.reshape(shape)?)
    }
}

impl<T: Float> Block<T> for Dense<T> {
    fn kind(&self) -> &'static str {
        "Dense"
    }

    fn prefix(&self) -> &'static str {
        "dense"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.forward_unnamed(x).map_err(|e| e.in_layer(self.name()))
    }

    fn params(&self) -> Vec<(&'static str, Parameter<T>)> {
        self.weights.params()
    }

    fn geometry(&self) -> Geometry {
        Geometry::Global
    }

    fn mult_adds(&self, input: &Shape, output: &Shape) -> u64 {
        let in_units = if self.flatten {
            input.iter().skip(1).product()
        } else {
            input.last().copied().unwrap_or(0)
        };
        (output.numel() as u64).saturating_mul(in_units as u64)
    }

    /// Gluon's options, by Gluon's names; the input size is left out (inferred).
    fn describe(&self) -> String {
        format!(
            "Dense(units={}, activation={}, use_bias={}, flatten={})",
            self.units,
            activation_name(self.activation),
            self.weights.use_bias,
            self.flatten
        )
    }

    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let y = self.output_shape(x.shape());
        Some(
            y.and_then(|y| x.with_shape("dense", y))
                .map_err(|e| e.in_layer(self.name())),
        )
    }
}
