//! The table of configuration keys: name, group, meaning and allowed values.

/// Which part of the computation a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGroup {
    /// Decoding, resampling and length.
    Signal,
    /// Long and short segmentation.
    Segments,
    /// The short-time Fourier transform.
    Stft,
    /// The mel filterbank.
    Mel,
    /// Value scaling and output type.
    Scale,
    /// Run control: speed and memory, never the numbers.
    Run,
}

impl KeyGroup {
    /// A heading for help texts.
    pub fn heading(self) -> &'static str {
        match self {
            KeyGroup::Signal => "Signal",
            KeyGroup::Segments => "Segmentation",
            KeyGroup::Stft => "STFT",
            KeyGroup::Mel => "Mel filterbank",
            KeyGroup::Scale => "Scaling and output type",
            KeyGroup::Run => "Run control",
        }
    }
}

/// One configuration key.
#[derive(Clone, Copy, Debug)]
pub struct KeyInfo {
    /// The name in TOML and JSON (the flag is the same with dashes).
    pub name: &'static str,
    /// What the key belongs to.
    pub group: KeyGroup,
    /// What it means, in one line.
    pub help: &'static str,
    /// The values it accepts, as the error for a bad value says it.
    pub allowed: &'static str,
    /// A switch: the flag alone means `true`.
    pub switch: bool,
}

const fn key(
    name: &'static str,
    group: KeyGroup,
    help: &'static str,
    allowed: &'static str,
) -> KeyInfo {
    KeyInfo { name, group, help, allowed, switch: false }
}

const fn switch(name: &'static str, group: KeyGroup, help: &'static str) -> KeyInfo {
    KeyInfo { name, group, help, allowed: "true or false", switch: true }
}

use KeyGroup::*;

/// Every configuration key of SPEC §1, in the order the computation uses them.
pub const KEYS: &[KeyInfo] = &[
    key(
        "sample_rate",
        Signal,
        "sample rate the audio is resampled to, in Hz",
        "an integer from 1 to 1536000 (Hz)",
    ),
    key(
        "sample_length",
        Signal,
        "length every file is cut or zero-padded to, in seconds; \"full\" keeps the whole file",
        "a number of seconds > 0 (from one sample to 2^32 samples), or \"full\" for the whole file",
    ),
    key(
        "long_segment_scale",
        Segments,
        "length of a long segment, in seconds",
        "a number of seconds > 0 (from one sample to 2^24 samples)",
    ),
    key(
        "long_segment_hop",
        Segments,
        "hop between long segments, in seconds; \"none\" means long_segment_scale",
        "a number of seconds > 0 (from one sample to 2^32 samples), or \"none\" for long_segment_scale",
    ),
    key(
        "short_segment_points",
        Segments,
        "length of a short segment inside a long segment, in samples",
        "an integer from 1 to the long segment's length in samples",
    ),
    key(
        "short_segment_hop",
        Segments,
        "hop between short segments, in samples; \"none\" means short_segment_points",
        "an integer >= 1, or \"none\" for short_segment_points",
    ),
    key("n_fft", Stft, "FFT size of the STFT", "an integer from 2 to 65536"),
    key("hop_length", Stft, "hop between STFT frames, in samples", "an integer >= 1"),
    key(
        "win_length",
        Stft,
        "window length (zero-padded to n_fft, centred); \"none\" means n_fft",
        "an integer from 1 to n_fft, or \"none\" for n_fft",
    ),
    key("window", Stft, "analysis window (periodic)", "one of hann, hamming, blackman, boxcar"),
    key("center", Stft, "centre frames on their time (pad n_fft/2 at both ends)", "true or false"),
    key("pad_mode", Stft, "padding of centred frames", "one of constant, reflect"),
    key(
        "power",
        Stft,
        "exponent of the magnitude: 2 gives power, 1 magnitude (dB takes any other as amplitude)",
        "a number > 0",
    ),
    key("n_mels", Mel, "number of mel bins", "an integer from 1 to 2048"),
    key(
        "fmin",
        Mel,
        "lowest frequency of the filterbank, in Hz",
        "a number of Hz >= 0, below fmax",
    ),
    key(
        "fmax",
        Mel,
        "highest frequency of the filterbank, in Hz; \"none\" means sample_rate / 2",
        "a number of Hz above fmin and at most sample_rate / 2, or \"none\" for sample_rate / 2",
    ),
    key("mel_scale", Mel, "mel scale", "one of slaney, htk"),
    key("mel_norm", Mel, "filter normalisation", "one of slaney, none"),
    key("scale", Scale, "output values: power as computed, or db", "one of power, db"),
    key(
        "ref",
        Scale,
        "dB reference value; \"max\" uses each file's maximum",
        "a number > 0, or \"max\" for each file's maximum",
    ),
    key("amin", Scale, "smallest value before taking the dB (power domain)", "a number > 0"),
    key(
        "top_db",
        Scale,
        "with scale = db, raise values below (file maximum - top_db); \"none\" disables it",
        "a number >= 0, or \"none\" for no clipping",
    ),
    key("dtype", Scale, "element type of the output", "one of f32, f16"),
    key(
        "max_workers",
        Run,
        "threads in all (compute and I/O); 0 uses every core",
        "an integer >= 0 (0 = every core)",
    ),
    key(
        "cpu_workers",
        Run,
        "threads that decode and resample; 0 uses the max_workers pool",
        "an integer >= 0 (0 = automatic)",
    ),
    key(
        "gpu_workers",
        Run,
        "GPUs to use for a GPU backend; 0 uses every visible GPU",
        "an integer >= 0 (0 = every visible GPU)",
    ),
    key(
        "batch_size",
        Run,
        "files per backend call; 0 sizes batches automatically",
        "an integer >= 0 (0 = automatic)",
    ),
    key(
        "gpu_batch_size",
        Run,
        "files per call of a GPU backend (overrides batch_size there); 0 is automatic",
        "an integer >= 0 (0 = automatic)",
    ),
    key(
        "memory_limit",
        Run,
        "memory for data in flight (decoded audio, batches, outputs not yet written); 0 derives it from the memory available",
        "a size in bytes, with K, M or G for KiB, MiB or GiB (\"64M\"), or 0 for automatic",
    ),
    switch("memory_efficient", Run, "smaller batches and buffers, for machines short of memory"),
    switch(
        "cache_spectrograms",
        Run,
        "keep results keyed by input content and configuration, and reuse them (see --cache)",
    ),
    switch("verbose", Run, "log what each stage does"),
    switch("debug", Run, "log everything, for bug reports"),
];

/// The key called `name` (with underscores), if there is one.
pub fn key_info(name: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|k| k.name == name)
}

/// The known key closest to a misspelled `name`, when one is close enough to be meant.
pub fn suggest(name: &str) -> Option<&'static str> {
    let wanted = name.replace('-', "_").to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (edit_distance(&wanted, k.name), k.name))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
