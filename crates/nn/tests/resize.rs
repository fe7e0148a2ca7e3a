//! `Resize` against its two independent sources: OpenCV's own `cv2.resize` on random images
//! (the script below printed the expected bytes), and MXNet 1.9.1's `transforms.Resize` on
//! the bundled Fashion-MNIST at the book's sizes 96 and 224.

use kiln_nn::data::transforms::{Resize, Transform};
use kiln_nn::data::{
    locate_fashion_mnist, resize_linear, Dataset, Draws, EpochKey, FashionMnist, Image, Sample,
};

/// Input (H, W, C), output (H, W), input bytes, OpenCV's output bytes.
type Case = ([usize; 3], [usize; 2], &'static [u8], &'static [u8]);

/// Printed by this script (opencv-python-headless 5.0.0, numpy 2; OpenCV 3.4.2, which MXNet
/// 1.9.1 links, gave the same bytes on 3,000 random cases of 1 to 4 channels, up to 300
/// pixels a side, up- and downscaling, exact multiples and halvings):
///
/// ```python
/// import numpy as np, cv2
/// rng = np.random.default_rng(7)
/// for (h, w, c), (oh, ow) in [((3, 4, 1), (5, 7)), ((5, 3, 3), (2, 4)), ((4, 6, 2), (2, 3)),
///                             ((7, 5, 1), (3, 2)), ((1, 5, 1), (4, 3))]:
///     src = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
///     out = cv2.resize(src, (ow, oh), interpolation=cv2.INTER_LINEAR)
///     print(f"(({h}, {w}, {c}), ({oh}, {ow}), {src.flatten().tolist()}, {out.flatten().tolist()})")
/// ```
#[rustfmt::skip]
const OPENCV: [Case; 5] = [
    ([3, 4, 1], [5, 7],
     &[139, 74, 229, 241, 169, 65, 6, 160, 149, 106, 38, 175],
     &[139, 116, 78, 151, 230, 237, 241, 151, 122, 76, 105, 145, 184, 208, 169, 132, 72, 36, 17,
       105, 160, 157, 133, 94, 57, 35, 118, 169, 149, 134, 109, 72, 48, 126, 175]),
    // downscaling by 5/2 and 3/4 with 3 channels
    ([5, 3, 3], [2, 4],
     &[188, 205, 175, 229, 98, 249, 10, 148, 95, 86, 147, 198, 66, 39, 106, 213, 171, 45, 167,
       57, 69, 81, 55, 14, 153, 178, 215, 76, 52, 39, 250, 72, 215, 50, 161, 223, 112, 172, 161,
       233, 38, 17, 89, 1, 221],
     &[112, 162, 192, 108, 94, 161, 127, 95, 110, 162, 165, 58, 85, 82, 70, 185, 70, 130, 176,
       85, 187, 60, 121, 223]),
    // an exact halving with 2 channels: OpenCV's area path, rounding half to even
    ([4, 6, 2], [2, 3],
     &[143, 6, 60, 210, 94, 25, 166, 33, 249, 189, 12, 204, 33, 57, 124, 30, 199, 149, 202, 119,
       72, 220, 3, 209, 122, 136, 147, 77, 133, 82, 115, 87, 162, 230, 70, 71, 240, 62, 47, 184,
       31, 34, 63, 65, 146, 197, 142, 253],
     &[90, 76, 165, 82, 84, 206, 139, 115, 86, 67, 130, 188]),
    ([7, 5, 1], [3, 2],
     &[81, 133, 240, 113, 30, 247, 103, 122, 31, 19, 42, 129, 141, 136, 33, 149, 161, 0, 178,
       141, 107, 35, 107, 130, 72, 27, 217, 254, 99, 13, 195, 206, 59, 228, 235],
     &[133, 49, 158, 169, 181, 128]),
    // one source row: rows 0 and 3 give 138 where rows 1 and 2 give 137, the fixed point's
    // ">> 4 ... >> 16" truncations with the weights (1536, 512) against (512, 1536)
    ([1, 5, 1], [4, 3],
     &[183, 47, 69, 179, 82],
     &[138, 69, 114, 137, 69, 114, 137, 69, 114, 138, 69, 114]),
];

