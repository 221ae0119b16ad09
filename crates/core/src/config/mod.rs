//! The configuration of SPEC §1: every key with its default, set from strings, TOML or JSON.

mod keys;
mod validate;

pub use validate::{MAX_LONG, MAX_LONG_VALUES, MAX_N_FFT, MAX_N_MELS, MAX_SAMPLE_RATE, MAX_SIGNAL};

use std::fmt;

use serde::Serialize;

use crate::error::ConfigError;
pub use keys::{KEYS, KeyGroup, KeyInfo, key_info, suggest as suggest_key};

/// Defines an enum whose variants are named in configuration files and on the command line.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $var:ident = $s:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $var),+ }

        impl $name {
            /// Every canonical name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            /// The canonical name of this value.
            pub fn name(self) -> &'static str {
                match self { $(Self::$var => $s),+ }
            }

            /// Parses a canonical name or an alias (case-insensitive).
            pub fn parse(s: &str) -> Option<Self> {
                match s.to_ascii_lowercase().as_str() {
                    $($s $(| $alias)* => Some(Self::$var),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
    };
}

named_enum!(
    /// The analysis window (periodic, as `scipy.signal.get_window(..., fftbins=True)`).
    WindowKind {
        /// Hann (the default).
        Hann = "hann" | "hanning",
        /// Hamming.
        Hamming = "hamming",
        /// Blackman.
        Blackman = "blackman",
        /// Rectangular.
        Boxcar = "boxcar" | "rectangular" | "ones",
    }
);

named_enum!(
    /// How a centred frame is padded beyond the short segment's edges.
    PadMode {
        /// Zeros.
        Constant = "constant" | "zeros",
        /// Mirror without repeating the edge sample (`numpy.pad(mode="reflect")`).
        Reflect = "reflect",
    }
);

named_enum!(
    /// The mel scale of the filterbank.
    MelScale {
        /// Slaney's (Auditory Toolbox): linear below 1 kHz, logarithmic above.
        Slaney = "slaney",
        /// HTK's `2595 log10(1 + f/700)`.
        Htk = "htk",
    }
);

named_enum!(
    /// Normalisation of the mel filters.
    MelNorm {
        /// Each triangle divided by its width in Hz (constant energy per channel).
        Slaney = "slaney",
        /// Peak 1.
        None = "none",
    }
);

named_enum!(
    /// The value scale of the output.
    Scale {
        /// Power (or magnitude) as computed.
        Power = "power",
        /// Decibels (`librosa.power_to_db` / `amplitude_to_db`).
        Db = "db",
    }
);

named_enum!(
    /// The element type of the output tensor.
    Dtype {
        /// 32-bit float.
        F32 = "f32" | "float32",
        /// 16-bit float: half the size, with a rounding error of about 1e-3 relative.
        F16 = "f16" | "float16",
    }
);

/// The reference level of the dB scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefLevel {
    /// A fixed reference value (librosa's `ref=1.0`).
    Value(f64),
    /// Each file's own maximum (librosa's `ref=np.max`).
    Max,
}

impl Serialize for RefLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RefLevel::Value(v) => s.serialize_f64(*v),
            RefLevel::Max => s.serialize_str("max"),
        }
    }
}

