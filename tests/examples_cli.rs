//! Every example answers `--help` with its usage (exit 0) and refuses an unknown flag
//! (exit 2, naming it), before doing any work. Runs the example binaries `cargo test`
//! builds beside the tests (`target/<profile>/examples/`); builds one first if it is
//! missing (`cargo test --test examples_cli` alone does not build examples).

use std::path::PathBuf;
use std::process::Command;

/// Words the usage of some examples must contain (every example is tested: each
/// `examples/*.rs`).
const WORDS: &[(&str, &str)] = &[
    ("channels", "D2L 6.4"),
    ("cross_correlation", "D2L 6.2"),
    ("learn_kernel", "D2L 6.2.4"),
    ("padding_stride", "D2L 6.3"),
    ("pooling", "D2L 6.5"),
    ("feature_maps", "--params"),
    ("lenet", "--epochs"),
    ("lenet_dist", "--epochs"),
    ("bench_lenet", "--threads"),
    ("bench_zoo", "--model"),
];

/// The binary of example `name`, built if need be.
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples_cli-… → target/<profile>/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join(name);
    if !bin.is_file() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--example", name]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    bin
}

#[test]
fn every_example_answers_help_and_refuses_unknown_flags() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let stem = path.file_stem()?.to_str()?.to_string();
            (path.extension()? == "rs").then_some(stem)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "examples found: {names:?}");
    for name in &names {
        let word = WORDS
            .iter()
            .find(|(n, _)| n == name)
            .map_or("usage:", |w| w.1);
        let bin = example(name);
        let help = Command::new(&bin).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{name} --help: {help:?}");
        assert!(text.contains("usage:"), "{name} --help printed {text:?}");
        assert!(text.contains(word), "{name} --help printed {text:?}");

        let bad = Command::new(&bin).arg("--no-such-flag").output().unwrap();
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{name} --no-such-flag: {bad:?}");
        assert!(
            err.contains("unknown argument --no-such-flag") && err.contains("usage:"),
            "{name} --no-such-flag printed {err:?}"
        );
    }
}
