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
//!   then torchaudio and melkit's NPY run alternated three times, the best of each compared.
//!
//! Before every run the page cache is settled (dirty pages synced, the cache dropped when run as
//! root, the inputs read back), so runs compare the same work.
//!
//! Writes `target/bench/<git-rev>.json` and `.md`, and prints the table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;

/// Frames per file with the default configuration: 40 long × 2 short × 17 frames.
const FRAMES_PER_FILE: f64 = 1360.0;

struct Run {
    name: String,
    files: usize,
    seconds: f64,
    files_per_s: f64,
    segments_per_s: f64,
    rss_mb: f64,
    stages: Value,
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
    let (lanes_ms, pairs_ms) = crate::cpu_ab::lanes_and_pairs(root)?;

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
    for format in ["npy", "h5", "stacked-h5"] {
        let floor = || run_floor(&iofloor, format, &native, &out);
        let (run, rounds) = alternate(|| cpu_run(format, cores), floor, "its floor")?;
        let floor = rounds.into_iter().reduce(faster).context("no I/O floor")?;
        runs.push(run);
        floors.push((floor, runs.len() - 1));
    }

    // Each anchor: (name, files/s, melkit's NPY files/s in the same round).
    let first = runs[0].files_per_s;
    let all = "librosa_loop,librosa_batch,torchaudio_batch";
    let mut anchor_rows: Vec<(String, f64, f64)> = if anchors {
        let rows = run_anchors(root, &python, &native, cores, all)?;
        rows.into_iter().map(|(name, fps)| (name, fps, first)).collect()
    } else {
        Vec::new()
    };
    // torchaudio again, alternated with melkit's NPY run, the best of each kept.
    if anchor_rows.iter().any(|(name, ..)| name == "torchaudio_batch") {
        let torch = || run_anchors(root, &python, &native, cores, "torchaudio_batch");
        let (run, rounds) = alternate(|| cpu_run("npy", cores), torch, "torchaudio")?;
        let best = rounds.iter().flatten().map(|(_, fps)| *fps).fold(0.0, f64::max);
        anchor_rows.push((format!("torchaudio_batch, best of {ROUNDS}"), best, run.files_per_s));
        runs.push(run);
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
        "wgpu_compute_segments_per_s": wgpu_ns.map(|ns| 32.0 * 80.0 / (ns * 1e-9)),
        "cpu_compute_segments_per_s": compute_files_per_s * 80.0,
        "compute_ratio_to_limit": compute_files_per_s / limit,
        "latency_ms_one_core": latency_ns * 1e-6,
        "speedup_all_cores": speedup,
        "parallel_fraction": parallel,
        "runs": runs.iter().map(|r| json!({
            "name": r.name, "files": r.files, "seconds": r.seconds, "files_per_s": r.files_per_s,
            "segments_per_s": r.segments_per_s, "ratio_to_limit": r.files_per_s / limit,
            "peak_rss_mb": r.rss_mb, "stage_seconds": r.stages,
        })).collect::<Vec<_>>(),
        "anchors": anchor_rows.iter().map(|(n, f, melkit)| json!({
            "name": n, "files_per_s": f, "melkit_npy_files_per_s": melkit,
        })).collect::<Vec<_>>(),
        "io_floor": floors.iter().map(|(floor, run)| json!({
            "name": floor.name, "files_per_s": floor.files_per_s, "peak_rss_mb": floor.rss_mb,
            "stage_seconds": floor.stages, "run": runs[*run].name,
            "run_to_floor": runs[*run].files_per_s / floor.files_per_s,
        })).collect::<Vec<_>>(),
    });
    let markdown = table(&report, &runs, &anchor_rows, limit);
    std::fs::write(dir.join(format!("{rev}.json")), serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(dir.join(format!("{rev}.md")), &markdown)?;
    println!("{markdown}");
    println!("written: {}", dir.join(format!("{rev}.json")).display());
    Ok(())
}

