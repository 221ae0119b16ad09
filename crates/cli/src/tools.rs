//! The profiler's subcommands (`profile`, `validate`, `tune`, `show`) and the canary of
//! `run --verify-fraction`.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use melkit::verify::{OnMismatch, VerifyStats};
use melkit::{Backend, BackendKind, Config, OutputOptions};
use melkit_profiler::baseline::Baseline;
use melkit_profiler::tune::{Trial, TuneInput};
use melkit_profiler::{ProfileOptions, TuneProfile};

use crate::args::{
    CheckPrecision, Common, MergeArgs, ProfileArgs, ShowArgs, TuneArgs, ValidateArgs,
};
use crate::{
    EXIT_FATAL, EXIT_FILES_FAILED, EXIT_OK, Failure, backend, configuration, pipeline, usage,
};

/// The configuration of a computing subcommand, with logging set up from it.
fn setup(common: &Common) -> Result<Config, Failure> {
    let (config, _) = configuration(common.config.as_deref(), &common.keys)?;
    crate::init_logging(false, config.verbose, config.debug);
    Ok(config)
}

/// Writes `value` as pretty JSON to `path`, atomically; `what` names it in the error.
pub(crate) fn write_json(
    what: &str,
    path: &std::path::Path,
    value: &serde_json::Value,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    melkit_io::atomic::write_file(path, text.as_bytes())
        .with_context(|| format!("cannot write {what} {}", path.display()))
        .map_err(|e| Failure(EXIT_FATAL, e))
}

/// `melkit profile`.
pub fn profile(args: &ProfileArgs) -> Result<u8, Failure> {
    let config = setup(&args.common)?;
    let baseline = match &args.baseline {
        Some(path) => Some(Baseline::load(path).map_err(usage)?),
        None => None,
    };
    let mut pipeline = pipeline(config.clone(), backend(args.backend, &config)?)?;
    let found = melkit::discover::discover(&args.common.inputs);
    if found.files.is_empty() {
        return Err(usage(anyhow::anyhow!("no audio files found in the inputs")));
    }
    let baseline_run = args.baseline.is_some() || args.save_baseline.is_some();
    let options = ProfileOptions {
        repeats: args.repeat.unwrap_or(if baseline_run { 3 } else { 1 }),
        probe: !args.no_probe,
        out_dir: args.output.clone(),
        output: OutputOptions {
            format: args.format,
            compression: args.compression,
            ..OutputOptions::default()
        },
    };
    let profiled = melkit_profiler::profile(&mut pipeline, &found, &options)
        .map_err(|e| Failure(EXIT_FATAL, e.into()))?;
    println!("{profiled}");
    if let Some(path) = &args.plot {
        let title = format!("melkit profile: {} on {}", pipeline.backend_name(), found.files.len());
        melkit_profiler::plot::stage_chart(&profiled.analysis, &format!("{title} files"), path)
            .map_err(|e| Failure(EXIT_FATAL, anyhow::anyhow!(e)))?;
    }
    let current = profiled.baseline();
    let mut json = profiled.to_json();
    if let Some(path) = &args.save_baseline {
        current
            .save(path)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(|e| Failure(EXIT_FATAL, e))?;
        println!("baseline saved to {} ({} runs)", path.display(), current.wall.len());
    }
    let mut code = if profiled.report.success() { EXIT_OK } else { EXIT_FILES_FAILED };
    if let Some(base) = &baseline {
        let found = base.compare(&current, args.threshold).map_err(usage)?;
        json["regressions"] = serde_json::to_value(&found).unwrap_or_default();
        if found.is_empty() {
            println!(
                "no regression against the baseline (threshold {:.0} %)",
                100.0 * args.threshold
            );
        } else {
            for r in &found {
                println!(
                    "REGRESSION: {} {:.3} s → {:.3} s ({:+.0} %)",
                    r.stage,
                    r.baseline,
                    r.current,
                    100.0 * r.slower_by
                );
            }
            code = EXIT_FILES_FAILED;
        }
    }
    if let Some(path) = &args.json {
        write_json("the profile", path, &json)?;
    }
    Ok(code)
}

/// `melkit validate`.
pub fn validate(args: &ValidateArgs) -> Result<u8, Failure> {
    let config = setup(&args.common)?;
    let mut fast = pipeline(config.clone(), backend(args.backend, &config)?)?;
    let mut reference = pipeline(config.clone(), backend(BackendKind::Reference, &config)?)?;
    let found = melkit::discover::discover(&args.common.inputs);
    let f16 = args.precision == CheckPrecision::F16;
    let v = melkit_profiler::validate(&mut fast, &mut reference, &found, f16);
    println!("{v}");
    if let Some(path) = &args.json {
        write_json("the validation", path, &v.to_json())?;
    }
    Ok(if v.passed() { EXIT_OK } else { EXIT_FILES_FAILED })
}

