//! D2L 6.2.4, "Learning a Kernel": recover the edge detector [[1, −1]] from an image and
//! its edges alone, by gradient descent on the squared error.
//!
//!     cargo run --release --example learn_kernel

mod common;

use common::edge_image;
use kiln::autograd::{Leaf, Result, Tape};
use kiln::tensor::conv2d::reference::corr2d;
use kiln::tensor::rand::{rngs::StdRng, SeedableRng};
use kiln::tensor::{Conv2dParams, Tensor};

#[allow(dead_code)]
const USAGE: &str = "\
D2L 6.2.4: learns the edge detector [[1, -1]] from an image and its edges alone, by
gradient descent on the squared error (10 steps, lr 0.03, seed 0), printing the loss
every 2 steps and the learned kernel.

usage: cargo run --release --example learn_kernel [-- --help]

It takes no flags.";

/// Learns a 1×2 kernel from `X` and `Y = corr2d(X, [[1, −1]])` with `steps` steps of
/// gradient descent at learning rate `lr`, starting from Uniform(−0.07, 0.07) (Gluon's
/// default initializer) drawn from `seed`. Returns the loss of every step and the kernel.
pub fn learn_kernel(seed: u64, steps: usize, lr: f32) -> Result<(Vec<f32>, Tensor<f32>)> {
    let x = edge_image();
    let y = corr2d(&x, &Tensor::from_f64s(&[1.0, -1.0], [1, 2])?)?;
    let (x, y) = (x.into_reshape([1, 1, 6, 8])?, y.into_reshape([1, 1, 6, 7])?);
    let mut rng = StdRng::seed_from_u64(seed);
    let kernel = Leaf::new(Tensor::rand_uniform([1, 1, 1, 2], -0.07, 0.07, &mut rng));
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let tape = Tape::new();
        let y_hat =
            tape.constant(x.clone())
                .conv2d(&tape.leaf(&kernel), None, &Conv2dParams::default())?;
        let loss = y_hat.sub(&tape.constant(y.clone()))?.square()?.sum()?;
        loss.backward()?;
        losses.push(loss.value().item()?);
        kernel.update_with_grad(|k, grad| {
            let grad = grad.expect("backward wrote the kernel's gradient");
            for (k, g) in k.data_mut().iter_mut().zip(grad.data()) {
                *k -= lr * g;
            }
        });
    }
    let learned = kernel.value().reshape([1, 2])?;
    Ok((losses, learned))
}

#[allow(dead_code)]
fn main() -> Result<()> {
    common::Args::parse(USAGE, &[]);
    let (losses, kernel) = learn_kernel(0, 10, 3e-2)?;
    for (i, loss) in losses.iter().enumerate().skip(1).step_by(2) {
        println!("batch {}, loss {loss:.3}", i + 1);
    }
    println!(
        "learned kernel: [{:.4}, {:.4}]",
        kernel.data()[0],
        kernel.data()[1]
    );
    Ok(())
}
