//! The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed: a 4-byte magic
//! (two zero bytes, the element type, the rank), one big-endian u32 per dimension, then
//! the elements. Only unsigned bytes (type 0x08) are read. Untrusted input: the header's
//! claims are checked before anything is allocated for them.

use crate::error::{NnError, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The IDX element-type code for unsigned bytes.
const UBYTE: u8 = 0x08;
/// At most this many elements are accepted from one file (4 GiB of bytes).
const MAX_ELEMENTS: u64 = 1 << 32;

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<u8>,
}

/// Reads an IDX array from any reader; errors are plain messages (the caller names the
/// file). Memory grows with the bytes actually read, never with what the header claims.
pub fn parse_idx(reader: impl Read) -> std::result::Result<IdxArray, String> {
    let mut reader = reader;
    let mut magic = [0u8; 4];
    read_exact(&mut reader, &mut magic, "the 4-byte magic")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format!(
            "not an IDX file: magic {:02x}{:02x}{:02x}{:02x}",
            magic[0], magic[1], magic[2], magic[3]
        ));
    }
    if magic[2] != UBYTE {
        return Err(format!(
            "element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            magic[2]
        ));
    }
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err("rank 0 in the header".to_string());
    }
    let mut dims = Vec::with_capacity(rank);
    let mut count: u64 = 1;
    for axis in 0..rank {
        let mut d = [0u8; 4];
        read_exact(&mut reader, &mut d, "the dimensions")?;
        let d = u32::from_be_bytes(d) as u64;
        count = count.saturating_mul(d);
        if count > MAX_ELEMENTS {
            return Err(format!(
                "the header claims more than {MAX_ELEMENTS} elements (axis {axis} is {d})"
            ));
        }
        dims.push(d as usize);
    }
    let mut data = Vec::new();
    reader
        .by_ref()
        .take(count)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading the elements failed: {e}"))?;
    if (data.len() as u64) < count {
        return Err(format!(
            "truncated: the header announces {count} elements, the file holds {}",
            data.len()
        ));
    }
    let mut extra = [0u8; 1];
    if reader
        .read(&mut extra)
        .map_err(|e| format!("reading past the elements failed: {e}"))?
        != 0
    {
        return Err(format!(
            "{count} elements announced, but more bytes follow them"
        ));
    }
    Ok(IdxArray { dims, data })
}

fn read_exact(
    reader: &mut impl Read,
    buf: &mut [u8],
    what: &str,
) -> std::result::Result<(), String> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => format!("truncated: the file ends inside {what}"),
        _ => format!("reading {what} failed: {e}"),
    })
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|source| NnError::io("reading", path, source))?;
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .map_err(|source| NnError::io("reading", path, source))?;
    let parsed = if head.starts_with(&[0x1f, 0x8b]) {
        parse_idx(GzDecoder::new(reader))
    } else {
        parse_idx(reader)
    };
    parsed.map_err(|message| NnError::Data {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, UBYTE, dims.len() as u8];
        dims.iter()
            .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_a_small_array() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])[..]).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn refuses_what_is_wrong() {
        assert!(parse_idx(&idx(&[2, 3], &[1, 2, 3])[..])
            .unwrap_err()
            .starts_with("truncated"));
        assert!(parse_idx(&idx(&[2], &[1, 2, 3])[..])
            .unwrap_err()
            .contains("more bytes follow"));
        assert!(parse_idx(&[1u8, 2, 3, 4][..])
            .unwrap_err()
            .starts_with("not an IDX file"));
        assert!(parse_idx(&[0u8, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0][..])
            .unwrap_err()
            .contains("element type 0x0d"));
        assert!(parse_idx(&[0u8, 0][..])
            .unwrap_err()
            .starts_with("truncated"));
    }

    #[test]
    fn a_header_claiming_2_pow_40_images_allocates_nothing_for_them() {
        // 2^20 × 2^20 × 1 elements claimed; only 3 present
        let bytes = idx(&[1 << 20, 1 << 20], &[7, 7, 7]);
        let err = parse_idx(&bytes[..]).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        let bytes = idx(&[1 << 16, 1 << 15], &[7, 7, 7]); // 2^31: allowed, but truncated
        assert!(parse_idx(&bytes[..]).unwrap_err().starts_with("truncated"));
    }
}
