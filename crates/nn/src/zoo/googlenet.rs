//! GoogLeNet as D2L 7.4 builds it: Inception blocks of four parallel paths.

use super::Narrow;
use crate::block::{Block, BlockExt};
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::layers::{Activation::Relu, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, Sequential};
use crate::shape_pass::{infer, ShapeOnly};
use kiln_autograd::Var;
use kiln_tensor::Float;

/// D2L 7.4's Inception block: four paths on the same input, their outputs concatenated on
/// the channel axis — a 1×1 convolution of `c1`; 1×1 of `c2.0` then 3×3 of `c2.1`; 1×1
/// of `c3.0` then 5×5 of `c3.1`; 3×3 max pooling then 1×1 of `c4`; every convolution
/// with ReLU and padding that keeps the size. (The same block is
/// `Concatenate::new().add(..)` of the four paths, with no code of its own.)
///
/// # Shapes
/// (N, C, H, W) → (N, c1 + c2.1 + c3.1 + c4, H, W).
pub struct Inception<T: Float> {
    cell: BlockCell,
    /// D2L's (c1, c2, c3, c4), for [`Block::describe`].
    options: (usize, (usize, usize), (usize, usize), usize),
    p1_1: Conv2D<T>,
    p2_1: Conv2D<T>,
    p2_2: Conv2D<T>,
    p3_1: Conv2D<T>,
    p3_2: Conv2D<T>,
    p4_1: MaxPool2D,
    p4_2: Conv2D<T>,
}

impl<T: Float> Inception<T> {
    /// The block with the paths' output channels `c1` … `c4`.
    pub fn new(c1: usize, c2: (usize, usize), c3: (usize, usize), c4: usize) -> Self {
        Inception {
            cell: BlockCell::new(),
            options: (c1, c2, c3, c4),
            p1_1: Conv2D::new(c1, 1).activation(Relu),
            p2_1: Conv2D::new(c2.0, 1).activation(Relu),
            p2_2: Conv2D::new(c2.1, 3).padding(1).activation(Relu),
            p3_1: Conv2D::new(c3.0, 1).activation(Relu),
            p3_2: Conv2D::new(c3.1, 5).padding(2).activation(Relu),
            p4_1: MaxPool2D::new(3).strides(1).padding(1),
            p4_2: Conv2D::new(c4, 1).activation(Relu),
        }
    }
}

impl<T: Float> Block<T> for Inception<T> {
    fn kind(&self) -> &'static str {
        "Inception"
    }

    fn prefix(&self) -> &'static str {
        "inception"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let p1 = self.p1_1.call(x)?;
        let p2 = self.p2_2.call(&self.p2_1.call(x)?)?;
        let p3 = self.p3_2.call(&self.p3_1.call(x)?)?;
        let p4 = self.p4_2.call(&self.p4_1.call(x)?)?;
        Var::concat(&[&p1, &p2, &p3, &p4], 1).map_err(|e| NnError::from(e).in_layer(self.name()))
    }

    /// The forward's data flow on shapes alone.
    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let run = || -> Result<ShapeOnly> {
            let p1 = infer(&self.p1_1, x)?;
            let p2 = infer(&self.p2_2, &infer(&self.p2_1, x)?)?;
            let p3 = infer(&self.p3_2, &infer(&self.p3_1, x)?)?;
            let p4 = infer(&self.p4_2, &infer::<T>(&self.p4_1, x)?)?;
            ShapeOnly::concat(&[&p1, &p2, &p3, &p4], 1).map_err(|e| e.in_layer(self.name()))
        };
        Some(run())
    }

    fn describe(&self) -> String {
        let (c1, c2, c3, c4) = self.options;
        format!("Inception(c1={c1}, c2={c2:?}, c3={c3:?}, c4={c4})")
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        vec![
            &self.p1_1, &self.p2_1, &self.p2_2, &self.p3_1, &self.p3_2, &self.p4_1, &self.p4_2,
        ]
    }
}

/// GoogLeNet (D2L 7.4): a 7×7 stem, 1×1 and 3×3 convolutions, nine Inception blocks in
/// three stages separated by 3×3 stride-2 max pooling, global average pooling and a dense
/// layer of 10. The book trains it at 96×96, lr 0.1.
///
/// # Shapes
/// (N, 1, 96, 96) → (N, 10); 5,977,530 parameters.
pub fn googlenet<T: Float>() -> Sequential<T> {
    build(Narrow::BOOK)
}

/// [`googlenet`] with every convolution's channels (each path of each Inception block
/// included) divided by `ratio`, rounded down, at least 1: `googlenet_narrow(1)` is
/// `googlenet()`. An error for a ratio of 0. Five halvings take a 32×32 input to 1×1.
pub fn googlenet_narrow<T: Float>(ratio: usize) -> Result<Sequential<T>> {
    Ok(build(Narrow::new("googlenet_narrow", ratio)?))
}

fn build<T: Float>(n: Narrow) -> Sequential<T> {
    let pool = || MaxPool2D::new(3).strides(2).padding(1);
    let inception = |c1: usize, c2: (usize, usize), c3: (usize, usize), c4: usize| {
        Inception::new(
            n.of(c1),
            (n.of(c2.0), n.of(c2.1)),
            (n.of(c3.0), n.of(c3.1)),
            n.of(c4),
        )
    };
    let b1 = Sequential::new()
        .add(
            Conv2D::new(n.of(64), 7)
                .strides(2)
                .padding(3)
                .activation(Relu),
        )
        .add(pool());
    let b2 = Sequential::new()
        .add(Conv2D::new(n.of(64), 1).activation(Relu))
        .add(Conv2D::new(n.of(192), 3).padding(1).activation(Relu))
        .add(pool());
    let b3 = Sequential::new()
        .add(inception(64, (96, 128), (16, 32), 32))
        .add(inception(128, (128, 192), (32, 96), 64))
        .add(pool());
    let b4 = Sequential::new()
        .add(inception(192, (96, 208), (16, 48), 64))
        .add(inception(160, (112, 224), (24, 64), 64))
        .add(inception(128, (128, 256), (24, 64), 64))
        .add(inception(112, (144, 288), (32, 64), 64))
        .add(inception(256, (160, 320), (32, 128), 128))
        .add(pool());
    let b5 = Sequential::new()
        .add(inception(256, (160, 320), (32, 128), 128))
        .add(inception(384, (192, 384), (48, 128), 128))
        .add(GlobalAvgPool2D::new());
    Sequential::new()
        .add(b1)
        .add(b2)
        .add(b3)
        .add(b4)
        .add(b5)
        .add(Dense::new(10))
}