/// `melkit tune`.
pub fn tune(args: &TuneArgs) -> Result<u8, Failure> {
    let config = setup(&args.common)?;
    let path = match args.profile.clone().or_else(melkit_profiler::tune::profile_path) {
        Some(p) => p,
        None => {
            return Err(usage(anyhow::anyhow!("no place for the profile: give --profile FILE")));
        }
    };
    let found = melkit::discover::discover(&args.common.inputs);
    let input =
        TuneInput { config: &config, found: &found, sample: args.sample, format: args.format };
    println!("{:>10} {:>12}  settings", "seconds", "output");
    let mut log = |t: &Trial| match (t.seconds, &t.note) {
        (Some(s), _) => println!("{s:>10.3} {:>12}  {}", t.output_bytes, t.settings),
        (None, note) => {
            println!("{:>10} {:>12}  {}: {}", "-", "-", t.settings, note.as_deref().unwrap_or(""))
        }
    };
    let profile: TuneProfile =
        melkit_profiler::tune::tune(&input, &mut log).map_err(|e| usage(anyhow::anyhow!(e)))?;
    profile
        .save(&path)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(|e| Failure(EXIT_FATAL, e))?;
    println!(
        "fastest: {} ({:.3} s against {:.3} s with the defaults: {:.2}× faster)\nsaved to {}; `melkit run` uses it on this machine (--no-tune-profile ignores it)",
        profile.settings,
        profile.tuned_seconds,
        profile.default_seconds,
        profile.speedup(),
        path.display()
    );
    Ok(EXIT_OK)
}

/// `melkit show`.
pub fn show(args: &ShowArgs) -> Result<u8, Failure> {
    let tensor = melkit_io::read::read_output(&args.file).map_err(usage)?;
    let png = args.png.clone().unwrap_or_else(|| args.file.with_extension("png"));
    let title = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let layout = melkit_profiler::show::render(&tensor, &title, &png, args.max_long)
        .map_err(|e| Failure(EXIT_FATAL, anyhow::anyhow!(e)))?;
    println!("{} ({}×{} pixels)", png.display(), layout.size.0, layout.size.1);
    Ok(EXIT_OK)
}

/// What the canary of `--verify-fraction` saw, shared while the run goes on.
pub type Canary = Arc<Mutex<VerifyStats>>;

/// Wraps `fast` in the canary of `--verify-fraction`.
pub fn verified(
    fast: Box<dyn Backend>,
    config: &Config,
    fraction: f64,
    on_mismatch: &str,
) -> Result<(Box<dyn Backend>, Canary), Failure> {
    let policy = OnMismatch::parse(on_mismatch).unwrap_or(OnMismatch::Fail);
    melkit::verify::canary(fast, config, fraction, policy)
        .map_err(|e| crate::fatal_unless_config(melkit::Error::Backend(e)))
}

/// The canary's line in a run's summary.
pub fn canary_summary(stats: &Mutex<VerifyStats>) -> String {
    let s = stats.lock().unwrap_or_else(PoisonError::into_inner);
    let mut line = format!(
        "verified: {} of {} long segments recomputed on the reference backend, largest error {:.2e}",
        s.checked, s.computed, s.max_error
    );
    if let Some(m) = &s.mismatch {
        line.push_str(&format!("\nMISMATCH: {m}"));
    }
    if s.fallback_batches > 0 {
        line.push_str(&format!(
            "\nfallback: {} batches recomputed on the fallback backend",
            s.fallback_batches
        ));
    }
    line
}

/// `melkit merge`.
pub fn merge(args: &MergeArgs) -> Result<u8, Failure> {
    use melkit::merge::MergeError;
    match melkit::merge::merge(&args.dirs, &args.output, args.allow_partial, args.compression) {
        Ok(report) => {
            println!("{report}\nwritten to {}", args.output.display());
            Ok(EXIT_OK)
        }
        Err(e @ (MergeError::Incomplete { .. } | MergeError::Mismatch(_))) => {
            Err(Failure(EXIT_FILES_FAILED, e.into()))
        }
        Err(e @ MergeError::NoShard(_)) => Err(usage(e)),
        Err(e) => Err(Failure(EXIT_FATAL, e.into())),
    }
}
