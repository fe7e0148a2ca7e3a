//! The vision transforms against MXNet 1.9.1's own kernels, on the bytes this script
//! printed (`pip install mxnet==1.9.1`; a random factor range of one value gives that
//! factor):
//!
//! ```python
//! import numpy as np, mxnet as mx
//! from mxnet.gluon.data.vision import transforms
//! rng = np.random.default_rng(11)
//! img = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
//! x = mx.nd.array(img, dtype='uint8')
//! print(img.flatten().tolist())
//! for a in (1.37, 0.42):
//!     print(mx.nd.image.random_contrast(x, min_factor=a, max_factor=a).asnumpy().flatten().tolist())
//! print(mx.nd.image.random_brightness(x, min_factor=1.61, max_factor=1.61).asnumpy().flatten().tolist())
//! for size in ((6, 5), (2, 3)):
//!     print(mx.image.center_crop(x, size, interp=1)[0].asnumpy().flatten().tolist())
//! t = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(transforms.ToTensor()(x))
//! print([hex(v) for v in t.asnumpy().flatten()[:6].view(np.uint32)])
//! g = rng.integers(0, 256, (2, 5, 1), dtype=np.uint8)
//! print(g.flatten().tolist())
//! print(mx.nd.image.random_contrast(mx.nd.array(g, dtype='uint8'), min_factor=0.8, max_factor=0.8).asnumpy().flatten().tolist())
//! ```
//!
//! (The same comparison on 300 random images of 1 and 3 channels, with kiln's drawn
//! factors passed to MXNet, matched for brightness, contrast, centre crops and ToTensor +
//! Normalize to the bit.)

use kiln_nn::data::transforms::{
    adjust_brightness, adjust_contrast, CenterCrop, Normalize, RandomResizedCrop, ToTensor,
    Transform,
};
use kiln_nn::data::{AnyTensor, Draws, EpochKey, Image, Sample};

#[rustfmt::skip]
const IMAGE: [u8; 36] = [
    78, 204, 64, 34, 16, 250, 233, 32, 103, 122, 13, 204, 138, 172, 208, 127, 124, 100, 12, 151,
    222, 203, 251, 153, 211, 235, 80, 182, 176, 41, 88, 7, 141, 241, 73, 124,
];

fn image() -> Sample<'static> {
    Sample::Image(Image::new(&IMAGE[..], [3, 4, 3]).unwrap())
}

