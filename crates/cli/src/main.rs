//! The `melkit` binary: argument parsing, logging, progress and exit codes; the work itself is
//! the `melkit` library's.

mod args;
mod progress;
mod serve;
mod tools;
mod tuned;

use std::process::ExitCode;

use anyhow::Context;
use std::path::Path;

use clap::Parser;
use melkit::{BackendKind, Config, Error, OutputOptions, Pipeline};
use tracing_subscriber::EnvFilter;

use melkit::shard::Shard;

use crate::args::{Cli, Commands, ConfigFlags, RunArgs, RunFormat};

/// Every file was written.
pub(crate) const EXIT_OK: u8 = 0;
/// The run finished but some files failed (each is listed in the summary).
pub(crate) const EXIT_FILES_FAILED: u8 = 1;
/// Bad usage or configuration: nothing was done. (Exit code 1 also means a check failed:
/// `validate` found a file out of tolerance, `profile --baseline` a regression.)
pub(crate) const EXIT_USAGE: u8 = 2;
/// The run could not start (a backend that is unavailable, no threads, ...).
pub(crate) const EXIT_FATAL: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    give_vulkan_a_runtime_dir();
    match cli.command {
        Commands::Info => {
            init_logging(false, false, false);
            println!("{}", melkit::info::SystemInfo::collect());
            ExitCode::from(EXIT_OK)
        }
        Commands::Run(args) => finish(try_run(&args)),
        Commands::Profile(args) => finish(tools::profile(&args)),
        Commands::Validate(args) => finish(tools::validate(&args)),
        Commands::Tune(args) => finish(tools::tune(&args)),
        Commands::Merge(args) => {
            init_logging(false, false, false);
            finish(tools::merge(&args))
        }
        Commands::Serve(args) => finish(serve::run(&args)),
        Commands::Show(args) => {
            init_logging(false, false, false);
            finish(tools::show(&args))
        }
    }
}

/// The symphonia crates melkit decodes with (log targets).
const SYMPHONIA: [&str; 15] = [
    "symphonia_core",
    "symphonia_metadata",
    "symphonia_utils_xiph",
    "symphonia_format_riff",
    "symphonia_format_ogg",
    "symphonia_format_isomp4",
    "symphonia_format_caf",
    "symphonia_format_mkv",
    "symphonia_bundle_flac",
    "symphonia_bundle_mp3",
    "symphonia_codec_aac",
    "symphonia_codec_adpcm",
    "symphonia_codec_alac",
    "symphonia_codec_pcm",
    "symphonia_codec_vorbis",
];

