//! D2L 6.2.6, feature maps: the six 5×5 kernels LeNet's first convolution learned, and the
//! maps they produce on a few test images, drawn into one PNG to look at.
//!
//!     cargo run --release --example lenet            # trains and saves runs/lenet.params
//!     cargo run --release --example feature_maps     # writes runs/feature_maps.png

mod common;

use common::Args;
use kiln::autograd::Var;
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt};
use kiln::tensor::Tensor;
use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

const USAGE: &str = "\
Draws LeNet's first-layer kernels and their feature maps on test images.

usage: feature_maps [--params runs/lenet.params] [--activation sigmoid|relu]
                    [--images 4] [--data-dir DIR] [--out runs/feature_maps.png]";

/// Pixels per cell of the grid, and the gap between cells.
const CELL: usize = 56;
const GAP: usize = 8;

/// A grey image being composed, white background.
struct Canvas {
    width: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(cols: usize, rows: usize) -> Self {
        let width = cols * (CELL + GAP) + GAP;
        Canvas {
            width,
            pixels: vec![255; width * (rows * (CELL + GAP) + GAP)],
        }
    }

    /// Draws `values` (h × w), scaled from their own min..max to black..white and
    /// enlarged `zoom` times, centred in cell (row, col).
    fn draw(
        &mut self,
        row: usize,
        col: usize,
        values: &[f32],
        (h, w): (usize, usize),
        zoom: usize,
    ) {
        let (lo, hi) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x0 = GAP + col * (CELL + GAP) + (CELL - w * zoom) / 2;
        let y0 = GAP + row * (CELL + GAP) + (CELL - h * zoom) / 2;
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let v = (values[(y / zoom) * w + x / zoom] - lo) / span;
                self.pixels[(y0 + y) * self.width + x0 + x] = (v * 255.0).round() as u8;
            }
        }
    }

    fn save(&self, path: &PathBuf) -> Result<(), Box<dyn Error>> {
        let height = self.pixels.len() / self.width;
        let mut encoder = png::Encoder::new(
            BufWriter::new(File::create(path)?),
            self.width as u32,
            height as u32,
        );
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&self.pixels)?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse(
        USAGE,
        &["params", "activation", "images", "data-dir", "out"],
    );
    let params = args
        .opt("params")
        .unwrap_or_else(|| "runs/lenet.params".into());
    let name: String = args.get("activation", "sigmoid".to_string());
    let activation =
        Activation::from_name(&name).ok_or(format!("--activation: unknown function {name:?}"))?;
    let count: usize = args.get("images", 4);
    let out = PathBuf::from(
        args.opt("out")
            .unwrap_or_else(|| "runs/feature_maps.png".into()),
    );

    let net = lenet::<f32>(activation);
    if !std::path::Path::new(&params).exists() {
        return Err(format!(
            "no trained LeNet at {params}: run `cargo run --release --example lenet` first"
        )
        .into());
    }
    net.load_parameters(&params)?;
    let test = FashionMnist::new(
        locate_fashion_mnist(args.opt("data-dir").map(PathBuf::from).as_deref())?,
        false,
    )?;
    let batch = DataLoader::new(&test, count.max(1))?
        .epoch::<f32>(0)
        .next()
        .ok_or("the test set is empty")?;
    let maps: Tensor<f32> = net[0]
        .forward(&Var::constant(batch.images.clone()))?
        .value()
        .clone();
    let kernels = net
        .collect_params()
        .get("0.weight")
        .ok_or("LeNet has no first-layer weight")?
        .data()?;

    let channels = kernels.dims()[0];
    let mut canvas = Canvas::new(channels + 1, batch.labels.len() + 1);
    for c in 0..channels {
        canvas.draw(0, c + 1, &kernels.data()[c * 25..(c + 1) * 25], (5, 5), 8);
    }
    let (h, w) = (maps.dims()[2], maps.dims()[3]);
    let classes = batch
        .labels
        .classes()
        .ok_or("Fashion-MNIST has class labels")?;
    for (i, &label) in classes.iter().enumerate() {
        canvas.draw(
            i + 1,
            0,
            &batch.images.data()[i * 784..(i + 1) * 784],
            (28, 28),
            2,
        );
        for c in 0..channels {
            let start = (i * channels + c) * h * w;
            canvas.draw(i + 1, c + 1, &maps.data()[start..start + h * w], (h, w), 2);
        }
        println!(
            "row {} ({}): the image and its {channels} feature maps ({h}×{w})",
            i + 1,
            FashionMnist::CLASSES[label]
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    canvas.save(&out)?;
    println!(
        "top row: the {channels} learned 5×5 kernels of conv0; wrote {}",
        out.display()
    );
    Ok(())
}
