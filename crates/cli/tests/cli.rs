//! The `melkit` command end to end: golden cases through HDF5, NPY and NPZ files read back
//! (also by h5py and numpy when Python has them), configuration files and flags, errors and
//! exit codes, folder mirroring, and failures that lose nothing already written.

use std::fs::File;
use std::path::Path;
use std::process::Command;

mod common;

use common::*;
use hdf5::types::VarLenUnicode;
use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

const AXES: &str = "long_segment,short_segment,mel_bin,time_frame";

#[test]
#[should_panic(expected = "max rel inf")]
fn the_golden_comparison_fails_on_nan_in_the_exact_class() {
    assert_close("nan", &[1.0, f32::NAN], &[1.0, 2.0], "exact");
}

#[test]
#[should_panic(expected = "rel L2 inf")]
fn the_golden_comparison_fails_on_infinity_in_the_resampled_class() {
    assert_close("inf", &[1.0, f32::INFINITY], &[1.0, 2.0], "resampled");
}

fn attr(ds: &hdf5::Dataset, name: &str) -> String {
    ds.attr(name).unwrap().read_scalar::<VarLenUnicode>().unwrap().to_string()
}

#[test]
fn golden_cases_through_hdf5_and_npy_files() {
    let out = tempfile::tempdir().unwrap();
    for name in golden_names() {
        let input = golden_dir().join(format!("{name}.wav"));
        let (want, shape, tolerance) = golden(&name);
        let runs = [
            ("cpu", "h5"),
            ("cpu", "npy"),
            ("reference", "h5"),
            ("reference", "npy"),
            ("cpu", "npz"),
        ];
        for (backend, format) in runs {
            let dir = out.path().join(format!("{name}-{backend}-{format}"));
            let mut args = vec!["run".to_string(), input.display().to_string(), "-o".into()];
            args.extend([
                dir.display().to_string(),
                "--backend".into(),
                backend.into(),
                "--format".into(),
            ]);
            args.push(format.into());
            args.extend(golden_flags(&name));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = melkit(&args);
            assert!(run.status.success(), "{name}: {}", text(&run.stderr));
            let path = dir.join(format!("{name}.{format}"));
            let (got, got_shape) = match format {
                "h5" => {
                    let (data, shape, ds) = read_h5(&path);
                    assert_eq!(attr(&ds, "axes"), AXES);
                    assert_eq!(attr(&ds, "source"), input.display().to_string());
                    assert_eq!(attr(&ds, "melkit_version"), env!("CARGO_PKG_VERSION"));
                    let config: serde_json::Value =
                        serde_json::from_str(&attr(&ds, "config")).unwrap();
                    let rate = ds.attr("sample_rate").unwrap().read_scalar::<u32>().unwrap();
                    assert_eq!(config["sample_rate"].as_u64(), Some(u64::from(rate)));
                    (data, shape)
                }
                "npy" => {
                    let a = Array4::<f32>::read_npy(File::open(&path).unwrap()).unwrap();
                    (a.iter().copied().collect(), a.shape().to_vec())
                }
                _ => {
                    let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
                    let a = Array4::<f32>::read_npy(zip.by_name("mel.npy").unwrap()).unwrap();
                    (a.iter().copied().collect(), a.shape().to_vec())
                }
            };
            assert_eq!(got_shape, shape, "{name} {format}");
            assert_close(&format!("{name} {backend} {format}"), &got, &want, &tolerance);
        }
    }
}

const PY_CHECK: &str = r#"
import json, sys, zipfile
import h5py, numpy as np
h5, npy, npz, golden = sys.argv[1:5]
want = np.load(golden)
with h5py.File(h5, "r") as f:
    d = f["mel"]
    got = d[()]
    attrs = {k: (v if isinstance(v, str) else int(v)) for k, v in d.attrs.items()}
    chunks = list(d.chunks)
z = np.load(npz)
rel = lambda a: float(np.max(np.abs(a.astype(np.float64) - want)) / np.max(np.abs(want)))
print(json.dumps({
    "h5": rel(got), "npy": rel(np.load(npy)), "npz": rel(z["mel"]), "shape": list(got.shape),
    "dtype": str(got.dtype), "axes": attrs["axes"], "sample_rate": attrs["sample_rate"],
    "n_mels": json.loads(attrs["config"])["n_mels"], "npz_n_mels": json.loads(str(z["config"]))["n_mels"],
    "chunks": chunks,
}))
"#;