pub(crate) fn init_logging(quiet: bool, verbose: bool, debug: bool) {
    let default = match (quiet, verbose, debug) {
        (_, _, true) => "debug",
        (_, true, _) => "melkit=info,melkit_cli=info",
        (true, _, _) => "error",
        _ => "warn",
    };
    // The decoders log their own view of a bad file, which melkit reports once, with its path
    // and reason; their logs show with --debug.
    let default = if debug {
        default.to_string()
    } else {
        let quiet = SYMPHONIA.iter().map(|c| format!(",{c}=off")).collect::<String>();
        format!("{default}{quiet}")
    };
    let filter = EnvFilter::try_from_env("MELKIT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// An error and the exit code it deserves.
pub(crate) struct Failure(u8, anyhow::Error);

pub(crate) fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure(EXIT_USAGE, e.into())
}

fn finish(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// The configuration: the defaults, the TOML file, then the flags.
/// The configuration, and the keys the file or the flags set (which a tuning profile leaves
/// alone).
pub(crate) fn configuration(
    file: Option<&Path>,
    keys: &ConfigFlags,
) -> Result<(Config, Vec<String>), Failure> {
    let mut config = Config::default();
    let mut set: Vec<String> = keys.values.iter().map(|(k, _)| k.to_string()).collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))
            .map_err(usage)?;
        config
            .apply_toml(&text)
            .with_context(|| format!("in {}", path.display()))
            .map_err(usage)?;
        set.extend(
            text.parse::<toml::Table>()
                .map(|t| t.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    keys.apply(&mut config).map_err(usage)?;
    config.validate().map_err(usage)?;
    Ok((config, set))
}

/// A pipeline on `backend`, with the exit code each failure deserves.
pub(crate) fn pipeline(
    config: Config,
    backend: Box<dyn melkit::Backend>,
) -> Result<Pipeline, Failure> {
    Pipeline::with_backend(config, backend).map_err(fatal_unless_config)
}

/// The caller's errors are usage errors (2); the machine's stop the run (3); a single file's
/// failure is 1.
pub(crate) fn fatal_unless_config(e: Error) -> Failure {
    let code = match e.kind() {
        melkit::ErrorKind::Usage => EXIT_USAGE,
        melkit::ErrorKind::Unavailable => EXIT_FATAL,
        melkit::ErrorKind::File => EXIT_FILES_FAILED,
    };
    Failure(code, e.into())
}

/// The backend `kind` for `config`.
pub(crate) fn backend(
    kind: BackendKind,
    config: &Config,
) -> Result<Box<dyn melkit::Backend>, Failure> {
    melkit::create_backend(kind, config).map_err(|e| fatal_unless_config(Error::Backend(e)))
}

fn try_run(args: &RunArgs) -> Result<u8, Failure> {
    let (mut config, set) = configuration(args.config.as_deref(), &args.keys)?;
    init_logging(args.quiet, config.verbose, config.debug);
    let profile = if args.no_tune_profile { None } else { melkit_profiler::tuned::load() };
    let tuned =
        melkit_profiler::tuned::apply(profile.as_ref(), &tuned::chosen(args, &set), &mut config);
    let compression = tuned.compression;
    let mut fast = melkit_profiler::tuned::start(&tuned, &config)
        .map_err(|e| fatal_unless_config(Error::Backend(e)))?;
    let mut canary = None;
    if let Some(fraction) = args.verify_fraction {
        let (wrapped, stats) = tools::verified(fast, &config, fraction, &args.on_mismatch)?;
        fast = wrapped;
        canary = Some(stats);
    }
    let mut pipeline = pipeline(config, fast)?;
    tracing::info!(backend = pipeline.backend_name(), workers = pipeline.workers(), "starting");
    let env = |name: &str| std::env::var(name).ok();
    let shard = melkit::shard::detect(args.shard.as_deref(), args.shards, &env)
        .map_err(|e| usage(anyhow::anyhow!(e)))?;
    if let Some((shard, source)) = &shard
        && !args.quiet
    {
        eprintln!("shard {shard} (from {source})");
    }
    let options = OutputOptions {
        format: args.format.files(),
        compression,
        sync: args.fsync,
        resume: args.resume,
        cache: args.cache.clone(),
        manifest: None,
        shard: shard.as_ref().map(|(s, _)| *s),
    };
    let inputs = melkit::discover::Inputs::new(&args.inputs);
    let bar = progress::Bar::new(args.quiet);
    let result = match args.format {
        RunFormat::Stacked => {
            let shard = shard.map_or(Shard { index: 0, count: 1 }, |(s, _)| s);
            pipeline.process_stacked(&inputs, shard, &args.output, &options, &bar)
        }
        RunFormat::Files(_) => pipeline.process_inputs(&inputs, &args.output, &options, &bar),
    };
    bar.finish();
    let report = result.map_err(fatal_unless_config)?;
    if let Some(path) = &args.report {
        tools::write_json("the report", path, &report.to_json())?;
    }
    if !args.quiet {
        println!("{report}");
        if let Some(stats) = &canary {
            println!("{}", tools::canary_summary(stats));
        }
    } else {
        for failure in &report.failures {
            eprintln!("failed: {failure}");
        }
    }
    if report.files_total() == 0 {
        eprintln!("error: no audio files found in the inputs");
        return Ok(EXIT_FILES_FAILED);
    }
    Ok(if report.success() { EXIT_OK } else { EXIT_FILES_FAILED })
}

/// Vulkan drivers (Mesa's lavapipe among them) complain on stderr when `XDG_RUNTIME_DIR` is
/// unset, as it is under cron, containers and CI; give them a private folder. Called first,
/// while this is the only thread.
#[allow(unsafe_code)] // setting the environment before any other thread exists
fn give_vulkan_a_runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("melkit-runtime-{uid}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        // SAFETY: no other thread has been started yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
