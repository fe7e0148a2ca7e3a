//! The checkpoint decoders on raw bytes: parameter files, training-state files and
//! `decode_weights` (either), into a fresh network whose shapes are deferred. A value or
//! an error, never a panic; a network a file loaded into still runs or errs.
#![no_main]
use kiln_fuzz::{bounded, checkpoint_limit, exercise, tiny_net};
use kiln_nn::checkpoint::{decode_parameters, decode_training_state, decode_weights};
use kiln_nn::{Adam, BlockExt, Trainer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = checkpoint_limit(data.len());
    let net = tiny_net();
    let params = net.collect_params();
    if bounded("decode_parameters", limit, || {
        decode_parameters(&params, data)
    })
    .is_ok()
    {
        exercise(&net);
    }
    let net = tiny_net();
    let params = net.collect_params();
    if bounded("decode_weights", limit, || decode_weights(&params, data)).is_ok() {
        exercise(&net);
    }
    let net = tiny_net();
    let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.01));
    let params = net.collect_params();
    let state = bounded("decode_training_state", limit, || {
        decode_training_state(data, &params, &mut trainer)
    });
    if state.is_ok() {
        exercise(&net);
    }
});
