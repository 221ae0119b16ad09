//! `cargo xtask bench`: the numbers of the CPU path, measured side by side in one run.
//!
//! - Criterion benches: the bare 256-point real FFT (which defines the FFT-bound limit
//!   `cores / (frames per file × one FFT)`), the compute stage alone on a batch of files, and
//!   the latency of one file through the library on one core; and the lane and pair paths
//!   alternated batch by batch (`cpu_ab`), whose ratio a shared machine's load moves less.
//! - `make_corpus.py native 1000` end to end with `melkit run` for every backend compiled in
//!   (the reference backend on 20 files), in NPY and HDF5, with 1 worker and with all cores,
//!   each with its peak RSS; the one-hour file with `--sample-length full`.
//! - The I/O floor (`melkit-benches`' `iofloor`: the same run, decode to write, with a backend
//!   that writes zeros) in npy, h5 and stacked-h5, and each `melkit run`'s share of it (three
//!   alternated rounds of each, the best of each compared).
//! - With `--anchors`: `anchors.py` (librosa, torchaudio) on the same corpus, and the ratios;
//!   then torchaudio and melkit's runs in NPY, HDF5 and stacked HDF5 alternated three times,
//!   the best of each compared: the ratio per format.
//!
//! Before every run the page cache is settled (dirty pages synced, the cache dropped when run as
//! root, the inputs read back), so runs compare the same work.
//!
//! Writes `target/bench/<git-rev>.json` and `.md`, and prints the table.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;

mod runs;
mod table;

use runs::{ROUNDS, alternate, corpus, cpu_run_name, faster, first_files, run_floor, run_melkit};
pub(crate) use runs::{settle_page_cache, under_time};

/// The formats measured against their I/O floor and against torchaudio.
const FORMATS: [&str; 3] = ["npy", "h5", "stacked-h5"];

/// Frames per file with the default configuration: 40 long × 2 short × 17 frames.
const FRAMES_PER_FILE: f64 = 1360.0;

/// A configuration whose hop does not divide a quarter of `n_fft` (256 / 4 = 64), for `cpu_ab`.
const HOP_NOT_DIVIDING: &str = "hop_length=24";

struct Run {
    name: String,
    files: usize,
    seconds: f64,
    files_per_s: f64,
    segments_per_s: f64,
    rss_mb: f64,
    /// User and system CPU time, seconds.
    cpu_s: f64,
    stages: Value,
}

/// A tool users would pick instead, timed on the same corpus, and the melkit run it is
/// compared with.
struct Anchor {
    name: String,
    files_per_s: f64,
    /// The melkit run's name.
    run: String,
    melkit_files_per_s: f64,
}

impl Anchor {
    fn new(name: String, files_per_s: f64, run: &Run) -> Self {
        Anchor { name, files_per_s, run: run.name.clone(), melkit_files_per_s: run.files_per_s }
    }
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let anchors = args.iter().any(|a| a == "--anchors");
    let quick = args.iter().any(|a| a == "--quick");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    if args.iter().any(|a| a == "--scale") {
        return crate::scale::run(root, args);
    }
    let python = crate::venv::python(root, anchors)?;
    cargo(&["build", "--release", "--quiet", "--package", "melkit-cli"])?;
    let melkit = root.join("target/release/melkit");
    let native = corpus(
        root,
        &python,
        // Its own folder, so that a quick run leaves the full corpus in place.
        &dir.join(if quick { "corpus-native-quick" } else { "corpus-native" }),
        "native",
        if quick { 200 } else { 1000 },
    )?;
    let long = corpus(root, &python, &dir.join("corpus-long"), "long", 3600)?;
    let subset = first_files(&native, &dir.join("corpus-native-20"), 20)?;
    let subset200 = first_files(&native, &dir.join("corpus-native-200"), 200)?;

    // Criterion: the bare FFT, the compute stage, the latency.
    cargo(&[
        "bench",
        "--quiet",
        "-p",
        "melkit-benches",
        "--bench",
        "fft",
        "--bench",
        "backends",
        "--bench",
        "latency",
    ])?;
    let crit = |bench: &str| criterion_mean_ns(&root.join("target/criterion").join(bench));
    let fft_ns = crit("fft/real_256_f32")?;
    let batch_ns = crit("backend/cpu_32_files")?;
    let pairs_ns = crit("backend/cpu-pairs_32_files")?;
    let latency_ns = crit("latency/process_file_10s_1_worker")?;
    let limit = cores as f64 / (FRAMES_PER_FILE * fft_ns * 1e-9);
    let compute_files_per_s = 32.0 / (batch_ns * 1e-9);
    // The same two paths alternated batch by batch: the steadier ratio on a shared machine.
    let (lanes_ms, pairs_ms) = crate::cpu_ab::lanes_and_pairs(root, &[])?;
    // And with a hop that does not divide a quarter of `n_fft`, where the lane path's first pass
    // loads its inputs one by one (a slower form the defaults never take).
    let (hop24_lanes_ms, hop24_pairs_ms) =
        crate::cpu_ab::lanes_and_pairs(root, &[HOP_NOT_DIVIDING])?;
    // What the vector units allow: the least a lane-batched transform costs here.
    let kernel_limit = crate::cpu_ab::kernel_limit(root)?;

