//! D2L 6.2: the cross-correlation operation, true convolution beside it, and edge
//! detection with a 1×2 kernel.
//!
//!     cargo run --release --example cross_correlation

mod common;

use common::edge_image;
use kiln::tensor::conv2d::reference::{convolve2d, corr2d};
use kiln::tensor::Tensor;
use std::error::Error;
use std::fmt::Write;

#[allow(dead_code)]
const USAGE: &str = "\
D2L 6.2: the cross-correlation operation, true convolution beside it, and edge
detection with a 1×2 kernel: prints the book's numbers.

usage: cargo run --release --example cross_correlation [-- --help]

It takes no flags.";

/// Everything the section prints.
pub fn run() -> Result<String, Box<dyn Error>> {
    let mut out = String::new();
    let x = Tensor::<f32>::arange(9).reshape([3, 3])?;
    let k = Tensor::<f32>::arange(4).reshape([2, 2])?;
    writeln!(out, "X =\n{x}\nK =\n{k}")?;
    writeln!(out, "corr2d(X, K) =\n{}", corr2d(&x, &k)?)?;
    writeln!(
        out,
        "true convolution, K flipped both ways =\n{}",
        convolve2d(&x, &k)?
    )?;

    let image = edge_image();
    let edge = Tensor::<f32>::from_f64s(&[1.0, -1.0], [1, 2])?;
    writeln!(out, "\nedge image X =\n{image}")?;
    writeln!(
        out,
        "corr2d(X, [[1, -1]]): 1 at white→black, -1 at black→white =\n{}",
        corr2d(&image, &edge)?
    )?;
    let transposed = corr2d(&image.transpose(0, 1)?, &edge)?;
    let nothing = transposed.data().iter().all(|&v| v == 0.0);
    writeln!(
        out,
        "corr2d(Xᵀ, [[1, -1]]) finds no vertical edge: all zero = {nothing}"
    )?;
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    common::Args::parse(USAGE, &[]);
    print!("{}", run()?);
    Ok(())
}
