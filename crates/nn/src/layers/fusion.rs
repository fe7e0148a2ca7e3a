//! The fusion planner: which consecutive layers of a [`Sequential`](super::Sequential) run
//! as one op. A container plans once, from the table of patterns below, and keeps the
//! plan; the layers themselves know nothing of fusion. A fused step computes what its
//! layers would compute one after the other (the same bits for the patterns here), only
//! without the intermediate tensor; a layer with a forward hook, or a summary being taken,
//! makes its step run unfused, so that every layer's own output can be seen.

use super::{Conv2D, MaxPool2D};
use crate::block::Block;
use crate::error::Result;
use kiln_autograd::Var;
use kiln_tensor::Float;
use std::any::Any;

/// A block as a container holds it: a block (a `&dyn Child` upcasts to `&dyn Block`),
/// and open to the planner's question of which layer it is.
pub(crate) trait Child<T: Float>: Block<T> {
    /// The block as `Any`, for the planner to recognize layers it can fuse.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Float, B: Block<T> + 'static> Child<T> for B {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One step of a plan: a layer on its own, or a run of layers fused into one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Child `i` on its own.
    One(usize),
    /// `Conv2D` at `i` then `MaxPool2D` at `i + 1`, as `Var::conv2d_max_pool2d`: the
    /// pooled maxima taken from each convolution tile in cache, the full-size activation
    /// map never written.
    ConvMaxPool(usize),
}

impl Step {
    /// The children the step runs.
    pub(crate) fn members(self) -> std::ops::Range<usize> {
        match self {
            Step::One(i) => i..i + 1,
            Step::ConvMaxPool(i) => i..i + 2,
        }
    }

    /// What the step runs, for display (`conv2d+max_pool2d`).
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Step::One(_) => "single",
            Step::ConvMaxPool(_) => "conv2d+max_pool2d",
        }
    }
}

/// The plan for `children`: at each position the first pattern of the table that matches
/// from there, else the child on its own.
pub(crate) fn plan<T: Float>(children: &[Box<dyn Child<T>>]) -> Vec<Step> {
    // `(**c)`: the boxed block itself, not the box (a box is a block too)
    let is = |i: usize, f: fn(&dyn Any) -> bool| children.get(i).is_some_and(|c| f((**c).as_any()));
    let conv = |a: &dyn Any| a.is::<Conv2D<T>>();
    let max_pool = |a: &dyn Any| a.is::<MaxPool2D>();
    let mut steps = Vec::with_capacity(children.len());
    let mut i = 0;
    while i < children.len() {
        let step = if is(i, conv) && is(i + 1, max_pool) {
            Step::ConvMaxPool(i)
        } else {
            Step::One(i)
        };
        i = step.members().end;
        steps.push(step);
    }
    steps
}

/// Runs one step on `x`: fused when the step is a fusion and none of its members must run
/// alone (see [`crate::hooks::must_run_alone`]), else member by member through `call`.
pub(crate) fn run<T: Float>(
    step: Step,
    children: &[Box<dyn Child<T>>],
    x: &Var<T>,
) -> Result<Var<T>> {
    let members = &children[step.members()];
    let alone = members.len() > 1
        && members
            .iter()
            .any(|c| crate::hooks::must_run_alone::<T>(&**c));
    match step {
        Step::ConvMaxPool(_) if !alone => {
            let conv = (*members[0]).as_any().downcast_ref::<Conv2D<T>>();
            let pool = (*members[1]).as_any().downcast_ref::<MaxPool2D>();
            if let (Some(conv), Some(pool)) = (conv, pool) {
                return conv.forward_max_pool(x, pool);
            }
            run_each(members, x)
        }
        _ => run_each(members, x),
    }
}

fn run_each<T: Float>(members: &[Box<dyn Child<T>>], x: &Var<T>) -> Result<Var<T>> {
    let mut y = x.clone();
    for child in members {
        let block: &dyn Block<T> = &**child;
        y = block.call(&y)?;
    }
    Ok(y)
}