/// Every configuration key of SPEC §1 (see [`KEYS`] for what each one means).
///
/// Build one with [`Config::default`], change keys with [`Config::set`], [`Config::apply_toml`]
/// or [`Config::apply_json`], and call [`Config::validate`] before using it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Sample rate the audio is resampled to, in Hz.
    pub sample_rate: u32,
    /// Seconds every file is cut or zero-padded to; `None` keeps the whole file.
    pub sample_length: Option<f64>,
    /// Length of a long segment, in seconds.
    pub long_segment_scale: f64,
    /// Hop between long segments in seconds; `None` means `long_segment_scale`.
    pub long_segment_hop: Option<f64>,
    /// Length of a short segment inside a long segment, in samples.
    pub short_segment_points: usize,
    /// Hop between short segments in samples; `None` means `short_segment_points`.
    pub short_segment_hop: Option<usize>,
    /// FFT size of the STFT.
    pub n_fft: usize,
    /// Hop between STFT frames, in samples.
    pub hop_length: usize,
    /// Window length, zero-padded to `n_fft` and centred; `None` means `n_fft`.
    pub win_length: Option<usize>,
    /// The analysis window.
    pub window: WindowKind,
    /// Whether frames are centred (padded by `n_fft / 2` at both ends of a short segment).
    pub center: bool,
    /// How centred frames are padded.
    pub pad_mode: PadMode,
    /// Exponent of the magnitude: 2 power, 1 magnitude.
    pub power: f64,
    /// Number of mel bins.
    pub n_mels: usize,
    /// Lowest frequency of the filterbank, in Hz.
    pub fmin: f64,
    /// Highest frequency of the filterbank in Hz; `None` means `sample_rate / 2`.
    pub fmax: Option<f64>,
    /// The mel scale.
    pub mel_scale: MelScale,
    /// The normalisation of the mel filters.
    pub mel_norm: MelNorm,
    /// Power (as computed) or dB.
    pub scale: Scale,
    /// The dB reference (`ref`).
    #[serde(rename = "ref")]
    pub ref_level: RefLevel,
    /// Smallest value before taking the dB, in the power domain.
    pub amin: f64,
    /// With dB, raise values below (file maximum - `top_db`); `None` disables it.
    pub top_db: Option<f64>,
    /// Element type of the output.
    pub dtype: Dtype,
    /// Threads in all; 0 uses every core.
    pub max_workers: usize,
    /// Threads that decode and resample; 0 uses the `max_workers` pool.
    pub cpu_workers: usize,
    /// GPUs for a GPU backend; 0 uses every visible GPU.
    pub gpu_workers: usize,
    /// Files per backend call; 0 sizes batches automatically.
    pub batch_size: usize,
    /// Files per call of a GPU backend; 0 is automatic.
    pub gpu_batch_size: usize,
    /// Memory for data in flight, in bytes; 0 derives it from the memory available.
    pub memory_limit: u64,
    /// Smaller batches and buffers.
    pub memory_efficient: bool,
    /// Keep results keyed by input content and configuration.
    pub cache_spectrograms: bool,
    /// Log what each stage does.
    pub verbose: bool,
    /// Log everything.
    pub debug: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sample_rate: 4096,
            sample_length: Some(10.0),
            long_segment_scale: 0.25,
            long_segment_hop: None,
            short_segment_points: 512,
            short_segment_hop: None,
            n_fft: 256,
            hop_length: 32,
            win_length: None,
            window: WindowKind::Hann,
            center: true,
            pad_mode: PadMode::Constant,
            power: 2.0,
            n_mels: 64,
            fmin: 0.0,
            fmax: None,
            mel_scale: MelScale::Slaney,
            mel_norm: MelNorm::Slaney,
            scale: Scale::Power,
            ref_level: RefLevel::Value(1.0),
            amin: 1e-10,
            top_db: None,
            dtype: Dtype::F32,
            max_workers: 0,
            cpu_workers: 0,
            gpu_workers: 0,
            batch_size: 0,
            gpu_batch_size: 0,
            memory_limit: 0,
            memory_efficient: false,
            cache_spectrograms: false,
            verbose: false,
            debug: false,
        }
    }
}

/// Rounds half to even, as Python's `round()` does (the reference's rounding).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

