//! What a dataset yields: a [`Sample`] (an [`Image`] of bytes, height × width × channels as
//! MXNet's vision datasets yield them, or a float tensor) and its [`Label`] (a class index
//! or a target tensor). Bytes stay bytes, borrowed from the dataset, until `ToTensor` or the
//! data loader converts them.

use crate::error::{NnError, Result};
use kiln_tensor::{DType, Float, Tensor};
use std::borrow::Cow;

/// An image of bytes laid out height × width × channels (MXNet's `uint8` HWC images), borrowed
/// from its dataset or owned after a transform changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    pixels: Cow<'a, [u8]>,
    hwc: [usize; 3],
}

/// The number of elements of `dims`, or `None` if the product overflows.
pub(crate) fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

impl<'a> Image<'a> {
    /// An image from its bytes (H·W·C, row by row, channels interleaved) and `[h, w, c]`.
    pub fn new(pixels: impl Into<Cow<'a, [u8]>>, hwc: [usize; 3]) -> Result<Self> {
        let pixels = pixels.into();
        let [h, w, c] = hwc;
        match checked_numel(&hwc) {
            Some(n) if n == pixels.len() => Ok(Image { pixels, hwc }),
            _ => Err(NnError::invalid(
                "Image",
                format!("{} bytes for an image of {h}×{w}×{c} (H×W×C)", pixels.len()),
            )),
        }
    }

    /// A view of `pixels`, whose length the caller has checked to be H·W·C.
    pub(crate) fn borrowed(pixels: &'a [u8], hwc: [usize; 3]) -> Self {
        debug_assert_eq!(checked_numel(&hwc), Some(pixels.len()));
        Image {
            pixels: Cow::Borrowed(pixels),
            hwc,
        }
    }

    /// An image owning `pixels`, whose length the caller has checked to be H·W·C.
    pub(crate) fn owned(pixels: Vec<u8>, hwc: [usize; 3]) -> Self {
        debug_assert_eq!(checked_numel(&hwc), Some(pixels.len()));
        Image {
            pixels: Cow::Owned(pixels),
            hwc,
        }
    }

    /// The bytes, row by row with channels interleaved.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// `[height, width, channels]`.
    pub fn hwc(&self) -> [usize; 3] {
        self.hwc
    }

    /// Height.
    pub fn height(&self) -> usize {
        self.hwc[0]
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.hwc[1]
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.hwc[2]
    }

    /// True while the bytes are the dataset's own (no copy was made).
    pub fn is_borrowed(&self) -> bool {
        matches!(self.pixels, Cow::Borrowed(_))
    }

    /// The same image, owning its bytes.
    pub fn into_owned(self) -> Image<'static> {
        Image {
            pixels: Cow::Owned(self.pixels.into_owned()),
            hwc: self.hwc,
        }
    }

    /// A view of the same bytes.
    pub fn view(&self) -> Image<'_> {
        Image {
            pixels: Cow::Borrowed(&self.pixels),
            hwc: self.hwc,
        }
    }

    /// The bytes, owned (copied if borrowed).
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels.into_owned()
    }
}

/// A float tensor of either precision, as a sample or a target carries it.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyTensor {
    /// 32-bit floats (what `ToTensor` makes, as MXNet's does).
    F32(Tensor<f32>),
    /// 64-bit floats.
    F64(Tensor<f64>),
}

impl AnyTensor {
    /// A tensor of either element type, without copying its elements.
    pub fn new<T: Float>(t: Tensor<T>) -> Self {
        let any: Box<dyn std::any::Any> = Box::new(t);
        match any.downcast::<Tensor<f32>>() {
            Ok(t) => AnyTensor::F32(*t),
            Err(any) => AnyTensor::F64(
                *any.downcast::<Tensor<f64>>()
                    .expect("Float is implemented for f32 and f64 only"),
            ),
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        match self {
            AnyTensor::F32(t) => t.dims(),
            AnyTensor::F64(t) => t.dims(),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            AnyTensor::F32(_) => DType::F32,
            AnyTensor::F64(_) => DType::F64,
        }
    }

    /// A copy in element type `T` (exact from f32 to f64, rounded to nearest the other way).
    pub fn to<T: Float>(&self) -> Tensor<T> {
        match self {
            AnyTensor::F32(t) => t.cast(),
            AnyTensor::F64(t) => t.cast(),
        }
    }

    /// Writes the elements, converted to `T`, into `dst` (as long as the tensor).
    pub(crate) fn write_to<T: Float>(&self, dst: &mut [T]) {
        fn convert<S: Float, T: Float>(src: &[S], dst: &mut [T]) {
            match (
                kiln_tensor::kernels::as_f32(src),
                kiln_tensor::kernels::as_f32_mut(dst),
            ) {
                (Some(s), Some(d)) => d.copy_from_slice(s),
                _ => dst
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = T::from_f64(s.to_f64())),
            }
        }
        match self {
            AnyTensor::F32(t) => convert(t.data(), dst),
            AnyTensor::F64(t) => convert(t.data(), dst),
        }
    }
}

