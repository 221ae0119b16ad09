//! Validation of a whole configuration: ranges of each key and the relations between keys.

use super::{Config, PadMode, RefLevel, key_info};
use crate::error::ConfigError;

/// The highest `sample_rate`, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 1_536_000;
/// The most samples `sample_length` (and `long_segment_hop`) may span.
pub const MAX_SIGNAL: u64 = 1 << 32;
/// The most samples a long segment may hold.
pub const MAX_LONG: u64 = 1 << 24;
/// The largest `n_fft`.
pub const MAX_N_FFT: usize = 1 << 16;
/// The most mel bins.
pub const MAX_N_MELS: usize = 2048;
/// The most values (frames × bins or mels) one long segment may need.
pub const MAX_LONG_VALUES: usize = 1 << 26;

impl Config {
    /// Checks every key and every relation between keys (SPEC §1), before any work starts.
    ///
    /// # Errors
    /// The first invalid key, with its value and the values it allows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sr = f64::from(self.sample_rate);
        // The key's own allowed-values text, or a sharper one that names the other keys involved.
        let fail = |key: &'static str, why: Option<String>| {
            let allowed = why.unwrap_or_else(|| key_info(key).map_or("", |i| i.allowed).into());
            Err(ConfigError::invalid(key, self.get(key).unwrap_or_default(), allowed))
        };
        let samples_ok = |s: f64, most: f64| {
            s.is_finite() && s > 0.0 && (1.0..=most).contains(&(s * sr).round_ties_even())
        };

        if !(1..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return fail("sample_rate", None);
        }
        if self.sample_length.is_some_and(|s| !samples_ok(s, MAX_SIGNAL as f64)) {
            return fail("sample_length", None);
        }
        if !samples_ok(self.long_segment_scale, MAX_LONG as f64) {
            return fail("long_segment_scale", None);
        }
        if self.long_segment_hop.is_some_and(|s| !samples_ok(s, MAX_SIGNAL as f64)) {
            return fail("long_segment_hop", None);
        }
        let long_len = self.seconds_to_samples(self.long_segment_scale);
        if self.short_segment_points == 0 || self.short_segment_points > long_len {
            return fail(
                "short_segment_points",
                Some(format!(
                    "an integer from 1 to {long_len}, the long segment's length in samples \
                     (long_segment_scale {} s at sample_rate {} Hz)",
                    self.long_segment_scale, self.sample_rate
                )),
            );
        }
        if self.short_segment_hop == Some(0) {
            return fail("short_segment_hop", None);
        }
        if !(2..=MAX_N_FFT).contains(&self.n_fft) {
            return fail("n_fft", None);
        }
        if !self.center && self.n_fft > self.short_segment_points {
            return fail(
                "n_fft",
                Some(format!(
                    "an integer from 2 to short_segment_points ({}) when center = false",
                    self.short_segment_points
                )),
            );
        }
        if self.hop_length == 0 {
            return fail("hop_length", None);
        }
        if self.win_length.is_some_and(|w| w == 0 || w > self.n_fft) {
            return fail(
                "win_length",
                Some(format!("an integer from 1 to n_fft ({}), or \"none\" for n_fft", self.n_fft)),
            );
        }
        if self.center
            && self.pad_mode == PadMode::Reflect
            && self.n_fft / 2 >= self.short_segment_points
        {
            return fail(
                "pad_mode",
                Some(format!(
                    "constant when n_fft / 2 ({}) is not below short_segment_points ({}): \
                     reflect padding needs a longer segment",
                    self.n_fft / 2,
                    self.short_segment_points
                )),
            );
        }
        if !(self.power.is_finite() && self.power > 0.0) {
            return fail("power", None);
        }
        if !(1..=MAX_N_MELS).contains(&self.n_mels) {
            return fail("n_mels", None);
        }
        let padded = if self.center {
            self.short_segment_points + 2 * (self.n_fft / 2)
        } else {
            self.short_segment_points
        };
        let frames = 1 + (padded - self.n_fft) / self.hop_length;
        let shorts = (long_len - self.short_segment_points) / self.short_hop() + 1;
        let values =
            shorts.saturating_mul(frames).saturating_mul(self.n_mels.max(self.n_fft / 2 + 1));
        if values > MAX_LONG_VALUES {
            return fail(
                "hop_length",
                Some(format!(
                    "large enough that one long segment ({shorts} short segments x {frames} frames x \
                     {} bins) holds at most {MAX_LONG_VALUES} values",
                    self.n_mels.max(self.n_fft / 2 + 1)
                )),
            );
        }
        let fmax = self.fmax_hz();
        if let Some(f) = self.fmax
            && !(f.is_finite() && f > 0.0 && f <= sr / 2.0)
        {
            return fail(
                "fmax",
                Some(format!(
                    "a number of Hz above fmin and at most sample_rate / 2 ({}), \
                     or \"none\" for sample_rate / 2",
                    sr / 2.0
                )),
            );
        }
        if !(self.fmin.is_finite() && self.fmin >= 0.0 && self.fmin < fmax) {
            return fail("fmin", Some(format!("a number of Hz >= 0, below fmax ({fmax})")));
        }
        if let RefLevel::Value(r) = self.ref_level
            && !(r.is_finite() && r > 0.0)
        {
            return fail("ref", None);
        }
        if !(self.amin.is_finite() && self.amin > 0.0) {
            return fail("amin", None);
        }
        if self.top_db.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            return fail("top_db", None);
        }
        Ok(())
    }
}
