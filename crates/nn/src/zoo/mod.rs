//! Ready-made networks (Gluon's `model_zoo`): the book's LeNet (D2L 6.6) and the networks
//! of *Modern Convolutional Networks* (D2L chapter 7, MXNet edition), each as the book
//! defines it for Fashion-MNIST (1 input channel, 10 classes), with the blocks they are
//! built from, so that a reader can build the chapter's variants.
//!
//! | network | section | input | Gluon's parameter count |
//! |---|---|---|---|
//! | [`lenet`] | 6.6 | 1×28×28 | 44,426 |
//! | [`alexnet`] | 7.1 | 1×224×224 | 46,764,746 |
//! | [`vgg11_small`] | 7.2 | 1×224×224 | 43,093,322 |
//! | [`nin`] | 7.3 | 1×224×224 | 1,992,166 |
//! | [`googlenet`] | 7.4 | 1×96×96 | 5,977,530 |
//! | [`bn_lenet`] | 7.5 | 1×28×28 | 45,330 |
//! | [`resnet18`] | 7.6 | 1×96×96 | 11,186,186 |
//! | [`densenet`] | 7.7 | 1×96×96 | 764,834 |
//!
//! The user blocks among them ([`Residual`], [`Inception`], [`DenseBlock`]) are written as
//! any user would write one: a struct holding its children and a [`crate::BlockCell`],
//! whose `forward` runs them with `call` and combines their outputs.
//!
//! Each network also comes narrow, with the same topology and fewer channels (as D2L 7.2
//! narrows VGG-11 by a `ratio`): [`alexnet_narrow`], [`nin_narrow`], [`googlenet_narrow`],
//! [`resnet18_narrow`], and, with the book's own variables, [`vgg_with`] and
//! [`densenet_with`]; a narrow network trains, or is gradient-checked, in a fraction of the
//! time.

mod alexnet;
mod densenet;
mod googlenet;
mod lenet;
mod nin;
mod resnet;
mod vgg;

pub use alexnet::{alexnet, alexnet_narrow};
pub use densenet::{conv_block, densenet, densenet_with, transition_block, DenseBlock};
pub use googlenet::{googlenet, googlenet_narrow, Inception};
pub use lenet::{bn_lenet, lenet};
pub use nin::{nin, nin_block, nin_narrow};
pub use resnet::{resnet18, resnet18_narrow, resnet_block, Residual};
pub use vgg::{vgg, vgg11_small, vgg_block, vgg_with, VGG11_ARCH};

use crate::block::Block;
use crate::error::{NnError, Result};
use kiln_tensor::Float;

/// Channel counts divided by a ratio, for the narrow networks: `c / ratio` rounded down,
/// and at least 1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Narrow(usize);

impl Narrow {
    /// The book's widths.
    pub(crate) const BOOK: Narrow = Narrow(1);

    /// Widths divided by `ratio`; an error naming `network` for a ratio of 0.
    pub(crate) fn new(network: &str, ratio: usize) -> Result<Narrow> {
        if ratio == 0 {
            return Err(NnError::invalid(
                network,
                "the ratio that divides the channel counts must be at least 1, got 0",
            ));
        }
        Ok(Narrow(ratio))
    }

    /// `c` divided by the ratio, rounded down, at least 1.
    pub(crate) fn of(self, c: usize) -> usize {
        (c / self.0).max(1)
    }
}

/// The networks of the zoo by name (`lenet`, `bn_lenet`, `alexnet`, `vgg11_small`, `nin`,
/// `googlenet`, `resnet18`, `densenet`), as the examples select them.
pub const MODELS: [&str; 8] = [
    "lenet",
    "bn_lenet",
    "alexnet",
    "vgg11_small",
    "nin",
    "googlenet",
    "resnet18",
    "densenet",
];

/// The network called `name` (see [`MODELS`]; `lenet` with the book's sigmoid), boxed, or
/// `None` for another name.
pub fn by_name<T: Float>(name: &str) -> Option<Box<dyn Block<T>>> {
    Some(match name {
        "lenet" => Box::new(lenet::<T>(crate::Activation::Sigmoid)),
        "bn_lenet" => Box::new(bn_lenet::<T>()),
        "alexnet" => Box::new(alexnet::<T>()),
        "vgg11_small" | "vgg11" => Box::new(vgg11_small::<T>()),
        "nin" => Box::new(nin::<T>()),
        "googlenet" => Box::new(googlenet::<T>()),
        "resnet18" => Box::new(resnet18::<T>()),
        "densenet" => Box::new(densenet::<T>()),
        _ => return None,
    })
}

/// The book's input side for network `name`: 28 for the LeNets, 96 for GoogLeNet, ResNet
/// and DenseNet, 224 for AlexNet, VGG and NiN.
pub fn input_side(name: &str) -> Option<usize> {
    Some(match name {
        "lenet" | "bn_lenet" => 28,
        "googlenet" | "resnet18" | "densenet" => 96,
        "alexnet" | "vgg11_small" | "vgg11" | "nin" => 224,
        _ => return None,
    })
}