    let mut runs = Vec::new();
    let out = dir.join("out");
    // `melkit run` on the CPU backend in `format` with `workers`.
    let cpu_run = |format: &str, workers: usize| {
        let name = cpu_run_name(format, workers);
        let args = ["--format", format, "--backend", "cpu", "--workers", &workers.to_string()];
        run_melkit(&melkit, &name, &native, &out, &args)
    };
    for (format, workers) in [("npy", cores), ("h5", cores), ("npy", 1)] {
        runs.push(cpu_run(format, workers)?);
    }
    runs.push(run_melkit(
        &melkit,
        "reference npy (20 files)",
        &subset,
        &out,
        &["--format", "npy", "--backend", "reference"],
    )?);
    // The wgpu backend, when wgpu finds an adapter (lavapipe on a machine without a GPU).
    let wgpu_ns = crit("backend/wgpu_32_files").ok();
    if wgpu_ns.is_some() {
        runs.push(run_melkit(
            &melkit,
            "wgpu npy (200 files)",
            &subset200,
            &out,
            &["--format", "npy", "--backend", "wgpu"],
        )?);
    }
    runs.push(run_melkit(
        &melkit,
        "cpu h5, one hour, full length",
        &long,
        &out,
        &["--format", "h5", "--sample-length", "full"],
    )?);

    // The I/O floor per format, beside the same run with compute: how close melkit comes to
    // what decoding and this filesystem allow (alternated, the best of each kept).
    cargo(&["build", "--release", "--quiet", "-p", "melkit-benches", "--bin", "iofloor"])?;
    let iofloor = root.join("target/release/iofloor");
    let mut floors = Vec::new();
    for format in FORMATS {
        let floor = || run_floor(&iofloor, format, &native, &out);
        let (run, rounds) = alternate(&[format], |f| cpu_run(f, cores), floor, "its floor")?;
        let floor = rounds.into_iter().reduce(faster).context("no I/O floor")?;
        runs.extend(run);
        floors.push((floor, runs.len() - 1));
    }

    // Each anchor against melkit's first NPY run of this bench.
    let first = &runs[0];
    let all = "librosa_loop,librosa_batch,torchaudio_batch";
    let mut anchor_rows: Vec<Anchor> = if anchors {
        let rows = run_anchors(root, &python, &native, cores, all)?;
        rows.into_iter().map(|(name, fps)| Anchor::new(name, fps, first)).collect()
    } else {
        Vec::new()
    };
    // torchaudio again, alternated with melkit's run in each format, the best of each kept: the
    // ratio per format.
    if anchor_rows.iter().any(|a| a.name == "torchaudio_batch") {
        let torch = || run_anchors(root, &python, &native, cores, "torchaudio_batch");
        let (best, rounds) = alternate(&FORMATS, |f| cpu_run(f, cores), torch, "torchaudio")?;
        let fps = rounds.iter().flatten().map(|(_, fps)| *fps).fold(0.0, f64::max);
        let name = format!("torchaudio_batch, best of {ROUNDS}");
        anchor_rows.extend(best.iter().map(|run| Anchor::new(name.clone(), fps, run)));
        runs.extend(best);
    }
    // The profiler's timing model on this (idle) machine: what-ifs against real reruns, and an
    // honest rerun not flagged as a regression.
    cargo(&[
        "test",
        "--release",
        "--quiet",
        "-p",
        "melkit-profiler",
        "--test",
        "model",
        "--",
        "--ignored",
        "--test-threads",
        "1",
        "--nocapture",
    ])?;

    // Amdahl: speedup S on N workers gives the parallel fraction p = (1 - 1/S) / (1 - 1/N).
    let (one, all) = (&runs[2], &runs[0]);
    let speedup = all.files_per_s / one.files_per_s;
    let parallel = if cores > 1 { (1.0 - 1.0 / speedup) / (1.0 - 1.0 / cores as f64) } else { 1.0 };

