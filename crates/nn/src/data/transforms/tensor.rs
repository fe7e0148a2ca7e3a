//! From bytes to floats: [`ToTensor`] (HWC bytes → CHW float32 / 255) and [`Normalize`]
//! (per channel `(x − mean) / std`), with the arithmetic of MXNet's `to_tensor` and
//! `normalize` kernels.

use super::{Draws, Transform};
use crate::data::sample::{AnyTensor, Sample};
use crate::error::{NnError, Result};
use kiln_tensor::{Float, Tensor};

/// Gluon's `transforms.ToTensor`: an image of bytes (H, W, C) becomes a float32 tensor
/// (C, H, W) with `out[c, y, x] = in[y, x, c] / 255` (a float32 division, as MXNet's
/// `to_tensor` kernel computes it). A sample that is already a tensor is an error.
///
/// The [`DataLoader`](crate::data::DataLoader) converts byte images it is given in the
/// same way, so `ToTensor` at the end of a pipeline is optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToTensor;

impl Transform for ToTensor {
    fn apply<'a>(&self, sample: Sample<'a>, _draws: &Draws) -> Result<Sample<'a>> {
        let Sample::Image(image) = sample else {
            return Err(NnError::invalid(
                "ToTensor",
                format!("needs an image of bytes, got a {}", sample.describe()),
            ));
        };
        let [h, w, c] = image.hwc();
        let mut out = vec![0.0f32; image.pixels().len()];
        let plane = h * w;
        for (p, px) in image.pixels().chunks_exact(c.max(1)).enumerate() {
            for (k, &v) in px.iter().enumerate() {
                out[k * plane + p] = v as f32 / 255.0;
            }
        }
        let t = Tensor::from_vec(out, [c, h, w]).expect("C·H·W values for [C, H, W]");
        Ok(Sample::Tensor(AnyTensor::F32(t)))
    }
}

