//! The SIMD levels as a user meets them: every level gives the same bits on one thread as
//! on two (the kernels split work into fixed partitions, whatever the level), and a bad
//! `KILN_SIMD` stops the process with a message instead of crashing or running another
//! level.

use kiln_tensor::conv2d::pooled::conv2d_max_pool2d_with_argmax;
use kiln_tensor::conv2d::{
    conv2d_activation, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    Conv2dParams,
};
use kiln_tensor::parallel::with_threads;
use kiln_tensor::pool2d::{max_pool2d_backward, max_pool2d_with_argmax};
use kiln_tensor::simd::{with_level, Level};
use kiln_tensor::{Activation, Pool2dParams, Tensor};
use rand::{rngs::StdRng, SeedableRng};

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// Every product of a LeNet-sized step, as bits: both convolutions' three gradients, the
/// fused forward, pooling and its gradient, a dense product and the activation's step.
fn step_bits() -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(7);
    // 40 images: five tasks of 8, enough work for the pool to split
    let x = Tensor::<f32>::rand_uniform([40, 6, 12, 12], -1.0, 1.0, &mut rng);
    let w = Tensor::<f32>::rand_uniform([16, 6, 5, 5], -1.0, 1.0, &mut rng);
    let b = Tensor::<f32>::rand_uniform([16], -1.0, 1.0, &mut rng);
    let p = Conv2dParams::default();
    let y = conv2d_activation(&x, &w, Some(&b), &p, Some(Activation::Sigmoid)).unwrap();
    let dy = Tensor::<f32>::rand_uniform(y.shape().clone(), -1.0, 1.0, &mut rng);
    let padded = Conv2dParams::default().padding(2);
    let w1 = Tensor::<f32>::rand_uniform([6, 6, 5, 5], -1.0, 1.0, &mut rng);
    let y1 = conv2d_activation(&x, &w1, None, &padded, None).unwrap();
    let dy1 = Tensor::<f32>::rand_uniform(y1.shape().clone(), -1.0, 1.0, &mut rng);
    let pool = Pool2dParams::new(2);
    let (pooled, arg) = max_pool2d_with_argmax(&y, &pool).unwrap();
    let (fused, _) =
        conv2d_max_pool2d_with_argmax(&x, &w, Some(&b), &p, Some(Activation::Relu), &pool).unwrap();
    let a = Tensor::<f32>::rand_uniform([300, 96], -1.0, 1.0, &mut rng);
    let m = Tensor::<f32>::rand_uniform([96, 120], -1.0, 1.0, &mut rng);
    // a small output plane (3×3, stride 2 from 6×6): the batched lowering
    let x2 = Tensor::<f32>::rand_uniform([40, 16, 6, 6], -1.0, 1.0, &mut rng);
    let w2 = Tensor::<f32>::rand_uniform([32, 16, 3, 3], -1.0, 1.0, &mut rng);
    let strided = Conv2dParams::default().padding(1).stride(2);
    let y2 = conv2d_activation(&x2, &w2, None, &strided, None).unwrap();
    let dy2 = Tensor::<f32>::rand_uniform(y2.shape().clone(), -1.0, 1.0, &mut rng);
    let mut grad = dy.clone();
    Activation::Sigmoid.backward_in_place(grad.data_mut(), y.data());
    vec![
        bits(&y),
        bits(&conv2d_backward_input(&dy, &w, x.shape(), &p).unwrap()),
        bits(&conv2d_backward_weight(&dy, &x, w.shape(), &p).unwrap()),
        bits(&conv2d_backward_bias(&dy).unwrap()),
        bits(&y1),
        bits(&conv2d_backward_input(&dy1, &w1, x.shape(), &padded).unwrap()),
        bits(&conv2d_backward_weight(&dy1, &x, w1.shape(), &padded).unwrap()),
        bits(&pooled),
        bits(&max_pool2d_backward(&pooled, &arg, y.shape(), &pool).unwrap()),
        bits(&fused),
        bits(&a.matmul(&m).unwrap()),
        bits(&grad),
        bits(&y2),
        bits(&conv2d_backward_input(&dy2, &w2, x2.shape(), &strided).unwrap()),
        bits(&conv2d_backward_weight(&dy2, &x2, w2.shape(), &strided).unwrap()),
    ]
}

#[test]
fn every_level_gives_the_same_bits_on_one_thread_and_on_two() {
    for level in Level::supported() {
        let run =
            |threads| with_threads(threads, || with_level(level, step_bits).unwrap()).unwrap();
        let (one, two) = (run(1), run(2));
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!(
                a == b,
                "{level}: product {i} differs between 1 and 2 threads"
            );
        }
    }
}

#[test]
#[ignore = "run by bad_kiln_simd_stops_the_process_with_a_message, in a child process"]
fn child_reads_kiln_simd() {
    let level = kiln_tensor::simd::process_level();
    println!("level {level}");
}

#[test]
fn bad_kiln_simd_stops_the_process_with_a_message() {
    let missing = Level::ALL.into_iter().find(|l| !l.is_supported());
    let mut cases = vec![("avx3", Some("unknown level \"avx3\"")), ("scalar", None)];
    if let Some(l) = missing {
        cases.push((l.name(), Some("this CPU cannot run")));
    }
    for (value, error) in cases {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_reads_kiln_simd",
                "--nocapture",
            ])
            .env("KILN_SIMD", value)
            .env_remove("KILN_NO_SIMD")
            .output();
        let Ok(out) = child else {
            // an emulator that cannot start a child of its own architecture
            eprintln!("cannot start a child process here: skipped");
            return;
        };
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        if !stdout.contains("running 1 test") {
            // the child never reached the harness: an emulator that cannot start a
            // program of its own architecture (qemu-user without binfmt)
            eprintln!("a child process cannot run here ({}): skipped", out.status);
            return;
        }
        match error {
            Some(msg) => {
                assert_eq!(out.status.code(), Some(2), "KILN_SIMD={value}: {stderr}");
                assert!(
                    stderr.contains(&format!("KILN_SIMD: {msg}")),
                    "KILN_SIMD={value}: {stderr}"
                );
            }
            None => {
                assert!(out.status.success(), "KILN_SIMD={value}: {stderr}");
                assert!(stdout.contains(&format!("level {value}")), "{stdout}");
            }
        }
    }
}
