//! The sliding-window output-size formula, in the one place it lives. Convolution and
//! pooling both call [`out_size`].

/// Output length of a sliding window along one axis:
///
/// `out = floor((in + 2·pad − dilation·(k−1) − 1) / stride) + 1`, or `ceil(…) + 1` in
/// `ceil_mode` (MXNet's `pooling_convention="full"`, Gluon's `ceil_mode=True`).
///
/// In `ceil_mode` a last window that would start past the input and its left padding is
/// dropped, as PyTorch does: such a window covers no element of the input, and MXNet
/// would fill it with −∞ (max) or NaN (average). Returns `None` when `kernel`, `stride`
/// or `dilation` is 0, when the dilated window is larger than the padded input, or when
/// the padded input or the dilated window is too large to count (checked arithmetic:
/// sizes past `usize::MAX` are refused, never wrapped).
///
/// ```
/// use kiln_tensor::window::out_size;
/// assert_eq!(out_size(8, 3, 1, 2, 1, false), Some(4)); // the book's k=3, pad 1, stride 2
/// assert_eq!(out_size(5, 2, 0, 2, 1, true), Some(3));  // ceil mode keeps the partial window
/// assert_eq!(out_size(4, 5, 0, 1, 1, false), None);    // window larger than the input
/// ```
pub fn out_size(
    input: usize,
    kernel: usize,
    pad: usize,
    stride: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    let padded = input.checked_add(pad.checked_mul(2)?)?;
    if span > padded {
        return None;
    }
    let room = padded - span;
    if !ceil_mode {
        return Some(room / stride + 1);
    }
    let mut out = room.div_ceil(stride) + 1;
    // (out − 1)·stride ≤ room < padded and input + pad ≤ padded: neither overflows
    if (out - 1) * stride >= input + pad {
        out -= 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_padding_and_stride_shapes() {
        // D2L 6.3: 8×8 input
        assert_eq!(out_size(8, 3, 1, 1, 1, false), Some(8)); // k=3, pad 1
        assert_eq!(out_size(8, 5, 2, 1, 1, false), Some(8)); // k=(5,3), pad (2,1): height
        assert_eq!(out_size(8, 3, 1, 1, 1, false), Some(8)); //   width
        assert_eq!(out_size(8, 3, 1, 2, 1, false), Some(4)); // k=3, pad 1, stride 2
        assert_eq!(out_size(8, 3, 0, 3, 1, false), Some(2)); // k=(3,5), pad (0,1), stride (3,4)
        assert_eq!(out_size(8, 5, 1, 4, 1, false), Some(2));
    }

    #[test]
    fn dilation_and_ceil_mode() {
        assert_eq!(out_size(7, 3, 0, 1, 2, false), Some(3)); // span 5
        assert_eq!(out_size(7, 3, 0, 2, 1, true), Some(3));
        assert_eq!(out_size(6, 3, 0, 2, 1, false), Some(2));
        assert_eq!(out_size(6, 3, 0, 2, 1, true), Some(3));
        // a last window starting past the input is dropped: starts 0, 3 (6 would be empty)
        assert_eq!(out_size(5, 1, 0, 3, 1, true), Some(2));
        assert_eq!(out_size(4, 1, 0, 0, 1, false), None);
    }

    #[test]
    fn sizes_past_usize_are_refused_not_wrapped() {
        // 2·pad wraps to 0 and in + 2·pad to `in` in 64 bits: the window seemed to fit
        assert_eq!(out_size(4, 3, 1 << 63, 1, 1, false), None);
        assert_eq!(out_size(usize::MAX, 1, 1, 1, 1, false), None);
        // dilation·(k − 1) + 1 wraps to 1
        assert_eq!(out_size(4, 2, 0, 1, usize::MAX, false), None);
        assert_eq!(out_size(usize::MAX, 1, 0, 1, 1, false), Some(usize::MAX));
        assert_eq!(out_size(usize::MAX, 2, 0, 1, 1, true), Some(usize::MAX - 1));
    }
}
