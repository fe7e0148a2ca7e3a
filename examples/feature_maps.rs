//! D2L 6.2.6, feature maps: the six 5×5 kernels LeNet's first convolution learned, and the
//! maps they produce on a few test images, drawn into one labelled PNG to look at. A
//! forward hook on every layer (`register_forward_hook`, as Gluon's) records each one's
//! output as the network runs: the table it prints, the maps it draws and the network's
//! guesses all come from them.
//!
//!     cargo run --release --example lenet            # trains and saves runs/lenet.params
//!     cargo run --release --example feature_maps     # writes runs/feature_maps.png

mod common;

use common::Args;
use kiln::nn::checkpoint::load_weights;
use kiln::nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, Sequential};
use kiln::tensor::Tensor;
use std::cell::RefCell;
use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const USAGE: &str = "\
Draws LeNet's first-layer kernels and their feature maps on test images, in a PNG whose
rows are labelled with the images' classes (and the network's guess) and whose columns
with the kernel index; prints every layer's output shape and range.

usage: feature_maps [--params runs/lenet.params] [--activation sigmoid|relu]
                    [--images 4] [--data-dir DIR] [--out runs/feature_maps.png]

--params takes a parameter file (--save) or a training-state file (a checkpoint).";

/// Pixels of one cell of the grid (a 24×24 map at 4× fills it), and between cells.
const CELL: usize = 96;
const GAP: usize = 16;
/// The margin around the picture, and the width of the column of row labels.
const MARGIN: usize = 12;
const LABEL_WIDTH: usize = 196;
/// Text is drawn at this many pixels per font pixel.
const TEXT_SCALE: usize = 2;

/// A 5×8 bitmap font of our own: each glyph is 8 rows of 5 pixels (bit 4 is the left
/// column), lowercase letters with descenders, digits and some punctuation.
#[rustfmt::skip]
const FONT: &[(char, [u8; 8])] = &[
    (' ', [0, 0, 0, 0, 0, 0, 0, 0]),
    ('a', [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0]),
    ('b', [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0]),
    ('c', [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0]),
    ('d', [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0]),
    ('e', [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0]),
    ('f', [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0]),
    ('g', [0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110]),
    ('h', [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0]),
    ('i', [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0]),
    ('j', [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100]),
    ('k', [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0]),
    ('l', [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0]),
    ('m', [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001, 0]),
    ('n', [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0]),
    ('o', [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0]),
    ('p', [0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000]),
    ('q', [0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001]),
    ('r', [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0]),
    ('s', [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0]),
    ('t', [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0]),
    ('u', [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0]),
    ('v', [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0]),
    ('w', [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0]),
    ('x', [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0]),
    ('y', [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110]),
    ('z', [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0]),
    ('0', [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0]),
    ('1', [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0]),
    ('2', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0]),
    ('3', [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0]),
    ('4', [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0]),
    ('5', [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0]),
    ('6', [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0]),
    ('7', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0]),
    ('8', [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0]),
    ('9', [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0]),
    ('-', [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0]),
    ('.', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0]),
    (',', [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000, 0]),
    (':', [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000, 0]),
    ('(', [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0]),
    (')', [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0]),
    ('/', [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000, 0]),
];

/// The glyph of `c` (upper case drawn as lower case), if the font has one.
pub fn glyph(c: char) -> Option<[u8; 8]> {
    let c = c.to_ascii_lowercase();
    FONT.iter().find(|(g, _)| *g == c).map(|&(_, rows)| rows)
}

/// Pixels from one character's left edge to the next one's.
pub const ADVANCE: usize = 6 * TEXT_SCALE;
/// Pixels from one line of text to the next.
pub const LINE: usize = 10 * TEXT_SCALE;

