//! Checkpoint files. Layout: an 8-byte magic, a format version (u32), the body's length
//! (u64) and its FNV-1a checksum (u64), all little-endian, then the body in bincode (via
//! serde). The body starts with the network's architecture (every block's path and
//! [`Block::describe`](crate::Block::describe), see [`crate::architecture`]), so that a
//! file loads only into the network it was saved from. Parameters are keyed by
//! structural path (`0.weight`), as Gluon's `save_parameters`. Files are written
//! atomically and hold nothing that varies between runs: identical parameters give
//! identical bytes.

use crate::architecture::{self, BlockRecord};
use crate::block::ParameterDict;
use crate::error::{NnError, Result};
use crate::optim::ParamState;
use crate::trainer::Trainer;
use kiln_tensor::{Float, Shape, Tensor};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Magic of a parameter file.
pub const PARAMS_MAGIC: [u8; 8] = *b"KILNPARM";
/// The format version of parameter files this build writes (2: the network's
/// architecture before the parameters). Version 1 files, parameters only, are still
/// read, without the architecture check.
pub const FORMAT_VERSION: u32 = 2;
/// The format version of training-state files this build writes (4: the network's
/// architecture first; 3: the batches done of an unfinished epoch in the progress; 2:
/// the state of any optimizer, update counts; 1 held SGD's momentum only). Version 3
/// files are still read, without the architecture check.
pub const STATE_FORMAT_VERSION: u32 = 4;

/// The format version written under `magic`.
fn version_of(magic: [u8; 8]) -> u32 {
    if magic == STATE_MAGIC {
        STATE_FORMAT_VERSION
    } else {
        FORMAT_VERSION
    }
}

/// The versions read under `magic`: the one written, and the one before it, whose body
/// is the same without the architecture.
fn versions_read(magic: [u8; 8]) -> std::ops::RangeInclusive<u32> {
    version_of(magic) - 1..=version_of(magic)
}
const HEADER_LEN: usize = 8 + 4 + 8 + 8;
/// Bodies larger than this are refused before decoding (16 GiB).
const MAX_BODY: u64 = 1 << 34;

/// One tensor of a checkpoint: its key, shape and little-endian element bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorRecord {
    /// Structural path (`0.weight`) or another key.
    pub name: String,
    /// Dimensions.
    #[serde(deserialize_with = "grown")]
    pub shape: Vec<u64>,
    /// `shape.numel() · dtype size` bytes, little-endian.
    #[serde(deserialize_with = "grown")]
    pub data: Vec<u8>,
}

impl TensorRecord {
    /// Records a tensor under `name`.
    pub fn new<T: Float>(name: impl Into<String>, t: &Tensor<T>) -> Self {
        let mut data = Vec::with_capacity(t.numel() * T::DTYPE.size());
        t.data().iter().for_each(|v| v.write_le(&mut data));
        TensorRecord {
            name: name.into(),
            shape: t.dims().iter().map(|&d| d as u64).collect(),
            data,
        }
    }

    /// The shape, if a tensor can have it: every dimension fits in memory sizes and
    /// their product in [`kiln_tensor::shape::MAX_NUMEL`] (a product that wraps around in
    /// 64 bits, such as 6 · 2⁶³ · 5 · 5 = 0, is refused).
    pub fn shape(&self) -> std::result::Result<Shape, String> {
        let dims: Option<Vec<usize>> = self
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let shape = dims
            .map(Shape::from)
            .filter(|s| s.checked_numel().is_some());
        shape.ok_or_else(|| {
            format!(
                "'{}' has an impossible shape {:?}: no tensor has more than {} elements",
                self.name,
                self.shape,
                kiln_tensor::shape::MAX_NUMEL
            )
        })
    }

