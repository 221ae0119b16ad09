//! The command line's arguments; every configuration key becomes a flag from the key table.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Parser, Subcommand};
use melkit::config::{KEYS, KeyInfo};
use melkit::{BackendKind, Compression, Config, OutputFormat};

/// Segmented mel-spectrogram tensors [long_segment, short_segment, mel_bin, time_frame] from
/// folders of audio, with librosa's numbers.
#[derive(Debug, Parser)]
#[command(name = "melkit", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Compute the mel tensors of audio files and folders and write them to OUT.
    Run(Box<RunArgs>),
    /// Show the backends compiled in, the devices seen, the CPU's features and the formats.
    Info,
    /// Run the pipeline and report each stage's time, the bottleneck and what removing each
    /// stage would gain, the compute stage against this machine's peaks, and regressions
    /// against a saved baseline.
    Profile(Box<ProfileArgs>),
    /// Compute the inputs on a backend and on the reference backend and compare them file by
    /// file against SPEC §2's tolerance (exit code 1 when any file fails).
    Validate(Box<ValidateArgs>),
    /// Time backends, worker counts, batch sizes and compressions on a sample of the inputs and
    /// save the fastest settings, which `melkit run` then uses on this machine.
    Tune(Box<TuneArgs>),
    /// Render a tensor written by melkit (.h5, .npy, .npz) as a PNG image.
    Show(ShowArgs),
    /// Merge the stacked outputs of a run's shards into one stacked HDF5 dataset, after
    /// checking that they share one configuration and hold every input exactly once.
    Merge(MergeArgs),
    /// Serve mel tensors over HTTP (POST /v1/mel) with dynamic batching, health, metrics and
    /// an optional guarded canary.
    Serve(Box<crate::serve::ServeArgs>),
}

/// `melkit merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output folders of the shards (each holding melkit-stacked*.h5 and its .json).
    #[arg(required = true, value_name = "SHARD_OUT")]
    pub dirs: Vec<PathBuf>,

    /// The merged file.
    #[arg(short, long, value_name = "FILE.h5")]
    pub output: PathBuf,

    /// Merge even when inputs are missing or in more than one shard (they are listed).
    #[arg(long)]
    pub allow_partial: bool,

    /// Compression of the merged file.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
}

/// What `melkit run` writes: a file per input, or one stacked HDF5 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFormat {
    /// One output per input.
    Files(OutputFormat),
    /// `stacked-h5`: one HDF5 file of every input.
    Stacked,
}

impl RunFormat {
    /// The per-file format (HDF5 for a stacked run).
    pub fn files(self) -> OutputFormat {
        match self {
            RunFormat::Files(f) => f,
            RunFormat::Stacked => OutputFormat::H5,
        }
    }
}

fn parse_run_format(s: &str) -> Result<RunFormat, String> {
    if s.eq_ignore_ascii_case("stacked-h5") {
        return Ok(RunFormat::Stacked);
    }
    parse_format(s)
        .map(RunFormat::Files)
        .map_err(|_| format!("must be one of {}, stacked-h5", OutputFormat::NAMES.join(", ")))
}

/// The inputs and configuration every computing subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Audio files, or folders searched recursively for audio.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// A TOML file of configuration keys (flags given here override it).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,

    /// Configuration keys (see SPEC §1).
    #[command(flatten)]
    pub keys: ConfigFlags,
}

/// `melkit profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub common: Common,

    /// Compute backend.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,

    /// Output format written (and timed).
    #[arg(long, default_value = "h5", value_parser = parse_format)]
    pub format: OutputFormat,

    /// Compression of HDF5 and NPZ outputs.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,

    /// Keep the outputs in this folder (by default they go to a temporary folder, removed after).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Also write everything measured as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,

    /// Draw the stage breakdown to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Compare with this baseline and exit with 1 when a stage is slower.
    #[arg(long, value_name = "FILE.json")]
    pub baseline: Option<PathBuf>,

    /// Save these runs as a baseline for later `--baseline` checks.
    #[arg(long, value_name = "FILE.json")]
    pub save_baseline: Option<PathBuf>,

    /// Runs of the inputs; the median is reported [default: 1, or 3 with a baseline option].
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,

    /// How much slower than the baseline's median a stage may be before it is flagged.
    #[arg(long, default_value = "0.10", value_name = "FRACTION")]
    pub threshold: f64,

    /// Skip the FFT and memory-bandwidth probes (no roofline).
    #[arg(long)]
    pub no_probe: bool,
}

/// The precision `validate` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckPrecision {
    /// The backend's output as computed.
    F32,
    /// Also what rounding it to f16 saves and costs.
    F16,
}

/// `melkit validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub common: Common,

    /// The backend checked against the reference backend.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,

    /// With f16, also report the output-size saving of f16 outputs and the error it costs.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: CheckPrecision,

    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

