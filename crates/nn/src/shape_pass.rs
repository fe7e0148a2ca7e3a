//! The shape-only pass a summary takes: each block's output shape and receptive field
//! worked out from its input's by [`Block::infer_shape`], without an element computed or
//! allocated. [`infer`] is to this pass what [`call`](crate::hooks::call) is to a forward
//! pass: how a container runs a child, and how the child gets its row in the summary.
//!
//! A forward pass on zeros would do as well for shapes, but it allocates every
//! activation: a summary for a large input took as much memory as training on it, and one
//! too large aborted the process. Here a shape too large is an error from the layer that
//! would have made it, and memory use does not depend on the input's size.

use crate::block::{Block, Geometry};
use crate::error::{NnError, Result};
use kiln_autograd::Var;
use kiln_tensor::elementwise::broadcast_shapes;
use kiln_tensor::layout::concat_shape;
use kiln_tensor::{Float, Shape, Tensor};

/// How far one value reaches back into the network's input: the field's size and the
/// step between neighbouring positions, in input pixels (saturating: a field can only
/// be as large as the input, but strides may multiply past any size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) size: (usize, usize),
    pub(crate) jump: (usize, usize),
    pub(crate) global: bool,
}

impl Field {
    pub(crate) const PIXEL: Field = Field {
        size: (1, 1),
        jump: (1, 1),
        global: false,
    };

    /// The field of a value computed from values with these fields: the largest.
    pub(crate) fn union(self, other: Field) -> Field {
        Field {
            size: (self.size.0.max(other.size.0), self.size.1.max(other.size.1)),
            jump: (self.jump.0.max(other.jump.0), self.jump.1.max(other.jump.1)),
            global: self.global || other.global,
        }
    }

    /// The field after a layer of this geometry.
    pub(crate) fn through(self, geometry: Geometry) -> Field {
        match geometry {
            Geometry::Pointwise => self,
            Geometry::Global => Field {
                global: true,
                ..self
            },
            // r_out = r_in + (k − 1)·d·j_in;  j_out = j_in·s
            Geometry::Window {
                kernel,
                stride,
                dilation,
            } => {
                let grow = |r: usize, k: usize, d: usize, j: usize| {
                    r.saturating_add(k.saturating_sub(1).saturating_mul(d).saturating_mul(j))
                };
                Field {
                    size: (
                        grow(self.size.0, kernel.h, dilation.h, self.jump.0),
                        grow(self.size.1, kernel.w, dilation.w, self.jump.1),
                    ),
                    jump: (
                        self.jump.0.saturating_mul(stride.h),
                        self.jump.1.saturating_mul(stride.w),
                    ),
                    global: self.global,
                }
            }
        }
    }
}

/// A value of the shape-only pass: the shape a block's output would have, and (kept
/// inside) how far it reaches into the network's input. Only shapes a tensor can have
/// are made.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeOnly {
    shape: Shape,
    pub(crate) field: Field,
}

impl ShapeOnly {
    /// The network's input, of `shape`; an error naming `summary` if no tensor can have it.
    pub(crate) fn input(shape: Shape) -> Result<ShapeOnly> {
        shape.elements("summary")?;
        Ok(ShapeOnly {
            shape,
            field: Field::PIXEL,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The value an op keeping each position's dependencies gives under `shape` (an
    /// element-wise function, a reshape); an error naming `op` if no tensor can have it.
    pub fn with_shape(&self, op: &'static str, shape: impl Into<Shape>) -> Result<ShapeOnly> {
        let shape = shape.into();
        shape.elements(op)?;
        Ok(ShapeOnly {
            shape,
            field: self.field,
        })
    }

    /// What a broadcasting element-wise op of two values gives (`Var::add`, …): their
    /// broadcast shape, or the error the op would return.
    pub fn broadcast(&self, op: &'static str, other: &ShapeOnly) -> Result<ShapeOnly> {
        Ok(ShapeOnly {
            shape: broadcast_shapes(op, &self.shape, &other.shape)?,
            field: self.field.union(other.field),
        })
    }

    /// What `Var::concat` gives for `values` joined on `axis`, or the error it would
    /// return.
    pub fn concat(values: &[&ShapeOnly], axis: usize) -> Result<ShapeOnly> {
        let shapes: Vec<&Shape> = values.iter().map(|v| &v.shape).collect();
        let shape = concat_shape(&shapes, axis)?;
        let field = values
            .iter()
            .map(|v| v.field)
            .reduce(Field::union)
            .unwrap_or(Field::PIXEL);
        Ok(ShapeOnly { shape, field })
    }
}

/// Runs `block` in the shape-only pass on `x`, as [`call`](crate::hooks::call) runs it
/// on a value: its [`Block::infer_shape`], or, for a block that cannot tell, its
/// `forward` on zeros of `x`'s shape; and, while a summary is being taken, a row for it.
/// A user block's `infer_shape` runs its children through this.
pub fn infer<T: Float>(block: &dyn Block<T>, x: &ShapeOnly) -> Result<ShapeOnly> {
    let traced = crate::summary::open_row(block);
    let y = match block.infer_shape(x) {
        Some(y) => y,
        None => by_forward(block, x),
    };
    // a layer's field is its geometry applied to its input's; a container's is where its
    // children took the value
    let y = y.map(|y| match block.children().is_empty() {
        true => ShapeOnly {
            field: x.field.through(block.geometry()),
            ..y
        },
        false => y,
    });
    if traced {
        crate::summary::close_row(
            block,
            x.shape(),
            y.as_ref().ok().map(|y| (&y.shape, y.field)),
        );
    }
    y
}

/// The shape-only pass of a block without [`Block::infer_shape`]: its `forward` on zeros
/// of the input's shape, whose children get their rows through `call` and whose ops
/// carry the receptive field (see [`kiln_autograd::observe`]).
pub(crate) fn by_forward<T: Float>(block: &dyn Block<T>, x: &ShapeOnly) -> Result<ShapeOnly> {
    let zeros = Tensor::<T>::try_zeros(x.shape.clone()).map_err(|e| {
        NnError::from(e).in_layer(format!(
            "{} (a block without infer_shape: the summary runs it on zeros)",
            block.name()
        ))
    })?;
    let v = Var::constant(zeros);
    crate::summary::set_field(v.id(), x.field);
    let y = block.forward(&v)?;
    Ok(ShapeOnly {
        shape: y.shape().clone(),
        field: crate::summary::field_of(y.id()),
    })
}