/// Gluon's `transforms.Normalize(mean, std)` on a tensor (C, H, W): `out[c] = (in[c] −
/// mean[c]) / std[c]`, with one value for every channel or one per channel. As MXNet's
/// parameters are float32, a float32 tensor is normalized in float32 with the values
/// rounded to float32; a float64 tensor in float64.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Normalize {
    /// Per-channel means and standard deviations (or one of each for all channels). An
    /// error for an empty list, a value that is not finite, or a standard deviation of 0.
    pub fn new(mean: &[f64], std: &[f64]) -> Result<Self> {
        for (what, values) in [("mean", mean), ("std", std)] {
            if values.is_empty() {
                return Err(NnError::invalid(
                    "Normalize",
                    format!("{what} needs at least one value"),
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(NnError::invalid(
                    "Normalize",
                    format!("{what} {v} is not finite ({what} {values:?})"),
                ));
            }
        }
        if let Some(c) = std.iter().position(|&s| s == 0.0) {
            return Err(NnError::invalid(
                "Normalize",
                format!("std of channel {c} is 0 (std {std:?})"),
            ));
        }
        Ok(Normalize {
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }

    fn normalize<T: Float>(&self, t: &Tensor<T>) -> Result<Tensor<T>> {
        let dims = t.dims();
        if dims.len() != 3 {
            return Err(NnError::invalid(
                "Normalize",
                format!("needs a tensor (C, H, W), got shape {dims:?}"),
            ));
        }
        let c = dims[0];
        for (what, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != 1 && values.len() != c {
                return Err(NnError::invalid(
                    "Normalize",
                    format!(
                        "{what} has {} values but the image has {c} channels (tensor {dims:?}); \
                         give one value or one per channel",
                        values.len()
                    ),
                ));
            }
        }
        let pick = |v: &[f64], k: usize| T::from_f64(v[if v.len() == 1 { 0 } else { k }]);
        let mut out = t.clone();
        let plane = dims[1] * dims[2];
        if plane > 0 {
            for (k, values) in out.data_mut().chunks_exact_mut(plane).enumerate() {
                let (m, s) = (pick(&self.mean, k), pick(&self.std, k));
                values.iter_mut().for_each(|v| *v = (*v - m) / s);
            }
        }
        Ok(out)
    }
}

impl Transform for Normalize {
    fn apply<'a>(&self, sample: Sample<'a>, _draws: &Draws) -> Result<Sample<'a>> {
        match &sample {
            Sample::Tensor(AnyTensor::F32(t)) => {
                Ok(Sample::Tensor(AnyTensor::F32(self.normalize(t)?)))
            }
            Sample::Tensor(AnyTensor::F64(t)) => {
                Ok(Sample::Tensor(AnyTensor::F64(self.normalize(t)?)))
            }
            Sample::Image(_) => Err(NnError::invalid(
                "Normalize",
                format!(
                    "needs a float tensor (C, H, W), got an {}; apply ToTensor first",
                    sample.describe()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::EpochKey;
    use crate::data::sample::Image;

    fn draws() -> Draws {
        Draws::new(EpochKey::default(), 0)
    }

    fn f32s(s: &Sample) -> (Vec<usize>, Vec<f32>) {
        match s {
            Sample::Tensor(AnyTensor::F32(t)) => (t.dims().to_vec(), t.data().to_vec()),
            other => panic!("expected a float32 tensor, got {other:?}"),
        }
    }

    #[test]
    fn to_tensor_moves_channels_first_and_divides_by_255() {
        // a 1×2 image with 3 channels: pixel 0 = (0, 51, 255), pixel 1 = (102, 1, 254)
        let image = Image::new(vec![0u8, 51, 255, 102, 1, 254], [1, 2, 3]).unwrap();
        let out = ToTensor.apply(Sample::Image(image), &draws()).unwrap();
        let (dims, v) = f32s(&out);
        assert_eq!(dims, [3, 1, 2]);
        // channel 0: 0/255, 102/255 = 0.4; channel 1: 51/255 = 0.2, 1/255; channel 2: 1, 254/255
        let expect = [0.0, 0.4, 0.2, 1.0 / 255.0, 1.0, 254.0 / 255.0];
        assert_eq!(v, expect.map(|x: f64| x as f32));
        let e = ToTensor.apply(out, &draws()).unwrap_err().to_string();
        assert_eq!(
            e,
            "ToTensor: needs an image of bytes, got a float32 tensor [3, 1, 2]"
        );
    }

    #[test]
    fn normalize_per_channel_by_hand() {
        // channel 0: (0.5 − 0.5) / 0.25 = 0, (1 − 0.5) / 0.25 = 2;
        // channel 1: (0.5 − 0.1) / 2 = 0.2, (0 − 0.1) / 2 = −0.05
        let t = Tensor::<f64>::from_f64s(&[0.5, 1.0, 0.5, 0.0], [2, 1, 2]).unwrap();
        let n = Normalize::new(&[0.5, 0.1], &[0.25, 2.0]).unwrap();
        match n.apply(t.into(), &draws()).unwrap() {
            Sample::Tensor(AnyTensor::F64(out)) => {
                let expect = [0.0, 2.0, 0.2, -0.05];
                out.data()
                    .iter()
                    .zip(expect)
                    .for_each(|(a, b)| assert!((a - b).abs() < 1e-15, "{a} vs {b}"));
            }
            other => panic!("{other:?}"),
        }
        // in float32, with the parameters rounded to float32 as MXNet passes them:
        // (0.7f − 0.1f) / 0.3f
        let t = Tensor::<f32>::from_f64s(&[0.7], [1, 1, 1]).unwrap();
        let out = Normalize::new(&[0.1], &[0.3])
            .unwrap()
            .apply(t.into(), &draws())
            .unwrap();
        assert_eq!(f32s(&out).1, [(0.7f32 - 0.1f32) / 0.3f32]);
    }

    #[test]
    fn normalize_refuses_what_does_not_fit() {
        let n = Normalize::new(&[0.5, 0.5, 0.5], &[0.2]).unwrap();
        let t = Tensor::<f32>::zeros([1, 28, 28]);
        let e = n.apply(t.into(), &draws()).unwrap_err().to_string();
        assert!(
            e.starts_with("Normalize: mean has 3 values but the image has 1 channels")
                && e.contains("[1, 28, 28]"),
            "{e}"
        );
        let e = Normalize::new(&[0.5], &[0.0]).unwrap_err().to_string();
        assert_eq!(e, "Normalize: std of channel 0 is 0 (std [0.0])");
        assert!(Normalize::new(&[], &[1.0]).is_err());
        assert!(Normalize::new(&[f64::NAN], &[1.0]).is_err());
        let image = Image::new(vec![0u8; 4], [2, 2, 1]).unwrap();
        let e = n
            .apply(Sample::Image(image), &draws())
            .unwrap_err()
            .to_string();
        assert!(e.contains("apply ToTensor first"), "{e}");
        let e = n
            .apply(Tensor::<f32>::zeros([3, 4]).into(), &draws())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Normalize: needs a tensor (C, H, W), got shape [3, 4]");
    }
}
