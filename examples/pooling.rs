//! D2L 6.5: max and average pooling, padding and stride, and pooling per channel.
//!
//!     cargo run --release --example pooling

mod common;

use kiln::tensor::pool2d::{avg_pool2d, max_pool2d};
use kiln::tensor::{Pool2dParams, Tensor};
use std::error::Error;
use std::fmt::Write;

#[allow(dead_code)]
const USAGE: &str = "\
D2L 6.5: max and average pooling, padding and stride, and pooling per channel:
prints the book's numbers.

usage: cargo run --release --example pooling [-- --help]

It takes no flags.";

/// Everything the section prints.
pub fn run() -> Result<String, Box<dyn Error>> {
    let mut out = String::new();
    let x = Tensor::<f32>::arange(9).reshape([1, 1, 3, 3])?;
    let p = Pool2dParams::new(2).stride(1);
    writeln!(out, "X =\n{}", x.reshape([3, 3])?)?;
    writeln!(
        out,
        "2×2 max pooling =\n{}",
        max_pool2d(&x, &p)?.reshape([2, 2])?
    )?;
    writeln!(
        out,
        "2×2 average pooling =\n{}",
        avg_pool2d(&x, &p)?.reshape([2, 2])?
    )?;

    let x = Tensor::<f32>::arange(16).reshape([1, 1, 4, 4])?;
    writeln!(out, "\nX =\n{}", x.reshape([4, 4])?)?;
    let cases = [
        ("window 3 (stride 3 by default)", Pool2dParams::new(3)),
        (
            "window 3, padding 1, stride 2",
            Pool2dParams::new(3).padding(1).stride(2),
        ),
        (
            "window (2, 3), padding (1, 2), stride (2, 3)",
            Pool2dParams::new((2, 3)).padding((1, 2)).stride((2, 3)),
        ),
    ];
    for (what, p) in cases {
        let y = max_pool2d(&x, &p)?;
        writeln!(
            out,
            "max pooling, {what} =\n{}",
            y.reshape([y.dims()[2], y.dims()[3]])?
        )?;
    }

    let two = Tensor::concat(&[&x, &x.add_scalar(1.0)], 1)?;
    let y = max_pool2d(&two, &Pool2dParams::new(3).padding(1).stride(2))?;
    writeln!(
        out,
        "\nchannels X and X + 1 pool separately: output shape {}\n{}",
        y.shape(),
        y.reshape([2, 2, 2])?
    )?;
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    common::Args::parse(USAGE, &[]);
    print!("{}", run()?);
    Ok(())
}
