//! Beyond one machine: shards run as concurrent processes (from `--shard`, a Slurm array's or a
//! Kubernetes Indexed Job's environment), a killed shard resumed, and `melkit merge` giving back
//! exactly the single-process stacked dataset, or refusing with the list of what is wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod shards;

use common::{command, kill_when, melkit, melkit_with, text};
use shards::{arg, corpus, stacked, temp_corpus};

fn spawn(args: &[&str]) -> std::process::Child {
    command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn shards_run_concurrently_and_merge_into_exactly_the_single_process_result() {
    let (dir, input) = temp_corpus(24);
    let single = dir.path().join("single");
    let run = melkit(&["run", arg(&input), "-o", arg(&single), "--format", "stacked-h5", "-q"]);
    assert_eq!(run.status.code(), Some(1), "three bad files fail: {}", text(&run.stderr));
    let (mel, shape, sources, indices, config) = stacked(&single.join("melkit-stacked.h5"));
    assert_eq!(shape, [24, 40, 2, 64, 17]);
    assert_eq!(sources.len(), 24);
    // Rows follow the input order (folders sorted by name), the bad files left out.
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    assert_eq!(indices, sorted);
    // Three shards at once, sharing one output folder.
    let shared = dir.path().join("shards");
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let shard = format!("{k}/3");
            spawn(&[
                "run",
                arg(&input),
                "-o",
                arg(&shared),
                "--format",
                "stacked-h5",
                "--shard",
                &shard,
                "-q",
            ])
        })
        .collect();
    let mut failed_lines = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(1),
            "{}",
            text(&out.stderr)
        );
        failed_lines += text(&out.stderr).lines().filter(|l| l.starts_with("failed: ")).count();
    }
    assert_eq!(failed_lines, 3, "each bad file fails in exactly one shard");
    let merged = dir.path().join("merged.h5");
    let merge = melkit(&["merge", arg(&shared), "-o", arg(&merged)]);
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge.stderr));
    let out = text(&merge.stdout);
    assert!(out.starts_with("merged 24 rows from 3 shards"), "{out}");
    assert_eq!(out.matches("failed in its shard: ").count(), 3, "{out}");
    assert!(out.contains("not_audio.wav: not a supported audio file"), "{out}");
    let (m_mel, m_shape, m_sources, m_indices, m_config) = stacked(&merged);
    assert_eq!(m_shape, shape);
    assert_eq!(m_sources, sources);
    assert_eq!(m_indices, indices);
    assert_eq!(m_config, config);
    assert!(m_mel == mel, "merged values differ from the single-process run");
    read_back_in_h5py(&merged, &sources);
    // Balanced by work: each shard got about a third of the inputs.
    for k in 1..=3 {
        let (_, s, ..) = stacked(&shared.join(format!("melkit-stacked.shard-{k}-of-3.h5")));
        assert!((6..=10).contains(&s[0]), "shard {k}: {} rows", s[0]);
    }
}

const PY_STACKED: &str = r#"
import json, sys
import h5py, numpy as np
path, golden = sys.argv[1:3]
with h5py.File(path, "r") as f:
    mel, source, index = f["mel"], f["source"].asstr()[()], f["index"][()]
    tones = [i for i, s in enumerate(source) if s.endswith("clip_0000.wav")][0]
    want = np.load(golden)
    got = mel[tones]
    print(json.dumps({
        "shape": list(mel.shape), "maxshape": [m for m in mel.maxshape], "chunks": list(mel.chunks),
        "axes": mel.attrs["axes"], "rows": len(source), "index": [int(i) for i in index],
        "error": float(np.max(np.abs(got.astype(np.float64) - want)) / np.max(np.abs(want))),
    }))
"#;

/// The stacked file as h5py sees it: its layout, and the row of a golden input against librosa.
fn read_back_in_h5py(path: &Path, sources: &[String]) {
    let Some(python) = common::python_with_h5py() else {
        eprintln!("skipping the h5py check: no Python with h5py and numpy");
        return;
    };
    let golden = common::golden_dir().join("tones_4096_pcm16.npy");
    let out = Command::new(python).args(["-c", PY_STACKED]).arg(path).arg(golden).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["shape"], serde_json::json!([sources.len(), 40, 2, 64, 17]));
    assert_eq!(r["maxshape"], serde_json::json!([null, 40, 2, 64, 17]));
    assert_eq!(r["chunks"], serde_json::json!([1, 40, 2, 64, 17]));
    assert_eq!(r["axes"], "file,long_segment,short_segment,mel_bin,time_frame");
    assert!(r["error"].as_f64().unwrap() <= 1e-5, "{r}");
}

