//! The zoo (D2L 6.6 and chapter 7): each network's parameter total in Gluon's count (running
//! statistics included) and output shape at the book's input size, and the shape walk-throughs
//! the chapter prints.

use kiln_nn::zoo::{by_name, input_side, MODELS};
use kiln_nn::{BlockExt, Init};
use kiln_tensor::Tensor;

/// Gluon's totals, from `sum(p.data().size for p in net.collect_params().values())` at the
/// book's input sizes (the table of the issue that asked for the zoo; LeNet's 44,426 is D2L 6.6's).
const TOTALS: [(&str, u64); 8] = [
    ("lenet", 44_426),
    ("bn_lenet", 45_330),
    ("alexnet", 46_764_746),
    ("vgg11_small", 43_093_322),
    ("nin", 1_992_166),
    ("googlenet", 5_977_530),
    ("resnet18", 11_186_186),
    ("densenet", 764_834),
];

#[test]
fn every_network_has_gluons_parameter_total_and_ten_outputs() {
    for (name, total) in TOTALS {
        let net = by_name::<f32>(name).unwrap();
        let side = input_side(name).unwrap();
        // a Box<dyn Block> is itself a block
        net.initialize(&Init::xavier(), 0).unwrap();
        let s = net.summary([1, 1, side, side]).unwrap();
        assert_eq!(s.total_params, total, "{name}");
        let y = net.predict(&Tensor::zeros([2, 1, side, side])).unwrap();
        assert_eq!(y.dims(), &[2, 10], "{name}");
    }
    assert_eq!(MODELS.len(), TOTALS.len());
}
