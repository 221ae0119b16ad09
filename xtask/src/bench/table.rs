//! The markdown table of a `cargo xtask bench` run, from its report.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Anchor, Run};

/// The bench's markdown: the headline numbers, every run's stages, the I/O floors, the anchors.
pub(super) fn markdown(report: &Value, runs: &[Run], anchors: &[Anchor], limit: f64) -> String {
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
    let other = &report["compute_alternated_ms_other_hop"];
    if let (Some(lanes), Some(pairs)) = (other["lanes"].as_f64(), other["pairs"].as_f64()) {
        let _ = writeln!(
            md,
            "`cpu_ab` with `{}` (the first pass loads its inputs one by one): lanes {lanes:.2} ms, \
             pairs {pairs:.2} ms, {:.2}×.\n",
            other["config"].as_str().unwrap_or(""),
            pairs / lanes,
        );
    }
    let limit_of = |k: &str| report["kernel_limit"][k].as_f64();
    if let (Some(peak), Some(bare), Some(lanes)) = (
        limit_of("peak_vector_ops_per_ns"),
        limit_of("bare_transform_ms_per_file"),
        limit_of("lane_path_ms_per_file"),
    ) {
        let _ = writeln!(
            md,
            "`kernel_limit` (one thread): the vector units start {peak:.1} operations a ns; the \
             bare `n_fft` 256 transform (radix-4 and radix-2 sweeps in L1, nothing else) costs \
             {bare:.3} ms a 10 s file, the whole lane path {lanes:.3} ms.\n",
        );
    }
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
        // By CPU: the floor's CPU time over the run's, the share a run would reach if both kept
        // every core busy (wall time also moves with the host's other guests); and the run's CPU
        // a file over its floor's beside what 80 % of the floor allows (a quarter of the floor's).
        let _ = writeln!(
            md,
            "\n| I/O floor (no compute) | files/s | melkit run | of the floor | CPU s, floor / run | by CPU | CPU ms a file over the floor (80 % allows) |"
        );
        let _ = writeln!(md, "|---|---:|---|---:|---:|---:|---:|");
        for f in floors {
            let g = |k: &str| f[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {:.0} % | {:.3} / {:.3} | {:.0} % | {:.3} ({:.3}) |",
                f["name"].as_str().unwrap_or(""),
                g("files_per_s"),
                f["run"].as_str().unwrap_or(""),
                100.0 * g("run_to_floor"),
                g("cpu_seconds"),
                g("run_cpu_seconds"),
                100.0 * g("run_to_floor_by_cpu"),
                g("over_floor_cpu_ms_per_file"),
                g("allowed_at_80_percent_cpu_ms_per_file"),
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
        let _ =
            writeln!(md, "\n| anchor (same corpus, same run) | files/s | melkit run | melkit is |");
        let _ = writeln!(md, "|---|---:|---|---:|");
        for a in anchors {
            let ratio = a.melkit_files_per_s / a.files_per_s;
            let _ = writeln!(md, "| {} | {:.1} | {} | {ratio:.1}× |", a.name, a.files_per_s, a.run);
        }
    }
    md
}
