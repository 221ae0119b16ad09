//! Helpers shared by the command-line tests: running `melkit`, the golden cases, reading
//! outputs back.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

pub fn golden_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MELKIT_GOLDEN_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden")
}

/// A tuning profile that does not exist: a machine's own must not change the tests.
pub const NO_TUNE_PROFILE: &str = "/nonexistent/melkit-tests/tune.json";

/// The `melkit` under test (`MELKIT_BIN` where the test binary was built elsewhere, as for a
/// device run), without a tuning profile.
pub fn command() -> Command {
    let bin = std::env::var_os("MELKIT_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_melkit").into());
    let mut command = Command::new(bin);
    command.env("MELKIT_TUNE_PROFILE", NO_TUNE_PROFILE);
    command
}

/// Runs `melkit args`.
pub fn melkit(args: &[&str]) -> Output {
    melkit_with(args, &[])
}

/// Runs `melkit args` with extra environment variables.
pub fn melkit_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    command().envs(env.iter().copied()).args(args).output().expect("run melkit")
}

/// Kills `child` (SIGKILL) as soon as `reached()` holds; fails if it ends first, or if nothing
/// is reached within a minute.
pub fn kill_when(child: &mut std::process::Child, reached: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !reached() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "nothing appeared in a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The bundled example audio.
pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/audio")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn golden(name: &str) -> (Vec<f32>, Vec<usize>, String) {
    let json: serde_json::Value =
        serde_json::from_reader(File::open(golden_dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let a = Array4::<f32>::read_npy(File::open(golden_dir().join(format!("{name}.npy"))).unwrap())
        .unwrap();
    (
        a.iter().copied().collect(),
        a.shape().to_vec(),
        json["tolerance"].as_str().unwrap().to_string(),
    )
}

/// Asserts `got` is within the golden case's tolerance (SPEC §2, CPU precision).
pub fn assert_close(name: &str, got: &[f32], want: &[f32], tolerance: &str) {
    assert_close_within(name, got, want, tolerance, 1e-5);
}

/// As [`assert_close`], with `exact` the bound of the `exact` class (1e-4 for GPU backends).
pub fn assert_close_within(name: &str, got: &[f32], want: &[f32], tolerance: &str, exact: f64) {
    assert_eq!(got.len(), want.len(), "{name}: size");
    // SPEC §2's measures, which make any NaN or infinity an infinite error.
    let r = melkit::compare::compare(got, want);
    match tolerance {
        "exact" => assert!(r.max_rel <= exact, "{name}: max rel {}", r.max_rel),
        _ => assert!(r.rel_l2 <= 1e-3, "{name}: rel L2 {}", r.rel_l2),
    }
}

pub fn read_h5(path: &Path) -> (Vec<f32>, Vec<usize>, hdf5::Dataset) {
    let file = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mel = file.dataset("mel").unwrap();
    (mel.read_raw::<f32>().unwrap(), mel.shape(), mel)
}

/// Copies the golden case `name`'s WAV to `to`.
pub fn copy_golden(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(golden_dir().join(format!("{name}.wav")), to).unwrap();
}

/// The manifest each run keeps in its output folder.
pub const MANIFEST: &str = "melkit-manifest.jsonl";

/// Every file under `dir`, relative, but the run manifest.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with(MANIFEST) {
                found.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Whether `setpriv` can run a command without the capabilities that let root read any file.
pub fn can_drop_root_powers() -> bool {
    Command::new("setpriv")
        .args(["--bounding-set=-dac_override,-dac_read_search", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Runs `melkit args` as a user that file permissions apply to (root loses its override).
pub fn melkit_unprivileged(args: &[&str]) -> std::process::Output {
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-dac_override,-dac_read_search", env!("CARGO_BIN_EXE_melkit")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_melkit"))
    };
    command.env("MELKIT_TUNE_PROFILE", NO_TUNE_PROFILE);
    command.args(args).output().expect("run melkit")
}

/// A golden case's configuration as command-line flags.
pub fn golden_flags(name: &str) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_reader(File::open(golden_dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let mut flags = Vec::new();
    for (key, value) in json["config"].as_object().unwrap() {
        let value = match value {
            serde_json::Value::Null if key == "sample_length" => "full".to_string(),
            serde_json::Value::Null => "none".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        flags.push(format!("--{}", key.replace('_', "-")));
        flags.push(value);
    }
    flags
}

pub fn golden_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6);
    names
}

/// Runs every golden case through `melkit run --backend BACKEND --format npy` and checks each
/// output against librosa's within the GPU tolerance (1e-4 of the max for `exact` cases).
pub fn golden_cases_on(backend: &str) {
    golden_cases_with(backend, &[]);
}

/// As [`golden_cases_on`], with extra environment variables.
pub fn golden_cases_with(backend: &str, env: &[(&str, &str)]) {
    let out = tempfile::tempdir().unwrap();
    for name in golden_names() {
        let input = golden_dir().join(format!("{name}.wav"));
        let (want, shape, tolerance) = golden(&name);
        let dir = out.path().join(&name);
        let mut args: Vec<String> = ["run", input.to_str().unwrap(), "-o", dir.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        args.extend(["--backend", backend, "--format", "npy"].map(String::from));
        args.extend(golden_flags(&name));
        let run = melkit_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), env);
        assert!(run.status.success(), "{name}: {}", text(&run.stderr));
        let on = format!("on backend {backend}");
        assert!(text(&run.stdout).contains(&on), "{}", text(&run.stdout));
        let file = std::fs::File::open(dir.join(format!("{name}.npy"))).unwrap();
        let a = <ndarray::Array4<f32> as ndarray_npy::ReadNpyExt>::read_npy(file).unwrap();
        assert_eq!(a.shape(), &shape[..], "{name}");
        assert_close_within(&name, a.as_slice().unwrap(), &want, &tolerance, 1e-4);
    }
}

/// A Python interpreter with h5py and numpy, if there is one.
pub fn python_with_h5py() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import h5py, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
