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

    /// Output format.
    #[arg(long, default_value = "h5", value_parser = parse_format)]
    pub format: OutputFormat,

    /// Compute backend.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,

    /// Compression of HDF5 and NPZ outputs: none, deflate or deflate:LEVEL (1-9), lzf (HDF5).
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,

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

    /// Configuration keys (see SPEC §1).
    #[command(flatten)]
    pub keys: ConfigFlags,
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    OutputFormat::parse(s)
        .ok_or_else(|| format!("must be one of {}", OutputFormat::NAMES.join(", ")))
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
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
