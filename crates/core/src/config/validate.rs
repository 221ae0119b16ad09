//! Validation of a whole configuration: ranges of each key and the relations between keys.

use super::{Config, PadMode, RefLevel, Scale, key_info};
use crate::error::ConfigError;

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
        let seconds_ok = |s: f64| s.is_finite() && s > 0.0 && self.seconds_to_samples(s) >= 1;

        if self.sample_rate == 0 {
            return fail("sample_rate", None);
        }
        if self.sample_length.is_some_and(|s| !seconds_ok(s)) {
            return fail("sample_length", None);
        }
        if !seconds_ok(self.long_segment_scale) {
            return fail("long_segment_scale", None);
        }
        if self.long_segment_hop.is_some_and(|s| !seconds_ok(s)) {
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
        if self.n_fft < 2 {
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
        if self.scale == Scale::Db && self.power != 1.0 && self.power != 2.0 {
            return fail("power", Some("1 or 2 when scale = \"db\"".into()));
        }
        if self.n_mels == 0 {
            return fail("n_mels", None);
        }
        let fmax = self.fmax_hz();
        if let Some(f) = self.fmax {
            if !(f.is_finite() && f > 0.0 && f <= sr / 2.0) {
                return fail(
                    "fmax",
                    Some(format!(
                        "a number of Hz above fmin and at most sample_rate / 2 ({}), \
                         or \"none\" for sample_rate / 2",
                        sr / 2.0
                    )),
                );
            }
        }
        if !(self.fmin.is_finite() && self.fmin >= 0.0 && self.fmin < fmax) {
            return fail("fmin", Some(format!("a number of Hz >= 0, below fmax ({fmax})")));
        }
        if let RefLevel::Value(r) = self.ref_level {
            if !(r.is_finite() && r > 0.0) {
                return fail("ref", None);
            }
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
