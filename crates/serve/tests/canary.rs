//! The guarded canary, its windows driven by request counts: a candidate off by 1e-2 is rolled
//! back on its first compared request with no wrong result served; one made slower is rolled
//! back after the configured failed windows; an honest one is promoted through every step.

mod common;

use std::time::Duration;

use common::*;
use melkit::Config;
use melkit::compare::Precision;
use melkit_serve::{CanaryOptions, ServeOptions};

fn options(steps: &[u8], window: usize, margin: f64) -> ServeOptions {
    let canary = CanaryOptions {
        steps: steps.to_vec(),
        window,
        margin,
        failed_windows: 2,
        precision: Precision::Cpu,
    };
    ServeOptions { canary: Some(canary), ..ServeOptions::default() }
}

fn wav() -> Vec<u8> {
    std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap()
}

/// Sends `n` requests; returns each one's arm and tensor.
fn send(server: &Running, n: usize) -> Vec<(String, Vec<f32>)> {
    let body = wav();
    (0..n)
        .map(|_| {
            let (status, headers, bytes) = post(&server.url("/v1/mel"), "audio/wav", &body);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
            (headers["x-melkit-arm"].to_str().unwrap().to_string(), npy(&bytes).0)
        })
        .collect()
}

#[test]
fn a_wrong_candidate_is_rolled_back_on_its_first_compared_request() {
    let config = Config::default();
    let wrong = Altered::boxed(&config, 1.01, Duration::ZERO);
    let server = start(
        pipeline(&config, None),
        Some(pipeline(&config, Some(wrong))),
        options(&[50, 100], 10, 1.5),
    );
    let truth = send(&server, 1)[0].1.clone();
    let answers = send(&server, 20);
    // Every answer is the stable arm's numbers: the wrong result was never served.
    assert!(answers.iter().all(|(arm, values)| arm == "stable" && *values == truth));
    let state = server.service.canary().unwrap();
    assert_eq!(
        (state.phase, state.weight, state.compared, state.mismatches),
        ("rolled_back", 0, 1, 1)
    );
    assert!(state.reason.unwrap().starts_with("results disagree: "));
    let (_, metrics) = get(&server.url("/metrics"));
    assert!(metrics.contains("melkit_canary_rollbacks_total 1"), "{metrics}");
    assert!(metrics.contains("melkit_canary_weight_percent 0"), "{metrics}");
}

#[test]
fn a_slow_candidate_is_rolled_back_after_the_failed_windows() {
    let config = Config::default();
    let slow = Altered::boxed(&config, 1.0, Duration::from_millis(20));
    let server = start(
        pipeline(&config, None),
        Some(pipeline(&config, Some(slow))),
        options(&[100], 4, 1.5),
    );
    send(&server, 4);
    let state = server.service.canary().unwrap();
    assert_eq!((state.phase, state.failed_windows), ("progressing", 1));
    send(&server, 4);
    let state = server.service.canary().unwrap();
    assert_eq!((state.phase, state.weight, state.failed_windows), ("rolled_back", 0, 2));
    assert!(state.reason.unwrap().starts_with("2 failed windows"));
    assert!(send(&server, 3).iter().all(|(arm, _)| arm == "stable"));
}

#[test]
fn an_honest_candidate_is_promoted_through_every_step() {
    let config = Config::default();
    // The same backend in both arms: windows of 2 requests judge latency from two samples, so a
    // wide margin keeps scheduling noise from failing one (the slow candidate's test covers the
    // latency judgement).
    let honest = options(&[10, 25, 50, 100], 2, 100.0);
    let server = start(pipeline(&config, None), Some(pipeline(&config, None)), honest);
    let mut weights = vec![server.service.canary().unwrap().weight];
    // Each window of 2 compared requests passes and promotes; at 10 % that takes 20 requests.
    for _ in 0..60 {
        let answers = send(&server, 1);
        let state = server.service.canary().unwrap();
        if weights.last() != Some(&state.weight) {
            weights.push(state.weight);
        }
        assert!(answers[0].0 == "stable" || answers[0].0 == "candidate");
        if state.phase == "promoted" {
            break;
        }
    }
    let state = server.service.canary().unwrap();
    assert_eq!(weights, [10, 25, 50, 100]);
    assert_eq!((state.phase, state.mismatches, state.failed_windows), ("promoted", 0, 0));
    assert!(send(&server, 2).iter().all(|(arm, _)| arm == "candidate"));
    // The admin (loopback): abort, then set the weight.
    let mut r = agent().post(&server.url("/admin/canary/abort")).send(&[][..]).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((json["phase"].as_str(), json["weight"].as_u64()), (Some("rolled_back"), Some(0)));
    let mut r = agent().post(&server.url("/admin/canary/weight?value=25")).send(&[][..]).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((json["phase"].as_str(), json["weight"].as_u64()), (Some("progressing"), Some(25)));
    let (status, _) = get(&server.url("/admin/canary"));
    assert_eq!(status, 200);
}
