//! The checkpoint decoders past the header: the input is a body (or edits to a valid
//! body), framed by `checkpoint::frame` with a correct length and checksum, so every input
//! reaches the bincode decoder and the checks after it (shapes, names, architecture,
//! optimizer state). How the wrapped-around element count of issue 17 was found.
//!
//! The first byte chooses: the file kind and version (parameters 1 or 2, training state 3
//! or 4), and whether the rest is a whole body or edits to a valid one (pairs of a 2-byte
//! position and a byte, then at most one truncation).
#![no_main]
use kiln_fuzz::{bounded, checkpoint_limit, exercise, seeds, tiny_net};
use kiln_nn::checkpoint::{
    decode_parameters, decode_training_state, frame, PARAMS_MAGIC, STATE_MAGIC,
};
use kiln_nn::{Adam, BlockExt, Trainer};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 28;

fn edited(valid: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut body = valid[HEADER..].to_vec();
    let mut chunks = edits.chunks_exact(3);
    for e in &mut chunks {
        let at = u16::from_le_bytes([e[0], e[1]]) as usize;
        match body.get_mut(at) {
            Some(b) => *b = e[2],
            None => body.truncate(at % (body.len() + 1)),
        }
    }
    // a remainder of 1 or 2 bytes inserts them in the middle
    let rest = chunks.remainder();
    let mid = body.len() / 2;
    body.splice(mid..mid, rest.iter().copied());
    body
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (params_file, state_file) = seeds();
    let state = mode & 1 == 1;
    let version = if state {
        3 + ((mode >> 1) & 1) as u32
    } else {
        1 + ((mode >> 1) & 1) as u32
    };
    let body = if mode & 4 == 0 {
        rest.to_vec()
    } else {
        edited(if state { state_file } else { params_file }, rest)
    };
    let net = tiny_net();
    if state {
        let file = frame(STATE_MAGIC, version, &body);
        let mut trainer = Trainer::new(net.collect_params(), Adam::new(0.01));
        let params = net.collect_params();
        let limit = checkpoint_limit(file.len());
        let state = bounded("decode_training_state", limit, || {
            decode_training_state(&file, &params, &mut trainer)
        });
        if state.is_ok() {
            exercise(&net);
        }
    } else {
        let file = frame(PARAMS_MAGIC, version, &body);
        let params = net.collect_params();
        let limit = checkpoint_limit(file.len());
        if bounded("decode_parameters", limit, || {
            decode_parameters(&params, &file)
        })
        .is_ok()
        {
            exercise(&net);
        }
    }
});
