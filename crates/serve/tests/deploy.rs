//! The deployment examples stay true to the service: every metric the Grafana dashboard
//! queries is one the service exports.

mod common;

use std::collections::BTreeSet;

use common::*;
use melkit::Config;
use melkit_serve::{CanaryOptions, ServeOptions};

/// The `melkit_…` names in a PromQL expression.
fn names(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("melkit_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        found.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/melkit-serve-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let config = Config::default();
    let options = ServeOptions {
        canary: Some(CanaryOptions::default()),
        verify_fraction: 0.5,
        ..ServeOptions::default()
    };
    let server = start(pipeline(&config, None), Some(pipeline(&config, None)), options);
    // One request of each outcome the panels count.
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    assert_eq!(post(&server.url("/v1/mel"), "audio/wav", &wav).0, 200);
    assert_eq!(post(&server.url("/v1/mel"), "audio/wav", b"junk").0, 400);
    let (status, text) = get(&server.url("/metrics"));
    assert_eq!(status, 200);
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(names(target["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 15, "{queried:?}");
    let missing: Vec<_> = queried.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}\n{text}");
}
