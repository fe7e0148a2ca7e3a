//! Random colour jitter: [`RandomBrightness`] and [`RandomContrast`], with the float32
//! arithmetic and the saturating casts of MXNet's `random_brightness` and `random_contrast`
//! kernels.

use super::{Draws, Transform};
use crate::data::sample::{AnyTensor, Image, Sample};
use crate::error::{NnError, Result};

/// MXNet's `saturate_cast<uint8_t>(float)`: clamped to [0, 255], then truncated (the
/// conversion of a float to an integer), not rounded.
fn saturate_u8(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// The factor range `[max(0, 1 − j), 1 + j]` of a jitter `j ≥ 0`, or an error for `who`.
fn factor_range(who: &str, jitter: f64) -> Result<(f32, f32)> {
    if !(jitter >= 0.0 && jitter.is_finite()) {
        return Err(NnError::invalid(
            who,
            format!("the jitter must be finite and ≥ 0, got {jitter}"),
        ));
    }
    Ok(((1.0 - jitter).max(0.0) as f32, (1.0 + jitter) as f32))
}

/// `std::uniform_real_distribution<float>(lo, hi)` from draw 0: `lo + (hi − lo) · u` in
/// float32.
fn factor(draws: &Draws, (lo, hi): (f32, f32)) -> f32 {
    lo + (hi - lo) * draws.uniform(0) as f32
}

/// Gluon's `transforms.RandomBrightness(brightness)`: every value times a factor `α`
/// drawn uniformly from `[max(0, 1 − brightness), 1 + brightness]`, computed as MXNet does
/// in float32: bytes become `saturate(float(v) · α)` (clamped to [0, 255] and truncated);
/// tensors `float(v) · α`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomBrightness {
    range: (f32, f32),
}

impl RandomBrightness {
    /// A jitter of `brightness ≥ 0`.
    pub fn new(brightness: f64) -> Result<Self> {
        Ok(RandomBrightness {
            range: factor_range("RandomBrightness", brightness)?,
        })
    }

    /// The factor drawn for a sample.
    pub fn factor(&self, draws: &Draws) -> f32 {
        factor(draws, self.range)
    }
}

impl Transform for RandomBrightness {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        adjust_brightness(sample, self.factor(draws))
    }
}

/// [`RandomBrightness`] with the factor `alpha` given: bytes become `saturate(float(v) ·
/// α)`, float32 values `v · α`, float64 values `(float(v) · α)` widened back (MXNet
/// multiplies in float32 whatever the input type).
pub fn adjust_brightness(sample: Sample<'_>, alpha: f32) -> Result<Sample<'_>> {
    Ok(match sample {
        Sample::Image(image) => {
            let hwc = image.hwc();
            let mut px = image.into_pixels();
            px.iter_mut()
                .for_each(|v| *v = saturate_u8(*v as f32 * alpha));
            Sample::Image(Image::new(px, hwc)?)
        }
        Sample::Tensor(AnyTensor::F32(mut t)) => {
            t.data_mut().iter_mut().for_each(|v| *v *= alpha);
            Sample::Tensor(AnyTensor::F32(t))
        }
        Sample::Tensor(AnyTensor::F64(mut t)) => {
            t.data_mut()
                .iter_mut()
                .for_each(|v| *v = (*v as f32 * alpha) as f64);
            Sample::Tensor(AnyTensor::F64(t))
        }
    })
}

/// Gluon's `transforms.RandomContrast(contrast)` on an image of bytes with 1 or 3
/// channels: with `α` drawn from `[max(0, 1 − contrast), 1 + contrast]` and the grey mean
/// `m` (the mean of the values, or of `0.299 R + 0.587 G + 0.114 B` for 3 channels, summed
/// pixel by pixel in float32 as MXNet does), every byte becomes `saturate(v · α + (1 − α)
/// · m)` (float32, clamped to [0, 255] and truncated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomContrast {
    range: (f32, f32),
}

impl RandomContrast {
    /// A jitter of `contrast ≥ 0`.
    pub fn new(contrast: f64) -> Result<Self> {
        Ok(RandomContrast {
            range: factor_range("RandomContrast", contrast)?,
        })
    }

    /// The factor drawn for a sample.
    pub fn factor(&self, draws: &Draws) -> f32 {
        factor(draws, self.range)
    }
}