#[test]
fn slurm_and_kubernetes_environments_choose_the_shard() {
    let (dir, input) = temp_corpus(9);
    let run = |out: &Path, extra: &[&str], env: &[(&str, &str)]| {
        let mut args =
            vec!["run", arg(&input), "-o", arg(out), "--format", "stacked-h5", "--verbose"];
        args.extend_from_slice(extra);
        melkit_with(&args, env)
    };
    let flag = dir.path().join("flag");
    run(&flag, &["--shard", "2/3"], &[]);
    let (.., want, _) = stacked(&flag.join("melkit-stacked.shard-2-of-3.h5"));
    let slurm = dir.path().join("slurm");
    let env = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let out = run(&slurm, &[], &env);
    assert!(
        text(&out.stderr).contains(
            "shard 2/3 (from the Slurm array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT))\n"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(stacked(&slurm.join("melkit-stacked.shard-2-of-3.h5")).3, want);
    let k8s = dir.path().join("k8s");
    let out = run(&k8s, &["--shards", "3"], &[("JOB_COMPLETION_INDEX", "1")]);
    assert!(
        text(&out.stderr)
            .contains("shard 2/3 (from the Kubernetes Indexed Job (JOB_COMPLETION_INDEX))"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(stacked(&k8s.join("melkit-stacked.shard-2-of-3.h5")).3, want);
    let k8s_env = dir.path().join("k8s-env");
    run(&k8s_env, &[], &[("JOB_COMPLETION_INDEX", "1"), ("MELKIT_SHARDS", "3")]);
    assert_eq!(stacked(&k8s_env.join("melkit-stacked.shard-2-of-3.h5")).3, want);
    let no_count = run(&dir.path().join("x"), &[], &[("JOB_COMPLETION_INDEX", "1")]);
    assert_eq!(no_count.status.code(), Some(2));
    assert!(
        text(&no_count.stderr).contains(
            "JOB_COMPLETION_INDEX is set but the number of shards is not: give --shards N"
        )
    );
    // --shard wins over the environment.
    let both = run(&dir.path().join("both"), &["--shard", "1/1"], &env);
    assert!(text(&both.stderr).contains("shard 1/1 (from --shard)"), "{}", text(&both.stderr));
}

#[test]
fn per_file_shards_share_an_output_folder_and_write_what_one_run_writes() {
    let (dir, input) = temp_corpus(10);
    let single = dir.path().join("single");
    melkit(&["run", arg(&input), "-o", arg(&single), "--format", "npy", "-q"]);
    let shared = dir.path().join("shared");
    let children: Vec<_> = (1..=2)
        .map(|k| {
            spawn(&[
                "run",
                arg(&input),
                "-o",
                arg(&shared),
                "--format",
                "npy",
                "--shard",
                &format!("{k}/2"),
                "-q",
            ])
        })
        .collect();
    for c in children {
        c.wait_with_output().unwrap();
    }
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        common::tree(d)
            .into_iter()
            .filter(|f| f.ends_with(".npy"))
            .map(|f| (f.clone(), std::fs::read(d.join(&f)).unwrap()))
            .collect()
    };
    assert_eq!(files(&shared), files(&single));
    for k in 1..=2 {
        let manifest =
            std::fs::read_to_string(shared.join(format!("melkit-manifest.shard-{k}-of-2.jsonl")))
                .unwrap();
        assert!(manifest.lines().count() >= 3, "{manifest}");
    }
}

/// The inputs the shard's manifest lists as written, line by line.
fn written(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("melkit-manifest.shard-1-of-2.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["status"] == "ok")
        .map(|v| v["input"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_killed_shard_resumes_without_redoing_finished_files_and_then_merges() {
    let (dir, input) = temp_corpus(600);
    let out = dir.path().join("out");
    let args = [
        "run",
        arg(&input),
        "-o",
        arg(&out),
        "--format",
        "stacked-h5",
        "--shard",
        "1/2",
        "--workers",
        "1",
    ];
    let mut child = spawn(&args);
    // The manifest line follows the part's rename, so the kill waits on the manifest: a kill
    // between the two leaves a part the manifest does not list yet.
    kill_when(&mut child, || written(&out).len() >= 30);
    assert!(!out.join("melkit-stacked.shard-1-of-2.h5").exists());
    let before = written(&out);
    assert!(before.len() >= 30 && before.len() < 300, "{}", before.len());
    let resumed = melkit(&[&args[..], &["--resume"]].concat());
    assert!(resumed.status.code().is_some_and(|c| c <= 1), "{}", text(&resumed.stderr));
    let stdout = text(&resumed.stdout);
    assert!(
        stdout.contains(&format!("resumed: {} inputs already done were skipped", before.len())),
        "{stdout}"
    );
    let after = written(&out);
    let redone: Vec<_> = after[before.len()..].iter().filter(|i| before.contains(i)).collect();
    assert_eq!(redone, Vec::<&String>::new(), "finished files were computed again");
    let (_, shape, sources, ..) = stacked(&out.join("melkit-stacked.shard-1-of-2.h5"));
    assert_eq!(shape[0], sources.len());
    assert!(!out.join(".melkit-parts.shard-1-of-2").exists(), "parts are removed once stacked");
    // The other shard, then the merge.
    let other = melkit(&[
        "run",
        arg(&input),
        "-o",
        arg(&out),
        "--format",
        "stacked-h5",
        "--shard",
        "2/2",
        "-q",
    ]);
    assert!(other.status.code().is_some_and(|c| c <= 1));
    let merged = dir.path().join("merged.h5");
    let merge = melkit(&["merge", arg(&out), "-o", arg(&merged)]);
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge.stderr));
    assert!(
        text(&merge.stdout).starts_with("merged 600 rows from 2 shards"),
        "{}",
        text(&merge.stdout)
    );
}

#[test]
fn merge_refuses_other_configurations_and_missing_or_duplicated_inputs() {
    let (dir, input) = temp_corpus(6);
    let shard = |k: u32, out: &Path, extra: &[&str]| {
        let s = format!("{k}/2");
        let mut args =
            vec!["run", arg(&input), "-o", arg(out), "--format", "stacked-h5", "--shard", &s, "-q"];
        args.extend_from_slice(extra);
        melkit(&args);
    };
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    shard(1, &a, &[]);
    shard(2, &b, &[]);
    shard(2, &c, &["--n-mels", "40"]);
    let merged = dir.path().join("m.h5");
    let other = melkit(&["merge", arg(&a), arg(&c), "-o", arg(&merged)]);
    assert_eq!(other.status.code(), Some(1));
    let e = text(&other.stderr);
    assert!(
        e.starts_with(
            "error: the shards were computed with different configurations or splits:\n  "
        ),
        "{e}"
    );
    assert!(
        e.contains("melkit-stacked.shard-1-of-2.json: configuration ")
            && e.contains(", shard 2 of 2 over 9 inputs"),
        "{e}"
    );
    assert!(!merged.exists());
    let missing = melkit(&["merge", arg(&a), "-o", arg(&merged)]);
    assert_eq!(missing.status.code(), Some(1));
    let e = text(&missing.stderr);
    assert!(e.contains("cannot merge: 1 inputs missing, 0 in more than one shard (--allow-partial merges what there is):"), "{e}");
    assert!(e.contains("  missing: every input of shard 2/2 (no output of it was given)"), "{e}");
    let twice = melkit(&["merge", arg(&a), arg(&b), arg(&b), "-o", arg(&merged)]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice.stderr).contains("  duplicated: shard 2/2 is in both "),
        "{}",
        text(&twice.stderr)
    );
    let partial = melkit(&["merge", arg(&a), "--allow-partial", "-o", arg(&merged)]);
    assert_eq!(partial.status.code(), Some(0), "{}", text(&partial.stderr));
    assert!(
        text(&partial.stdout).contains("missing: every input of shard 2/2"),
        "{}",
        text(&partial.stdout)
    );
    let rows = stacked(&merged).1[0];
    assert_eq!(rows, stacked(&a.join("melkit-stacked.shard-1-of-2.h5")).1[0]);
    let whole = melkit(&["merge", arg(&a), arg(&b), "-o", arg(&merged)]);
    assert!(
        text(&whole.stdout).starts_with("merged 6 rows from 2 shards"),
        "{}",
        text(&whole.stdout)
    );
    let nothing = melkit(&["merge", arg(&input), "-o", arg(&merged)]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(
        text(&nothing.stderr).contains("holds no stacked melkit output (melkit-stacked*.json)")
    );
}

#[test]
fn stacked_output_needs_a_fixed_length() {
    let (dir, input) = temp_corpus(3);
    let out = melkit(&[
        "run",
        arg(&input),
        "-o",
        arg(&dir.path().join("o")),
        "--format",
        "stacked-h5",
        "--sample-length",
        "full",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--format stacked-h5 needs sample_length set"),
        "{}",
        text(&out.stderr)
    );
}

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(file)
}

/// `PATH` with the melkit under test first.
fn path_with_melkit() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_melkit")).parent().unwrap().display().to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

#[test]
fn the_slurm_example_runs_each_array_task_and_the_merge() {
    let (dir, input) = temp_corpus(7);
    let out = dir.path().join("out");
    let path = path_with_melkit();
    for task in ["4", "5"] {
        let env = [
            ("SLURM_ARRAY_TASK_ID", task),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_CPUS_PER_TASK", "1"),
            ("PATH", path.as_str()),
            ("MELKIT_TUNE_PROFILE", "/nonexistent/melkit-tests/tune.json"),
        ];
        let run = Command::new("bash")
            .arg(deploy("slurm/melkit-array.sbatch"))
            .args([arg(&input), arg(&out)])
            .envs(env)
            .output()
            .unwrap();
        assert!(run.status.success(), "task {task}: {}", text(&run.stderr));
    }
    let merged = dir.path().join("dataset.h5");
    let merge = melkit(&["merge", arg(&out), "-o", arg(&merged)]);
    assert!(
        text(&merge.stdout).starts_with("merged 7 rows from 2 shards"),
        "{}",
        text(&merge.stderr)
    );
}

/// The JSON flow sequence after `command:` on a line of the Kubernetes example.
fn command_of(line: &str) -> Vec<String> {
    let list = line.split_once("command:").unwrap().1.trim();
    serde_json::from_str(list).unwrap()
}

#[test]
fn the_kubernetes_example_runs_each_index_and_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    corpus(&data.join("audio"), 7);
    let yaml = std::fs::read_to_string(deploy("k8s/melkit-indexed-job.yaml")).unwrap();
    let field = |name: &str| -> String {
        let line = yaml.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
        line.split_once(':')
            .unwrap()
            .1
            .split('#')
            .next()
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_string()
    };
    let completions: usize = field("completions:").parse().unwrap();
    let shards = yaml.lines().skip_while(|l| !l.contains("name: MELKIT_SHARDS")).nth(1).unwrap();
    assert_eq!(
        shards.split('"').nth(1).unwrap(),
        completions.to_string(),
        "MELKIT_SHARDS = completions"
    );
    let on_data = |args: Vec<String>| -> Vec<String> {
        args.into_iter().map(|a| a.replace("/data", arg(data))).collect()
    };
    let run_line =
        yaml.lines().find(|l| l.trim_start().starts_with("command: [\"melkit\", \"run\"")).unwrap();
    let run = on_data(command_of(run_line));
    for index in 0..completions {
        let env = [
            ("JOB_COMPLETION_INDEX", index.to_string()),
            ("MELKIT_SHARDS", completions.to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args: Vec<&str> = run[1..].iter().map(String::as_str).collect();
        let out = melkit_with(&args, &env);
        assert!(out.status.code().is_some_and(|c| c <= 1), "index {index}: {}", text(&out.stderr));
    }
    let merge_line = yaml.lines().find(|l| l.contains("command: [\"melkit\", \"merge\"")).unwrap();
    let merge = on_data(command_of(merge_line));
    let args: Vec<&str> = merge[1..].iter().map(String::as_str).collect();
    let merged = melkit(&args);
    assert!(
        text(&merged.stdout).starts_with(&format!("merged 7 rows from {completions} shards")),
        "{}{}",
        text(&merged.stdout),
        text(&merged.stderr)
    );
}

#[test]
fn resuming_a_complete_stack_keeps_its_rows_whatever_the_workers() {
    let (dir, input) = temp_corpus(5);
    let out = dir.path().join("out");
    let args = ["run", arg(&input), "-o", arg(&out), "--format", "stacked-h5"];
    melkit(&args);
    let first = stacked(&out.join("melkit-stacked.h5"));
    let again = melkit(&[&args[..], &["--resume", "--workers", "1"]].concat());
    let stdout = text(&again.stdout);
    assert!(stdout.contains("resumed: 5 inputs already done were skipped"), "{stdout}");
    assert!(stdout.contains("0 written"), "{stdout}");
    let second = stacked(&out.join("melkit-stacked.h5"));
    assert!(first.0 == second.0 && first.2 == second.2 && first.3 == second.3);
    // Another configuration recomputes every row.
    let other = melkit(&[&args[..], &["--resume", "--n-mels", "40"]].concat());
    assert!(text(&other.stdout).contains("5 written"), "{}", text(&other.stdout));
    assert_eq!(stacked(&out.join("melkit-stacked.h5")).1, [5, 40, 2, 40, 17]);
}
