//! Transforms that move pixels: [`Resize`], [`CenterCrop`], [`RandomResizedCrop`] and the
//! two random flips, as MXNet's `image` module and `image` operators define them. Sizes are
//! Gluon's `(width, height)`; resizing is [`resize_linear`](crate::data::resize_linear).

use super::{Draws, Transform};
use crate::data::resize::resize_linear;
use crate::data::sample::{AnyTensor, Image, Sample};
use crate::error::{NnError, Result};
use kiln_tensor::{Float, Tensor};

/// The byte image in `sample`, or an error for `who` naming what it got.
fn image_of<'a>(who: &str, sample: Sample<'a>) -> Result<Image<'a>> {
    match sample {
        Sample::Image(i) => Ok(i),
        other => Err(NnError::invalid(
            who,
            format!(
                "needs an image of bytes (H×W×C), got a {}; apply it before ToTensor",
                other.describe()
            ),
        )),
    }
}

/// An output size of at least 1×1, or an error for `who`.
fn output_size(who: &str, width: usize, height: usize) -> Result<(usize, usize)> {
    if width == 0 || height == 0 {
        return Err(NnError::invalid(
            who,
            format!("the size must be at least 1×1, got {width}×{height} (W×H)"),
        ));
    }
    Ok((width, height))
}

/// The `w × h` block of `image` whose top-left pixel is `(x0, y0)` (MXNet's `fixed_crop`
/// without its resize); an error for `who` if it is empty.
fn crop(
    who: &str,
    image: &Image<'_>,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Result<Image<'static>> {
    let [_, width, c] = image.hwc();
    if w == 0 || h == 0 {
        return Err(NnError::invalid(
            who,
            format!(
                "the crop is empty ({w}×{h}, W×H) for an image of {}",
                Sample::Image(image.view()).describe()
            ),
        ));
    }
    let row = width * c;
    let mut out = Vec::with_capacity(w * h * c);
    for y in y0..y0 + h {
        out.extend_from_slice(&image.pixels()[y * row + x0 * c..][..w * c]);
    }
    Image::new(out, [h, w, c])
}

/// MXNet's `fixed_crop(src, x0, y0, w, h, size)`: the crop, resized to `size` unless it
/// already has that size.
fn crop_to(
    who: &str,
    image: &Image<'_>,
    rect: [usize; 4],
    (out_w, out_h): (usize, usize),
) -> Result<Image<'static>> {
    let [x0, y0, w, h] = rect;
    let piece = crop(who, image, x0, y0, w, h)?;
    if (w, h) == (out_w, out_h) {
        Ok(piece)
    } else {
        resize_linear(&piece, out_h, out_w)
    }
}

/// MXNet's `scale_down(src_size, size)`: the crop size `(w, h)`, shrunk, keeping its
/// aspect ratio, until it fits in the image, then truncated to integers (Python's
/// `int(float)` of its float arithmetic).
fn scale_down((src_w, src_h): (usize, usize), (w, h): (usize, usize)) -> (usize, usize) {
    let (mut fw, mut fh, mut ih) = (w as f64, h as f64, h as u128);
    if src_h < h {
        fw = (w as u128 * src_h as u128) as f64 / fh;
        fh = src_h as f64;
        ih = src_h as u128;
    }
    if (src_w as f64) < fw {
        fh = (ih * src_w as u128) as f64 / fw;
        fw = src_w as f64;
    }
    (fw as usize, fh as usize)
}

/// Gluon's `transforms.Resize(size, keep_ratio=False, interpolation=1)` on an image of bytes:
/// bilinear, bit for bit as MXNet's OpenCV computes it ([`resize_linear`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resize {
    width: usize,
    height: usize,
    square: bool,
    keep_ratio: bool,
}

impl Resize {
    /// To `size × size`; an error for 0.
    pub fn new(size: usize) -> Result<Self> {
        output_size("Resize", size, size)?;
        Ok(Resize {
            width: size,
            height: size,
            square: true,
            keep_ratio: false,
        })
    }

