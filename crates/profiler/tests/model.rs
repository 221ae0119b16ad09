//! How well the profiler's timing model holds on this machine, measured by `cargo xtask bench`
//! (ignored by `cargo test`: it compares the wall times of separate runs, which a loaded machine
//! scatters): a planted bottleneck's what-if against a run without it, and an honest rerun not
//! flagged as a regression.

mod common;

use std::time::Duration;

use common::{Throttled, config, corpus, cpu, high_and_low_rates, profiled};
use melkit_profiler::Profile;

/// The what-if of `stage` in `slow` against the wall time of `fast`, a run without it: within a
/// quarter of the slow run's time.
fn assert_what_if_matches(slow: &Profile, stage: &str, fast: &Profile) {
    let predicted = slow.analysis.stage(stage).unwrap().what_if_seconds.unwrap();
    let (wall, actual) = (slow.analysis.wall_seconds, fast.analysis.wall_seconds);
    println!(
        "without {stage}: predicted {predicted:.3} s, measured {actual:.3} s (run {wall:.3} s)"
    );
    assert!(
        (predicted - actual).abs() <= 0.25 * wall + 0.02,
        "without {stage}: predicted {predicted:.3} s, measured {actual:.3} s (run {wall:.3} s)\n{slow}\n{fast}"
    );
}

#[test]
#[ignore = "timing: run by cargo xtask bench"]
fn the_what_if_of_a_slow_backend_matches_a_run_without_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 10, 4096, 4.0);
    let config = config(2, 1);
    let slow = Throttled { inner: cpu(&config), delay: Duration::from_millis(60) };
    let slow = profiled(&config, Box::new(slow), dir.path(), 1);
    let fast = profiled(&config, cpu(&config), dir.path(), 3);
    assert_what_if_matches(&slow, "compute", &fast);
}

#[test]
#[ignore = "timing: run by cargo xtask bench"]
fn the_what_if_of_heavy_resampling_matches_audio_already_at_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (high, low) = high_and_low_rates(dir.path());
    let config = config(1, 0);
    let slow = profiled(&config, cpu(&config), &high, 3);
    let fast = profiled(&config, cpu(&config), &low, 3);
    assert_what_if_matches(&slow, "resample", &fast);
}

#[test]
#[ignore = "timing: run by cargo xtask bench"]
fn an_honest_rerun_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 12, 4096, 4.0);
    let config = config(2, 2);
    let base = profiled(&config, cpu(&config), dir.path(), 5).baseline();
    let honest = profiled(&config, cpu(&config), dir.path(), 5).baseline();
    assert_eq!(base.compare(&honest, 0.10).unwrap(), vec![], "{base:?}\n{honest:?}");
}
