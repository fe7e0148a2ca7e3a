//! Pooling by the most literal loops: pad the input explicitly (−∞ for max, 0 for
//! average), slide the window over the padded image and clip it where it hangs past the
//! padded edge. The oracle that the pooling kernels are tested against.

use super::Pool2dParams;
use crate::error::Result;
use crate::float::Float;
use crate::tensor::Tensor;

/// Max (`max = true`) or average pooling, computed literally.
pub fn pool2d_reference<T: Float>(
    x: &Tensor<T>,
    params: &Pool2dParams,
    max: bool,
) -> Result<Tensor<T>> {
    let op = if max { "max_pool2d" } else { "avg_pool2d" };
    let g = params.geometry(op, x.shape())?;
    let (k, s, p) = (params.kernel, params.stride, params.padding);
    let (hp, wp) = (g.h + 2 * p.h, g.w + 2 * p.w);
    let fill = if max { T::NEG_INFINITY } else { T::ZERO };
    let mut y = Tensor::zeros(g.out_shape());
    for n in 0..g.n {
        for c in 0..g.c {
            // the padded image, and a mask of which of its cells are real input
            let mut padded = vec![fill; hp * wp];
            let mut real = vec![false; hp * wp];
            for i in 0..g.h {
                for j in 0..g.w {
                    padded[(i + p.h) * wp + j + p.w] = x.get(&[n, c, i, j])?;
                    real[(i + p.h) * wp + j + p.w] = true;
                }
            }
            for oi in 0..g.h_out {
                for oj in 0..g.w_out {
                    let (i0, j0) = (oi * s.h, oj * s.w);
                    let (i1, j1) = ((i0 + k.h).min(hp), (j0 + k.w).min(wp));
                    let mut acc = fill;
                    let mut count_real = 0;
                    for i in i0..i1 {
                        for j in j0..j1 {
                            let v = padded[i * wp + j];
                            if max {
                                if super::beats(v, acc) {
                                    acc = v;
                                }
                            } else {
                                acc += v;
                            }
                            count_real += usize::from(real[i * wp + j]);
                        }
                    }
                    if !max {
                        let count = if params.count_include_pad {
                            (i1 - i0) * (j1 - j0)
                        } else {
                            count_real
                        };
                        acc /= T::from_usize(count);
                    }
                    y.set(&[n, c, oi, oj], acc)?;
                }
            }
        }
    }
    Ok(y)
}