    /// The tensor, checking the byte count against the shape.
    pub fn to_tensor<T: Float>(&self) -> std::result::Result<Tensor<T>, String> {
        let shape = self.shape()?;
        // at most MAX_NUMEL · 8 bytes: no overflow
        let expected = shape.numel() * T::DTYPE.size();
        if expected != self.data.len() {
            return Err(format!(
                "'{}' has {} bytes of data, its shape {shape} needs {expected}",
                self.name,
                self.data.len(),
            ));
        }
        let values = self
            .data
            .chunks_exact(T::DTYPE.size())
            .map(T::read_le)
            .collect();
        Tensor::from_vec(values, shape).map_err(|e| e.to_string())
    }
}

#[derive(Serialize, Deserialize)]
struct ParamsBody {
    dtype: String,
    #[serde(deserialize_with = "grown")]
    params: Vec<TensorRecord>,
}

/// A body of the current versions: the architecture of the network, then what the
/// version before held.
#[derive(Serialize, Deserialize)]
struct WithArchitecture<B> {
    #[serde(deserialize_with = "grown")]
    architecture: Vec<BlockRecord>,
    body: B,
}

/// Deserializes a vector without trusting its length field: serde's own `Vec` reserves
/// up to 1 MiB for whatever length a file claims (8 bytes claiming 2⁵⁶ records did, in
/// a 36-byte file), so this one reserves at most 4 KiB up front and grows with the
/// elements actually decoded, each of which consumes bytes of the file. Memory then
/// stays within a small multiple of the file's size.
fn grown<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Grown<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Grown<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<T>, A::Error> {
            let most = 4096 / std::mem::size_of::<T>().max(1);
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(most));
            while let Some(v) = seq.next_element()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Grown(std::marker::PhantomData))
}

/// FNV-1a, 64-bit: detects damaged bodies (not an authenticity check).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn bincode_config(
) -> bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint> {
    bincode::config::standard().with_fixed_int_encoding()
}

/// Decodes a body, letting a string claim (allocate) at most the next power of two above
/// the body's size (at least 64 KiB): a length field that lies cannot make the decoder
/// allocate more than twice the file for it. (bincode's limit is a constant, hence the
/// ladder.) Vectors are read by [`grown`], which bincode's limit does not cover.
fn decode_limited<D: DeserializeOwned>(
    payload: &[u8],
) -> std::result::Result<(D, usize), bincode::error::DecodeError> {
    use bincode::serde::decode_from_slice;
    let config = bincode_config();
    match payload.len() {
        n if n <= 1 << 16 => decode_from_slice(payload, config.with_limit::<{ 1 << 16 }>()),
        n if n <= 1 << 20 => decode_from_slice(payload, config.with_limit::<{ 1 << 20 }>()),
        n if n <= 1 << 24 => decode_from_slice(payload, config.with_limit::<{ 1 << 24 }>()),
        n if n <= 1 << 28 => decode_from_slice(payload, config.with_limit::<{ 1 << 28 }>()),
        n if n <= 1 << 32 => decode_from_slice(payload, config.with_limit::<{ 1 << 32 }>()),
        _ => decode_from_slice(payload, config.with_limit::<{ MAX_BODY as usize }>()),
    }
}

/// The bytes of a file holding `body` under `magic`, at the version this build writes.
pub fn encode_file<S: Serialize>(magic: [u8; 8], body: &S) -> std::result::Result<Vec<u8>, String> {
    let payload =
        bincode::serde::encode_to_vec(body, bincode_config()).map_err(|e| e.to_string())?;
    Ok(frame(magic, version_of(magic), &payload))
}

