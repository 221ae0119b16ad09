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

    /// Scales values in place, in f32. Inlined, so a backend's SIMD dispatch vectorises the
    /// logarithm ([`ln_f32`]) with the instructions it was compiled for.
    #[inline]
    pub fn apply_f32(&self, values: &mut [f32]) {
        if let Some((factor, floor, offset)) = self.db {
            // factor · log10(x) = (factor · log10 e) · ln(x).
            let factor = (factor * std::f64::consts::LOG10_E) as f32;
            let (floor, offset) = (floor as f32, offset as f32);
            for v in values {
                *v = factor * ln_f32(v.max(floor)) - offset;
            }
        }
    }
}

/// `ln x` for `x >= 0` (`-inf` at 0, `+inf` at `+inf`), within 2 ulp: Cephes' `logf`
/// polynomial written without branches, so a loop of it vectorises (libm's `log10f` is one
/// call a value, and the dB scale took most of a dB run's compute through it).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published.
pub fn ln_f32(x: f32) -> f32 {
    // Subnormals scaled into the normal range first.
    let tiny = x < f32::MIN_POSITIVE;
    let scaled = if tiny { x * 8_388_608.0 } else { x };
    let bits = scaled.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 126 - if tiny { 23 } else { 0 };
    // x = 2^exponent · m, m in [0.5, 1), then m in [sqrt(1/2), sqrt(2)).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (exponent - i32::from(low)) as f32;
    let m = if low { m + m } else { m } - 1.0;
    let z = m * m;
    let mut y = 7.037_683_629_2e-2_f32;
    for c in [
        -1.151_461_031_0e-1,
        1.167_699_874_0e-1,
        -1.242_014_084_6e-1,
        1.424_932_278_7e-1,
        -1.666_805_766_5e-1,
        2.000_071_476_5e-1,
        -2.499_999_399_3e-1,
        3.333_333_117_4e-1,
    ] {
        y = y * m + c;
    }
    let y = y * m * z - 2.121_944_40e-4 * e - 0.5 * z;
    let ln = m + y + 0.693_359_375 * e;
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else {
        ln
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

    /// `ln_f32` against f64's `ln` on every 251st positive finite f32 (subnormals included),
    /// within 2 units in the last place of the result, and at its edges.
    #[test]
    fn ln_f32_is_within_two_ulp_of_the_logarithm() {
        let mut worst = 0.0f64;
        for bits in (1..0x7f80_0000u32).step_by(251) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).ln();
            let near = (want as f32).abs();
            let ulp = f64::from(f32::from_bits(near.to_bits() + 1) - near);
            let error = (f64::from(ln_f32(x)) - want).abs() / ulp;
            worst = worst.max(error);
            assert!(error <= 2.0, "ln_f32({x:e}) = {} against {want}", ln_f32(x));
        }
        assert!(worst > 0.0 && worst <= 2.0, "worst {worst} ulp");
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!((ln_f32(std::f32::consts::E) - 1.0).abs() <= f32::EPSILON);
    }

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
