//! The reference check off the request path: a sample of the served results is recomputed on
//! the reference backend; an honest backend passes every check, a wrong one is counted.

mod common;

use std::time::Duration;

use common::*;
use melkit::Config;
use melkit_serve::ServeOptions;

/// The metrics once `done` holds of them (30 s at most).
fn metrics_when(server: &Running, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..600 {
        text = get(&server.url("/metrics")).1;
        if done(&text) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    text
}

/// Serves `requests` tones with every result checked, one at a time (the check holds a few
/// results at most and skips beyond), and returns the metrics once it has seen them all.
fn checked(factor: f32, requests: usize) -> String {
    let config = Config::default();
    let stable = pipeline(&config, Some(Altered::boxed(&config, factor, Duration::ZERO)));
    let options = ServeOptions { verify_fraction: 1.0, ..ServeOptions::default() };
    let server = start(stable, None, options);
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    let seen = |text: &str| {
        metric(text, "melkit_verify_checked_total") + metric(text, "melkit_verify_skipped_total")
    };
    for i in 1..=requests {
        let (status, _, _) = post(&server.url("/v1/mel"), "audio/wav", &wav);
        assert_eq!(status, 200);
        metrics_when(&server, |text| seen(text) >= i as f64);
    }
    metrics_when(&server, |text| seen(text) >= requests as f64)
}

#[test]
fn an_honest_backend_passes_every_reference_check() {
    let text = checked(1.0, 3);
    assert_eq!(metric(&text, "melkit_verify_checked_total"), 3.0, "{text}");
    assert_eq!(metric(&text, "melkit_verify_mismatches_total"), 0.0, "{text}");
    assert_eq!(metric(&text, "melkit_verify_skipped_total"), 0.0, "{text}");
}

#[test]
fn a_backend_off_by_one_percent_is_caught_by_the_reference_check() {
    let text = checked(1.01, 3);
    assert_eq!(metric(&text, "melkit_verify_checked_total"), 3.0, "{text}");
    assert_eq!(metric(&text, "melkit_verify_mismatches_total"), 3.0, "{text}");
}
