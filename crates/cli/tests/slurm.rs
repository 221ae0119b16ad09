//! `deploy/slurm/melkit-array.sbatch` on a real Slurm: a one-node cluster on this machine
//! (`xtask/slurm/start-local-slurm.sh` installs Debian's slurm-wlm and munge and starts munged,
//! slurmctld and slurmd), the script submitted as a 3-task array with its merge as a dependent
//! job, and the merged dataset checked against a single-process stacked run. CI requires it
//! (`MELKIT_REQUIRE_SLURM=1`); elsewhere it runs where it can start Slurm (as root).

mod common;
mod shards;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{melkit, text};
use shards::{arg, stacked, temp_corpus};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required() -> bool {
    std::env::var("MELKIT_REQUIRE_SLURM").is_ok_and(|v| v == "1")
}

/// Starts the local cluster; `false` (or a panic when required) where it cannot be started.
fn start_slurm() -> bool {
    if !common::is_root() {
        assert!(!required(), "MELKIT_REQUIRE_SLURM=1 but the test is not run as root");
        eprintln!("skipping: starting Slurm needs root");
        return false;
    }
    let script = root().join("xtask/slurm/start-local-slurm.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    if !out.status.success() {
        let why = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
        assert!(!required(), "cannot start Slurm: {why}");
        eprintln!("skipping: cannot start Slurm: {why}");
        return false;
    }
    true
}

/// `sbatch --parsable ARGS` with melkit on the PATH it exports to the jobs; the job id.
fn sbatch(args: &[&str]) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_melkit")).parent().unwrap().display().to_string();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .env("PATH", path)
        .env("MELKIT_TUNE_PROFILE", "/nonexistent/melkit-tests/tune.json")
        .output()
        .unwrap();
    assert!(out.status.success(), "sbatch {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().split(';').next().unwrap().to_string()
}

/// The states of a job's tasks (`JobState=...`), once none is pending or running.
fn wait_for(job: &str, limit: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let out = Command::new("scontrol").args(["-o", "show", "job", job]).output().unwrap();
        let states: Vec<String> = text(&out.stdout)
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("JobState=").map(str::to_string))
            .collect();
        let done = !states.is_empty()
            && states.iter().all(|s| {
                !matches!(s.as_str(), "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING")
            });
        if done {
            return states;
        }
        assert!(started.elapsed() < limit, "job {job} not done after {limit:?}: {states:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_sbatch_example_runs_as_a_real_array_with_a_dependent_merge() {
    if !start_slurm() {
        return;
    }
    let (dir, input) = temp_corpus(12);
    let out = dir.path().join("out");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let script = root().join("deploy/slurm/melkit-array.sbatch");
    let log = format!("--output={}/melkit-%A_%a.log", logs.display());
    // Three tasks of one CPU each (the script asks for 8, more than this machine has).
    let array = sbatch(&[
        "--array=0-2",
        "--cpus-per-task=1",
        "--mem=512M",
        &log,
        arg(&script),
        arg(&input),
        arg(&out),
    ]);
    let merged = out.join("dataset.h5");
    let merge_log = format!("--output={}/merge-%j.log", logs.display());
    let merge = sbatch(&[
        &format!("--dependency=afterok:{array}"),
        "--mem=512M",
        &merge_log,
        "--wrap",
        &format!("melkit merge {} -o {}", arg(&out), arg(&merged)),
    ]);
    let logs_text = || {
        std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let states = wait_for(&array, Duration::from_secs(300));
    assert!(states.iter().all(|s| s == "COMPLETED"), "array: {states:?}\n{}", logs_text());
    assert_eq!(states.len(), 3, "{states:?}");
    let states = wait_for(&merge, Duration::from_secs(120));
    assert_eq!(states, ["COMPLETED"], "{}", logs_text());
    // Every task computed its own shard (the array variables told it which).
    for k in 1..=3 {
        assert!(out.join(format!("melkit-stacked.shard-{k}-of-3.h5")).is_file());
    }
    // The merge holds exactly what one process computes: the 12 clips, in input order.
    let single = dir.path().join("single");
    // (with the tasks' one worker: the configuration recorded must match too)
    let args =
        ["run", arg(&input), "-o", arg(&single), "--format", "stacked-h5", "-q", "--workers", "1"];
    let run = melkit(&args);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr)); // the three bad files
    let (want, want_shape, want_sources, want_index, want_config) =
        stacked(&single.join("melkit-stacked.h5"));
    let (got, shape, sources, index, config) = stacked(&merged);
    assert_eq!(shape, want_shape);
    assert_eq!(shape[0], 12);
    assert_eq!((sources, index, config), (want_sources, want_index, want_config));
    assert!(got == want, "the merged values differ from the single-process run");
}
