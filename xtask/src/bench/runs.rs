//! Single runs of a `cargo xtask bench`: the corpora, `melkit run` and its I/O floor under GNU
//! time with the page cache settled first, and alternated rounds of runs kept at their best.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::Run;

/// The corpus `kind` of `make_corpus.py` in `dir` (made when missing).
pub(super) fn corpus(
    root: &Path,
    python: &Path,
    dir: &Path,
    kind: &str,
    n: usize,
) -> Result<PathBuf> {
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
pub(super) const ROUNDS: usize = 3;

/// The faster of two runs.
pub(super) fn faster(a: Run, b: Run) -> Run {
    if a.files_per_s >= b.files_per_s { a } else { b }
}

/// `ROUNDS` alternated rounds, each a melkit run in every one of `formats` and then `other`:
/// the fastest run of each format, its name saying what it ran `beside`, and every result of
/// `other`.
pub(super) fn alternate<T>(
    formats: &[&str],
    mut melkit: impl FnMut(&str) -> Result<Run>,
    mut other: impl FnMut() -> Result<T>,
    beside: &str,
) -> Result<(Vec<Run>, Vec<T>)> {
    let mut best: Vec<Option<Run>> = formats.iter().map(|_| None).collect();
    let mut others = Vec::new();
    for _ in 0..ROUNDS {
        for (format, best) in formats.iter().zip(&mut best) {
            let run = melkit(format)?;
            *best = Some(match best.take() {
                Some(best) => faster(best, run),
                None => run,
            });
        }
        others.push(other()?);
    }
    let best = best.into_iter().map(|run| {
        let mut run = run.context("no rounds")?;
        run.name = format!("{}, best of {ROUNDS} beside {beside}", run.name);
        Ok(run)
    });
    Ok((best.collect::<Result<_>>()?, others))
}

/// The name of a `melkit run` on the CPU backend.
pub(super) fn cpu_run_name(format: &str, workers: usize) -> String {
    format!("cpu {format} {workers} worker{}", if workers == 1 { "" } else { "s" })
}

/// `melkit run` under GNU time: the report and the peak RSS.
pub(super) fn run_melkit(
    melkit: &Path,
    name: &str,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Result<Run> {
    timed(name, input, out, |report| {
        let mut c = Command::new(melkit);
        c.arg("run").arg(input).arg("-o").arg(out).arg("--quiet").arg("--report").arg(report);
        c.args(extra);
        c
    })
}

/// The I/O floor (`iofloor`: the same run with the computation taken out) in `format`.
pub(super) fn run_floor(iofloor: &Path, format: &str, input: &Path, out: &Path) -> Result<Run> {
    timed(&format!("I/O floor {format}"), input, out, |report| {
        let mut c = Command::new(iofloor);
        c.arg(input).arg(out).arg(format).arg(report);
        c
    })
}

/// A run of `command(report)` under GNU time, after the page cache is settled: its report, peak
/// RSS and CPU time.
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
    // The run's CPU time from the kernel's account of waited-for children, to the microsecond
    // (GNU time's `%U %S` are in hundredths: 2.5 % of a floor's CPU a step).
    let before = children_cpu_seconds()?;
    let (output, fields) = under_time(&command(&report), "%M")?;
    let cpu_s = children_cpu_seconds()? - before;
    if !output.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    // Peak RSS (KiB).
    let [rss_kb] = fields[..] else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("no peak RSS from /usr/bin/time: {stderr}");
    };
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let _ = std::fs::remove_dir_all(out);
    Ok(Run {
        name: name.to_string(),
        files: r["files_ok"].as_u64().unwrap_or(0) as usize,
        seconds: r["total_time"].as_f64().unwrap_or(0.0),
        files_per_s: r["throughput"]["files_per_s"].as_f64().unwrap_or(0.0),
        segments_per_s: r["throughput"]["segments_per_s"].as_f64().unwrap_or(0.0),
        rss_mb: rss_kb / 1024.0,
        cpu_s,
        stages: r["stage_seconds"].clone(),
    })
}

/// User and system CPU seconds of this process's children that have ended and been waited for
/// (and of their own waited-for children: a command run under GNU time counts with it).
fn children_cpu_seconds() -> Result<f64> {
    // SAFETY: `getrusage` fills the `rusage` it is given, a plain C struct for which all zeros
    // is a valid value; `RUSAGE_CHILDREN` is a valid `who`.
    #[allow(unsafe_code)]
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        (rc, usage)
    };
    if rc != 0 {
        bail!("getrusage failed: {}", std::io::Error::last_os_error());
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// `command` under GNU time printing `format` (numbers only): its output, and the numbers on the
/// last line of its standard error.
pub(crate) fn under_time(command: &Command, format: &str) -> Result<(Output, Vec<f64>)> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", format])
        .arg(command.get_program())
        .args(command.get_args())
        .output()
        .context("cannot run /usr/bin/time")?;
    let fields = String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Ok((output, fields))
}

/// A folder of the first `n` files of `corpus` (copied once).
pub(super) fn first_files(corpus: &Path, dir: &Path, n: usize) -> Result<PathBuf> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        for i in 0..n {
            let name = format!("clip_{i:05}.wav");
            std::fs::copy(corpus.join(&name), dir.join(&name))?;
        }
    }
    Ok(dir.to_path_buf())
}