fn bytes(s: Sample) -> Vec<u8> {
    match s {
        Sample::Image(i) => i.into_pixels(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn contrast_and_brightness_match_mxnet() {
    #[rustfmt::skip]
    let cases: [(f32, [u8; 36]); 2] = [
        (1.37, [59, 231, 40, 0, 0, 255, 255, 0, 93, 119, 0, 231, 141, 187, 237, 126, 122, 89, 0,
                159, 255, 230, 255, 161, 241, 255, 61, 201, 193, 8, 72, 0, 145, 255, 52, 122]),
        (0.42, [107, 160, 101, 88, 81, 179, 172, 88, 117, 125, 80, 160, 132, 146, 162, 128, 126,
                116, 79, 138, 167, 159, 180, 138, 163, 173, 108, 151, 148, 91, 111, 77, 133, 175,
                105, 126]),
    ];
    for (alpha, expect) in cases {
        assert_eq!(
            bytes(adjust_contrast(image(), alpha).unwrap()),
            expect,
            "{alpha}"
        );
    }
    let grey = Image::new(
        vec![223u8, 123, 222, 37, 84, 55, 200, 102, 211, 60],
        [2, 5, 1],
    )
    .unwrap();
    assert_eq!(
        bytes(adjust_contrast(Sample::Image(grey), 0.8).unwrap()),
        [204, 124, 203, 55, 93, 70, 186, 107, 195, 74]
    );
    #[rustfmt::skip]
    let bright = [
        125, 255, 103, 54, 25, 255, 255, 51, 165, 196, 20, 255, 222, 255, 255, 204, 199, 161, 19,
        243, 255, 255, 255, 246, 255, 255, 128, 255, 255, 66, 141, 11, 227, 255, 117, 199,
    ];
    assert_eq!(bytes(adjust_brightness(image(), 1.61).unwrap()), bright);
}

#[test]
fn center_crop_matches_mxnet() {
    let d = Draws::new(EpochKey::default(), 0);
    // (6, 5) does not fit a 4×3 (W×H) image: scale_down gives 3×3 at (0, 0), resized to 6×5
    #[rustfmt::skip]
    let up = [
        78, 204, 64, 67, 157, 110, 45, 63, 203, 84, 20, 213, 183, 28, 140, 233, 32, 103, 102, 191,
        121, 94, 158, 139, 79, 92, 173, 90, 64, 180, 126, 74, 160, 145, 79, 151, 138, 172, 208,
        135, 160, 181, 130, 136, 127, 98, 131, 131, 41, 144, 192, 12, 151, 222, 182, 210, 131, 176,
        196, 114, 165, 169, 81, 134, 133, 92, 83, 87, 146, 58, 64, 173, 211, 235, 80, 204, 220, 70,
        189, 191, 51, 158, 134, 66, 111, 49, 116, 88, 7, 141,
    ];
    let out = CenterCrop::to(6, 5).unwrap().apply(image(), &d).unwrap();
    assert_eq!(bytes(out), up);
    // (2, 3) fits: x0 = int((4 − 2) / 2) = 1, y0 = 0
    let out = CenterCrop::to(2, 3).unwrap().apply(image(), &d).unwrap();
    assert_eq!(
        bytes(out),
        [34, 16, 250, 233, 32, 103, 127, 124, 100, 12, 151, 222, 182, 176, 41, 88, 7, 141]
    );
}

#[test]
fn to_tensor_and_normalize_match_mxnet_to_the_bit() {
    let d = Draws::new(EpochKey::default(), 0);
    let n = Normalize::new(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]).unwrap();
    let out = n.apply(ToTensor.apply(image(), &d).unwrap(), &d).unwrap();
    let Sample::Tensor(AnyTensor::F32(t)) = out else {
        panic!()
    };
    assert_eq!(t.dims(), [3, 3, 4]);
    let bits: Vec<u32> = t.data()[..6].iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        [
            0xbf48_3c80,
            0xbfc4_9096,
            0x3fef_a30f,
            0xbcea_fac0,
            0x3e7b_331c,
            0x3d69_39a6
        ]
    );
}

/// MXNet's `random_size_crop` draws from Python's `random`; handed kiln's draws instead
/// (attempt t's `uniform` calls get numbers 4t and 4t + 1, its `randint` calls 4t + 2 and
/// 4t + 3), it crops and resizes to the same bytes:
///
/// ```python
/// import mxnet as mx, mxnet.image.image as mi
/// us = [0.5948444513221501, 0.33770814845411723, 0.5625828519670194, 0.403351554725237]
/// calls = iter(us)
/// mi.random.uniform = lambda a, b: a + (b - a) * next(calls)
/// mi.random.randint = lambda a, b: a + min(int(next(calls) * (b - a + 1)), b - a)
/// img = mx.nd.array(IMAGE_7x9, dtype='uint8').reshape((7, 9, 1))
/// print(mi.random_size_crop(img, (5, 4), (0.3, 0.9), (0.5, 2.0), interp=1)[0].asnumpy().flatten().tolist())
/// ```
///
/// By hand: area (0.3 + 0.6 · 0.59484) · 63 = 41.385, ratio exp(ln ½ + ln 4 · 0.33771) =
/// 0.79853, so the crop is round(√(41.385 · 0.79853)) = 6 wide and round(√(41.385 /
/// 0.79853)) = 7 high; it fits, x0 = ⌊0.56258 · 4⌋ = 2, y0 = 0; then 6×7 → 5×4.
/// (Over 300 random images and sizes, the same check matched on every one.)
#[test]
fn random_resized_crop_matches_mxnet_given_the_same_draws() {
    #[rustfmt::skip]
    let image: Vec<u8> = vec![
        248, 194, 190, 207, 147, 26, 237, 21, 245, 211, 239, 45, 5, 157, 159, 60, 54, 236, 109,
        46, 199, 82, 32, 205, 36, 7, 134, 222, 57, 146, 8, 149, 14, 15, 22, 10, 144, 208, 24, 24,
        7, 41, 11, 85, 59, 104, 225, 110, 226, 201, 8, 159, 26, 27, 163, 122, 33, 41, 201, 67,
        70, 166, 228,
    ];
    let d = Draws::new(EpochKey { seed: 4, epoch: 2 }, 0);
    let drawn: Vec<f64> = (0..4).map(|k| d.uniform(k)).collect();
    assert_eq!(
        drawn,
        [
            0.5948444513221501,
            0.33770814845411723,
            0.5625828519670194,
            0.403351554725237
        ]
    );
    let t = RandomResizedCrop::to(5, 4)
        .unwrap()
        .scale(0.3, 0.9)
        .unwrap()
        .ratio(0.5, 2.0)
        .unwrap();
    let out = t
        .apply(Sample::Image(Image::new(image, [7, 9, 1]).unwrap()), &d)
        .unwrap();
    assert_eq!(
        bytes(out),
        [135, 137, 113, 142, 47, 180, 65, 114, 78, 11, 38, 23, 31, 19, 70, 67, 137, 123, 86, 112]
    );
}
