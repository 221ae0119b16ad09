//! Value scaling (SPEC §1 step 10): the element-wise dB conversion a backend applies, and the
//! per-file part (`ref = "max"`, `top_db`) applied once a whole file is known.

use crate::config::{Config, RefLevel, Scale};

/// The element-wise part of the scaling: identity, or dB against a fixed reference.
///
/// For power 2 this is `librosa.power_to_db(S, ref, amin)`; for any other power the values are
/// taken as amplitudes, `librosa.amplitude_to_db(S, ref, sqrt(amin))`, as the reference
/// (`make_golden.py`) does: `10 log10(max(amin, x))` or `20 log10(max(sqrt(amin), x))`, minus
/// the same of the reference. With `ref = "max"` the reference here is 1 and the file's maximum
/// is subtracted by [`FileScale`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElementScale {
    db: Option<(f64, f64, f64)>, // (factor, floor, offset)
}

impl ElementScale {
    /// The element-wise scaling a (validated) configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        if config.scale == Scale::Power {
            return ElementScale { db: None };
        }
        let (factor, floor) =
            if config.power == 2.0 { (10.0, config.amin) } else { (20.0, config.amin.sqrt()) };
        let reference = match config.ref_level {
            RefLevel::Value(r) => r.abs(),
            RefLevel::Max => 1.0,
        };
        let offset = factor * reference.max(floor).log10();
        ElementScale { db: Some((factor, floor, offset)) }
    }

    /// Whether this scaling leaves values as they are.
    pub fn is_identity(&self) -> bool {
        self.db.is_none()
    }

    /// For dB output, `(factor, floor, offset)` of `factor · log10(max(x, floor)) − offset`
    /// (for backends that scale on a device).
    pub fn db_params(&self) -> Option<(f64, f64, f64)> {
        self.db
    }

    /// Scales one value, in f64 (the reference backend's precision).
    pub fn apply(&self, x: f64) -> f64 {
        match self.db {
            None => x,
            Some((factor, floor, offset)) => factor * x.max(floor).log10() - offset,
        }
    }

    /// Scales values in place, in f32.
    pub fn apply_f32(&self, values: &mut [f32]) {
        if let Some((factor, floor, offset)) = self.db {
            let (factor, floor, offset) = (factor as f32, floor as f32, offset as f32);
            for v in values {
                *v = factor * v.max(floor).log10() - offset;
            }
        }
    }
}

/// The per-file part of the scaling: subtract the file's maximum (`ref = "max"`), then raise
/// values below `maximum - top_db` to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileScale {
    subtract_max: bool,
    top_db: Option<f32>,
}

impl FileScale {
    /// The per-file scaling a (validated) configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        let db = config.scale == Scale::Db;
        FileScale {
            subtract_max: db && config.ref_level == RefLevel::Max,
            top_db: config.top_db.filter(|_| db).map(|t| t as f32),
        }
    }

    /// Whether this scaling leaves values as they are.
    pub fn is_identity(&self) -> bool {
        !self.subtract_max && self.top_db.is_none()
    }

    /// Applies the scaling to one whole file's values.
    pub fn apply(&self, values: &mut [f32]) {
        if self.is_identity() || values.is_empty() {
            return;
        }
        self.apply_with_max(values, values.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    }

    /// Applies the scaling to a part of a file whose maximum (over the whole file) is `max`.
    pub fn apply_with_max(&self, values: &mut [f32], mut max: f32) {
        if self.subtract_max {
            values.iter_mut().for_each(|v| *v -= max);
            max = 0.0;
        }
        if let Some(top_db) = self.top_db {
            let floor = max - top_db;
            values.iter_mut().for_each(|v| *v = v.max(floor));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, v).unwrap();
        }
        c.validate().unwrap();
        c
    }

    #[test]
    fn power_to_db_as_librosa() {
        let s = ElementScale::from_config(&config(&[("scale", "db")]));
        assert_eq!(s.apply(1.0), 0.0);
        assert!((s.apply(100.0) - 20.0).abs() < 1e-12);
        assert!((s.apply(0.0) - -100.0).abs() < 1e-12); // amin 1e-10
        let s = ElementScale::from_config(&config(&[("scale", "db"), ("ref", "10")]));
        assert!((s.apply(100.0) - 10.0).abs() < 1e-12);
    }

    #[test]
    fn amplitude_to_db_as_librosa() {
        let s = ElementScale::from_config(&config(&[("scale", "db"), ("power", "1")]));
        assert!((s.apply(10.0) - 20.0).abs() < 1e-12);
        assert!((s.apply(0.0) - -100.0).abs() < 1e-9); // amin sqrt(1e-10) = 1e-5 in magnitude
        let mut v = [10.0f32, 0.0];
        s.apply_f32(&mut v);
        assert!((v[0] - 20.0).abs() < 1e-5 && (v[1] + 100.0).abs() < 1e-3);
    }

    #[test]
    fn other_powers_are_amplitudes_as_in_the_reference() {
        let s = ElementScale::from_config(&config(&[("scale", "db"), ("power", "1.5")]));
        assert!((s.apply(10.0) - 20.0).abs() < 1e-12);
        assert!((s.apply(0.0) - -100.0).abs() < 1e-9);
    }

    #[test]
    fn file_scale_max_and_top_db() {
        let f =
            FileScale::from_config(&config(&[("scale", "db"), ("ref", "max"), ("top_db", "30")]));
        let mut v = [10.0f32, -5.0, -40.0];
        f.apply(&mut v);
        assert_eq!(v, [0.0, -15.0, -30.0]);
        let f = FileScale::from_config(&config(&[("scale", "db"), ("top_db", "20")]));
        let mut v = [10.0f32, -5.0, -40.0];
        f.apply(&mut v);
        assert_eq!(v, [10.0, -5.0, -10.0]);
        // A part of a file, scaled against the whole file's maximum.
        let mut part = [-5.0f32, -40.0];
        f.apply_with_max(&mut part, 10.0);
        assert_eq!(part, [-5.0, -10.0]);
        // top_db means nothing on the power scale.
        assert!(FileScale::from_config(&config(&[("top_db", "20")])).is_identity());
    }
}
