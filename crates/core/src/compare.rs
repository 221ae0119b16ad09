//! The numeric contract of SPEC §2: error measures and the tolerance classes.

use std::fmt;

/// How far a result is from the expected tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorReport {
    /// `max|a - b| / max|b|`.
    pub max_rel: f64,
    /// `‖a - b‖₂ / ‖b‖₂`.
    pub rel_l2: f64,
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "max rel {:.3e}, rel L2 {:.3e}", self.max_rel, self.rel_l2)
    }
}

/// Compares a result `a` with the expected `b` (same length). A NaN or an infinity on either
/// side makes both measures infinite, so no tolerance passes it.
pub fn compare(a: &[f32], b: &[f32]) -> ErrorReport {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    let (mut max_diff, mut max_b, mut diff2, mut b2) = (0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        if !(x.is_finite() && y.is_finite()) {
            return ErrorReport { max_rel: f64::INFINITY, rel_l2: f64::INFINITY };
        }
        let (x, y) = (f64::from(x), f64::from(y));
        let d = (x - y).abs();
        max_diff = max_diff.max(d);
        max_b = max_b.max(y.abs());
        diff2 += d * d;
        b2 += y * y;
    }
    let ratio = |num: f64, den: f64| if num == 0.0 { 0.0 } else { num / den };
    ErrorReport { max_rel: ratio(max_diff, max_b), rel_l2: ratio(diff2.sqrt(), b2.sqrt()) }
}

/// A tolerance class of SPEC §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToleranceClass {
    /// No resampling: bounded by the largest error relative to the largest value.
    Exact,
    /// Resampled input: bounded by the relative L2 error.
    Resampled,
}

impl ToleranceClass {
    /// Parses `"exact"` or `"resampled"` (as the golden cases name them).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(ToleranceClass::Exact),
            "resampled" => Some(ToleranceClass::Resampled),
            _ => None,
        }
    }
}

/// The precision a backend is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Reference and CPU: `exact` within 1e-5.
    Cpu,
    /// CUDA and wgpu: `exact` within 1e-4.
    Gpu,
}

impl Precision {
    /// The precision SPEC §2 holds a backend to, by its name (`--backend`): GPU for wgpu and
    /// CUDA, CPU for the others.
    pub fn of_backend(name: &str) -> Self {
        match name {
            "wgpu" | "cuda" | "cuda-emulated" => Precision::Gpu,
            _ => Precision::Cpu,
        }
    }
}

/// A tolerance: a class and the precision of the backend being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// The class of the case.
    pub class: ToleranceClass,
    /// The backend's precision.
    pub precision: Precision,
}

impl Tolerance {
    /// The bound on the measure this tolerance uses.
    pub fn bound(&self) -> f64 {
        match (self.class, self.precision) {
            (ToleranceClass::Exact, Precision::Cpu) => 1e-5,
            (ToleranceClass::Exact, Precision::Gpu) => 1e-4,
            (ToleranceClass::Resampled, _) => 1e-3,
        }
    }

    /// The measure this tolerance bounds.
    pub fn measure(&self, report: &ErrorReport) -> f64 {
        match self.class {
            ToleranceClass::Exact => report.max_rel,
            ToleranceClass::Resampled => report.rel_l2,
        }
    }

    /// Whether `report` is within this tolerance.
    pub fn passes(&self, report: &ErrorReport) -> bool {
        self.measure(report) <= self.bound()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures() {
        let r = compare(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert_eq!(r.max_rel, 0.25);
        assert!((r.rel_l2 - 1.0 / 21f64.sqrt()).abs() < 1e-12);
        assert_eq!(compare(&[0.0], &[0.0]).max_rel, 0.0);
        for (a, b) in
            [(f32::NAN, 1.0), (1.0, f32::NAN), (f32::INFINITY, 1.0), (f32::INFINITY, f32::INFINITY)]
        {
            let r = compare(&[1.0, a], &[1.0, b]);
            assert_eq!((r.max_rel, r.rel_l2), (f64::INFINITY, f64::INFINITY), "{a} against {b}");
            for class in [ToleranceClass::Exact, ToleranceClass::Resampled] {
                assert!(!Tolerance { class, precision: Precision::Gpu }.passes(&r));
            }
        }
    }

    #[test]
    fn bounds_follow_the_table() {
        let exact = Tolerance { class: ToleranceClass::Exact, precision: Precision::Cpu };
        let gpu = Tolerance { precision: Precision::Gpu, ..exact };
        let report = ErrorReport { max_rel: 5e-5, rel_l2: 1e-6 };
        assert!(!exact.passes(&report));
        assert!(gpu.passes(&report));
        let resampled = Tolerance { class: ToleranceClass::Resampled, precision: Precision::Cpu };
        assert!(resampled.passes(&ErrorReport { max_rel: 1.0, rel_l2: 9e-4 }));
        assert_eq!(Precision::of_backend("cuda"), Precision::Gpu);
        assert_eq!(Precision::of_backend("wgpu"), Precision::Gpu);
        assert_eq!(Precision::of_backend("cpu"), Precision::Cpu);
        assert_eq!(Precision::of_backend("reference"), Precision::Cpu);
    }
}