/// MXNet's `AdjustContrastImpl` with factor `alpha` on bytes `px` (H×W×C, C = 1 or 3).
fn contrast_bytes(px: &mut [u8], channels: usize, alpha: f32) {
    const COEF: [f32; 3] = [0.299, 0.587, 0.114];
    let length = px.len() / channels.max(1);
    let mut sum = 0.0f32;
    if channels > 1 {
        for p in px.chunks_exact(3) {
            for (&v, &k) in p.iter().zip(&COEF) {
                sum += v as f32 * k;
            }
        }
    } else {
        px.iter().for_each(|&v| sum += v as f32);
    }
    let gray_mean = sum / length as f32;
    let beta = (1.0 - alpha) * gray_mean;
    px.iter_mut()
        .for_each(|v| *v = saturate_u8(*v as f32 * alpha + beta));
}

/// [`RandomContrast`] with the factor `alpha` given, on an image of bytes with 1 or 3
/// channels (an error otherwise).
pub fn adjust_contrast(sample: Sample<'_>, alpha: f32) -> Result<Sample<'_>> {
    let image = match sample {
        Sample::Image(i) if matches!(i.channels(), 1 | 3) && !i.pixels().is_empty() => i,
        other => {
            return Err(NnError::invalid(
                "RandomContrast",
                format!(
                    "needs a non-empty image of bytes with 1 or 3 channels, got a {}",
                    other.describe()
                ),
            ))
        }
    };
    let hwc = image.hwc();
    let mut px = image.into_pixels();
    contrast_bytes(&mut px, hwc[2], alpha);
    Ok(Sample::Image(Image::new(px, hwc)?))
}

impl Transform for RandomContrast {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        adjust_contrast(sample, self.factor(draws))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::EpochKey;
    use kiln_tensor::Tensor;

    #[test]
    fn brightness_truncates_and_saturates_as_mxnet() {
        let t = RandomBrightness::new(0.5).unwrap();
        let d = Draws::new(EpochKey { seed: 9, epoch: 0 }, 4);
        let alpha = t.factor(&d);
        assert!((0.5..=1.5).contains(&alpha));
        let image = Image::new(vec![0u8, 10, 100, 200, 255], [1, 5, 1]).unwrap();
        let out = match t.apply(Sample::Image(image), &d).unwrap() {
            Sample::Image(i) => i.into_pixels(),
            other => panic!("{other:?}"),
        };
        let expect: Vec<u8> = [0u8, 10, 100, 200, 255]
            .iter()
            .map(|&v| (v as f32 * alpha).min(255.0) as u8)
            .collect();
        assert_eq!(out, expect);
        assert_eq!(saturate_u8(3.99), 3);
        assert_eq!(saturate_u8(-2.0), 0);
        assert_eq!(saturate_u8(300.0), 255);
        assert!(RandomBrightness::new(-0.1).is_err());
        let f = t.apply(Tensor::<f32>::ones([2]).into(), &d).unwrap();
        assert_eq!(f, Sample::from(Tensor::<f32>::full([2], alpha)));
    }

    #[test]
    fn contrast_by_hand() {
        // grey bytes [0, 100, 200]: mean 100; α = 0.5 → β = 0.5 · 100 = 50:
        // 0·0.5 + 50 = 50, 100·0.5 + 50 = 100, 200·0.5 + 50 = 150
        let mut px = vec![0u8, 100, 200];
        contrast_bytes(&mut px, 1, 0.5);
        assert_eq!(px, [50, 100, 150]);
        // one RGB pixel (100, 50, 10): m = 0.299·100 + 0.587·50 + 0.114·10 = 60.39;
        // α = 2: β = −60.39: 200 − 60.39 = 139.61 → 139, 100 − 60.39 → 39, 20 − 60.39 → 0
        let mut px = vec![100u8, 50, 10];
        contrast_bytes(&mut px, 3, 2.0);
        assert_eq!(px, [139, 39, 0]);
        let t = RandomContrast::new(0.3).unwrap();
        let d = Draws::new(EpochKey::default(), 0);
        let two = Image::new(vec![0u8; 8], [2, 2, 2]).unwrap();
        let e = t.apply(Sample::Image(two), &d).unwrap_err().to_string();
        assert!(
            e.starts_with("RandomContrast: needs") && e.contains("2×2×2"),
            "{e}"
        );
    }
}
