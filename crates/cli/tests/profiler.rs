//! The profiler's subcommands end to end: `profile` (table, JSON, SVG, baselines),
//! `validate`, `tune` and the profile `run` picks up, `show`, and `run --verify-fraction`.

mod common;

use common::{examples, melkit, melkit_with, text};

fn arg(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// Timing tests run one at a time: tests sharing the machine's two cores would otherwise time
/// each other.
fn timing() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn profile_reports_every_stage_the_bottleneck_and_the_roofline_as_text_json_and_svg() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("p.json"), dir.path().join("p.svg"));
    let ex = examples();
    let run = melkit(&[
        "profile",
        arg(&ex),
        "--backend",
        "cpu",
        "--json",
        arg(&json),
        "--plot",
        arg(&svg),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    for stage in
        ["decode", "resample", "segment", "compute", "  compute/window+fft+power", "scale", "write"]
    {
        assert!(out.lines().any(|l| l.starts_with(stage)), "{stage}: {out}");
    }
    assert!(out.contains("4 files, 320 segments in"), "{out}");
    assert!(out.contains("\nbottleneck: "), "{out}");
    assert!(out.contains("\nroofline: compute achieved "), "{out}");
    assert!(out.contains("\npeak RSS: "), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["run"]["segments"], 320);
    assert_eq!(v["run"]["files_ok"], 4);
    let stages = v["analysis"]["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..4], ["decode", "resample", "segment", "compute"]);
    let wall = v["analysis"]["wall_seconds"].as_f64().unwrap();
    for s in stages.iter().filter(|s| !s["what_if_seconds"].is_null()) {
        let w = s["what_if_seconds"].as_f64().unwrap();
        assert!(w > 0.0 && w <= wall, "{s}");
    }
    assert!(v["peaks"]["fft_flops"].as_f64().unwrap() > 0.0);
    assert!(v["roofline"]["efficiency"].as_f64().unwrap() > 0.0);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("resample") && svg.contains("wall"), "{svg}");
}

#[test]
fn a_baseline_passes_an_honest_rerun_and_flags_a_planted_regression() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    // Twelve copies of the examples: runs long enough (about 80 ms) for timing to mean something.
    let ex = dir.path().join("corpus");
    for copy in 0..12 {
        for file in [
            "tones_4096.wav",
            "voice/glide_16000.wav",
            "field/bell_22050_float.wav",
            "field/birds_44100_stereo.wav",
        ] {
            let to = ex.join(format!("{copy}/{file}"));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(examples().join(file), to).unwrap();
        }
    }
    let common =
        ["profile", arg(&ex), "--backend", "cpu", "--format", "npy", "--no-probe", "--repeat", "5"];
    let save = melkit(&[&common[..], &["--save-baseline", arg(&base)]].concat());
    assert!(save.status.success(), "{}", text(&save.stderr));
    assert!(text(&save.stdout).contains("baseline saved to"), "{}", text(&save.stdout));
    // The baseline with every time scaled by `factor`.
    let scaled = |factor: f64, name: &str| {
        let mut b: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
        let scale = |v: &mut serde_json::Value| {
            for x in v.as_array_mut().unwrap() {
                *x = (x.as_f64().unwrap() * factor).into();
            }
        };
        scale(&mut b["wall"]);
        for (_, v) in b["stages"].as_object_mut().unwrap() {
            scale(v);
        }
        let path = dir.path().join(name);
        std::fs::write(&path, b.to_string()).unwrap();
        path
    };
    // A baseline three times slower: this build is no regression unless the machine became
    // three times slower meanwhile (an honest rerun against the plain baseline is timed by
    // `cargo xtask bench`, where the machine is idle).
    let slower = scaled(3.0, "slower.json");
    let again = melkit(&[&common[..], &["--baseline", arg(&slower)]].concat());
    assert_eq!(again.status.code(), Some(0), "{}{}", text(&again.stdout), text(&again.stderr));
    assert!(text(&again.stdout).contains("no regression against the baseline (threshold 10 %)"));
    // The same build against a baseline four times faster: a planted regression.
    let faster = scaled(0.25, "faster.json");
    let slow = melkit(&[&common[..], &["--baseline", arg(&faster)]].concat());
    assert_eq!(slow.status.code(), Some(1), "{}", text(&slow.stdout));
    assert!(text(&slow.stdout).contains("REGRESSION: total "), "{}", text(&slow.stdout));
    // Another corpus is not compared.
    let one = examples().join("tones_4096.wav");
    let other = melkit(&["profile", arg(&one), "--no-probe", "--baseline", arg(&base)]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr)
            .contains("the baseline was measured on another corpus (3840 segments, this run 80)"),
        "{}",
        text(&other.stderr)
    );
}