/// A grey image being composed, white background.
pub struct Canvas {
    /// Pixels per row.
    pub width: usize,
    /// Row after row, 0 black to 255 white.
    pub pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            pixels: vec![255; width * height],
        }
    }

    /// Rows of pixels.
    pub fn height(&self) -> usize {
        self.pixels.len() / self.width
    }

    /// Writes `text` in black with its top-left corner at (x, y); a character the font
    /// lacks is an error, not a blank.
    fn text(&mut self, x: usize, y: usize, text: &str) -> Result<(), Box<dyn Error>> {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c).ok_or_else(|| format!("the font has no glyph for {c:?}"))?;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits >> (4 - col) & 1 == 1 {
                        for dy in 0..TEXT_SCALE {
                            for dx in 0..TEXT_SCALE {
                                let px = x + i * ADVANCE + col * TEXT_SCALE + dx;
                                let py = y + r * TEXT_SCALE + dy;
                                if px < self.width && py < self.height() {
                                    self.pixels[py * self.width + px] = 0;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Draws `values` (h × w), scaled from their own min..max to black..white and
    /// enlarged `zoom` times, centred in the cell whose top-left corner is (x, y).
    fn draw(
        &mut self,
        (x, y): (usize, usize),
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
        let x0 = x + (CELL - w * zoom) / 2;
        let y0 = y + (CELL - h * zoom) / 2;
        for yy in 0..h * zoom {
            for xx in 0..w * zoom {
                let v = (values[(yy / zoom) * w + xx / zoom] - lo) / span;
                self.pixels[(y0 + yy) * self.width + x0 + xx] = (v * 255.0).round() as u8;
            }
        }
    }

    /// Writes the canvas as an 8-bit grey PNG.
    pub fn save(&self, path: &Path) -> Result<(), Box<dyn Error>> {
        let file = File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut encoder = png::Encoder::new(
            BufWriter::new(file),
            self.width as u32,
            self.height() as u32,
        );
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&self.pixels)?;
        Ok(())
    }
}

/// What one layer gave, as its forward hook saw it.
pub struct LayerOutput {
    /// The network's name of the layer (`conv0`).
    pub name: String,
    /// Its output.
    pub value: Tensor<f32>,
}

/// Runs `net` on `images` (N, 1, 28, 28) with a forward hook on every layer, and returns
/// each layer's output in the order they ran (the hooks are removed again).
pub fn layer_outputs(
    net: &Sequential<f32>,
    images: &Tensor<f32>,
) -> Result<Vec<LayerOutput>, Box<dyn Error>> {
    let seen: Rc<RefCell<Vec<LayerOutput>>> = Rc::default();
    let mut handles = Vec::new();
    for layer in net.iter() {
        let log = Rc::clone(&seen);
        handles.push(layer.register_forward_hook(move |block, _, y| {
            log.borrow_mut().push(LayerOutput {
                name: block.name(),
                value: y.value().clone(),
            })
        })?);
    }
    let result = net.predict(images);
    handles.into_iter().for_each(|h| h.detach());
    result?;
    Ok(Rc::try_unwrap(seen)
        .map_err(|_| "a hook outlived the run")?
        .into_inner())
}

/// The picture: a title, a header row naming each column (the input image, then kernel
/// 0, 1, …), the first convolution's kernels, then one row per image, labelled with its
/// class and the network's guess, holding the image and its feature maps.
pub fn picture(
    kernels: &Tensor<f32>,
    images: &Tensor<f32>,
    maps: &Tensor<f32>,
    rows: &[(&str, &str)],
) -> Result<Canvas, Box<dyn Error>> {
    let (channels, kh, kw) = (kernels.dims()[0], kernels.dims()[2], kernels.dims()[3]);
    let (h, w) = (maps.dims()[2], maps.dims()[3]);
    let (ih, iw) = (images.dims()[2], images.dims()[3]);
    let pitch = CELL + GAP;
    let grid_top = MARGIN + 2 * LINE + LINE;
    let width = MARGIN + LABEL_WIDTH + (channels + 1) * pitch + MARGIN;
    let height = grid_top + (rows.len() + 1) * pitch + MARGIN;
    let mut canvas = Canvas::new(width, height);
    canvas.text(
        MARGIN,
        MARGIN,
        &format!("lenet conv0: {channels} learned {kh}x{kw} kernels"),
    )?;
    canvas.text(
        MARGIN,
        MARGIN + LINE,
        &format!("and their {h}x{w} feature maps, column by kernel"),
    )?;
    let cell_x = |col: usize| MARGIN + LABEL_WIDTH + col * pitch;
    let cell_y = |row: usize| grid_top + row * pitch;
    canvas.text(
        cell_x(0) + (CELL - 5 * ADVANCE) / 2,
        grid_top - LINE,
        "image",
    )?;
    for c in 0..channels {
        let label = format!("kernel {c}");
        let x = cell_x(c + 1) + CELL.saturating_sub(label.len() * ADVANCE) / 2;
        canvas.text(x, grid_top - LINE, &label)?;
        let zoom = (CELL / kh.max(kw)).min(16);
        canvas.draw(
            (cell_x(c + 1), cell_y(0)),
            &kernels.data()[c * kh * kw..(c + 1) * kh * kw],
            (kh, kw),
            zoom,
        );
    }
    canvas.text(MARGIN, cell_y(0) + CELL / 2 - LINE / 2, "kernels")?;
    for (i, (class, guess)) in rows.iter().enumerate() {
        let y = cell_y(i + 1);
        canvas.text(MARGIN, y + CELL / 2 - LINE, class)?;
        canvas.text(MARGIN, y + CELL / 2, &format!("net: {guess}"))?;
        let image = &images.data()[i * ih * iw..(i + 1) * ih * iw];
        canvas.draw((cell_x(0), y), image, (ih, iw), CELL / ih.max(iw));
        for c in 0..channels {
            let start = (i * channels + c) * h * w;
            let map = &maps.data()[start..start + h * w];
            canvas.draw((cell_x(c + 1), y), map, (h, w), CELL / h.max(w));
        }
    }
    Ok(canvas)
}

/// The index of the largest of `scores`.
fn argmax(scores: &[f32]) -> usize {
    (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(0)
}

/// Loads `params` into a LeNet, runs it on the first `count` test images with a hook on
/// every layer, prints each layer's output, and returns the picture.
pub fn run(
    net: &Sequential<f32>,
    data_dir: Option<&Path>,
    count: usize,
) -> Result<Canvas, Box<dyn Error>> {
    let test = FashionMnist::new(locate_fashion_mnist(data_dir)?, false)?;
    let batch = DataLoader::new(&test, count.max(1))?
        .epoch::<f32>(0)
        .next()
        .ok_or("the test set is empty")?;
    let outputs = layer_outputs(net, &batch.images)?;
    for out in &outputs {
        let (lo, hi) = out
            .value
            .data()
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        println!(
            "{:<7} output {:<18} values {lo:>8.4} .. {hi:.4}",
            out.name,
            out.value.shape().to_string()
        );
    }
    let find = |name: &str| {
        outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.value)
            .ok_or(format!("no layer {name} ran"))
    };
    let maps = find("conv0")?;
    let scores = &outputs.last().ok_or("LeNet has no layers")?.value;
    let kernels = net
        .collect_params()
        .get("0.weight")
        .ok_or("LeNet has no first-layer weight")?
        .data()?;
    let classes = batch
        .labels
        .classes()
        .ok_or("Fashion-MNIST has class labels")?;
    let k = scores.dims()[1];
    let rows: Vec<(&str, &str)> = classes
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let guess = argmax(&scores.data()[i * k..(i + 1) * k]);
            (FashionMnist::CLASSES[label], FashionMnist::CLASSES[guess])
        })
        .collect();
    picture(&kernels, &batch.images, maps, &rows)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse(
        USAGE,
        &["params", "activation", "images", "data-dir", "out"],
    );
    let params = PathBuf::from(
        args.opt("params")
            .unwrap_or_else(|| "runs/lenet.params".into()),
    );
    let name: String = args.get("activation", "sigmoid".to_string());
    let activation =
        Activation::from_name(&name).ok_or(format!("--activation: unknown function {name:?}"))?;
    let count: usize = args.get("images", 4);
    let out = PathBuf::from(
        args.opt("out")
            .unwrap_or_else(|| "runs/feature_maps.png".into()),
    );
    if !params.exists() {
        return Err(format!(
            "no trained LeNet at {}: run `cargo run --release --example lenet` first",
            params.display()
        )
        .into());
    }
    let net = lenet::<f32>(activation);
    load_weights(&net.collect_params(), &params)?;
    let canvas = run(
        &net,
        args.opt("data-dir").map(PathBuf::from).as_deref(),
        count,
    )?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    canvas.save(&out)?;
    println!(
        "wrote {} ({}×{}): rows are test images by class (and the network's guess), \
         columns the image and conv0's kernels 0..",
        out.display(),
        canvas.width,
        canvas.height()
    );
    Ok(())
}