/// `melkit tune`.
#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub common: Common,

    /// The output format to tune for.
    #[arg(long, default_value = "h5", value_parser = parse_format)]
    pub format: OutputFormat,

    /// Files of the sample, spread over the inputs.
    #[arg(long, default_value = "64", value_name = "N")]
    pub sample: usize,

    /// Where to save the profile [default: $MELKIT_TUNE_PROFILE, else
    /// $XDG_CONFIG_HOME/melkit/tune.json, else ~/.config/melkit/tune.json].
    #[arg(long, value_name = "FILE.json")]
    pub profile: Option<PathBuf>,
}

/// `melkit show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A tensor written by melkit: .h5, .npy or .npz.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The image to write [default: FILE with the extension .png].
    #[arg(long, value_name = "OUT.png")]
    pub png: Option<PathBuf>,

    /// Long segments drawn at most (the first ones).
    #[arg(long, default_value = "64", value_name = "N")]
    pub max_long: usize,
}

/// `melkit run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Audio files, or folders searched recursively for audio.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Output folder; each folder's tree is mirrored in it.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Output format: a file per input (h5, npy, npz), or stacked-h5: one HDF5 file of every
    /// input (`sample_length` must be set).
    #[arg(long, default_value = "h5", value_parser = parse_run_format)]
    pub format: RunFormat,

    /// Process only shard K of N of the inputs (1 <= K <= N), balanced by work; without it a
    /// Slurm array or Kubernetes Indexed Job's environment sets the shard.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// The number of shards of a Kubernetes Indexed Job (its completions), whose environment
    /// gives only the index (or set MELKIT_SHARDS).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,

    /// Compute backend [default: the tuned one, else auto].
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendKind>,

    /// Compression of HDF5 and NPZ outputs: none, deflate or deflate:LEVEL (1-9), lzf (HDF5)
    /// [default: the tuned one, else none].
    #[arg(long, value_parser = parse_compression)]
    pub compression: Option<Compression>,

    /// Flush every output to disk before it takes its final name (survives power cuts; slower).
    #[arg(long)]
    pub fsync: bool,

    /// Skip inputs already done by an earlier run into OUT with the same configuration (from
    /// OUT's manifest) and remove the temporary files an interrupted run left there.
    #[arg(long)]
    pub resume: bool,

    /// Keep results in this folder, keyed by each input's content and the configuration, and
    /// write inputs found there without computing them (renamed or copied inputs included).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// A TOML file of configuration keys (flags given here override it).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,

    /// No progress bar and no summary; only errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Also write the run's report (stage times, throughput, failures) as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,

    /// Recompute this fraction of the long segments on the reference backend and fail when
    /// they differ beyond SPEC §2's tolerance: a canary for a broken driver or kernel.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub verify_fraction: Option<f64>,

    /// What a failed check does: fail the run's remaining files, or recompute them on the CPU
    /// backend (the reference backend when the CPU backend is the one checked).
    #[arg(long, default_value = "fail", value_parser = ["fail", "fallback"], requires = "verify_fraction")]
    pub on_mismatch: String,

    /// Ignore the settings `melkit tune` saved for this machine.
    #[arg(long)]
    pub no_tune_profile: bool,

    /// Configuration keys (see SPEC §1).
    #[command(flatten)]
    pub keys: ConfigFlags,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err("must be a number in (0, 1]".into()),
    }
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    OutputFormat::parse(s)
        .ok_or_else(|| format!("must be one of {}", OutputFormat::NAMES.join(", ")))
}

pub(crate) fn parse_backend(s: &str) -> Result<BackendKind, String> {
    BackendKind::parse(s).ok_or_else(|| format!("must be one of {}", BackendKind::NAMES.join(", ")))
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    Compression::parse(s)
        .ok_or_else(|| "must be none, deflate, deflate:LEVEL with LEVEL 1-9, or lzf".into())
}

/// The flag of a key: its name with dashes.
pub fn flag(key: &KeyInfo) -> String {
    key.name.replace('_', "-")
}

/// Every configuration key given on the command line, in the key table's order.
#[derive(Clone, Debug, Default)]
pub struct ConfigFlags {
    /// `(key, value)` pairs.
    pub values: Vec<(&'static str, String)>,
}

impl ConfigFlags {
    /// Applies the flags on top of `config`.
    ///
    /// # Errors
    /// A value that does not parse for its key.
    pub fn apply(&self, config: &mut Config) -> Result<(), melkit::ConfigError> {
        for (key, value) in &self.values {
            config.set(key, value)?;
        }
        Ok(())
    }
}

impl FromArgMatches for ConfigFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = ConfigFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for key in KEYS {
            if let Some(value) = matches.get_one::<String>(key.name) {
                self.values.retain(|(k, _)| *k != key.name);
                self.values.push((key.name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for ConfigFlags {
    fn augment_args(cmd: Command) -> Command {
        let defaults = Config::default();
        cmd.args(KEYS.iter().map(|key| {
            let default = defaults.get(key.name).unwrap_or_default();
            let arg = Arg::new(key.name)
                .long(flag(key))
                .help(format!("{} [default: {default}]", key.help))
                .help_heading(key.group.heading())
                .action(ArgAction::Set);
            let arg = if key.name == "max_workers" { arg.visible_alias("workers") } else { arg };
            if key.switch {
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL")
            } else {
                arg.value_name("VALUE")
            }
        }))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
