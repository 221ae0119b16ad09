//! `melkit tune`: times backends, worker counts, batch sizes and compressions on a sample of the
//! inputs, one setting at a time (each kept at its best so far), and saves the fastest to a
//! profile file that `melkit run` applies on this machine unless told otherwise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use melkit::discover::Discovery;
use melkit::{BackendKind, Compression, Config, OutputFormat, OutputOptions, Pipeline};
use serde::{Deserialize, Serialize};

use crate::baseline::median;
use crate::error::ProfilerError;

/// The settings tune chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The backend (`auto` for the default).
    #[serde(with = "backend_name")]
    pub backend: BackendKind,
    /// `max_workers` (0: every core).
    pub max_workers: usize,
    /// `batch_size`, or `gpu_batch_size` on a GPU backend (0: automatic).
    pub batch_size: usize,
    /// The output's compression.
    #[serde(with = "compression_name")]
    pub compression: Compression,
}

impl Settings {
    /// What `melkit run` does untuned.
    pub const DEFAULT: Settings = Settings {
        backend: BackendKind::Auto,
        max_workers: 0,
        batch_size: 0,
        compression: Compression::None,
    };

    /// Applies the run-control keys to `config` (`batch_size` to the key the backend reads).
    pub fn apply(&self, config: &mut Config, on_device: bool) {
        config.max_workers = self.max_workers;
        self.apply_batch(config, on_device);
    }

    /// Sets the batch key the backend reads: `gpu_batch_size` on a device, else `batch_size`.
    pub fn apply_batch(&self, config: &mut Config, on_device: bool) {
        if on_device {
            config.gpu_batch_size = self.batch_size;
        } else {
            config.batch_size = self.batch_size;
        }
    }
}

impl std::fmt::Display for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_auto = |n: usize| if n == 0 { "auto".to_string() } else { n.to_string() };
        write!(
            f,
            "backend {}, workers {}, batch {}, compression {}",
            self.backend,
            or_auto(self.max_workers),
            or_auto(self.batch_size),
            self.compression
        )
    }
}

mod backend_name {
    use melkit::BackendKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &BackendKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BackendKind, D::Error> {
        let name = String::deserialize(d)?;
        BackendKind::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("backend {name}")))
    }
}

mod compression_name {
    use melkit::Compression;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Compression, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Compression, D::Error> {
        let name = String::deserialize(d)?;
        Compression::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("compression {name}")))
    }
}

/// One setting tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// What was tried.
    pub settings: Settings,
    /// The best wall time of its runs over the sample, or none when it could not run.
    pub seconds: Option<f64>,
    /// Bytes written (compression changes it).
    pub output_bytes: u64,
    /// Why it was left out, if it was.
    pub note: Option<String>,
}

/// The machine a profile was measured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU's model name.
    pub cpu: String,
    /// Threads available.
    pub threads: usize,
}

impl Machine {
    /// This machine.
    pub fn here() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("model name"))?;
                Some(line.split_once(':')?.1.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Machine { cpu, threads }
    }
}

/// A saved tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneProfile {
    /// The melkit that measured it.
    pub melkit_version: String,
    /// Where it was measured.
    pub machine: Machine,
    /// The output format it was measured for (its compression applies only to that format).
    pub format: String,
    /// The fastest settings found.
    pub settings: Settings,
    /// Median seconds of the sample with the default settings.
    pub default_seconds: f64,
    /// Median seconds with the tuned settings.
    pub tuned_seconds: f64,
    /// Every setting tried, in order.
    pub tried: Vec<Trial>,
}

impl TuneProfile {
    /// How much faster the tuned settings are than the defaults.
    pub fn speedup(&self) -> f64 {
        if self.tuned_seconds > 0.0 { self.default_seconds / self.tuned_seconds } else { 1.0 }
    }

