//! The book's plain loops: [`corr2d`] (D2L 6.2.1) and the true convolution [`convolve2d`]
//! beside it, and [`conv2d_reference`], a loop over every output element with every option,
//! kept as the oracle that the im2col + GEMM path is tested against.

use super::Conv2dParams;
use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::tensor::Tensor;

/// The book's 2-d cross-correlation of a matrix `x` (h, w) with a kernel `k` (kh, kw):
/// `y[i, j] = Σ_{a,b} x[i + a, j + b] · k[a, b]`, shape (h − kh + 1, w − kw + 1).
///
/// ```
/// use kiln_tensor::{conv2d::reference::corr2d, Tensor};
/// let x = Tensor::<f32>::arange(9).reshape([3, 3]).unwrap();
/// let k = Tensor::<f32>::arange(4).reshape([2, 2]).unwrap();
/// assert_eq!(corr2d(&x, &k).unwrap().data(), &[19.0, 25.0, 37.0, 43.0]);
/// ```
pub fn corr2d<T: Float>(x: &Tensor<T>, k: &Tensor<T>) -> Result<Tensor<T>> {
    if x.rank() != 2 || k.rank() != 2 {
        return Err(TensorError::invalid(
            "corr2d",
            format!(
                "input and kernel must be 2-d, got {} and {}",
                x.shape(),
                k.shape()
            ),
        ));
    }
    let (h, w, kh, kw) = (x.dims()[0], x.dims()[1], k.dims()[0], k.dims()[1]);
    if kh == 0 || kw == 0 || kh > h || kw > w {
        return Err(TensorError::invalid(
            "corr2d",
            format!("kernel {} does not fit in input {}", k.shape(), x.shape()),
        ));
    }
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let mut y = Tensor::zeros([oh, ow]);
    for i in 0..oh {
        for j in 0..ow {
            let mut acc = T::ZERO;
            for a in 0..kh {
                for b in 0..kw {
                    acc += x.data()[(i + a) * w + j + b] * k.data()[a * kw + b];
                }
            }
            y.data_mut()[i * ow + j] = acc;
        }
    }
    Ok(y)
}

/// True 2-d convolution, as in signal processing: the kernel flipped up-down and
/// left-right, then cross-correlated (D2L 6.2.5 contrasts the two).
pub fn convolve2d<T: Float>(x: &Tensor<T>, k: &Tensor<T>) -> Result<Tensor<T>> {
    if k.rank() != 2 {
        return Err(TensorError::invalid(
            "convolve2d",
            format!("kernel must be 2-d, got {}", k.shape()),
        ));
    }
    corr2d(x, &k.flip(&[0, 1])?).map_err(|e| match e {
        TensorError::Invalid { message, .. } => TensorError::invalid("convolve2d", message),
        other => other,
    })
}

/// [`crate::conv2d::conv2d`] computed by plain loops over every output element and
/// kernel tap, with every option. Slow; it exists to be obviously right.
pub fn conv2d_reference<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    params: &Conv2dParams,
) -> Result<Tensor<T>> {
    let g = params.geometry("conv2d", x.shape(), weight.shape())?;
    super::check_bias("conv2d", bias, g.c_out)?;
    let (cg, og) = (g.c_per_group(), g.c_out_per_group());
    let mut y = Tensor::zeros(g.out_shape());
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / og;
            for i in 0..g.h_out {
                for j in 0..g.w_out {
                    let mut acc = bias.map_or(T::ZERO, |b| b.data()[o]);
                    for c in 0..cg {
                        for p in 0..g.k_h {
                            for q in 0..g.k_w {
                                let ih = (i * g.stride.h + p * g.dilation.h) as isize
                                    - g.padding.h as isize;
                                let iw = (j * g.stride.w + q * g.dilation.w) as isize
                                    - g.padding.w as isize;
                                if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                                    continue;
                                }
                                let xc = grp * cg + c;
                                let xv = x.get(&[n, xc, ih as usize, iw as usize])?;
                                acc += weight.get(&[o, c, p, q])? * xv;
                            }
                        }
                    }
                    y.set(&[n, o, i, j], acc)?;
                }
            }
        }
    }
    Ok(y)
}
