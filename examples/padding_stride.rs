//! D2L 6.3: how padding and stride set a convolution's output shape, with Gluon-style
//! `Conv2D` layers on an 8×8 input.
//!
//!     cargo run --release --example padding_stride

mod common;

use kiln::nn::{BlockExt, Conv2D, Init};
use kiln::tensor::Tensor;
use std::error::Error;
use std::fmt::Write;

#[allow(dead_code)]
const USAGE: &str = "\
D2L 6.3: the output shapes of Conv2D layers with padding and stride on an 8×8 input.

usage: cargo run --release --example padding_stride [-- --help]

It takes no flags.";

/// The book's `comp_conv2d`: the (h, w) of `conv` applied to an 8×8 input.
fn comp_conv2d(conv: Conv2D<f32>) -> Result<(usize, usize), Box<dyn Error>> {
    conv.initialize(&Init::default(), 0)?;
    let y = conv.predict(&Tensor::zeros([1, 1, 8, 8]))?;
    Ok((y.dims()[2], y.dims()[3]))
}

/// Everything the section prints.
pub fn run() -> Result<String, Box<dyn Error>> {
    let mut out = String::new();
    let cases: [(&str, Conv2D<f32>); 4] = [
        ("kernel 3, padding 1", Conv2D::new(1, 3).padding(1)),
        (
            "kernel (5, 3), padding (2, 1)",
            Conv2D::new(1, (5, 3)).padding((2, 1)),
        ),
        (
            "kernel 3, padding 1, stride 2",
            Conv2D::new(1, 3).padding(1).strides(2),
        ),
        (
            "kernel (3, 5), padding (0, 1), stride (3, 4)",
            Conv2D::new(1, (3, 5)).padding((0, 1)).strides((3, 4)),
        ),
    ];
    for (what, conv) in cases {
        writeln!(out, "{what:<46} → {:?}", comp_conv2d(conv)?)?;
    }
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    common::Args::parse(USAGE, &[]);
    print!("{}", run()?);
    Ok(())
}