impl<T: Float> From<Tensor<T>> for AnyTensor {
    fn from(t: Tensor<T>) -> Self {
        AnyTensor::new(t)
    }
}

/// One sample of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample<'a> {
    /// Bytes, height × width × channels (what MXNet's vision datasets yield, and what
    /// `Resize`, the crops and the flips work on).
    Image(Image<'a>),
    /// A float tensor: `ToTensor`'s (C, H, W) output, or a row of an `ArrayDataset`.
    Tensor(AnyTensor),
}

impl Sample<'_> {
    /// The shape the sample has in a batch: `[c, h, w]` for an image (the loader converts it
    /// as `ToTensor` does), the tensor's own dimensions otherwise.
    pub fn batch_dims(&self) -> Vec<usize> {
        match self {
            Sample::Image(i) => vec![i.channels(), i.height(), i.width()],
            Sample::Tensor(t) => t.dims().to_vec(),
        }
    }

    /// True when [`Sample::batch_dims`] would be `dims` (without allocating).
    #[inline]
    pub fn has_batch_dims(&self, dims: &[usize]) -> bool {
        match self {
            Sample::Image(i) => dims == [i.channels(), i.height(), i.width()],
            Sample::Tensor(t) => t.dims() == dims,
        }
    }

    /// A short description for error messages: `image 28×28×1 (H×W×C)` or
    /// `float32 tensor [1, 28, 28]`.
    pub fn describe(&self) -> String {
        match self {
            Sample::Image(i) => {
                let [h, w, c] = i.hwc();
                format!("image {h}×{w}×{c} (H×W×C)")
            }
            Sample::Tensor(t) => format!("{} tensor {:?}", t.dtype(), t.dims()),
        }
    }

    /// A view of this sample: images are borrowed, tensors copied.
    pub fn view(&self) -> Sample<'_> {
        match self {
            Sample::Image(i) => Sample::Image(i.view()),
            Sample::Tensor(t) => Sample::Tensor(t.clone()),
        }
    }

    /// The same sample, owning its bytes.
    pub fn into_owned(self) -> Sample<'static> {
        match self {
            Sample::Image(i) => Sample::Image(i.into_owned()),
            Sample::Tensor(t) => Sample::Tensor(t),
        }
    }
}

impl<'a> From<Image<'a>> for Sample<'a> {
    fn from(i: Image<'a>) -> Self {
        Sample::Image(i)
    }
}

impl<T: Float> From<Tensor<T>> for Sample<'_> {
    fn from(t: Tensor<T>) -> Self {
        Sample::Tensor(AnyTensor::new(t))
    }
}

/// The label of one sample; a batch collects them into [`Labels`](crate::Labels).
#[derive(Clone, Debug, PartialEq)]
pub enum Label {
    /// A class index (any number of classes).
    Class(usize),
    /// A target tensor (a regression value has shape `[]`); a batch stacks them.
    Target(AnyTensor),
}

impl Label {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Label::Class(c) => format!("class {c}"),
            Label::Target(t) => format!("a target of shape {:?}", t.dims()),
        }
    }
}

impl From<usize> for Label {
    fn from(c: usize) -> Self {
        Label::Class(c)
    }
}

impl<T: Float> From<Tensor<T>> for Label {
    fn from(t: Tensor<T>) -> Self {
        Label::Target(AnyTensor::new(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_check_their_size_and_stay_borrowed() {
        let bytes = [1u8, 2, 3, 4, 5, 6];
        let i = Image::new(&bytes[..], [1, 2, 3]).unwrap();
        assert!(i.is_borrowed());
        assert_eq!((i.height(), i.width(), i.channels()), (1, 2, 3));
        assert!(!i.clone().into_owned().is_borrowed());
        let e = Image::new(&bytes[..], [2, 2, 2]).unwrap_err().to_string();
        assert_eq!(e, "Image: 6 bytes for an image of 2×2×2 (H×W×C)");
        // a product that overflows is refused, not wrapped around
        assert!(Image::new(&bytes[..], [usize::MAX, 2, 3]).is_err());
    }

    #[test]
    fn any_tensor_keeps_its_type_and_converts() {
        let t = Tensor::<f64>::from_f64s(&[0.1, 2.0], [2]).unwrap();
        let a = AnyTensor::new(t.clone());
        assert_eq!(a.dtype(), DType::F64);
        assert_eq!(a.to::<f64>(), t);
        let mut out = [0.0f32; 2];
        a.write_to(&mut out);
        assert_eq!(out, [0.1f32, 2.0]);
        let s: Sample = Tensor::<f32>::zeros([1, 2, 3]).into();
        assert_eq!(s.batch_dims(), vec![1, 2, 3]);
        assert_eq!(s.describe(), "float32 tensor [1, 2, 3]");
    }
}
