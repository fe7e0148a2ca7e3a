//! ResNet-18 as D2L 7.6 builds it: residual blocks of two 3×3 convolutions with batch
//! normalization, whose input is added back before the last ReLU.

use super::Narrow;
use crate::block::{Block, BlockExt};
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::layers::{
    Activation::Relu, BatchNorm, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, Sequential,
};
use crate::shape_pass::{infer, ShapeOnly};
use kiln_autograd::Var;
use kiln_tensor::Float;

/// D2L 7.6's residual block: `Y = relu(bn1(conv1(X)))`, `Y = bn2(conv2(Y))`, then
/// `relu(Y + X)`, where X first goes through a 1×1 convolution (`use_1x1conv`) when the
/// channels or the stride change. Both convolutions are 3×3 with padding 1; the first
/// (and the 1×1 one) has stride `strides`.
///
/// ```
/// use kiln_nn::{zoo::Residual, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // D2L 7.6: the shape is kept, or, with the 1×1 convolution and stride 2, the channels
/// // change (3 → 6) and the size halves
/// let blk = Residual::<f32>::new(3, false, 1);
/// blk.initialize(&Init::xavier(), 0)?;
/// assert_eq!(blk.predict(&Tensor::zeros([4, 3, 6, 6]))?.dims(), &[4, 3, 6, 6]);
/// let blk = Residual::<f32>::new(6, true, 2);
/// blk.initialize(&Init::xavier(), 0)?;
/// assert_eq!(blk.predict(&Tensor::zeros([4, 3, 6, 6]))?.dims(), &[4, 6, 3, 3]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
///
/// # Shapes
/// (N, C, H, W) → (N, num_channels, ⌈H/strides⌉, ⌈W/strides⌉); without the 1×1
/// convolution C must equal `num_channels` and `strides` be 1.
pub struct Residual<T: Float> {
    cell: BlockCell,
    /// D2L's (num_channels, use_1x1conv, strides), for [`Block::describe`].
    options: (usize, bool, usize),
    conv1: Conv2D<T>,
    conv2: Conv2D<T>,
    conv3: Option<Conv2D<T>>,
    bn1: BatchNorm<T>,
    bn2: BatchNorm<T>,
}

impl<T: Float> Residual<T> {
    /// The block with `num_channels` output channels (D2L's
    /// `Residual(num_channels, use_1x1conv, strides)`).
    pub fn new(num_channels: usize, use_1x1conv: bool, strides: usize) -> Self {
        Residual {
            cell: BlockCell::new(),
            options: (num_channels, use_1x1conv, strides),
            conv1: Conv2D::new(num_channels, 3).padding(1).strides(strides),
            conv2: Conv2D::new(num_channels, 3).padding(1),
            conv3: use_1x1conv.then(|| Conv2D::new(num_channels, 1).strides(strides)),
            bn1: BatchNorm::new(),
            bn2: BatchNorm::new(),
        }
    }
}

impl<T: Float> Residual<T> {
    /// The error of a shortcut that does not fit the block's output.
    fn misfit(&self, e: NnError, shortcut: &kiln_tensor::Shape, y: &kiln_tensor::Shape) -> NnError {
        e.in_layer(format!(
            "{} (the shortcut {shortcut} does not match the block's output {y}: use the 1×1 \
             convolution)",
            self.name()
        ))
    }
}

impl<T: Float> Block<T> for Residual<T> {
    fn kind(&self) -> &'static str {
        "Residual"
    }

    fn prefix(&self) -> &'static str {
        "residual"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let y = self.bn1.call(&self.conv1.call(x)?)?.relu()?;
        let y = self.bn2.call(&self.conv2.call(&y)?)?;
        let shortcut = match &self.conv3 {
            Some(conv) => conv.call(x)?,
            None => x.clone(),
        };
        let sum = y
            .add(&shortcut)
            .map_err(|e| self.misfit(NnError::from(e), shortcut.shape(), y.shape()))?;
        Ok(sum.relu()?)
    }

    /// The forward's data flow on shapes alone.
    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let run = || -> Result<ShapeOnly> {
            let y = infer(&self.bn1, &infer(&self.conv1, x)?)?;
            let y = infer(&self.bn2, &infer(&self.conv2, &y)?)?;
            let shortcut = match &self.conv3 {
                Some(conv) => infer(conv, x)?,
                None => x.clone(),
            };
            y.broadcast("add", &shortcut)
                .map_err(|e| self.misfit(e, shortcut.shape(), y.shape()))
        };
        Some(run())
    }

    fn describe(&self) -> String {
        let (c, one_by_one, s) = self.options;
        format!("Residual(num_channels={c}, use_1x1conv={one_by_one}, strides={s})")
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        // Gluon's registration order: conv1, conv2, conv3, bn1, bn2
        let mut out: Vec<&dyn Block<T>> = vec![&self.conv1, &self.conv2];
        if let Some(c) = &self.conv3 {
            out.push(c);
        }
        out.push(&self.bn1);
        out.push(&self.bn2);
        out
    }
}

/// D2L 7.6's `resnet_block`: `num_residuals` residual blocks of `num_channels`, the first
/// halving the size with a 1×1 shortcut unless `first_block`.
pub fn resnet_block<T: Float>(
    num_channels: usize,
    num_residuals: usize,
    first_block: bool,
) -> Sequential<T> {
    let mut blk = Sequential::new();
    for i in 0..num_residuals {
        if i == 0 && !first_block {
            blk.push(Residual::new(num_channels, true, 2));
        } else {
            blk.push(Residual::new(num_channels, false, 1));
        }
    }
    blk
}

/// ResNet-18 (D2L 7.6): a 7×7 stride-2 stem with BatchNorm, ReLU and 3×3 stride-2 max
/// pooling, four stages of two residual blocks (64, 128, 256, 512 channels), global
/// average pooling and a dense layer of 10. The book trains it at 96×96, lr 0.05.
///
/// # Shapes
/// (N, 1, 96, 96) → (N, 10): 64×24×24 after the stem, then 64×24×24, 128×12×12, 256×6×6,
/// 512×3×3, 512×1×1; 11,186,186 parameters.
pub fn resnet18<T: Float>() -> Sequential<T> {
    build(Narrow::BOOK)
}

/// [`resnet18`] with every convolution's channels divided by `ratio` (rounded down, at
/// least 1): `resnet18_narrow(1)` is `resnet18()`. An error for a ratio of 0.
///
/// ```
/// use kiln_nn::{zoo::resnet18_narrow, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // ratio 16: stages of 4, 8, 16 and 32 channels
/// let net = resnet18_narrow::<f32>(16)?;
/// net.initialize(&Init::xavier(), 0)?;
/// let s = net.summary([1, 1, 32, 32])?;
/// assert_eq!(s.rows.iter().filter(|r| r.depth == 0).nth(7).unwrap().output.dims(), &[1, 32, 1, 1]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn resnet18_narrow<T: Float>(ratio: usize) -> Result<Sequential<T>> {
    Ok(build(Narrow::new("resnet18_narrow", ratio)?))
}

fn build<T: Float>(n: Narrow) -> Sequential<T> {
    Sequential::new()
        .add(Conv2D::new(n.of(64), 7).strides(2).padding(3))
        .add(BatchNorm::new())
        .add(Relu)
        .add(MaxPool2D::new(3).strides(2).padding(1))
        .add(resnet_block(n.of(64), 2, true))
        .add(resnet_block(n.of(128), 2, false))
        .add(resnet_block(n.of(256), 2, false))
        .add(resnet_block(n.of(512), 2, false))
        .add(GlobalAvgPool2D::new())
        .add(Dense::new(10))
}
