//! `cargo xtask bench --scale [--max N]`: melkit's own cost per file and its memory as the
//! corpus grows. Corpora of hard links to one 10 s clip (1000 per folder; one flat folder of
//! 100 k), each run with `--format npy --sample-length 1` (the 1 M point with
//! `--sample-length 0.25`, one long segment a file, so its outputs fit on the disk) and, up to
//! 100 k, with `--format stacked-h5`: files/s, user CPU per file, peak RSS, and the ratios the
//! scheduler is held to (50 k against 5 k, 1 M against 1 k). Results in
//! `target/bench/scale-<rev>.json` and `.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;

/// A corpus size, and whether it is one flat folder.
#[derive(Clone, Copy)]
struct Size {
    files: usize,
    flat: bool,
}

impl Size {
    fn name(self) -> String {
        let n = match self.files {
            n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
            n => format!("{}k", n / 1000),
        };
        if self.flat { format!("{n}-flat") } else { n }
    }
}

/// Hard links to `clip`, 1000 a folder (all in one when `flat`), made once. A file takes at
/// most 65,000 links on ext4: each 50,000 inputs link to a copy of their own.
fn corpus(dir: &Path, clip: &Path, size: Size) -> Result<PathBuf> {
    let root = dir.join(format!("corpus-{}", size.name()));
    let marker = root.join(".complete");
    if marker.exists() {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&root);
    eprintln!("bench: linking {} inputs into {}", size.files, root.display());
    let sources = dir.join(format!("sources-{}", size.name()));
    std::fs::create_dir_all(&sources)?;
    for i in 0..size.files {
        let source = sources.join(format!("clip-{}.wav", i / 50_000));
        if i % 50_000 == 0 {
            std::fs::copy(clip, &source)?;
        }
        let folder =
            if size.flat { root.join("all") } else { root.join(format!("d{:04}", i / 1000)) };
        if i == 0 || (!size.flat && i % 1000 == 0) {
            std::fs::create_dir_all(&folder)?;
        }
        std::fs::hard_link(&source, folder.join(format!("clip_{i:07}.wav")))
            .with_context(|| format!("cannot link into {}", folder.display()))?;
    }
    std::fs::write(&marker, b"")?;
    Ok(root)
}

/// One measured run.
struct Point {
    name: String,
    format: &'static str,
    files: usize,
    seconds: f64,
    user_ms_per_file: f64,
    rss_mb: f64,
}

/// The sample length of a size's runs: 0.25 s at 1 M (so the outputs fit on the disk), else 1 s.
fn length_of(size: Size) -> &'static str {
    if size.files >= 1_000_000 { "0.25" } else { "1" }
}

fn measure(
    melkit: &Path,
    size: Size,
    input: &Path,
    out: &Path,
    format: &'static str,
    length: &str,
) -> Result<Point> {
    let _ = std::fs::remove_dir_all(out);
    let _ = Command::new("sync").status();
    eprintln!("bench: {} inputs, {format}, {length} s", size.name());
    let mut melkit_run = Command::new(melkit);
    melkit_run.arg("run").arg(input).args(["-o"]).arg(out);
    melkit_run.args([
        "--format",
        format,
        "--sample-length",
        length,
        "--quiet",
        "--no-tune-profile",
    ]);
    let (output, fields) = crate::bench::under_time(&melkit_run, "%U %e %M")?;
    if !output.status.success() {
        bail!("melkit failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let [user, wall, rss_kb] = fields[..] else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("no times from /usr/bin/time: {stderr}");
    };
    let _ = std::fs::remove_dir_all(out);
    let suffix = if length == length_of(size) { String::new() } else { format!("@{length}s") };
    Ok(Point {
        name: size.name() + &suffix,
        format,
        files: size.files,
        seconds: wall,
        user_ms_per_file: 1000.0 * user / size.files as f64,
        rss_mb: rss_kb / 1024.0,
    })
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let max: usize = match args.iter().position(|a| a == "--max") {
        Some(i) => args.get(i + 1).context("--max N")?.parse().context("--max N")?,
        None => 1_000_000,
    };
    cargo(&["build", "--release", "--quiet", "--package", "melkit-cli"])?;
    let melkit = root.join("target/release/melkit");
    let dir = root.join("target/bench/scale");
    std::fs::create_dir_all(&dir)?;
    let clip = root.join("examples/audio/tones_4096.wav");
    let sizes = [1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000]
        .into_iter()
        .map(|files| Size { files, flat: false })
        .chain([Size { files: 100_000, flat: true }])
        .filter(|s| s.files <= max);
    let out = dir.join("out");
    let mut points = Vec::new();
    for size in sizes {
        let input = corpus(&dir, &clip, size)?;
        let length = length_of(size);
        points.push(measure(&melkit, size, &input, &out, "npy", length)?);
        if size.files <= 100_000 {
            points.push(measure(&melkit, size, &input, &out, "stacked-h5", length)?);
        }
        if size.files == 1_000 && max >= 1_000_000 {
            // The 1 M point's length, to compare its cost per file with like.
            points.push(measure(&melkit, size, &input, &out, "npy", "0.25")?);
        }
    }
    let cost = |name: &str| {
        points.iter().find(|p| p.name == name && p.format == "npy").map(|p| p.user_ms_per_file)
    };
    let ratio = |a: &str, b: &str| Some(cost(a)? / cost(b)?);
    let report = json!({
        "rev": crate::bench::git_rev(root),
        "points": points.iter().map(|p| json!({
            "inputs": p.name, "format": p.format, "files": p.files, "seconds": p.seconds,
            "files_per_s": p.files as f64 / p.seconds, "user_ms_per_file": p.user_ms_per_file,
            "peak_rss_mb": p.rss_mb,
        })).collect::<Vec<_>>(),
        "user_per_file_50k_over_5k": ratio("50k", "5k"),
        "user_per_file_1M_over_1k": ratio("1M", "1k@0.25s"),
    });
    let markdown = table(&report);
    let rev = report["rev"].as_str().unwrap_or("unknown").to_string();
    let stem = dir.parent().unwrap_or(&dir).join(format!("scale-{rev}"));
    std::fs::write(stem.with_extension("json"), serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(stem.with_extension("md"), &markdown)?;
    println!("{markdown}");
    Ok(())
}

fn table(report: &Value) -> String {
    let mut md = String::from(
        "| inputs | format | files/s | user CPU per file | peak RSS |\n| --- | --- | --- | --- | --- |\n",
    );
    for p in report["points"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.3} ms | {:.0} MB |",
            p["inputs"].as_str().unwrap_or(""),
            p["format"].as_str().unwrap_or(""),
            p["files_per_s"].as_f64().unwrap_or(0.0),
            p["user_ms_per_file"].as_f64().unwrap_or(0.0),
            p["peak_rss_mb"].as_f64().unwrap_or(0.0),
        );
    }
    for (key, what) in [
        ("user_per_file_50k_over_5k", "user CPU per file, 50 k over 5 k inputs"),
        ("user_per_file_1M_over_1k", "user CPU per file, 1 M over 1 k inputs (0.25 s each)"),
    ] {
        if let Some(r) = report[key].as_f64() {
            let _ = writeln!(md, "\n{what}: {r:.2}×");
        }
    }
    md
}