    /// To `width × height` (Gluon's `size=(W, H)`); an error for 0.
    pub fn to(width: usize, height: usize) -> Result<Self> {
        output_size("Resize", width, height)?;
        Ok(Resize {
            width,
            height,
            square: false,
            keep_ratio: false,
        })
    }

    /// With a single size ([`Resize::new`]): resize the shorter side to it and the other in
    /// proportion (MXNet: `h > w` gives `w = size, h = h · size / w` in integers, otherwise
    /// `h = size, w = w · size / h`). No effect on a `(W, H)` size, as in Gluon.
    pub fn keep_ratio(mut self, keep: bool) -> Self {
        self.keep_ratio = keep;
        self
    }

    /// The `(width, height)` an image of `h × w` is resized to.
    pub fn size_for(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        if !(self.square && self.keep_ratio) || h == 0 || w == 0 {
            return Ok((self.width, self.height));
        }
        let size = self.width;
        let scaled = |long: usize, short: usize| {
            long.checked_mul(size)
                .map(|p| p / short)
                .ok_or_else(|| NnError::invalid("Resize", format!("{long}·{size} overflows")))
        };
        if h > w {
            Ok((size, scaled(h, w)?))
        } else {
            Ok((scaled(w, h)?, size))
        }
    }
}

impl Transform for Resize {
    fn apply<'a>(&self, sample: Sample<'a>, _draws: &Draws) -> Result<Sample<'a>> {
        let image = image_of("Resize", sample)?;
        let (w, h) = self.size_for(image.height(), image.width())?;
        Ok(Sample::Image(resize_linear(&image, h, w)?))
    }
}

/// Gluon's `transforms.CenterCrop(size)`: the centred crop of `size` (shrunk to fit the
/// image, MXNet's `scale_down`), resized to `size` if it had to shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CenterCrop {
    width: usize,
    height: usize,
}

impl CenterCrop {
    /// A `size × size` crop; an error for 0.
    pub fn new(size: usize) -> Result<Self> {
        CenterCrop::to(size, size)
    }

    /// A `width × height` crop (Gluon's `(W, H)`); an error for 0.
    pub fn to(width: usize, height: usize) -> Result<Self> {
        let (width, height) = output_size("CenterCrop", width, height)?;
        Ok(CenterCrop { width, height })
    }
}

/// MXNet's `center_crop(src, size)`.
fn center_crop(who: &str, image: &Image<'_>, size: (usize, usize)) -> Result<Image<'static>> {
    let (h, w) = (image.height(), image.width());
    let (new_w, new_h) = scale_down((w, h), size);
    // Python: x0 = int((w − new_w) / 2)
    let (x0, y0) = ((w - new_w) / 2, (h - new_h) / 2);
    crop_to(who, image, [x0, y0, new_w, new_h], size)
}

impl Transform for CenterCrop {
    fn apply<'a>(&self, sample: Sample<'a>, _draws: &Draws) -> Result<Sample<'a>> {
        let image = image_of("CenterCrop", sample)?;
        Ok(Sample::Image(center_crop(
            "CenterCrop",
            &image,
            (self.width, self.height),
        )?))
    }
}

/// Gluon's `transforms.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3/4, 4/3))`
/// (MXNet's `random_size_crop`): up to 10 attempts draw an area `A = U(scale) · h · w` and
/// a ratio `r = exp(U(ln ratio))`, giving a crop of `round(√(A r)) × round(√(A / r))`
/// (Python's `round`, ties to even); the first that fits is placed at a uniform position
/// and resized to `size`. If none fits, it is [`CenterCrop`]'s crop. Attempt `t` draws
/// numbers `4t … 4t + 3`. (An attempt whose crop rounds to 0 pixels counts as not fitting,
/// where MXNet would fail in OpenCV.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomResizedCrop {
    width: usize,
    height: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
}

