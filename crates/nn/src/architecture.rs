//! What network a checkpoint was saved from: every block's structural path and
//! [`Block::describe`](crate::Block::describe) (`Conv2D(channels=6, kernel_size=(5, 5), …)`),
//! and the comparison that refuses to load a file into another network, naming the first
//! difference. Parameter shapes alone let a sigmoid LeNet's weights load into a ReLU
//! LeNet, which then scored 0.593 without a word.

use serde::{Deserialize, Serialize};

/// One block of a network, as a checkpoint keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Its structural path: empty for the network itself, `0` for its first child, `1.0`
    /// for the first child of the second (parameters are keyed `0.weight`, `1.0.bias`).
    pub path: String,
    /// Its [`Block::describe`](crate::Block::describe).
    pub description: String,
}

/// A path for a message: the network itself, or `block 1.0`.
fn at(path: &str) -> String {
    match path {
        "" => "the network itself".to_string(),
        p => format!("block {p}"),
    }
}

/// `Kind(a=1, b=(2, 3))` → ("Kind", [("a", "1"), ("b", "(2, 3)")]); `None` for text of
/// another form (a user's description).
fn options(description: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let Some((kind, rest)) = description.split_once('(') else {
        return Some((description, Vec::new()));
    };
    let inner = rest.strip_suffix(')')?;
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                let item = inner[start..i].trim();
                if !item.is_empty() {
                    out.push(item.split_once('=').unwrap_or(("", item)));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    Some((kind, out))
}

/// What differs between two descriptions of one block: its kind, or its first option
/// that differs.
fn difference(in_file: &str, here: &str) -> String {
    match (options(in_file), options(here)) {
        (Some((a, _)), Some((b, _))) if a != b => {
            format!("its kind is {a} in the file and {b} in this network")
        }
        (Some((_, a)), Some((_, b))) => {
            let value = |opts: &[(&str, &str)], key: &str| {
                opts.iter()
                    .find(|(k, _)| *k == key)
                    .map_or("not set".to_string(), |(_, v)| v.to_string())
            };
            let keys = a.iter().chain(&b).map(|(k, _)| *k);
            match keys.into_iter().find(|k| value(&a, k) != value(&b, k)) {
                Some(k) => format!(
                    "its {k} is {} in the file and {} in this network",
                    value(&a, k),
                    value(&b, k)
                ),
                None => format!("it is {in_file} in the file and {here} in this network"),
            }
        }
        _ => format!("it is {in_file} in the file and {here} in this network"),
    }
}

/// Checks that the network a file was saved from (`in_file`) is this one (`here`, with
/// each block's name for the message); the error names the first block that differs and
/// how.
pub(crate) fn check(
    in_file: &[BlockRecord],
    here: &[(BlockRecord, String)],
) -> std::result::Result<(), String> {
    let first = |msg: String| Err(format!("was saved from another network: {msg}"));
    for i in 0..in_file.len().max(here.len()) {
        match (in_file.get(i), here.get(i)) {
            (Some(a), Some((b, name))) if a.path == b.path => {
                if a.description != b.description {
                    return first(format!(
                        "{} ({name}) is {} in the file and {} in this network: {}",
                        at(&b.path),
                        a.description,
                        b.description,
                        difference(&a.description, &b.description)
                    ));
                }
            }
            (Some(a), Some((b, name))) => {
                return first(format!(
                    "the file has {} ({}) where this network has {} ({name}: {})",
                    at(&a.path),
                    a.description,
                    at(&b.path),
                    b.description
                ));
            }
            (Some(a), None) => {
                return first(format!(
                    "the file has {} ({}), which this network has not",
                    at(&a.path),
                    a.description
                ));
            }
            (None, Some((b, name))) => {
                return first(format!(
                    "this network has {} ({name}: {}), which the file has not",
                    at(&b.path),
                    b.description
                ));
            }
            (None, None) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, description: &str) -> BlockRecord {
        BlockRecord {
            path: path.into(),
            description: description.into(),
        }
    }

    #[test]
    fn options_split_at_top_level_commas() {
        assert_eq!(
            options("Conv2D(channels=6, kernel=(5, 5), axes=[2, 3])"),
            Some((
                "Conv2D",
                vec![("channels", "6"), ("kernel", "(5, 5)"), ("axes", "[2, 3]")]
            ))
        );
        assert_eq!(options("Flatten"), Some(("Flatten", vec![])));
        assert_eq!(
            options("Activation(relu)"),
            Some(("Activation", vec![("", "relu")]))
        );
        assert_eq!(options("odd (text"), None);
    }

    #[test]
    fn the_first_difference_is_named() {
        let file = [
            record("", "Sequential"),
            record("0", "Conv2D(channels=6, activation=sigmoid)"),
        ];
        let here = |d: &str| {
            vec![
                (record("", "Sequential"), "sequential0".to_string()),
                (record("0", d), "conv0".to_string()),
            ]
        };
        assert_eq!(
            check(&file, &here("Conv2D(channels=6, activation=sigmoid)")),
            Ok(())
        );
        assert_eq!(
            check(&file, &here("Conv2D(channels=6, activation=relu)")).unwrap_err(),
            "was saved from another network: block 0 (conv0) is Conv2D(channels=6, \
             activation=sigmoid) in the file and Conv2D(channels=6, activation=relu) in this \
             network: its activation is sigmoid in the file and relu in this network"
        );
        let err = check(&file, &here("Dense(units=6)")).unwrap_err();
        assert!(
            err.ends_with("its kind is Conv2D in the file and Dense in this network"),
            "{err}"
        );
        let err = check(&file[..1], &here("Dense(units=6)")).unwrap_err();
        assert!(
            err.ends_with(
                "this network has block 0 (conv0: Dense(units=6)), which the file has not"
            ),
            "{err}"
        );
    }
}