/// A file of `payload` (an encoded body) under `magic` and `version`: the header with the
/// payload's length and checksum, then the payload. What [`encode_file`] writes, and how
/// a fuzzer makes files whose header and checksum are right around any body.
pub fn frame(magic: [u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The version and the body bytes of a file under `magic`, after checking its header,
/// its length and its checksum; every malformation (foreign file, version not read,
/// truncation, damage) is an error message.
fn unframe(magic: [u8; 8], bytes: &[u8]) -> std::result::Result<(u32, &[u8]), String> {
    if bytes.len() < HEADER_LEN || bytes[..8] != magic {
        return Err(format!(
            "not a kiln file of this kind (expected it to start with {:?})",
            String::from_utf8_lossy(&magic)
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let read = versions_read(magic);
    if !read.contains(&version) {
        return Err(format!(
            "format version {version} is not supported (this kiln reads versions {} and {})",
            read.start(),
            read.end()
        ));
    }
    let (len, checksum) = (u64_at(12), u64_at(20));
    let payload = &bytes[HEADER_LEN..];
    if len > MAX_BODY || payload.len() as u64 != len {
        return Err(format!(
            "truncated or padded: the header announces {len} bytes of body, the file has {}",
            payload.len()
        ));
    }
    if fnv1a(payload) != checksum {
        return Err("damaged: the body does not match its checksum".to_string());
    }
    Ok((version, payload))
}

/// Decodes a body that must fill `payload` exactly.
fn decode_body<D: DeserializeOwned>(payload: &[u8]) -> std::result::Result<D, String> {
    let (body, used) = decode_limited(payload).map_err(|e| format!("undecodable body: {e}"))?;
    if used != payload.len() {
        return Err(format!(
            "{} unexpected bytes after the body",
            payload.len() - used
        ));
    }
    Ok(body)
}

/// Decodes a file written by [`encode_file`] with the same `magic`, at the version this
/// build writes; every malformation (foreign file, other version, truncation, damage,
/// undecodable body) is an error message.
pub fn decode_file<D: DeserializeOwned>(
    magic: [u8; 8],
    bytes: &[u8],
) -> std::result::Result<D, String> {
    let (version, payload) = unframe(magic, bytes)?;
    if version != version_of(magic) {
        return Err(format!(
            "format version {version} is not supported here (this reads version {})",
            version_of(magic)
        ));
    }
    decode_body(payload)
}

/// Decodes a body of either version read under `magic`: with the architecture at the
/// current one, without it (`None`) at the one before.
fn decode_versioned<B: DeserializeOwned>(
    magic: [u8; 8],
    bytes: &[u8],
) -> std::result::Result<(Option<Vec<BlockRecord>>, B), String> {
    let (version, payload) = unframe(magic, bytes)?;
    if version == version_of(magic) {
        let b: WithArchitecture<B> = decode_body(payload)?;
        Ok((Some(b.architecture), b.body))
    } else {
        Ok((None, decode_body(payload)?))
    }
}

/// Writes a file atomically: into a temporary file in the same folder, flushed to disk,
/// then renamed over `path`. If `write` (or anything else) fails, the temporary file is
/// removed and whatever was at `path` is untouched.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| NnError::io("writing", path, io::Error::other("the path names no file")))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    fn step<'p>(op: &'static str, at: &'p Path) -> impl FnOnce(io::Error) -> NnError + 'p {
        move |source| NnError::io(op, at, source)
    }
    let result = (|| {
        let file = File::create(&tmp).map_err(step("creating", &tmp))?;
        let mut w = BufWriter::new(file);
        write(&mut w).map_err(step("writing", &tmp))?;
        let file = w
            .into_inner()
            .map_err(|e| NnError::io("writing", &tmp, e.into_error()))?;
        file.sync_all().map_err(step("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(step("renaming a finished file onto", path))?;
        // Make the rename itself durable (best effort: not every platform can sync a folder).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The bytes of a parameter file for `params` (all must have values).
pub fn encode_parameters<T: Float>(params: &ParameterDict<T>) -> Result<Vec<u8>> {
    let mut records = Vec::with_capacity(params.len());
    for (path, p) in params.iter() {
        records.push(TensorRecord::new(path, p.data()?.as_ref()));
    }
    let body = WithArchitecture {
        architecture: params.architecture(),
        body: ParamsBody {
            dtype: T::DTYPE.name().to_string(),
            params: records,
        },
    };
    encode_file(PARAMS_MAGIC, &body).map_err(|e| NnError::invalid("save_parameters", e))
}

/// Saves `params` to `path` atomically.
pub fn save_parameters<T: Float>(params: &ParameterDict<T>, path: &Path) -> Result<()> {
    let bytes = encode_parameters(params)?;
    atomic_write(path, |w| w.write_all(&bytes))
}

/// Loads `path` into `params`. The file must come from a network of the same
/// architecture (an error names the first block that differs, and how), every parameter
/// must be in it once with a matching shape (unknown dimensions are taken from it) and
/// it must hold nothing else; nothing changes unless all of it loads.
pub fn load_parameters<T: Float>(params: &ParameterDict<T>, path: &Path) -> Result<()> {
    let bytes = fs::read(path).map_err(|source| NnError::io("reading", path, source))?;
    decode_parameters(params, &bytes).map_err(|message| NnError::Checkpoint {
        path: path.to_path_buf(),
        message,
    })
}

/// [`load_parameters`] from bytes in memory; the error is a message about the file.
pub fn decode_parameters<T: Float>(
    params: &ParameterDict<T>,
    bytes: &[u8],
) -> std::result::Result<(), String> {
    let (architecture, body): (_, ParamsBody) = decode_versioned(PARAMS_MAGIC, bytes)?;
    check_network(params, &body.dtype, architecture.as_deref())?;
    set_parameters(params, &body.params)
}

/// Checks that a file's element type and architecture (if it has one: older versions do
/// not) are those of the network `params` come from.
fn check_network<T: Float>(
    params: &ParameterDict<T>,
    dtype: &str,
    saved: Option<&[BlockRecord]>,
) -> std::result::Result<(), String> {
    if dtype != T::DTYPE.name() {
        return Err(format!(
            "holds {dtype} parameters but the network is {}",
            T::DTYPE.name()
        ));
    }
    saved.map_or(Ok(()), |saved| architecture::check(saved, params.blocks()))
}

/// Checks `records` against `params` (every name present once, shapes agreeing, nothing
/// extra) and only then sets them all.
fn set_parameters<T: Float>(
    params: &ParameterDict<T>,
    records: &[TensorRecord],
) -> std::result::Result<(), String> {
    // a name twice would make which record loads a matter of order: refuse it
    let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!(
            "parameter '{}' appears more than once in the file",
            pair[0]
        ));
    }
    let mut loaded = Vec::with_capacity(params.len());
    for (path, p) in params.iter() {
        let record = records.iter().find(|r| r.name == path).ok_or_else(|| {
            format!(
                "has no parameter '{path}' ({}, shape {}): was it saved from another network?",
                p.name(),
                p.shape()
            )
        })?;
        let value = record.to_tensor::<T>()?;
        let declared = p.shape();
        let fits = declared.rank() == value.rank()
            && declared
                .iter()
                .zip(value.dims())
                .all(|(&d, &v)| d == 0 || d == v);
        if !fits {
            return Err(format!(
                "parameter '{path}' ({}) has shape {} in the file but {declared} in the network",
                p.name(),
                value.shape()
            ));
        }
        loaded.push((p, value));
    }
    if let Some(extra) = records.iter().find(|r| params.get(&r.name).is_none()) {
        return Err(format!(
            "parameter '{}' in the file is not in the network",
            extra.name
        ));
    }
    for (p, value) in loaded {
        p.set_data(value).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Magic of a training-state file.
pub const STATE_MAGIC: [u8; 8] = *b"KILNSTAT";

/// How far a training run has come: with the parameters and the optimizer's state, all a
/// run needs to continue as if it had never stopped. The data order of epoch `e` depends
/// only on `seed` and `e` (see `DataLoader::shuffle`) and dropout's draws only on the seed
/// and the trainer's update count, so these numbers are the whole random state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingProgress {
    /// Epochs finished.
    pub epoch: u64,
    /// Batches of epoch `epoch` (the next one) already trained: 0 at an epoch's end, more
    /// when a run was stopped in the middle of an epoch; a resumed run skips them.
    pub batches: u64,
    /// The seed of the run's data order.
    pub seed: u64,
}

/// The optimizer state of one parameter.
#[derive(Serialize, Deserialize)]
struct ParamStateRecord {
    /// The trainer's key of the parameter (its structural path).
    key: String,
    /// Updates applied to it; `None` before the first.
    count: Option<u64>,
    /// The optimizer's tensors, each named `{key}:{state name}` (`0.weight:mean`).
    #[serde(deserialize_with = "grown")]
    tensors: Vec<TensorRecord>,
}

#[derive(Serialize, Deserialize)]
struct StateBody {
    dtype: String,
    #[serde(deserialize_with = "grown")]
    params: Vec<TensorRecord>,
    /// The optimizer's name (`Adam`).
    optimizer: String,
    /// The optimizer's own learning rate (a schedule's rate is a function of `num_update`).
    learning_rate: f64,
    /// One entry per parameter the trainer trains, in its order.
    #[serde(deserialize_with = "grown")]
    states: Vec<ParamStateRecord>,
    /// Gluon's `num_update` and `begin_num_update`.
    num_update: u64,
    begin_num_update: u64,
    progress: TrainingProgress,
}

/// Saves everything needed to resume training: parameters, the trainer's optimizer state
/// (each parameter's update count and tensors: momentum, moments, accumulators), the
/// optimizer's learning rate, the update counts, and `progress`. Atomic, like
/// [`save_parameters`].
pub fn save_training_state<T: Float>(
    path: &Path,
    params: &ParameterDict<T>,
    trainer: &Trainer<T>,
    progress: TrainingProgress,
) -> Result<()> {
    let bytes = encode_training_state(params, trainer, progress)?;
    atomic_write(path, |w| w.write_all(&bytes))
}

/// The bytes of a training-state file, as [`save_training_state`] writes them.
pub fn encode_training_state<T: Float>(
    params: &ParameterDict<T>,
    trainer: &Trainer<T>,
    progress: TrainingProgress,
) -> Result<Vec<u8>> {
    let mut records = Vec::with_capacity(params.len());
    for (key, p) in params.iter() {
        records.push(TensorRecord::new(key, p.data()?.as_ref()));
    }
    let names = trainer.optimizer().state_names();
    let states = trainer
        .keys()
        .iter()
        .zip(trainer.states())
        .map(|(key, s)| ParamStateRecord {
            key: key.clone(),
            count: s.count,
            tensors: names
                .iter()
                .zip(&s.tensors)
                .map(|(name, t)| TensorRecord::new(format!("{key}:{name}"), t))
                .collect(),
        })
        .collect();
    let body = StateBody {
        dtype: T::DTYPE.name().to_string(),
        params: records,
        optimizer: trainer.optimizer().name().to_string(),
        learning_rate: trainer.optimizer().learning_rate(),
        states,
        num_update: trainer.num_update(),
        begin_num_update: trainer.begin_num_update(),
        progress,
    };
    let body = WithArchitecture {
        architecture: params.architecture(),
        body,
    };
    encode_file(STATE_MAGIC, &body).map_err(|e| NnError::invalid("save_training_state", e))
}

/// Loads the parameters of a parameter file ([`save_parameters`]) or of a training-state
/// file ([`save_training_state`]) into `params`, whichever `path` is: how a training run's
/// checkpoint is evaluated. Every name and shape is checked before any value changes.
pub fn load_weights<T: Float>(params: &ParameterDict<T>, path: &Path) -> Result<()> {
    let bytes = fs::read(path).map_err(|source| NnError::io("reading", path, source))?;
    decode_weights(params, &bytes).map_err(|message| NnError::Checkpoint {
        path: path.to_path_buf(),
        message,
    })
}

/// [`load_weights`] from bytes in memory; the error is a message about the file.
pub fn decode_weights<T: Float>(
    params: &ParameterDict<T>,
    bytes: &[u8],
) -> std::result::Result<(), String> {
    if bytes.starts_with(&STATE_MAGIC) {
        let (architecture, body): (_, StateBody) = decode_versioned(STATE_MAGIC, bytes)?;
        check_network(params, &body.dtype, architecture.as_deref())?;
        set_parameters(params, &body.params)
    } else {
        decode_parameters(params, bytes)
    }
}

/// Loads a state saved by [`save_training_state`] into `params` and `trainer` (both built
/// as for the original run, with the same optimizer) and returns the progress to continue
/// from. A state of another network (as [`load_parameters`] checks it), of another
/// optimizer, or of other parameters, is an error; nothing changes unless all of it loads.
pub fn load_training_state<T: Float>(
    path: &Path,
    params: &ParameterDict<T>,
    trainer: &mut Trainer<T>,
) -> Result<TrainingProgress> {
    let bytes = fs::read(path).map_err(|source| NnError::io("reading", path, source))?;
    decode_training_state(&bytes, params, trainer).map_err(|message| NnError::Checkpoint {
        path: path.to_path_buf(),
        message,
    })
}

/// [`load_training_state`] from bytes in memory; the error is a message about the file.
pub fn decode_training_state<T: Float>(
    bytes: &[u8],
    params: &ParameterDict<T>,
    trainer: &mut Trainer<T>,
) -> std::result::Result<TrainingProgress, String> {
    let (architecture, body): (_, StateBody) = decode_versioned(STATE_MAGIC, bytes)?;
    check_network(params, &body.dtype, architecture.as_deref())?;
    let states = optimizer_states(&body, trainer)?;
    trainer.check_states(&states)?;
    set_parameters(params, &body.params)?;
    trainer
        .set_states(states, body.num_update, body.begin_num_update)
        .map_err(|e| e.to_string())?;
    trainer.restore_optimizer_learning_rate(body.learning_rate);
    Ok(body.progress)
}

/// The per-parameter optimizer states of `body`, checked against the trainer's optimizer
/// and parameters and against the parameters saved with them.
fn optimizer_states<T: Float>(
    body: &StateBody,
    trainer: &Trainer<T>,
) -> std::result::Result<Vec<ParamState<T>>, String> {
    if body.dtype != T::DTYPE.name() {
        return Err(format!(
            "holds {} parameters but the network is {}",
            body.dtype,
            T::DTYPE.name()
        ));
    }
    let optimizer = trainer.optimizer().name();
    if body.optimizer != optimizer {
        return Err(format!(
            "holds the state of optimizer {}, but the trainer's optimizer is {optimizer}",
            body.optimizer
        ));
    }
    let saved: Vec<&str> = body.states.iter().map(|s| s.key.as_str()).collect();
    if saved != trainer.keys() {
        return Err(format!(
            "holds optimizer state for parameters {saved:?}, but the trainer trains {:?}",
            trainer.keys()
        ));
    }
    let names = trainer.optimizer().state_names();
    let mut states = Vec::with_capacity(body.states.len());
    for s in &body.states {
        let expected = if s.count.is_some() { names.len() } else { 0 };
        if s.tensors.len() != expected {
            return Err(format!(
                "holds {} {optimizer} state tensors for '{}', but this {optimizer} keeps {expected} \
                 ({names:?}): were its settings (momentum, centered) changed?",
                s.tensors.len(),
                s.key
            ));
        }
        let param = body.params.iter().find(|p| p.name == s.key);
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (r, name) in s.tensors.iter().zip(names) {
            if r.name != format!("{}:{name}", s.key) || param.map(|p| &p.shape) != Some(&r.shape) {
                return Err(format!(
                    "optimizer state '{}' does not belong to parameter '{}' as {optimizer}'s '{name}'",
                    r.name, s.key
                ));
            }
            tensors.push(r.to_tensor::<T>()?);
        }
        states.push(ParamState {
            count: s.count,
            tensors,
        });
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_value() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (reference value of the algorithm)
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn records_round_trip_and_check_sizes() {
        let t = Tensor::<f32>::from_f64s(&[1.5, -2.0, 3.25], [3, 1]).unwrap();
        let r = TensorRecord::new("w", &t);
        assert_eq!(r.to_tensor::<f32>().unwrap(), t);
        assert!(r.to_tensor::<f64>().is_err());
        let bytes = encode_file(PARAMS_MAGIC, &r).unwrap();
        let back: TensorRecord = decode_file(PARAMS_MAGIC, &bytes).unwrap();
        assert_eq!(back, r);
        assert!(decode_file::<TensorRecord>(*b"OTHERMAG", &bytes).is_err());
        assert!(decode_file::<TensorRecord>(PARAMS_MAGIC, &bytes[..bytes.len() - 1]).is_err());
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(decode_file::<TensorRecord>(PARAMS_MAGIC, &damaged)
            .unwrap_err()
            .contains("checksum"));
    }

    #[test]
    fn files_of_the_version_before_load_without_the_architecture_check() {
        use crate::{zoo::lenet, Activation, BlockExt, Init};
        let net = lenet::<f32>(Activation::Sigmoid);
        net.initialize(&Init::xavier(), 0).unwrap();
        net.predict(&Tensor::zeros([1, 1, 28, 28])).unwrap();
        let params = net.collect_params();
        let body = ParamsBody {
            dtype: "float32".into(),
            params: params
                .iter()
                .map(|(path, p)| TensorRecord::new(path, &p.data().unwrap()))
                .collect(),
        };
        let payload = bincode::serde::encode_to_vec(&body, bincode_config()).unwrap();
        // version 1 held no architecture: it loads, even into a ReLU LeNet
        let v1 = frame(PARAMS_MAGIC, 1, &payload);
        let relu = lenet::<f32>(Activation::Relu);
        decode_parameters(&relu.collect_params(), &v1).unwrap();
        assert_eq!(
            relu.collect_params()
                .get("0.weight")
                .unwrap()
                .data()
                .unwrap(),
            params.get("0.weight").unwrap().data().unwrap()
        );
        // the same body read as version 2 lacks the architecture; a version 3 is unknown
        let v2 = frame(PARAMS_MAGIC, 2, &payload);
        let err = decode_parameters(&relu.collect_params(), &v2).unwrap_err();
        assert!(err.starts_with("undecodable body"), "{err}");
        let v3 = frame(PARAMS_MAGIC, 3, &payload);
        assert_eq!(
            decode_parameters(&relu.collect_params(), &v3).unwrap_err(),
            "format version 3 is not supported (this kiln reads versions 1 and 2)"
        );
    }

    #[test]
    fn a_shape_whose_count_wraps_around_is_refused() {
        // 6 · 2⁶³ · 5 · 5 is 0 in 64-bit arithmetic: with no data, it passed for an empty
        // tensor (and loaded into a LeNet's deferred first weight)
        let r = TensorRecord {
            name: "0.weight".into(),
            shape: vec![6, 1 << 63, 5, 5],
            data: Vec::new(),
        };
        let err = r.to_tensor::<f32>().unwrap_err();
        assert_eq!(
            err,
            "'0.weight' has an impossible shape [6, 9223372036854775808, 5, 5]: no tensor has \
             more than 1152921504606846975 elements"
        );
        let err = TensorRecord {
            shape: vec![u64::MAX],
            ..r
        }
        .to_tensor::<f64>()
        .unwrap_err();
        assert!(err.contains("impossible shape"), "{err}");
    }
}