/// The corpus `kind` of `make_corpus.py` in `dir` (made when missing).
fn corpus(root: &Path, python: &Path, dir: &Path, kind: &str, n: usize) -> Result<PathBuf> {
    let have = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let want = if kind == "long" { 1 } else { n };
    if have != want {
        let _ = std::fs::remove_dir_all(dir);
        let script = root.join("../shared/bench/make_corpus.py");
        eprintln!("$ {} {} {} {kind} {n}", python.display(), script.display(), dir.display());
        let status =
            Command::new(python).arg(&script).arg(dir).arg(kind).arg(n.to_string()).status()?;
        if !status.success() {
            bail!("make_corpus.py failed");
        }
    }
    Ok(dir.to_path_buf())
}

/// Puts the page cache in the same state before every run: dirty pages written, the cache
/// dropped (as root; a VM's cache grown over hours makes writes several times slower), the
/// inputs read back in, so every run reads from memory and writes into a clean cache.
pub(crate) fn settle_page_cache(input: &Path) -> Result<()> {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    for entry in std::fs::read_dir(input)? {
        let _ = std::fs::read(entry?.path());
    }
    Ok(())
}

/// Alternated rounds of a `melkit run` and what it is compared with (its I/O floor,
/// torchaudio): single runs of either moved by ±20 % on a shared host, so the best of each
/// round is compared.
const ROUNDS: usize = 3;

/// The faster of two runs.
fn faster(a: Run, b: Run) -> Run {
    if a.files_per_s >= b.files_per_s { a } else { b }
}

/// `ROUNDS` alternated rounds of `melkit` and `other`: the fastest melkit run, its name saying
/// what it ran `beside`, and every result of `other`.
fn alternate<T>(
    mut melkit: impl FnMut() -> Result<Run>,
    mut other: impl FnMut() -> Result<T>,
    beside: &str,
) -> Result<(Run, Vec<T>)> {
    let (mut best, mut others) = (None::<Run>, Vec::new());
    for _ in 0..ROUNDS {
        let run = melkit()?;
        best = Some(match best {
            Some(best) => faster(best, run),
            None => run,
        });
        others.push(other()?);
    }
    let mut best = best.context("no rounds")?;
    best.name = format!("{}, best of {ROUNDS} beside {beside}", best.name);
    Ok((best, others))
}

/// The name of a `melkit run` on the CPU backend.
fn cpu_run_name(format: &str, workers: usize) -> String {
    format!("cpu {format} {workers} worker{}", if workers == 1 { "" } else { "s" })
}

/// `melkit run` under GNU time: the report and the peak RSS.
fn run_melkit(melkit: &Path, name: &str, input: &Path, out: &Path, extra: &[&str]) -> Result<Run> {
    timed(name, input, out, |report| {
        let mut c = Command::new(melkit);
        c.arg("run").arg(input).arg("-o").arg(out).arg("--quiet").arg("--report").arg(report);
        c.args(extra);
        c
    })
}

/// The I/O floor (`iofloor`: the same run with the computation taken out) in `format`.
fn run_floor(iofloor: &Path, format: &str, input: &Path, out: &Path) -> Result<Run> {
    timed(&format!("I/O floor {format}"), input, out, |report| {
        let mut c = Command::new(iofloor);
        c.arg(input).arg(out).arg(format).arg(report);
        c
    })
}