#[test]
fn validate_passes_the_cpu_and_reference_backends_and_reports_the_f16_cost() {
    let _timing = timing();
    let ex = examples();
    for backend in ["cpu", "reference"] {
        let run = melkit(&["validate", arg(&ex), "--backend", backend, "--precision", "f16"]);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
        let out = text(&run.stdout);
        assert!(
            out.starts_with(&format!("backend {backend} against the reference backend")),
            "{out}"
        );
        assert!(out.contains("passed: 4 files within tolerance"), "{out}");
        assert!(out.contains("f16 output: 696320 of 1392640 bytes saved (50 %)"), "{out}");
        assert_eq!(out.matches(" pass ").count(), 4, "{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.wav");
    let run = melkit(&["validate", arg(&missing), "--backend", "cpu"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stdout).contains("FAILED: 1 of 1 files"), "{}", text(&run.stdout));
}

#[test]
fn tune_writes_a_profile_that_run_uses_unless_told_not_to() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("tune.json");
    let ex = examples();
    let tune =
        melkit(&["tune", arg(&ex), "--format", "npy", "--sample", "2", "--profile", arg(&profile)]);
    assert!(tune.status.success(), "{}", text(&tune.stderr));
    let out = text(&tune.stdout);
    assert!(out.contains("backend auto, workers auto, batch auto, compression none"), "{out}");
    assert!(out.contains(", workers 1, batch "), "{out}");
    assert!(out.contains("backend cpu, workers auto, batch auto"), "{out}");
    assert!(out.contains("\nfastest: backend "), "{out}");
    let mut p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(p["format"], "npy");
    assert!(p["tried"].as_array().unwrap().len() >= 7, "{p}");
    assert!(p["default_seconds"].as_f64().unwrap() > 0.0);
    // A profile that says one worker and the CPU backend: run follows it.
    p["settings"]["max_workers"] = 1.into();
    p["settings"]["backend"] = "cpu".into();
    std::fs::write(&profile, p.to_string()).unwrap();
    let env = [("MELKIT_TUNE_PROFILE", arg(&profile))];
    let out_dir = dir.path().join("out");
    let run = melkit_with(&["run", arg(&ex), "-o", arg(&out_dir), "--verbose"], &env);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stdout).contains("on backend cpu with 1 workers"), "{}", text(&run.stdout));
    assert!(
        text(&run.stderr).contains("using the settings tuned for this machine in"),
        "{}",
        text(&run.stderr)
    );
    let flag = melkit_with(&["run", arg(&ex), "-o", arg(&out_dir), "--workers", "2"], &env);
    assert!(text(&flag.stdout).contains("with 2 workers"), "{}", text(&flag.stdout));
    // So does the configuration file.
    let toml = dir.path().join("melkit.toml");
    std::fs::write(&toml, "max_workers = 2\n").unwrap();
    let file = melkit_with(&["run", arg(&ex), "-o", arg(&out_dir), "--config", arg(&toml)], &env);
    assert!(text(&file.stdout).contains("with 2 workers"), "{}", text(&file.stdout));
    let ignored = melkit_with(
        &["run", arg(&ex), "-o", arg(&out_dir), "--no-tune-profile", "--verbose"],
        &env,
    );
    assert!(!text(&ignored.stderr).contains("tuned"), "{}", text(&ignored.stderr));
    assert!(!text(&ignored.stdout).contains("with 1 workers"), "{}", text(&ignored.stdout));
    // Measured elsewhere: not used, and said so.
    p["machine"]["cpu"] = "another CPU".into();
    std::fs::write(&profile, p.to_string()).unwrap();
    let elsewhere = melkit_with(&["run", arg(&ex), "-o", arg(&out_dir)], &env);
    assert!(
        text(&elsewhere.stderr).contains("was measured on another machine (another CPU"),
        "{}",
        text(&elsewhere.stderr)
    );
    assert!(!text(&elsewhere.stdout).contains("with 1 workers"));
}

#[test]
fn show_renders_an_hdf5_output_as_a_png_of_its_layout() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let ex = examples();
    let out = dir.path().join("out");
    let run = melkit(&["run", arg(&ex.join("tones_4096.wav")), "-o", arg(&out), "-q"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let png = dir.path().join("tones.png");
    let show = melkit(&["show", arg(&out.join("tones_4096.h5")), "--png", arg(&png)]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let want = melkit_profiler::show::Layout::new([40, 2, 64, 17], 64).size;
    assert!(
        text(&show.stdout).contains(&format!("({}×{} pixels)", want.0, want.1)),
        "{}",
        text(&show.stdout)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // The IHDR chunk: width and height, big-endian.
    let dims = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((dims(16), dims(20)), want);
    let bad = melkit(&["show", arg(&ex.join("tones_4096.wav"))]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("tones_4096.wav: not an .h5, .npy or .npz file"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn show_refuses_an_npy_whose_header_claims_more_than_the_file_holds() {
    // 43,520,000,000,000 bytes claimed in a file of under 200: no allocation of that size.
    let dir = tempfile::tempdir().unwrap();
    let crafted = dir.path().join("crafted.npy");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000, 1000, 10880), }"
            .to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 24]);
    std::fs::write(&crafted, &bytes).unwrap();
    let show = melkit(&["show", arg(&crafted)]);
    assert_eq!(show.status.code(), Some(2), "{}", text(&show.stderr));
    assert_eq!(
        text(&show.stderr).trim(),
        format!(
            "error: cannot read {}: its header claims 10880000000000 values (43520000000000 \
             bytes) but it holds only 24 bytes of data",
            crafted.display(),
        )
    );
}

#[test]
fn run_verify_fraction_reports_its_spot_checks() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let ex = examples();
    let out = dir.path().join("out");
    let run =
        melkit(&["run", arg(&ex), "-o", arg(&out), "--backend", "cpu", "--verify-fraction", "0.1"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let line = text(&run.stdout)
        .lines()
        .find(|l| l.starts_with("verified: "))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains(" of 160 long segments recomputed on the reference backend"), "{line}");
    let bad = melkit(&["run", arg(&ex), "-o", arg(&out), "--verify-fraction", "2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("must be a number in (0, 1]"), "{}", text(&bad.stderr));
    let alone = melkit(&["run", arg(&ex), "-o", arg(&out), "--on-mismatch", "fallback"]);
    assert_eq!(alone.status.code(), Some(2), "{}", text(&alone.stderr));
}
