//! DenseNet as D2L 7.7 builds it: dense blocks whose convolutions each see the
//! concatenation of all earlier outputs, and transition blocks that shrink them.

use crate::block::Block;
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::layers::{
    Activation::Relu, AvgPool2D, BatchNorm, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, Sequential,
};
use crate::shape_pass::{infer, ShapeOnly};
use kiln_autograd::Var;
use kiln_tensor::Float;

/// D2L 7.7's `conv_block`: BatchNorm, ReLU, then a 3×3 convolution of `num_channels` with
/// padding 1 (the pre-activation order of DenseNet).
pub fn conv_block<T: Float>(num_channels: usize) -> Sequential<T> {
    Sequential::new()
        .add(BatchNorm::new())
        .add(Relu)
        .add(Conv2D::new(num_channels, 3).padding(1))
}

/// D2L 7.7's dense block: `num_convs` conv blocks of `num_channels` (the growth rate),
/// each given the concatenation on the channel axis of the block's input and every
/// earlier conv block's output.
///
/// ```
/// use kiln_nn::{zoo::DenseBlock, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // D2L 7.7: 3 channels plus 2 convolutions of 10 give 23
/// let blk = DenseBlock::<f32>::new(2, 10);
/// blk.initialize(&Init::xavier(), 0)?;
/// assert_eq!(blk.predict(&Tensor::zeros([4, 3, 8, 8]))?.dims(), &[4, 23, 8, 8]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
///
/// # Shapes
/// (N, C, H, W) → (N, C + num_convs · num_channels, H, W).
pub struct DenseBlock<T: Float> {
    cell: BlockCell,
    /// D2L's (num_convs, num_channels), for [`Block::describe`].
    options: (usize, usize),
    net: Sequential<T>,
}

impl<T: Float> DenseBlock<T> {
    /// The block (D2L's `DenseBlock(num_convs, num_channels)`).
    pub fn new(num_convs: usize, num_channels: usize) -> Self {
        let mut net = Sequential::new();
        for _ in 0..num_convs {
            net.push(conv_block(num_channels));
        }
        DenseBlock {
            cell: BlockCell::new(),
            options: (num_convs, num_channels),
            net,
        }
    }
}

impl<T: Float> Block<T> for DenseBlock<T> {
    fn kind(&self) -> &'static str {
        "DenseBlock"
    }

    fn prefix(&self) -> &'static str {
        "denseblock"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        let mut x = x.clone();
        for blk in self.net.iter() {
            let y = blk.call(&x)?;
            x = Var::concat(&[&x, &y], 1).map_err(|e| NnError::from(e).in_layer(self.name()))?;
        }
        Ok(x)
    }

    /// The forward's data flow on shapes alone.
    fn infer_shape(&self, x: &ShapeOnly) -> Option<Result<ShapeOnly>> {
        let run = || -> Result<ShapeOnly> {
            let mut x = x.clone();
            for blk in self.net.iter() {
                let y = infer(blk, &x)?;
                x = ShapeOnly::concat(&[&x, &y], 1).map_err(|e| e.in_layer(self.name()))?;
            }
            Ok(x)
        };
        Some(run())
    }

    fn describe(&self) -> String {
        let (n, c) = self.options;
        format!("DenseBlock(num_convs={n}, num_channels={c})")
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        vec![&self.net]
    }
}

/// D2L 7.7's transition block: BatchNorm, ReLU, a 1×1 convolution to `num_channels`, and
/// 2×2 average pooling with stride 2.
pub fn transition_block<T: Float>(num_channels: usize) -> Sequential<T> {
    Sequential::new()
        .add(BatchNorm::new())
        .add(Relu)
        .add(Conv2D::new(num_channels, 1))
        .add(AvgPool2D::new(2).strides(2))
}

/// DenseNet (D2L 7.7): a ResNet-like stem, four dense blocks of 4 convolutions with
/// growth rate 32, a transition block halving the channels between them, BatchNorm, ReLU,
/// global average pooling and a dense layer of 10. The book trains it at 96×96, lr 0.1.
///
/// # Shapes
/// (N, 1, 96, 96) → (N, 10); 764,834 parameters.
pub fn densenet<T: Float>() -> Sequential<T> {
    densenet_with(64, 32, &[4, 4, 4, 4])
}

/// DenseNet with the book's variables: a stem of `num_channels`, dense blocks of
/// `num_convs_in_dense_blocks` convolutions with `growth_rate`, each but the last followed
/// by a transition block halving the channels (rounded down, as the book's `//`):
/// `densenet_with(64, 32, &[4, 4, 4, 4])` is [`densenet`]. With four dense blocks, 32×32 is
/// the smallest input (the stem and the three transitions halve it five times).
///
/// ```
/// use kiln_nn::{zoo::densenet_with, BlockExt, Init};
/// use kiln_tensor::Tensor;
/// // 8 channels, growth 4: 8 + 4·4 = 24, halved to 12, 28, 14, 30, 15, then 31
/// let net = densenet_with::<f32>(8, 4, &[4, 4, 4, 4]);
/// net.initialize(&Init::xavier(), 0)?;
/// let s = net.summary([1, 1, 32, 32])?;
/// let top: Vec<_> = s.rows.iter().filter(|r| r.depth == 0).collect();
/// assert_eq!(top[10].output.dims(), &[1, 31, 1, 1]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn densenet_with<T: Float>(
    num_channels: usize,
    growth_rate: usize,
    num_convs_in_dense_blocks: &[usize],
) -> Sequential<T> {
    let mut net = Sequential::new()
        .add(Conv2D::new(num_channels, 7).strides(2).padding(3))
        .add(BatchNorm::new())
        .add(Relu)
        .add(MaxPool2D::new(3).strides(2).padding(1));
    let mut num_channels = num_channels;
    let convs = num_convs_in_dense_blocks;
    for (i, &num_convs) in convs.iter().enumerate() {
        net.push(DenseBlock::new(num_convs, growth_rate));
        num_channels += num_convs * growth_rate;
        if i != convs.len() - 1 {
            num_channels /= 2;
            net.push(transition_block(num_channels));
        }
    }
    net.add(BatchNorm::new())
        .add(Relu)
        .add(GlobalAvgPool2D::new())
        .add(Dense::new(10))
}