    let rev = git_rev(root);
    let machine = machine();
    let report = json!({
        "rev": rev,
        "machine": machine,
        "cores": cores,
        "fft_real_256_ns": fft_ns,
        "fft_limit_files_per_s": limit,
        "compute_files_per_s": compute_files_per_s,
        "compute_pairs_files_per_s": 32.0 / (pairs_ns * 1e-9),
        "compute_alternated_ms": { "lanes": lanes_ms, "pairs": pairs_ms },
        "compute_alternated_ms_other_hop": {
            "config": HOP_NOT_DIVIDING, "lanes": hop24_lanes_ms, "pairs": hop24_pairs_ms,
        },
        "kernel_limit": kernel_limit,
        "wgpu_compute_segments_per_s": wgpu_ns.map(|ns| 32.0 * 80.0 / (ns * 1e-9)),
        "cpu_compute_segments_per_s": compute_files_per_s * 80.0,
        "compute_ratio_to_limit": compute_files_per_s / limit,
        "latency_ms_one_core": latency_ns * 1e-6,
        "speedup_all_cores": speedup,
        "parallel_fraction": parallel,
        "runs": runs.iter().map(|r| json!({
            "name": r.name, "files": r.files, "seconds": r.seconds, "files_per_s": r.files_per_s,
            "segments_per_s": r.segments_per_s, "ratio_to_limit": r.files_per_s / limit,
            "peak_rss_mb": r.rss_mb, "cpu_seconds": r.cpu_s, "stage_seconds": r.stages,
        })).collect::<Vec<_>>(),
        "anchors": anchor_rows.iter().map(|a| json!({
            "name": a.name, "files_per_s": a.files_per_s, "melkit_run": a.run,
            "melkit_files_per_s": a.melkit_files_per_s,
            "melkit_ratio": a.melkit_files_per_s / a.files_per_s,
        })).collect::<Vec<_>>(),
        "io_floor": floors.iter().map(|(floor, run)| json!({
            "name": floor.name, "files_per_s": floor.files_per_s, "peak_rss_mb": floor.rss_mb,
            "stage_seconds": floor.stages, "run": runs[*run].name,
            "run_to_floor": runs[*run].files_per_s / floor.files_per_s,
            "cpu_seconds": floor.cpu_s, "run_cpu_seconds": runs[*run].cpu_s,
            "run_to_floor_by_cpu": floor.cpu_s / runs[*run].cpu_s,
            // What the run's CPU costs a file over its floor's, and what 80 % of the floor by
            // CPU allows (a quarter of the floor's): the budget the computation has.
            "over_floor_cpu_ms_per_file": ms_per_file(runs[*run].cpu_s - floor.cpu_s, floor),
            "allowed_at_80_percent_cpu_ms_per_file": ms_per_file(0.25 * floor.cpu_s, floor),
        })).collect::<Vec<_>>(),
    });
    let markdown = table::markdown(&report, &runs, &anchor_rows, limit);
    std::fs::write(dir.join(format!("{rev}.json")), serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(dir.join(format!("{rev}.md")), &markdown)?;
    println!("{markdown}");
    println!("written: {}", dir.join(format!("{rev}.json")).display());
    Ok(())
}

/// `anchors.py` (the anchors named in `only`, comma-separated) on the same corpus, when librosa
/// and torchaudio are importable.
fn run_anchors(
    root: &Path,
    python: &Path,
    corpus: &Path,
    cores: usize,
    only: &str,
) -> Result<Vec<(String, f64)>> {
    let ok = Command::new(python)
        .args(["-c", "import librosa, torchaudio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "bench: librosa/torchaudio not importable: anchors skipped (pip install librosa soundfile soxr torch torchaudio)"
        );
        return Ok(Vec::new());
    }
    settle_page_cache(corpus)?;
    let output = Command::new(python)
        .arg(root.join("../shared/bench/anchors.py"))
        .arg(corpus)
        .args(["--workers", &cores.to_string(), "--only", only])
        .output()?;
    if !output.status.success() {
        bail!("anchors.py failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?.to_string();
            let fps = l.split("files_per_s=").nth(1)?.trim().parse().ok()?;
            Some((name, fps))
        })
        .collect())
}

fn criterion_mean_ns(dir: &Path) -> Result<f64> {
    let path = dir.join("new/estimates.json");
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
    )?;
    v["mean"]["point_estimate"].as_f64().context("no mean in estimates.json")
}

pub(crate) fn git_rev(root: &Path) -> String {
    let out = |args: &[&str]| Command::new("git").args(args).current_dir(root).output().ok();
    let rev = out(&["rev-parse", "--short", "HEAD"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "norev".into());
    let dirty = out(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| !o.stdout.is_empty());
    if dirty { format!("{rev}-dirty") } else { rev }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// `seconds` of CPU over the files of `run`, in milliseconds a file.
fn ms_per_file(seconds: f64, run: &Run) -> f64 {
    seconds * 1e3 / run.files.max(1) as f64
}