    /// Writes the profile as JSON, atomically (creating its folder).
    ///
    /// # Errors
    /// It cannot be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        melkit_io::atomic::write_file(path, text.as_bytes()).map_err(std::io::Error::other)
    }

    /// Reads the profile at `path`: `Ok(None)` when there is none, `Err` (a message) when it
    /// cannot be used: unreadable, or measured on another machine.
    ///
    /// # Errors
    /// As above.
    pub fn load_for_this_machine(path: &Path) -> Result<Option<Self>, ProfilerError> {
        let text = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                let reason = melkit_io::error::io_reason(&e);
                return Err(ProfilerError::ProfileRead { path: path.into(), reason });
            }
            Ok(text) => text,
        };
        let profile: TuneProfile = serde_json::from_str(&text).map_err(|e| {
            ProfilerError::ProfileInvalid { path: path.into(), reason: e.to_string() }
        })?;
        let here = Machine::here();
        if profile.machine != here {
            return Err(ProfilerError::OtherMachine {
                path: path.into(),
                cpu: profile.machine.cpu,
                threads: profile.machine.threads,
            });
        }
        Ok(Some(profile))
    }
}

/// Where the tuning profile lives: `$MELKIT_TUNE_PROFILE`, else
/// `$XDG_CONFIG_HOME/melkit/tune.json`, else `~/.config/melkit/tune.json`.
pub fn profile_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MELKIT_TUNE_PROFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(config.join("melkit").join("tune.json"))
}

/// What to tune over.
pub struct TuneInput<'a> {
    /// The configuration (its numeric keys are kept; run-control keys are tuned).
    pub config: &'a Config,
    /// The inputs found.
    pub found: &'a Discovery,
    /// Files of the sample, spread over the inputs.
    pub sample: usize,
    /// The output format.
    pub format: OutputFormat,
}

/// Tunes, reporting each trial to `log` as it finishes.
///
/// # Errors
/// No input to sample, or the default settings cannot run.
pub fn tune(
    input: &TuneInput<'_>,
    log: &mut dyn FnMut(&Trial),
) -> Result<TuneProfile, ProfilerError> {
    let files = &input.found.files;
    if files.is_empty() {
        return Err(ProfilerError::NoInputs);
    }
    let step = files.len().div_ceil(input.sample.max(1));
    let sample =
        Discovery { files: files.iter().step_by(step).cloned().collect(), failures: vec![] };
    let mut tried = Vec::new();
    // One run untimed first: the first run of a process pays for page faults and cold caches,
    // which would count against the defaults.
    let _ = measure(input, &sample, Settings::DEFAULT, 1);
    let mut record = |t: Trial, tried: &mut Vec<Trial>| {
        log(&t);
        tried.push(t.clone());
        t
    };
    let first = record(measure(input, &sample, Settings::DEFAULT, 2), &mut tried);
    let Some(mut best_time) = first.seconds else {
        return Err(ProfilerError::DefaultsFail(first.note.unwrap_or_default()));
    };
    let mut best = Settings::DEFAULT;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Backends that start here and give the reference's numbers on the sample's first file:
    // tune never picks one that does not.
    let mut backends = Vec::new();
    for kind in BackendKind::compiled() {
        if matches!(kind, BackendKind::Reference | BackendKind::Auto) {
            continue;
        }
        match agrees_with_reference(input.config, kind, &sample) {
            Ok(()) => backends.push(kind),
            Err(note) => {
                let settings = Settings { backend: kind, ..best };
                let t = Trial { settings, seconds: None, output_bytes: 0, note: Some(note) };
                record(t, &mut tried);
            }
        }
    }
    let dimensions: [&dyn Fn(Settings) -> Vec<Settings>; 4] = [
        &|s| backends.iter().map(|&backend| Settings { backend, ..s }).collect(),
        &|s| {
            let mut w = vec![1, threads / 2, threads];
            w.dedup();
            w.into_iter()
                .filter(|&n| n > 0)
                .map(|max_workers| Settings { max_workers, ..s })
                .collect()
        },
        &|s| [1, 4, 16, 64].map(|batch_size| Settings { batch_size, ..s }).to_vec(),
        &|s| {
            compressions(input.format)
                .into_iter()
                .map(|compression| Settings { compression, ..s })
                .collect()
        },
    ];
    for options in dimensions {
        for settings in options(best) {
            if tried.iter().any(|t: &Trial| t.settings == settings) {
                continue;
            }
            if let Some(seconds) = record(measure(input, &sample, settings, 2), &mut tried).seconds
            {
                // A setting must win clearly (3 %) to replace one already kept: noise does not.
                if seconds < 0.97 * best_time {
                    (best, best_time) = (settings, seconds);
                }
            }
        }
    }
    // The defaults and the winner again, alternately, for the speedup.
    let (mut default_runs, mut tuned_runs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        default_runs.extend(measure(input, &sample, Settings::DEFAULT, 1).seconds);
        tuned_runs.extend(measure(input, &sample, best, 1).seconds);
    }
    Ok(TuneProfile {
        melkit_version: melkit::VERSION.into(),
        machine: Machine::here(),
        format: input.format.extension().into(),
        settings: best,
        default_seconds: median(&default_runs),
        tuned_seconds: median(&tuned_runs),
        tried,
    })
}