impl Config {
    /// The default configuration with a TOML document applied on top.
    ///
    /// # Errors
    /// A TOML syntax error, an unknown key or a bad value; the result is also validated.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.apply_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies every key of a TOML document (keys with underscores; `sample_length = "full"`).
    ///
    /// # Errors
    /// A TOML syntax error, an unknown key, or a value that does not parse for its key.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::Syntax { format: "TOML", reason: e.message().to_string() }
        })?;
        let json = serde_json::to_value(table)
            .map_err(|e| ConfigError::Syntax { format: "TOML", reason: e.to_string() })?;
        self.apply_json(&json)
    }

    /// Applies every key of a JSON object (`null` unsets an optional key).
    ///
    /// # Errors
    /// Not an object, an unknown key, or a value that does not parse for its key.
    pub fn apply_json(&mut self, json: &serde_json::Value) -> Result<(), ConfigError> {
        let object = json.as_object().ok_or_else(|| ConfigError::Syntax {
            format: "JSON",
            reason: "the configuration must be a table of keys".into(),
        })?;
        for (key, value) in object {
            let text = match value {
                serde_json::Value::Null => "none".to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => {
                    return Err(ConfigError::invalid(
                        key_name(key)?,
                        other.to_string(),
                        key_allowed(key)?,
                    ));
                }
            };
            self.set(key, &text)?;
        }
        Ok(())
    }

    /// The configuration as a JSON object: every key, `null` where unset.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The value of `key` as text, as [`Config::set`] accepts it (`None` for an unknown key).
    pub fn get(&self, key: &str) -> Option<String> {
        let value = self.to_json().get(key)?.clone();
        Some(match value {
            serde_json::Value::Null if key == "sample_length" => "full".into(),
            serde_json::Value::Null => "none".into(),
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// Sets one key from its text form (`"256"`, `"htk"`, `"full"`, `"none"`, `"true"`).
    ///
    /// Only the value's form is checked here; ranges and relations between keys are checked by
    /// [`Config::validate`], once every key is set.
    ///
    /// # Errors
    /// An unknown key, or a value that does not parse for its key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let info = key_info(key).ok_or_else(|| ConfigError::unknown(key))?;
        let v = value.trim();
        let bad = || ConfigError::invalid(info.name, v.to_string(), info.allowed.to_string());
        let unset = matches!(v.to_ascii_lowercase().as_str(), "none" | "null" | "");
        let float = || v.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(bad);
        let int = || v.parse::<usize>().map_err(|_| bad());
        let opt_float = || if unset { Ok(None) } else { float().map(Some) };
        let opt_int = || if unset { Ok(None) } else { int().map(Some) };
        let boolean = || match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad()),
        };
        match info.name {
            "sample_rate" => self.sample_rate = v.parse().map_err(|_| bad())?,
            "sample_length" => {
                self.sample_length =
                    if v.eq_ignore_ascii_case("full") { None } else { opt_float()? }
            }
            "long_segment_scale" => self.long_segment_scale = float()?,
            "long_segment_hop" => self.long_segment_hop = opt_float()?,
            "short_segment_points" => self.short_segment_points = int()?,
            "short_segment_hop" => self.short_segment_hop = opt_int()?,
            "n_fft" => self.n_fft = int()?,
            "hop_length" => self.hop_length = int()?,
            "win_length" => self.win_length = opt_int()?,
            "window" => self.window = WindowKind::parse(v).ok_or_else(bad)?,
            "center" => self.center = boolean()?,
            "pad_mode" => self.pad_mode = PadMode::parse(v).ok_or_else(bad)?,
            "power" => self.power = float()?,
            "n_mels" => self.n_mels = int()?,
            "fmin" => self.fmin = float()?,
            "fmax" => self.fmax = opt_float()?,
            "mel_scale" => self.mel_scale = MelScale::parse(v).ok_or_else(bad)?,
            "mel_norm" => self.mel_norm = MelNorm::parse(v).ok_or_else(bad)?,
            "scale" => self.scale = Scale::parse(v).ok_or_else(bad)?,
            "ref" => {
                self.ref_level = if v.eq_ignore_ascii_case("max") {
                    RefLevel::Max
                } else {
                    RefLevel::Value(float()?)
                }
            }
            "amin" => self.amin = float()?,
            "top_db" => self.top_db = opt_float()?,
            "dtype" => self.dtype = Dtype::parse(v).ok_or_else(bad)?,
            "max_workers" => self.max_workers = int()?,
            "cpu_workers" => self.cpu_workers = int()?,
            "gpu_workers" => self.gpu_workers = int()?,
            "batch_size" => self.batch_size = int()?,
            "gpu_batch_size" => self.gpu_batch_size = int()?,
            "memory_limit" => self.memory_limit = parse_size(v).ok_or_else(bad)?,
            "memory_efficient" => self.memory_efficient = boolean()?,
            "cache_spectrograms" => self.cache_spectrograms = boolean()?,
            "verbose" => self.verbose = boolean()?,
            "debug" => self.debug = boolean()?,
            other => unreachable!("key {other} is in KEYS but has no setter"),
        }
        Ok(())
    }

    /// The long segment hop in seconds (`long_segment_hop`, or `long_segment_scale` when unset).
    pub fn long_hop_seconds(&self) -> f64 {
        self.long_segment_hop.unwrap_or(self.long_segment_scale)
    }

    /// The short segment hop in samples (`short_segment_hop`, or `short_segment_points`).
    pub fn short_hop(&self) -> usize {
        self.short_segment_hop.unwrap_or(self.short_segment_points)
    }

    /// The window length in samples (`win_length`, or `n_fft`).
    pub fn window_length(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    /// The upper edge of the filterbank in Hz (`fmax`, or `sample_rate / 2`).
    pub fn fmax_hz(&self) -> f64 {
        self.fmax.unwrap_or(f64::from(self.sample_rate) / 2.0)
    }

    /// A number of seconds at `sample_rate`, in samples, rounded as the reference rounds.
    pub fn seconds_to_samples(&self, seconds: f64) -> usize {
        round_half_even(seconds * f64::from(self.sample_rate)).max(0.0) as usize
    }
}

/// A size in bytes: a number, optionally followed by K, M or G (binary; `KiB`, `MB`... accepted).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let value: f64 = number.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().trim_end_matches(['b', 'i']) {
        "" => 1u64,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let bytes = value * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn key_name(key: &str) -> Result<&'static str, ConfigError> {
    key_info(key).map(|i| i.name).ok_or_else(|| ConfigError::unknown(key))
}

fn key_allowed(key: &str) -> Result<String, ConfigError> {
    key_info(key).map(|i| i.allowed.to_string()).ok_or_else(|| ConfigError::unknown(key))
}

#[cfg(test)]
mod tests;