impl RandomResizedCrop {
    /// Crops resized to `size × size`, with Gluon's default scale and ratio ranges.
    pub fn new(size: usize) -> Result<Self> {
        RandomResizedCrop::to(size, size)
    }

    /// Crops resized to `width × height` (Gluon's `(W, H)`).
    pub fn to(width: usize, height: usize) -> Result<Self> {
        let (width, height) = output_size("RandomResizedCrop", width, height)?;
        Ok(RandomResizedCrop {
            width,
            height,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        })
    }

    /// The range of the crop's area as a fraction of the image's: `0 < lo ≤ hi`.
    pub fn scale(mut self, lo: f64, hi: f64) -> Result<Self> {
        self.scale = range("scale", lo, hi)?;
        Ok(self)
    }

    /// The range of the crop's aspect ratio (width / height): `0 < lo ≤ hi`.
    pub fn ratio(mut self, lo: f64, hi: f64) -> Result<Self> {
        self.ratio = range("ratio", lo, hi)?;
        Ok(self)
    }

    /// The crop `[x0, y0, w, h]` for an image of `h × w`, or `None` to fall back to the
    /// centre crop.
    fn rect(&self, h: usize, w: usize, draws: &Draws) -> Option<[usize; 4]> {
        let src_area = (h * w) as f64;
        let uniform = |k: usize, (lo, hi): (f64, f64)| lo + (hi - lo) * draws.uniform(k);
        for attempt in 0..10 {
            let k = 4 * attempt;
            let target_area = uniform(k, self.scale) * src_area;
            let new_ratio = uniform(k + 1, (self.ratio.0.ln(), self.ratio.1.ln())).exp();
            let new_w = (target_area * new_ratio).sqrt().round_ties_even();
            let new_h = (target_area / new_ratio).sqrt().round_ties_even();
            if new_w >= 1.0 && new_h >= 1.0 && new_w <= w as f64 && new_h <= h as f64 {
                let (new_w, new_h) = (new_w as usize, new_h as usize);
                let x0 = draws.int_between(k + 2, 0, w - new_w);
                let y0 = draws.int_between(k + 3, 0, h - new_h);
                return Some([x0, y0, new_w, new_h]);
            }
        }
        None
    }
}

fn range(what: &str, lo: f64, hi: f64) -> Result<(f64, f64)> {
    if lo > 0.0 && lo <= hi && hi.is_finite() {
        Ok((lo, hi))
    } else {
        Err(NnError::invalid(
            "RandomResizedCrop",
            format!("{what} must be a range 0 < lo ≤ hi, got ({lo}, {hi})"),
        ))
    }
}

impl Transform for RandomResizedCrop {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        const WHO: &str = "RandomResizedCrop";
        let image = image_of(WHO, sample)?;
        let size = (self.width, self.height);
        let out = match self.rect(image.height(), image.width(), draws) {
            Some(rect) => crop_to(WHO, &image, rect, size)?,
            None => center_crop(WHO, &image, size)?,
        };
        Ok(Sample::Image(out))
    }
}

/// Reverses the order of `block`-sized runs within each `span`-sized run of `data`.
fn reverse_blocks<V: Copy>(data: &mut [V], span: usize, block: usize) {
    if span == 0 || block == 0 {
        return;
    }
    let n = span / block;
    for run in data.chunks_exact_mut(span) {
        for i in 0..n / 2 {
            let (a, b) = (i * block, (n - 1 - i) * block);
            let (left, right) = run.split_at_mut(b);
            left[a..a + block].swap_with_slice(&mut right[..block]);
        }
    }
}