#[test]
fn outputs_read_back_in_h5py_and_numpy() {
    let Some(python) = python_with_h5py() else {
        eprintln!(
            "skipping: no Python with h5py and numpy (apt-get install python3-h5py python3-numpy)"
        );
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tones_4096_pcm16.wav");
    let input = input.to_str().unwrap();
    for (format, compression) in [("h5", "lzf"), ("npy", "none"), ("npz", "deflate:6")] {
        let dir = out.path().join(format);
        let run = melkit(&[
            "run",
            input,
            "-o",
            dir.to_str().unwrap(),
            "--format",
            format,
            "--compression",
            compression,
        ]);
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    let check = Command::new(python)
        .args(["-c", PY_CHECK])
        .arg(out.path().join("h5/tones_4096_pcm16.h5"))
        .arg(out.path().join("npy/tones_4096_pcm16.npy"))
        .arg(out.path().join("npz/tones_4096_pcm16.npz"))
        .arg(golden_dir().join("tones_4096_pcm16.npy"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    let r: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    for key in ["h5", "npy", "npz"] {
        assert!(r[key].as_f64().unwrap() <= 1e-5, "{key}: {r}");
    }
    assert_eq!(r["shape"], serde_json::json!([40, 2, 64, 17]));
    assert_eq!(r["dtype"], "float32");
    assert_eq!(r["axes"], AXES);
    assert_eq!(r["sample_rate"], 4096);
    assert_eq!(r["n_mels"], 64);
    assert_eq!(r["npz_n_mels"], 64);
    // Chunks of whole long segments, up to 512 KiB: a ten-second file in one.
    assert_eq!(r["chunks"], serde_json::json!([40, 2, 64, 17]));
}

#[test]
fn a_toml_file_and_flags_combine_with_flags_winning() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("melkit.toml");
    std::fs::write(&toml, "n_mels = 40\nfmin = 30.0\nsample_length = \"full\"\nscale = \"db\"\n")
        .unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let out = dir.path().join("out");
    let run = melkit(&[
        "run",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--config",
        toml.to_str().unwrap(),
        "--n-mels",
        "32",
        "--verbose",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (data, shape, ds) = read_h5(&out.join("tiny_4096_pcm16_full.h5"));
    assert_eq!(shape, [1, 2, 32, 17]);
    let config: serde_json::Value = serde_json::from_str(&attr(&ds, "config")).unwrap();
    assert_eq!(config["n_mels"], 32);
    assert_eq!(config["fmin"], 30.0);
    assert_eq!(config["sample_length"], serde_json::Value::Null);
    assert_eq!(config["scale"], "db");
    assert_eq!(config["verbose"], true);
    assert!(data.iter().all(|v| (-100.0..60.0).contains(v)), "dB values expected");
}

#[test]
fn invalid_configuration_is_a_usage_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let input = input.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--n-fft", "0"], "error: `n_fft` = 0 is invalid: must be an integer from 2 to 65536\n"),
        (
            &["--fmax", "4000"],
            "error: `fmax` = 4000.0 is invalid: must be a number of Hz above fmin and at most sample_rate / 2 (2048), or \"none\" for sample_rate / 2\n",
        ),
        (
            &["--short-segment-points", "2000"],
            "error: `short_segment_points` = 2000 is invalid: must be an integer from 1 to 1024, the long segment's length in samples (long_segment_scale 0.25 s at sample_rate 4096 Hz)\n",
        ),
        (
            &["--mel-scale", "bark"],
            "error: `mel_scale` = bark is invalid: must be one of slaney, htk\n",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", input, "-o", out];
        args.extend_from_slice(flags);
        let run = melkit(&args);
        assert_eq!(run.status.code(), Some(2), "{flags:?}");
        assert_eq!(text(&run.stderr), *message, "{flags:?}");
    }
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "n_mles = 40\n").unwrap();
    let run = melkit(&["run", input, "-o", out, "--config", toml.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        text(&run.stderr),
        format!(
            "error: in {}: unknown configuration key `n_mles` (did you mean `n_mels`?)\n",
            toml.display()
        )
    );
    assert!(!Path::new(out).exists(), "nothing may be written on a usage error");
}

#[test]
fn folders_are_mirrored_and_a_bad_file_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corpus");
    copy_golden("tones_4096_pcm16", &root.join("a/tones.wav"));
    copy_golden("chirp_4096_f32_short", &root.join("a/b/c/chirp.wav"));
    copy_golden("bursts_16000_pcm16", &root.join("bursts.wav"));
    std::fs::write(root.join("a/broken.wav"), "this is not audio").unwrap();
    std::fs::write(root.join("a/notes.txt"), "ignored").unwrap();
    let out = dir.path().join("out");
    let run =
        melkit(&["run", root.to_str().unwrap(), "-o", out.to_str().unwrap(), "--format", "npy"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("4 files in"), "{stdout}");
    assert!(stdout.contains("3 written, 1 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "failed: {}: not a supported audio file: the content is not in an audio format melkit reads",
            root.join("a/broken.wav").display()
        )),
        "{stdout}"
    );
    for (rel, case) in [
        ("a/tones.npy", "tones_4096_pcm16"),
        ("a/b/c/chirp.npy", "chirp_4096_f32_short"),
        ("bursts.npy", "bursts_16000_pcm16"),
    ] {
        let a = Array4::<f32>::read_npy(File::open(out.join(rel)).unwrap()).unwrap();
        let (want, _, tolerance) = golden(case);
        assert_close(rel, a.as_slice().unwrap(), &want, &tolerance);
    }
    assert!(!out.join("a/broken.npy").exists());
}

#[test]
fn a_rerun_replaces_outputs_whole_and_a_failure_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    copy_golden("tones_4096_pcm16", &root.join("a.wav"));
    copy_golden("stereo_4096_pcm24_long", &root.join("sub/b.wav"));
    let out = dir.path().join("out");
    let args = [
        "run",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--compression",
        "deflate",
        "--fsync",
    ];
    assert!(melkit(&args).status.success());
    let first_b = std::fs::read(out.join("sub/b.h5")).unwrap();
    // Second run: b.wav is now broken. Its old output must survive; a.h5 is rewritten whole.
    std::fs::write(root.join("sub/b.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    let run = melkit(&args);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(std::fs::read(out.join("sub/b.h5")).unwrap(), first_b);
    assert_eq!(tree(&out), ["a.h5", "sub/b.h5"], "temporary files left behind");
    let (a, _, _) = read_h5(&out.join("a.h5"));
    let (want, _, tolerance) = golden("tones_4096_pcm16");
    assert_close("a.h5", &a, &want, &tolerance);
    // An output path that cannot be written (a folder in the way) fails that file only.
    std::fs::remove_file(out.join("a.h5")).unwrap();
    std::fs::create_dir(out.join("a.h5")).unwrap();
    copy_golden("stereo_4096_pcm24_long", &root.join("sub/b.wav"));
    let run = melkit(&args);
    assert_eq!(run.status.code(), Some(1));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains(&format!(
            "failed: {}: cannot write {}",
            root.join("a.wav").display(),
            out.join("a.h5").display()
        )),
        "{stdout}"
    );
    assert_eq!(tree(&out), ["sub/b.h5"], "temporary files left behind");
}

#[test]
fn colliding_outputs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    copy_golden("tiny_4096_pcm16_full", &one.join("x.wav"));
    copy_golden("tiny_4096_pcm16_full", &two.join("x.wav"));
    copy_golden("tiny_4096_pcm16_full", &two.join("y.wav"));
    let out = dir.path().join("out");
    let run =
        melkit(&["run", one.to_str().unwrap(), two.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        text(&run.stderr),
        format!(
            "error: 2 inputs would overwrite each other's outputs:\n  {} <- {}, {}\n",
            out.join("x.h5").display(),
            one.join("x.wav").display(),
            two.join("x.wav").display()
        )
    );
    assert!(!out.exists());
}

#[test]
fn missing_inputs_and_empty_folders_fail_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.wav");
    let out = dir.path().join("out");
    let run = melkit(&["run", missing.to_str().unwrap(), "-o", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        text(&run.stderr),
        format!("failed: {}: no such file or directory\n", missing.display())
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = melkit(&["run", empty.to_str().unwrap(), "-o", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(text(&run.stderr), "error: no audio files found in the inputs\n");
}

#[test]
fn the_report_and_info_describe_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let input = golden_dir().join("tones_4096_pcm16.wav");
    let run = melkit(&[
        "run",
        input.to_str().unwrap(),
        "-o",
        dir.path().join("out").to_str().unwrap(),
        "--backend",
        "cpu",
        "--workers",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let stdout = text(&run.stdout);
    assert!(stdout.starts_with("1 files in "), "{stdout}");
    assert!(stdout.contains("on backend cpu with 2 workers: 1 written, 0 failed"), "{stdout}");
    assert!(stdout.contains("stage seconds: decode "), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["files_ok"], 1);
    assert_eq!(r["segments"], 80);
    assert_eq!(r["long_segments"], 40);
    assert_eq!(r["workers"], 2);
    for stage in ["decode", "resample", "segment", "compute", "scale", "write"] {
        assert!(r["stage_seconds"][stage].as_f64().is_some(), "{stage}");
    }
    assert!(r["stage_seconds"]["compute"].as_f64().unwrap() > 0.0);
    assert!(r["throughput"]["files_per_s"].as_f64().unwrap() > 0.0);

    let info = melkit(&["info"]);
    assert!(info.status.success());
    let info = text(&info.stdout);
    assert!(info.contains("  cpu        ready\n"), "{info}");
    assert!(info.contains("  reference  ready\n"), "{info}");
    // CUDA is ready or says why not, and auto picks what the machine has (CUDA on a GPU host).
    let cuda = info.lines().find(|l| l.starts_with("  cuda ")).unwrap_or_default();
    assert!(
        cuda == "  cuda       ready"
            || cuda.starts_with("  cuda       unavailable: no CUDA device: "),
        "{info}"
    );
    if cuda.ends_with("ready") {
        assert!(info.contains("auto picks cuda"), "{info}");
    } else {
        assert!(info.contains("auto picks cpu") || info.contains("auto picks wgpu"), "{info}");
    }
    assert!(info.contains("output formats: h5 (HDF5 "), "{info}");
    assert!(
        info.contains("input formats: WAV (PCM 8-32 bit, float 32/64), FLAC, Ogg Vorbis, MP3"),
        "{info}"
    );
}
