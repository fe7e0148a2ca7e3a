//! Helpers shared by the examples: a small flag parser, an SVG line chart, and the timing
//! and reporting of the bench examples (the format of `../shared/bench`).

#![allow(dead_code)]

pub mod dist;

use kiln::tensor::Tensor;
use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Instant;

/// The book's edge image (D2L 6.2.3): ones(6, 8) with columns 2 to 5 black (0).
pub fn edge_image() -> Tensor<f32> {
    let row = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
    Tensor::from_vec(row.repeat(6), [6, 8]).expect("6 × 8 values")
}

/// `--name value` flags, checked against the names a program accepts.
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the command line; prints `usage` and exits on `--help` or an unknown or
    /// incomplete flag.
    pub fn parse(usage: &str, accepted: &[&str]) -> Args {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let name = flag.trim_start_matches("--");
            if !flag.starts_with("--") || !accepted.contains(&name) {
                eprintln!("unknown argument {flag}\n{usage}");
                std::process::exit(2);
            }
            let Some(value) = it.next() else {
                eprintln!("{flag} needs a value\n{usage}");
                std::process::exit(2);
            };
            values.insert(name.to_string(), value);
        }
        Args { values }
    }

    /// The value of `--name`, or `default`; exits with a message if it does not parse.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("--{name}: cannot read {v:?}");
                std::process::exit(2)
            }),
        }
    }

    /// The value of `--name`, if given.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

/// A line chart as an SVG document: one polyline per series over x = 1, 2, …, with a
/// legend, axes and grid, in the style of the book's training plots.
pub fn line_chart_svg(title: &str, x_label: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 400.0, 60.0, 150.0, 40.0, 50.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(1);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(1.0f64, f64::max)
        .ceil();
    let px = |i: usize| {
        left + (w - left - right)
            * if n == 1 {
                0.5
            } else {
                i as f64 / (n - 1) as f64
            }
    };
    let py = |v: f64| top + (h - top - bottom) * (1.0 - v / y_max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{title}</text>"#,
        (left + w - right) / 2.0
    );
    for k in 0..=5 {
        let v = y_max * k as f64 / 5.0;
        let y = py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            w - right
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    for i in 0..n {
        let x = px(i);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            h - bottom + 18.0,
            i + 1
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{x_label}</text>"#,
        (left + w - right) / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="#333"/>"##,
        w - left - right,
        h - top - bottom
    );
    for (k, (name, color, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", px(i), py(v)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
        let ly = top + 20.0 * k as f64 + 10.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/>"#,
            w - right + 12.0,
            w - right + 36.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
            w - right + 42.0,
            ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Seconds per call of `f`, for each of `runs` runs of `iters` calls (after one warm-up call).
pub fn bench(
    mut f: impl FnMut() -> Result<(), Box<dyn Error>>,
    iters: usize,
    runs: usize,
) -> Result<Vec<f64>, Box<dyn Error>> {
    f()?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        out.push(start.elapsed().as_secs_f64() / iters as f64);
    }
    Ok(out)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints `tag median` and `tag_best best   # runs: …` as the reference scripts do.
pub fn report(tag: &str, per_call: Vec<f64>, items: Option<usize>) {
    let (values, best): (Vec<f64>, fn(f64, f64) -> f64) = match items {
        Some(n) => (per_call.iter().map(|s| n as f64 / s).collect(), f64::max),
        None => (per_call.iter().map(|s| s * 1e6).collect(), f64::min),
    };
    let top = values.iter().copied().reduce(best).unwrap_or(f64::NAN);
    let runs: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    println!("{tag} {:.1}", median(values.clone()));
    println!("{tag}_best {top:.1}   # runs: {}", runs.join(" "));
}
