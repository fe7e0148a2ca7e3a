//! Helpers shared by the integration tests.

use kiln_nn::{BlockExt, Sequential};

/// Every parameter's bits, in order: what "bit-identical networks" compares.
pub fn bits(net: &Sequential<f32>) -> Vec<u32> {
    net.collect_params()
        .iter()
        .flat_map(|(_, p)| {
            p.data()
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}