/// Flips a sample along its width (`left_right`) or height: an image (H, W, C), or a
/// tensor whose last two axes are (H, W).
fn flip<'a>(who: &str, sample: Sample<'a>, left_right: bool) -> Result<Sample<'a>> {
    fn tensor<T: Float>(who: &str, t: &Tensor<T>, left_right: bool) -> Result<Tensor<T>> {
        let d = t.dims();
        if d.len() < 2 {
            return Err(NnError::invalid(
                who,
                format!("needs a tensor (…, H, W), got shape {d:?}"),
            ));
        }
        let (h, w) = (d[d.len() - 2], d[d.len() - 1]);
        let mut out = t.clone();
        if left_right {
            reverse_blocks(out.data_mut(), w, 1);
        } else {
            reverse_blocks(out.data_mut(), h * w, w);
        }
        Ok(out)
    }
    Ok(match sample {
        Sample::Image(image) => {
            let [h, w, c] = image.hwc();
            let mut px = image.into_pixels();
            if left_right {
                reverse_blocks(&mut px, w * c, c);
            } else {
                reverse_blocks(&mut px, h * w * c, w * c);
            }
            Sample::Image(Image::new(px, [h, w, c])?)
        }
        Sample::Tensor(AnyTensor::F32(t)) => {
            Sample::Tensor(AnyTensor::F32(tensor(who, &t, left_right)?))
        }
        Sample::Tensor(AnyTensor::F64(t)) => {
            Sample::Tensor(AnyTensor::F64(tensor(who, &t, left_right)?))
        }
    })
}

/// Gluon's `transforms.RandomFlipLeftRight`: mirrors the width with probability ½ (when
/// draw 0 is below ½). Works on images (H, W, C) and on tensors (…, H, W).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomFlipLeftRight;

impl Transform for RandomFlipLeftRight {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        if draws.uniform(0) < 0.5 {
            flip("RandomFlipLeftRight", sample, true)
        } else {
            Ok(sample)
        }
    }
}

/// Gluon's `transforms.RandomFlipTopBottom`: mirrors the height with probability ½.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomFlipTopBottom;

impl Transform for RandomFlipTopBottom {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        if draws.uniform(0) < 0.5 {
            flip("RandomFlipTopBottom", sample, false)
        } else {
            Ok(sample)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::EpochKey;

    fn image(h: usize, w: usize, c: usize) -> Image<'static> {
        Image::new(
            (0..h * w * c).map(|i| i as u8).collect::<Vec<_>>(),
            [h, w, c],
        )
        .unwrap()
    }

