//! Helpers shared by the examples: a small flag parser, an SVG line chart, and the bench
//! examples' measurement of a network (in the format of `../shared/bench`).

#![allow(dead_code)]

pub mod dist;
pub mod fit;

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
    line_chart_svg_labelled(title, x_label, "loss / accuracy", series)
}

/// [`line_chart_svg`] with the y axis labelled `y_label`.
pub fn line_chart_svg_labelled(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &str, Vec<f64>)],
) -> String {
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
        r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{y_label}</text>"#,
        (top + h - bottom) / 2.0
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

/// What a bench example measures: a network of input side `side`, trained at batch
/// `batch` with SGD at `lr` on one synthetic batch (drawn from `seed`) after `warm_up`
/// steps, with its batches cut into `shards` shards on `threads` threads.
pub struct BenchSpec {
    pub side: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub warm_up: usize,
    pub threads: usize,
    pub shards: usize,
    pub steps: usize,
    pub runs: usize,
    pub latency_iters: usize,
    /// `train`, `infer` or `latency` to measure only that; empty for all three.
    pub only: String,
}

/// Measures the network `make` builds, as the reference scripts do, and prints
/// `train_img_per_s`, `infer_img_per_s` and `latency_b1_us` (median, then best and every
/// run): training is forward, loss, backward and SGD step, with the batch's shards shared
/// by the threads (`kiln::nn::DataParallel`); inference is the batch's forward; latency
/// is one image's forward.
pub fn bench_network<N, F>(make: F, spec: &BenchSpec) -> Result<(), Box<dyn Error>>
where
    N: kiln::nn::Block<f32> + 'static,
    F: Fn() -> N + Send + Sync + 'static,
{
    use kiln::autograd::Var;
    use kiln::nn::{BlockExt, DataParallel, Init, Sgd, Trainer};
    use kiln::tensor::rand::{rngs::StdRng, RngExt, SeedableRng};
    use std::sync::Arc;
    let wanted = |phase: &str| spec.only.is_empty() || spec.only == phase;
    let (batch, side) = (spec.batch, spec.side);
    let net = make();
    net.initialize(&Init::xavier(), spec.seed)?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    // one batch trained on again and again, shared rather than copied each step
    let x = Arc::new(Tensor::<f32>::rand_normal(
        [batch, 1, side, side],
        0.0,
        1.0,
        &mut rng,
    )?);
    let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let x1 = Tensor::<f32>::rand_normal([1, 1, side, side], 0.0, 1.0, &mut rng)?;
    net.predict(&x1)?;
    let parallel = DataParallel::new(&net, make, spec.shards, spec.threads)?;
    let mut trainer = Trainer::new(net.collect_params(), Sgd::new(spec.lr));
    let mut train_step = || -> Result<(), Box<dyn Error>> {
        parallel.gradient(Arc::clone(&x), &labels, trainer.random_key())?;
        trainer.step(batch)?;
        Ok(())
    };
    for _ in 0..spec.warm_up {
        train_step()?;
    }
    if wanted("train") {
        let times = bench(&mut train_step, spec.steps, spec.runs)?;
        report("train_img_per_s", times, Some(batch));
    }
    let infer = || -> Result<(), Box<dyn Error>> {
        parallel.predict(Arc::clone(&x))?;
        Ok(())
    };
    if wanted("infer") {
        report(
            "infer_img_per_s",
            bench(infer, spec.steps, spec.runs)?,
            Some(batch),
        );
    }
    let single = || -> Result<(), Box<dyn Error>> {
        net.forward(&Var::constant(x1.clone()))?;
        Ok(())
    };
    if wanted("latency") {
        let times = bench(single, spec.latency_iters, spec.runs)?;
        report("latency_b1_us", times, None);
    }
    Ok(())
}