/// A run of `command(report)` under GNU time, after the page cache is settled: its report and
/// peak RSS.
fn timed(
    name: &str,
    input: &Path,
    out: &Path,
    command: impl FnOnce(&Path) -> Command,
) -> Result<Run> {
    let _ = std::fs::remove_dir_all(out);
    settle_page_cache(input)?;
    let report = out.with_extension("report.json");
    eprintln!("bench: {name}");
    let inner = command(&report);
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .output()
        .context("cannot run /usr/bin/time")?;
    if !output.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let rss_kb: f64 = String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .context("no peak RSS from /usr/bin/time")?;
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let _ = std::fs::remove_dir_all(out);
    Ok(Run {
        name: name.to_string(),
        files: r["files_ok"].as_u64().unwrap_or(0) as usize,
        seconds: r["total_time"].as_f64().unwrap_or(0.0),
        files_per_s: r["throughput"]["files_per_s"].as_f64().unwrap_or(0.0),
        segments_per_s: r["throughput"]["segments_per_s"].as_f64().unwrap_or(0.0),
        rss_mb: rss_kb / 1024.0,
        stages: r["stage_seconds"].clone(),
    })
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

fn table(report: &Value, runs: &[Run], anchors: &[(String, f64, f64)], limit: f64) -> String {
    let mut md = String::new();
    let f = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let alternated = |k: &str| report["compute_alternated_ms"][k].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        md,
        "## melkit bench {} ({})\n",
        report["rev"].as_str().unwrap_or(""),
        report["machine"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        md,
        "FFT-bound limit: {:.0} files/s ({} cores / (1360 frames × {:.0} ns per 256-point real FFT)). \
         Compute stage alone: {:.0} files/s = {:.0} % of the limit; on the pair path (two frames \
         per rustfft transform) {:.0} files/s, so the lane path is {:.2}× it; the two \
         alternated batch by batch (`cpu_ab`, best of 90 batches of 32 files each): lanes \
         {:.2} ms, pairs {:.2} ms, {:.2}×. \
         Latency of one 10 s file through `process_file` on one core: {:.2} ms.\n",
        limit,
        report["cores"],
        f("fft_real_256_ns"),
        f("compute_files_per_s"),
        100.0 * f("compute_ratio_to_limit"),
        f("compute_pairs_files_per_s"),
        f("compute_files_per_s") / f("compute_pairs_files_per_s"),
        alternated("lanes"),
        alternated("pairs"),
        alternated("pairs") / alternated("lanes"),
        f("latency_ms_one_core"),
    );
    if let Some(wgpu) = report["wgpu_compute_segments_per_s"].as_f64() {
        let _ = writeln!(
            md,
            "Compute alone, segments/s: cpu {:.0}, wgpu {:.0} ({:.2}× the CPU backend).\n",
            f("cpu_compute_segments_per_s"),
            wgpu,
            wgpu / f("cpu_compute_segments_per_s"),
        );
    }
    let _ = writeln!(
        md,
        "| run | files | files/s | segments/s | of the limit | peak RSS | decode | segment | compute | scale | write |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let s = |k: &str| r.stages[k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {:.0} % | {:.0} MB | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.name,
            r.files,
            r.files_per_s,
            r.segments_per_s,
            100.0 * r.files_per_s / limit,
            r.rss_mb,
            s("decode") + s("resample"),
            s("segment"),
            s("compute"),
            s("scale"),
            s("write")
        );
    }
    if let Some(floors) = report["io_floor"].as_array() {
        let _ = writeln!(md, "\n| I/O floor (no compute) | files/s | melkit run | of the floor |");
        let _ = writeln!(md, "|---|---:|---|---:|");
        for f in floors {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {:.0} % |",
                f["name"].as_str().unwrap_or(""),
                f["files_per_s"].as_f64().unwrap_or(0.0),
                f["run"].as_str().unwrap_or(""),
                100.0 * f["run_to_floor"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let _ = writeln!(
        md,
        "\nScaling: {:.2}× from 1 worker to {}; parallel fraction (Amdahl) {:.3}.",
        f("speedup_all_cores"),
        report["cores"],
        f("parallel_fraction")
    );
    if !anchors.is_empty() {
        let _ = writeln!(md, "\n| anchor (same corpus, same run) | files/s | melkit npy is |");
        let _ = writeln!(md, "|---|---:|---:|");
        for (name, fps, melkit) in anchors {
            let _ = writeln!(md, "| {name} | {fps:.1} | {:.1}× |", melkit / fps);
        }
    }
    md
}

/// A folder of the first `n` files of `corpus` (copied once).
fn first_files(corpus: &Path, dir: &Path, n: usize) -> Result<std::path::PathBuf> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        for i in 0..n {
            let name = format!("clip_{i:05}.wav");
            std::fs::copy(corpus.join(&name), dir.join(&name))?;
        }
    }
    Ok(dir.to_path_buf())
}