    fn pixels(s: Sample) -> (Vec<u8>, [usize; 3]) {
        match s {
            Sample::Image(i) => (i.pixels().to_vec(), i.hwc()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resize_sizes_as_mxnet() {
        let r = Resize::new(96).unwrap();
        assert_eq!(r.size_for(28, 30).unwrap(), (96, 96));
        // keep_ratio: the shorter side to 96, the other by integer division
        let k = r.keep_ratio(true);
        assert_eq!(k.size_for(28, 30).unwrap(), (30 * 96 / 28, 96));
        assert_eq!(k.size_for(50, 20).unwrap(), (96, 50 * 96 / 20));
        assert_eq!(
            Resize::to(10, 4)
                .unwrap()
                .keep_ratio(true)
                .size_for(28, 30)
                .unwrap(),
            (10, 4)
        );
        let e = Resize::new(0).unwrap_err().to_string();
        assert_eq!(e, "Resize: the size must be at least 1×1, got 0×0 (W×H)");
        assert!(Resize::to(3, 0).is_err());
        let t: Sample = Tensor::<f32>::zeros([1, 2, 2]).into();
        let e = r
            .apply(t, &Draws::new(EpochKey::default(), 0))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Resize: needs an image of bytes") && e.contains("[1, 2, 2]"),
            "{e}"
        );
        let (_, hwc) = pixels(
            r.apply(image(3, 2, 3).into(), &Draws::new(EpochKey::default(), 0))
                .unwrap(),
        );
        assert_eq!(hwc, [96, 96, 3]);
    }

    #[test]
    fn center_crop_as_mxnet_scale_down() {
        // 4×5 image (H×W), crop 3×2 (W×H): fits; x0 = int((5 − 3) / 2) = 1, y0 = int((4 − 2) / 2) = 1
        let d = Draws::new(EpochKey::default(), 0);
        let (px, hwc) = pixels(
            CenterCrop::to(3, 2)
                .unwrap()
                .apply(image(4, 5, 1).into(), &d)
                .unwrap(),
        );
        assert_eq!(hwc, [2, 3, 1]);
        assert_eq!(px, [6, 7, 8, 11, 12, 13]);
        // MXNet's docstring example: (2321, 3482) image, size (1000, 500): x0 = 1241, y0 = 910
        assert_eq!(scale_down((3482, 2321), (1000, 500)), (1000, 500));
        assert_eq!(((3482 - 1000) / 2, (2321 - 500) / 2), (1241, 910));
        // scale_down's docstring: (640, 480), (720, 120) → (640, 106)
        assert_eq!(scale_down((640, 480), (720, 120)), (640, 106));
        // too tall: h shrinks to the image's and w in proportion: (10, 20) in 8×4 → w = 10·4/20 = 2
        assert_eq!(scale_down((8, 4), (10, 20)), (2, 4));
    }

    #[test]
    fn flips_by_hand() {
        let d = (0..)
            .map(|i| Draws::new(EpochKey { seed: 1, epoch: 0 }, i))
            .find(|d| d.uniform(0) < 0.5)
            .unwrap();
        // 2×3 image, 1 channel: rows [0 1 2], [3 4 5]
        let (px, _) = pixels(
            RandomFlipLeftRight
                .apply(image(2, 3, 1).into(), &d)
                .unwrap(),
        );
        assert_eq!(px, [2, 1, 0, 5, 4, 3]);
        let (px, _) = pixels(
            RandomFlipTopBottom
                .apply(image(2, 3, 1).into(), &d)
                .unwrap(),
        );
        assert_eq!(px, [3, 4, 5, 0, 1, 2]);
        // 1×2 image, 2 channels: pixels (0, 1), (2, 3) swap as pairs
        let (px, _) = pixels(
            RandomFlipLeftRight
                .apply(image(1, 2, 2).into(), &d)
                .unwrap(),
        );
        assert_eq!(px, [2, 3, 0, 1]);
        // a (C, H, W) tensor flips its last two axes
        let t = Tensor::<f32>::arange(6).reshape([1, 2, 3]).unwrap();
        match RandomFlipTopBottom.apply(t.into(), &d).unwrap() {
            Sample::Tensor(AnyTensor::F32(t)) => {
                assert_eq!(t.data(), &[3.0, 4.0, 5.0, 0.0, 1.0, 2.0])
            }
            other => panic!("{other:?}"),
        }
        // about half the samples are flipped
        let flipped = (0..1000)
            .filter(|&i| Draws::new(EpochKey::default(), i).uniform(0) < 0.5)
            .count();
        assert!((450..550).contains(&flipped), "{flipped}");
    }

    #[test]
    fn random_resized_crop_fits_and_falls_back() {
        let t = RandomResizedCrop::new(8).unwrap();
        for i in 0..50 {
            let d = Draws::new(EpochKey { seed: 2, epoch: 1 }, i);
            let [x0, y0, w, h] = t.rect(20, 30, &d).unwrap();
            assert!(w >= 1 && h >= 1 && x0 + w <= 30 && y0 + h <= 20);
            let area = (w * h) as f64 / 600.0;
            assert!((0.05..=1.1).contains(&area), "{area}");
            let (_, hwc) = pixels(t.apply(image(20, 30, 3).into(), &d).unwrap());
            assert_eq!(hwc, [8, 8, 3]);
        }
        // a ratio no crop of a 1-pixel-high image can have: always the centre crop
        let thin = RandomResizedCrop::new(4)
            .unwrap()
            .ratio(0.01, 0.02)
            .unwrap();
        assert!(thin
            .rect(1, 40, &Draws::new(EpochKey::default(), 3))
            .is_none());
        assert!(RandomResizedCrop::new(4).unwrap().scale(0.5, 0.1).is_err());
        assert!(RandomResizedCrop::new(0).is_err());
    }
}
