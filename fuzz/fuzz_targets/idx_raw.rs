//! The IDX reader on raw bytes: an array whose element count is its dimensions' product,
//! or an error; never a panic, never an allocation for what a header only claims (a
//! counting allocator checks).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the elements and what reading them reserves: at most the input, twice over
    let limit = (1 << 16) + 2 * data.len();
    if let Ok(a) = kiln_fuzz::bounded("parse_idx", limit, || kiln_nn::data::parse_idx(data)) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
});
