//! Finishing one file computed whole: the per-file scaling, the f16 error, the counts.

use std::time::Instant;

use melkit_core::config::Dtype;
use melkit_core::scale::FileScale;
use melkit_core::{BatchItem, Config, SegmentPlan};

use crate::report::{FileStats, Stage};

/// The per-file scaling of one file's values, and what is counted of them.
pub(super) fn finish_values(
    file_scale: FileScale,
    config: &Config,
    plan: &SegmentPlan,
    values: &mut [f32],
    item: BatchItem,
    stats: &mut FileStats,
) {
    let started = Instant::now();
    file_scale.apply(values);
    stats.times.add(Stage::Scale, started.elapsed());
    stats.long_segments = item.n_long;
    stats.segments = item.n_long * plan.n_short;
    if config.dtype == Dtype::F16 {
        stats.f16_error = Some(f16_error(values));
    }
}

/// The largest error of rounding `values` to f16, relative to their largest magnitude
/// (infinite when a value overflows the f16 range).
pub fn f16_error(values: &[f32]) -> f64 {
    let (mut err, mut max) = (0f64, 0f64);
    for &v in values {
        let rounded = f64::from(half::f16::from_f32(v).to_f32());
        err = err.max((rounded - f64::from(v)).abs());
        max = max.max(f64::from(v).abs());
    }
    if err == 0.0 { 0.0 } else { err / max }
}