#[test]
fn resize_matches_opencv_byte_for_byte() {
    for (hwc, [oh, ow], src, expect) in OPENCV {
        let out = resize_linear(&Image::new(src, hwc).unwrap(), oh, ow).unwrap();
        assert_eq!(out.hwc(), [oh, ow, hwc[2]]);
        assert_eq!(out.pixels(), expect, "{hwc:?} → {oh}×{ow}");
    }
}

/// FNV-1a (64 bits) of the bytes.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// MXNet 1.9.1 (`pip install mxnet==1.9.1`), on the bundled training images:
///
/// ```python
/// import numpy as np, mxnet as mx, gzip
/// from mxnet.gluon.data.vision import transforms
/// with gzip.open('data/fashion-mnist/train-images-idx3-ubyte.gz') as f:
///     data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
/// def fnv(b):
///     h = 0xcbf29ce484222325
///     for x in b: h = ((h ^ int(x)) * 0x100000001b3) % (1 << 64)
///     return h
/// for i in (0, 1, 59999):
///     for s in (96, 224):
///         r = transforms.Resize(s)(mx.nd.array(data[i], dtype='uint8')).asnumpy()
///         print(i, s, hex(fnv(r.flatten())), int(r.sum()))
/// ```
///
/// (The same comparison over 300 images spread over the training set, at both sizes,
/// matched byte for byte too; `mx.image.imresize` gives the same bytes as `Resize`.)
const MXNET: [(usize, usize, u64, u64); 6] = [
    (0, 96, 0x0e3b_8ed1_b31d_9e1d, 895_232),
    (0, 224, 0xd166_cc3f_dec3_3125, 4_876_672),
    (1, 96, 0x49fb_0e6e_4772_41fc, 993_681),
    (1, 224, 0x347f_254f_f58a_eea4, 5_410_325),
    (59_999, 96, 0x5f5d_5a48_bb70_d671, 195_976),
    (59_999, 224, 0x9afe_da70_da02_b847, 1_066_286),
];

#[test]
fn resized_fashion_mnist_matches_mxnet_byte_for_byte() {
    let train = FashionMnist::new(locate_fashion_mnist(None).unwrap(), true).unwrap();
    for (index, size, hash, sum) in MXNET {
        let data = (&train).transform_first(Resize::new(size).unwrap());
        let (sample, _) = data.get(index).unwrap();
        let Sample::Image(image) = sample else {
            panic!("Resize keeps bytes")
        };
        assert_eq!(image.hwc(), [size, size, 1]);
        let total: u64 = image.pixels().iter().map(|&b| b as u64).sum();
        assert_eq!(
            (fnv(image.pixels()), total),
            (hash, sum),
            "image {index} at {size}"
        );
    }
    // and through the transform on a borrowed image, as the loader calls it
    let (sample, _) = train.get(0).unwrap();
    let out = Resize::new(96)
        .unwrap()
        .apply(sample, &Draws::new(EpochKey::default(), 0))
        .unwrap();
    let Sample::Image(image) = out else { panic!() };
    assert_eq!(fnv(image.pixels()), MXNET[0].2);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Bilinear weights are non-negative and sum to 2048, and OpenCV's truncations are made
    /// up for by its `+ 2` (`floor(4m − 2 + 2) / 4 ≥ m`): every output byte lies between the
    /// smallest and the largest input byte, a constant image stays that constant, and the
    /// size is the one asked for.
    #[test]
    fn outputs_stay_within_the_inputs(
        h in 1usize..20, w in 1usize..20, c in 1usize..5, oh in 1usize..40, ow in 1usize..40,
        seed in proptest::prelude::any::<u64>(), flat in proptest::prelude::any::<bool>(),
    ) {
        let mut state = seed | 1;
        let bytes: Vec<u8> = (0..h * w * c).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if flat { (seed % 256) as u8 } else { (state >> 56) as u8 }
        }).collect();
        let out = resize_linear(&Image::new(&bytes[..], [h, w, c]).unwrap(), oh, ow).unwrap();
        proptest::prop_assert_eq!(out.hwc(), [oh, ow, c]);
        let (lo, hi) = (*bytes.iter().min().unwrap(), *bytes.iter().max().unwrap());
        proptest::prop_assert!(out.pixels().iter().all(|&v| (lo..=hi).contains(&v)));
    }
}