fn compressions(format: OutputFormat) -> Vec<Compression> {
    let mut c = vec![Compression::None];
    match format {
        OutputFormat::H5 => c.extend([Compression::Lzf, Compression::Deflate(1)]),
        OutputFormat::Npz => c.push(Compression::Deflate(1)),
        _ => {}
    }
    c
}

/// The best of `runs` runs of the sample with `settings`, into a temporary folder.
fn measure(input: &TuneInput<'_>, sample: &Discovery, settings: Settings, runs: usize) -> Trial {
    let mut trial = Trial { settings, seconds: None, output_bytes: 0, note: None };
    let mut config = input.config.clone();
    let backend = match melkit::create_backend(settings.backend, &config) {
        Ok(b) => b,
        Err(e) => {
            trial.note = Some(e.to_string());
            return trial;
        }
    };
    settings.apply(&mut config, backend.on_device());
    let mut pipeline = match Pipeline::with_backend(config, backend) {
        Ok(p) => p,
        Err(e) => {
            trial.note = Some(e.to_string());
            return trial;
        }
    };
    let options = OutputOptions {
        format: input.format,
        compression: settings.compression,
        ..OutputOptions::default()
    };
    for _ in 0..runs {
        let Ok(out) = tempfile::tempdir() else { break };
        let started = Instant::now();
        match pipeline.process_discovered(sample.clone(), out.path(), &options, &()) {
            Ok(report) if report.files_ok > 0 => {
                let t = started.elapsed().as_secs_f64();
                trial.seconds = Some(trial.seconds.map_or(t, |b: f64| b.min(t)));
                trial.output_bytes = folder_bytes(out.path());
            }
            Ok(_) => trial.note = Some("no file of the sample could be written".into()),
            Err(e) => trial.note = Some(e.to_string()),
        }
    }
    trial
}

/// Whether `kind` gives the reference's numbers on the sample's first file (tune never picks a
/// backend that does not).
fn agrees_with_reference(
    config: &Config,
    kind: BackendKind,
    sample: &Discovery,
) -> Result<(), String> {
    let first = Discovery { files: sample.files[..1].to_vec(), failures: vec![] };
    let mut fast = Pipeline::new(config.clone(), kind).map_err(|e| e.to_string())?;
    let mut reference = crate::validate::reference_pipeline(config).map_err(|e| e.to_string())?;
    let v = crate::validate::validate(&mut fast, &mut reference, &first, false);
    match v.files.first().map(|f| &f.result) {
        _ if v.passed() => Ok(()),
        Some(Ok(c)) => Err(format!("left out: differs from the reference here ({})", c.error)),
        Some(Err(e)) => Err(format!("left out: {e}")),
        None => Err("left out: nothing to check it on".into()),
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != melkit::manifest::MANIFEST)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
