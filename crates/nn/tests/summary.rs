//! Summaries from the shape-only pass: the same table a forward pass on zeros gives, for
//! every network of the zoo, at no memory cost, and an error, never an abort, for an
//! input too large (issue 17, defect 2).

use kiln_autograd::Var;
use kiln_nn::summary::Row;
use kiln_nn::zoo::{by_name, input_side, lenet, MODELS};
use kiln_nn::{
    Activation, Block, BlockCell, BlockExt, Conv2D, Init, MaxPool2D, NnError, Result, Sequential,
};
use kiln_tensor::Float;

/// A block that runs `inner` but cannot tell its output shape (no `infer_shape`): the
/// summary runs its forward on zeros, where every block below gets its row through
/// `call` and the receptive fields through the ops.
struct Opaque<T: Float> {
    cell: BlockCell,
    inner: Box<dyn Block<T>>,
}

impl<T: Float> Block<T> for Opaque<T> {
    fn kind(&self) -> &'static str {
        "Opaque"
    }

    fn prefix(&self) -> &'static str {
        "opaque"
    }

    fn cell(&self) -> Option<&BlockCell> {
        Some(&self.cell)
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.inner.call(x)
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        vec![&*self.inner]
    }
}

/// The rows under the network's own, one level up: what the network's summary shows.
fn under(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .skip(1)
        .map(|r| Row {
            depth: r.depth - 1,
            ..r.clone()
        })
        .collect()
}

#[test]
fn the_shape_pass_gives_the_table_a_forward_on_zeros_gives() {
    for name in MODELS {
        // the book's 28 for the LeNets, else the smallest side all the others take (their
        // book sides, 96 and 224, make this a minute of debug-build convolutions)
        let side = input_side(name).unwrap().min(67);
        let net = by_name::<f32>(name).unwrap();
        net.initialize(&Init::xavier(), 0).unwrap();
        let s = net.summary([1, 1, side, side]).unwrap();
        let opaque = Opaque {
            cell: BlockCell::new(),
            inner: by_name::<f32>(name).unwrap(),
        };
        opaque.initialize(&Init::xavier(), 0).unwrap();
        let o = opaque.summary([1, 1, side, side]).unwrap();
        // the wrapper's children are the top rows: the network's row, then its table
        assert_eq!((o.rows[0].kind, o.rows[0].depth), ("Sequential", 0));
        assert_eq!(s.rows, under(&o.rows), "{name}");
        assert_eq!(s.total_mult_adds, o.total_mult_adds, "{name}");
        assert_eq!(s.total_params, o.total_params, "{name}");
    }
}

#[test]
fn a_summary_for_an_input_of_16_tb_allocates_nothing_for_it() {
    // LeNet's convolutional body on 2¹⁰ images of 2¹⁶ × 2¹⁶: a forward on zeros aborted
    // ("memory allocation of … bytes failed"); the shape pass takes no memory for them
    let net = Sequential::<f32>::new()
        .add(Conv2D::new(6, 5).activation(Activation::Sigmoid))
        .add(MaxPool2D::new(2).strides(2))
        .add(Conv2D::new(16, 5).activation(Activation::Sigmoid))
        .add(MaxPool2D::new(2).strides(2));
    net.initialize(&Init::xavier(), 0).unwrap();
    let s = net.summary([1 << 10, 1, 1 << 16, 1 << 16]).unwrap();
    let shapes: Vec<&[usize]> = s.rows.iter().map(|r| r.output.dims()).collect();
    assert_eq!(
        shapes,
        [
            &[1 << 10, 6, 65532, 65532][..],
            &[1 << 10, 6, 32766, 32766],
            &[1 << 10, 16, 32762, 32762],
            &[1 << 10, 16, 16381, 16381]
        ]
    );
    // conv0: 2¹⁰ · 6 · 65532² outputs of 25 multiply-adds each
    assert_eq!(s.rows[0].mult_adds, (1 << 10) * 6 * 65532 * 65532 * 25);
}

#[test]
fn an_input_too_large_for_a_tensor_is_an_error_not_an_abort() {
    let net = lenet::<f32>(Activation::Sigmoid);
    net.initialize(&Init::xavier(), 0).unwrap();
    // issue 17's call: 2⁶⁰ elements, one more than a tensor can hold
    let err = net.summary([1 << 20, 1, 1 << 20, 1 << 20]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "summary: shape [1048576, 1, 1048576, 1048576] has more elements than a tensor can \
         hold (its nonzero dimensions multiply to 1152921504606846976, the limit is \
         1152921504606846975)"
    );
    // an input that can be, whose first layer's output cannot: the error names it
    let err = net.summary([1 << 11, 1, 1 << 24, 1 << 24]).unwrap_err();
    let m = err.to_string();
    assert!(
        m.starts_with("conv0: conv2d: shape [2048, 6, 16777212, 16777212] has more elements"),
        "{m}"
    );
    // a block that cannot tell its shape runs on zeros, allocated fallibly: 2⁶⁰ bytes
    // are more than any machine maps
    let opaque = Opaque {
        cell: BlockCell::new(),
        inner: Box::new(lenet::<f32>(Activation::Sigmoid)),
    };
    opaque.initialize(&Init::xavier(), 0).unwrap();
    let err = opaque.summary([1 << 10, 1, 1 << 24, 1 << 24]).unwrap_err();
    assert!(matches!(err, NnError::Layer { .. }), "{err}");
    let m = err.to_string();
    assert!(
        m.starts_with("opaque0 (a block without infer_shape: the summary runs it on zeros): zeros: could not allocate 1152921504606846976 bytes"),
        "{m}"
    );
}

/// A user block whose first field is its child, so that both have one address
/// (`#[repr(C)]` fixes the layout that the compiler chose for the zoo's `DenseBlock`).
#[repr(C)]
struct FirstField<T: Float> {
    inner: Sequential<T>,
    cell: Option<BlockCell>,
}

impl<T: Float> Block<T> for FirstField<T> {
    fn kind(&self) -> &'static str {
        "FirstField"
    }

    fn prefix(&self) -> &'static str {
        "firstfield"
    }

    fn cell(&self) -> Option<&BlockCell> {
        self.cell.as_ref()
    }

    fn forward(&self, x: &Var<T>) -> Result<Var<T>> {
        self.inner.call(x)
    }

    fn children(&self) -> Vec<&dyn Block<T>> {
        vec![&self.inner]
    }
}

#[test]
fn a_block_and_its_first_field_keep_their_own_names() {
    // DenseNet's summary named each dense block after the Sequential it holds
    // (sequential1 for denseblock0): rows were named by address alone
    for cell in [Some(BlockCell::new()), None] {
        let net = Sequential::<f32>::new().add(FirstField {
            inner: Sequential::new().add(Conv2D::new(2, 3)),
            cell,
        });
        assert_eq!(
            &net[0] as *const dyn Block<f32> as *const () as usize,
            match net[0].children()[..] {
                [child] => child as *const dyn Block<f32> as *const () as usize,
                _ => unreachable!(),
            },
            "the block and its child share an address"
        );
        net.initialize(&Init::xavier(), 0).unwrap();
        let s = net.summary([1, 1, 5, 5]).unwrap();
        let names: Vec<(&str, usize)> = s.rows.iter().map(|r| (r.name.as_str(), r.depth)).collect();
        assert_eq!(
            names,
            [("firstfield0", 0), ("sequential1", 1), ("conv0", 2)]
        );
    }
}
