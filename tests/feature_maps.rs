//! The feature-map example's picture: every layer's output seen through forward hooks,
//! and a PNG a person can read (rows labelled with the class names, columns with the
//! kernel index, text in a bitmap font at a legible size).

#[allow(dead_code)]
#[path = "../examples/feature_maps.rs"]
mod feature_maps;

use feature_maps::{glyph, layer_outputs, picture, run, ADVANCE, LINE};
use kiln::nn::data::FashionMnist;
use kiln::nn::zoo::lenet;
use kiln::nn::{Activation, BlockExt, Init};
use kiln::tensor::conv2d::{conv2d, Conv2dParams};
use kiln::tensor::Tensor;

fn net() -> kiln::nn::Sequential<f32> {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    net
}

#[test]
fn hooks_see_every_layer_even_the_fused_convolution() {
    let net = net();
    let x = Tensor::<f32>::from_vec(
        (0..2 * 784).map(|i| (i % 29) as f32 / 29.0).collect(),
        [2, 1, 28, 28],
    )
    .unwrap();
    let outputs = layer_outputs(&net, &x).unwrap();
    let seen: Vec<(&str, Vec<usize>)> = outputs
        .iter()
        .map(|o| (o.name.as_str(), o.value.dims().to_vec()))
        .collect();
    // LeNet's seven layers, D2L 6.6's shapes
    assert_eq!(
        seen,
        [
            ("conv0", vec![2, 6, 24, 24]),
            ("pool0", vec![2, 6, 12, 12]),
            ("conv1", vec![2, 16, 8, 8]),
            ("pool1", vec![2, 16, 4, 4]),
            ("dense0", vec![2, 120]),
            ("dense1", vec![2, 84]),
            ("dense2", vec![2, 10]),
        ]
    );
    // conv0's output, computed independently: the convolution, then the sigmoid
    let params = net.collect_params();
    let (w, b) = (
        params.get("0.weight").unwrap().data().unwrap(),
        params.get("0.bias").unwrap().data().unwrap(),
    );
    let expected = conv2d(&x, &w, Some(&b), &Conv2dParams::default())
        .unwrap()
        .sigmoid();
    let got = &outputs[0].value;
    let diff = got
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "conv0 differs by {diff}");
    // the last layer's output is what predict returns, and the hooks are gone after
    assert_eq!(outputs[6].value, net.predict(&x).unwrap());
    assert_eq!(layer_outputs(&net, &x).unwrap().len(), 7);
}

/// The ink (black pixels) in a rectangle of the canvas.
fn ink(c: &feature_maps::Canvas, x: usize, y: usize, w: usize, h: usize) -> usize {
    (y..y + h)
        .flat_map(|r| (x..x + w).map(move |col| (r, col)))
        .filter(|&(r, col)| c.pixels[r * c.width + col] == 0)
        .count()
}

#[test]
fn the_picture_labels_rows_with_classes_and_columns_with_kernels() {
    // every class name can be written
    for name in FashionMnist::CLASSES {
        assert!(
            name.chars().all(|c| glyph(c).is_some()),
            "no glyph in {name:?}"
        );
    }
    // glyphs are 5 × 8 and distinct
    let letters: Vec<[u8; 8]> = ('a'..='z')
        .chain('0'..='9')
        .map(|c| glyph(c).unwrap())
        .collect();
    for (i, a) in letters.iter().enumerate() {
        assert!(a.iter().all(|&row| row < 32));
        assert!(letters[i + 1..].iter().all(|b| b != a), "glyph {i} repeats");
    }
    let kernels =
        Tensor::<f32>::from_vec((0..150).map(|i| i as f32).collect(), [6, 1, 5, 5]).unwrap();
    let images = Tensor::<f32>::from_vec(
        (0..2 * 784).map(|i| (i % 7) as f32).collect(),
        [2, 1, 28, 28],
    )
    .unwrap();
    let maps = Tensor::<f32>::from_vec(
        (0..2 * 6 * 576).map(|i| (i % 5) as f32).collect(),
        [2, 6, 24, 24],
    )
    .unwrap();
    let canvas = picture(
        &kernels,
        &images,
        &maps,
        &[("ankle boot", "bag"), ("t-shirt", "shirt")],
    )
    .unwrap();
    // 12 + 196 label column + 7 cells of 112 (96 + a gap of 16) + 12 wide; a 72 px title and header, 3 rows of cells of 112, 12
    assert_eq!((canvas.width, canvas.height()), (1004, 420));
    // text at 2 px per font pixel: a glyph is 10 × 16 px, 12 px apart
    assert_eq!((ADVANCE, LINE), (12, 20));
    // the row labels: "ankle boot" in the label column of the first image row, drawn
    // glyph by glyph at the font's pixels (its 'a' at x = 12)
    let (label_x, row1) = (12, 12 + 3 * LINE + 112);
    let y = row1 + 96 / 2 - LINE;
    let a = glyph('a').unwrap();
    for (r, bits) in a.iter().enumerate() {
        for col in 0..5 {
            let on = canvas.pixels[(y + 2 * r) * canvas.width + label_x + 2 * col] == 0;
            assert_eq!(on, bits >> (4 - col) & 1 == 1, "'a' pixel ({r}, {col})");
        }
    }
    let label_ink = |row: usize| ink(&canvas, 12, 12 + 3 * LINE + row * 112, 196, 96);
    assert!(label_ink(0) > 0 && label_ink(1) > 0 && label_ink(2) > 0);
    // "net: bag" (8 characters) is shorter than "net: shirt": less ink
    let guess_ink = |row: usize| ink(&canvas, 12, 12 + 3 * LINE + row * 112 + 48, 196, 16);
    assert!(guess_ink(1) < guess_ink(2));
    // the column headers: "image" then "kernel 0" … "kernel 5" above the cells
    let header = |col: usize| ink(&canvas, 12 + 196 + col * 112, 12 + 2 * LINE, 96, 16);
    assert!((0..7).all(|col| header(col) > 0));
    // "kernel 0" and "kernel 1" differ only in their last glyph
    let last_glyph =
        |col: usize, x: usize| ink(&canvas, 12 + 196 + col * 112 + x, 12 + 2 * LINE, 10, 16);
    assert_ne!(last_glyph(1, 7 * 12), last_glyph(2, 7 * 12));
    assert_eq!(last_glyph(1, 0), last_glyph(2, 0));
}

#[test]
fn the_example_draws_the_bundled_test_images() {
    let canvas = run(&net(), None, 3).unwrap();
    assert_eq!((canvas.width, canvas.height()), (1004, 532));
    let dir = std::env::temp_dir().join(format!("kiln-feature-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("maps.png");
    canvas.save(&path).unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (1004, 532));
    std::fs::remove_dir_all(&dir).unwrap();
}
