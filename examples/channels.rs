//! D2L 6.4: multiple input and output channels, and the 1×1 convolution as a matrix
//! product over channels.
//!
//!     cargo run --release --example channels

mod common;

use kiln::tensor::conv2d::{conv2d, Conv2dParams};
use kiln::tensor::rand::{rngs::StdRng, SeedableRng};
use kiln::tensor::Tensor;
use std::error::Error;
use std::fmt::Write;

#[allow(dead_code)]
const USAGE: &str = "\
D2L 6.4: multiple input and output channels, and the 1×1 convolution as a matrix
product over channels: prints the book's numbers.

usage: cargo run --release --example channels [-- --help]

It takes no flags.";

/// Everything the section prints.
pub fn run() -> Result<String, Box<dyn Error>> {
    let mut out = String::new();
    let p = Conv2dParams::default();
    let x = Tensor::<f32>::from_f64s(
        &[
            0., 1., 2., 3., 4., 5., 6., 7., 8., 1., 2., 3., 4., 5., 6., 7., 8., 9.,
        ],
        [1, 2, 3, 3],
    )?;
    let k = Tensor::<f32>::from_f64s(&[0., 1., 2., 3., 1., 2., 3., 4.], [1, 2, 2, 2])?;
    writeln!(
        out,
        "two input channels, one kernel per channel, summed:\n{}",
        conv2d(&x, &k, None, &p)?.reshape([2, 2])?
    )?;

    let k3 = Tensor::concat(&[&k, &k.add_scalar(1.0), &k.add_scalar(2.0)], 0)?;
    writeln!(
        out,
        "\nK, K + 1 and K + 2 stacked: kernel shape {}",
        k3.shape()
    )?;
    writeln!(
        out,
        "three output channels:\n{}",
        conv2d(&x, &k3, None, &p)?.reshape([3, 2, 2])?
    )?;

    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::<f32>::rand_uniform([1, 3, 3, 3], 0.0, 1.0, &mut rng);
    let k = Tensor::<f32>::rand_uniform([2, 3, 1, 1], 0.0, 1.0, &mut rng);
    let by_conv = conv2d(&x, &k, None, &p)?;
    let by_matmul = k
        .reshape([2, 3])?
        .matmul(&x.reshape([3, 9])?)?
        .reshape([1, 2, 3, 3])?;
    let diff = by_conv.sub(&by_matmul)?.abs().max_all()?;
    writeln!(
        out,
        "\n1×1 convolution vs matrix product over channels: largest difference {diff:e}"
    )?;
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    common::Args::parse(USAGE, &[]);
    print!("{}", run()?);
    Ok(())
}
