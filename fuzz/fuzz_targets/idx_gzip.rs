//! The IDX reader behind gzip, as `read_idx` reads `.gz` files: the input as a gzip
//! stream (damaged streams, streams that end early, concatenated members), and the input
//! gzipped (so that every raw IDX input also passes through the decompressor).
#![no_main]
use kiln_nn::data::parse_idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let check = |r: Result<kiln_nn::data::IdxArray, String>| {
        if let Ok(a) = r {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    };
    check(parse_idx(flate2::read::GzDecoder::new(data)));
    let zipped = kiln_fuzz::gzip(data);
    let raw = parse_idx(data);
    let unzipped = parse_idx(flate2::read::GzDecoder::new(&zipped[..]));
    // the same bytes, compressed or not, give the same array or both an error
    assert_eq!(raw.is_ok(), unzipped.is_ok(), "{raw:?} / {unzipped:?}");
    if let (Ok(a), Ok(b)) = (&raw, &unzipped) {
        assert_eq!(a, b);
    }
    check(unzipped);
});
