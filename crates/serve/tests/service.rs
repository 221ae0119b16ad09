//! The service over HTTP: golden cases within SPEC §2, each class of bad input with its status
//! and reason, overload answered 503 at once, metrics counting, and the configuration.

mod common;

use std::time::{Duration, Instant};

use common::*;
use melkit::{Backend, BackendError, BackendKind, Config, SegmentPlan, SignalBatch, StepTimings};
use melkit_serve::ServeOptions;

fn golden_config(name: &str) -> (Config, Vec<f32>, Vec<usize>, String) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let mut config = Config::default();
    for (key, value) in meta["config"].as_object().unwrap() {
        let text = match value {
            serde_json::Value::Null if key == "sample_length" => "full".to_string(),
            serde_json::Value::Null => "none".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        config.set(key, &text).unwrap();
    }
    config.validate().unwrap();
    let file = std::fs::File::open(golden_dir().join(format!("{name}.npy"))).unwrap();
    let want: ndarray::ArrayD<f32> = ndarray_npy::ReadNpyExt::read_npy(file).unwrap();
    let tolerance = meta["tolerance"].as_str().unwrap().to_string();
    (config, want.iter().copied().collect(), want.shape().to_vec(), tolerance)
}

#[test]
fn golden_cases_over_http() {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6);
    for name in names {
        let (config, want, shape, tolerance) = golden_config(&name);
        let server = start(pipeline(&config, None), None, ServeOptions::default());
        let body = std::fs::read(golden_dir().join(format!("{name}.wav"))).unwrap();
        let (status, headers, bytes) = post(&server.url("/v1/mel"), "audio/wav", &body);
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&bytes));
        assert_eq!(headers["content-type"], "application/x-npy");
        assert_eq!(headers["x-melkit-backend"], "cpu");
        assert_eq!(headers["x-melkit-arm"], "stable");
        assert!(
            headers["x-melkit-compute-seconds"].to_str().unwrap().parse::<f64>().unwrap() > 0.0
        );
        let (got, got_shape) = npy(&bytes);
        assert_eq!(got_shape, shape, "{name}");
        let r = melkit::compare::compare(&got, &want);
        match tolerance.as_str() {
            "exact" => assert!(r.max_rel <= 1e-5, "{name}: {r}"),
            _ => assert!(r.rel_l2 <= 1e-3, "{name}: {r}"),
        }
    }
}

#[test]
fn raw_pcm_and_json_give_the_same_numbers_as_a_file() {
    let config = Config::default();
    let server = start(pipeline(&config, None), None, ServeOptions::default());
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    let (_, _, from_file) = post(&server.url("/v1/mel"), "audio/wav", &wav);
    let samples: Vec<u8> = wav[44..]
        .chunks_exact(2)
        .flat_map(|b| (f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).to_le_bytes())
        .collect();
    let (status, _, raw) =
        post(&server.url("/v1/mel"), "application/x-f32; rate=4096; channels=1", &samples);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(npy(&raw), npy(&from_file));
    let mut r = agent()
        .post(&server.url("/v1/mel"))
        .header("Content-Type", "application/x-f32; rate=4096; channels=1")
        .header("Accept", "application/json")
        .send(&samples[..])
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(json["shape"], serde_json::json!([40, 2, 64, 17]));
    let values: Vec<f32> =
        json["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(values, npy(&from_file).0);
    let (status, config_json) = get(&server.url("/v1/config"));
    assert_eq!(status, 200);
    assert_eq!(config_json, config.to_json().to_string());
}

#[test]
fn bad_input_gets_its_status_and_reason_and_the_server_stays_ready() {
    let options = ServeOptions { body_limit: 1 << 20, ..ServeOptions::default() };
    let server = start(pipeline(&Config::default(), None), None, options);
    let url = server.url("/v1/mel");
    let reason = |body: &[u8]| -> serde_json::Value { serde_json::from_slice(body).unwrap() };
    let (status, _, body) = post(&url, "text/plain", b"hello");
    assert_eq!(status, 415);
    assert_eq!(reason(&body)["error"], "unsupported_media_type");
    let (status, _, body) = post(&url, "audio/wav", b"RIFF\x10\x00\x00\x00WAVEjunk");
    assert_eq!(status, 400);
    assert_eq!(reason(&body)["error"], "undecodable");
    assert!(!reason(&body)["reason"].as_str().unwrap().is_empty());
    let (status, _, body) = post(&url, "application/x-f32; rate=4096; channels=1", &[0, 0, 0]);
    assert_eq!(status, 400);
    assert_eq!(reason(&body)["reason"], "3 bytes are not whole frames of 1 f32 channels");
    let (status, _, body) = post(&url, "application/x-f32; rate=4096", &f32::NAN.to_le_bytes());
    assert_eq!(
        (status, reason(&body)["reason"].as_str().unwrap()),
        (400, "sample 0 is not finite")
    );
    let (status, _, body) = post(&url, "application/x-f32; rate=3000000; channels=1", &[0u8; 64]);
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert_eq!(reason(&body)["error"], "unprocessable");
    // A body over the limit is answered 413 and the connection closed before the client has
    // sent it all, so the client may see its write fail (a broken pipe) instead of the answer:
    // a transport error is tried again, a wrong answer is not.
    let big = vec![0u8; 2 << 20];
    let mut tries_413 = 0;
    let answer = loop {
        tries_413 += 1;
        let sent = agent().post(&url).header("Content-Type", "audio/wav").send(&big[..]);
        match sent {
            Ok(mut r) => break (r.status().as_u16(), r.body_mut().read_to_vec().unwrap()),
            Err(ureq::Error::Io(e)) if tries_413 < 20 => eprintln!("413 try {tries_413}: {e}"),
            Err(e) => panic!("a body over the limit: {e}"),
        }
    };
    assert_eq!(answer.0, 413);
    assert_eq!(reason(&answer.1)["error"], "body");
    // Thousands of malformed requests leave it ready (its memory is measured in the CLI's
    // test, where the server has a process of its own).
    for i in 0..2000u32 {
        let (status, _, _) = post(&url, "audio/wav", &i.to_le_bytes());
        assert_eq!(status, 400);
    }
    assert_eq!(get(&server.url("/readyz")), (200, "ready\n".into()));
    let (_, metrics) = get(&server.url("/metrics"));
    assert!(metrics.contains("melkit_requests_total{code=\"400\"} 2003"), "{metrics}");
    // Every try the server answered counts, the one the client read at least.
    let answered_413: u32 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("melkit_requests_total{code=\"413\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((1..=tries_413).contains(&answered_413), "{answered_413} of {tries_413}: {metrics}");
    for line in ["{code=\"415\"} 1", "{code=\"422\"} 1"] {
        assert!(metrics.contains(&format!("melkit_requests_total{line}")), "{metrics}");
    }
}

#[test]
fn overload_is_answered_503_at_once_and_metrics_count_it() {
    let config = Config::default();
    let slow = Altered::boxed(&config, 1.0, Duration::from_millis(150));
    let options = ServeOptions { queue: 2, max_batch_longs: 40, ..ServeOptions::default() };
    let server = start(pipeline(&config, Some(slow)), None, options);
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    let url = server.url("/v1/mel");
    let results: Vec<(u16, Duration, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let (status, headers, _) = post(&url, "audio/wav", &wav);
                    let retry = headers.get("retry-after").map(|v| v.to_str().unwrap().to_string());
                    (status, started.elapsed(), retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    let served = results.iter().filter(|r| r.0 == 200).count();
    assert!(!refused.is_empty() && served >= 1, "{results:?}");
    assert_eq!(served + refused.len(), 12, "{results:?}");
    for (_, _, retry) in &refused {
        assert_eq!(retry.as_deref(), Some("1"));
    }
    let (_, metrics) = get(&server.url("/metrics"));
    let line = format!("melkit_rejections_total{{reason=\"queue_full\"}} {}", refused.len());
    assert!(metrics.contains(&line), "{metrics}");
    for name in [
        "melkit_request_duration_seconds_bucket",
        "melkit_compute_duration_seconds_count",
        "melkit_batch_long_segments_sum",
        "melkit_queue_depth",
        "melkit_in_flight",
        "melkit_backend_busy_seconds_total",
        "melkit_backend_busy_ratio",
        "melkit_backend_info{name=\"cpu\"} 1",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
    // Each call served slept 150 ms in the backend.
    let busy = metric(&metrics, "melkit_backend_busy_seconds_total");
    assert!(busy >= 0.15 * served as f64, "{busy} s busy for {served} served");
}

/// The CPU backend, except that it panics on a batch whose first sample is 0.5.
struct Poisoned(Box<dyn Backend>);

impl Backend for Poisoned {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn plan(&self) -> &SegmentPlan {
        self.0.plan()
    }
    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        assert!(batch.longs(self.plan()).next().map(|l| l[0]) != Some(0.5), "poisoned batch");
        self.0.compute(batch, out)
    }
}

#[test]
fn a_panicking_backend_call_is_answered_500_and_the_next_request_is_served() {
    let config = Config::default();
    let poisoned = Box::new(Poisoned(melkit::create_backend(BackendKind::Cpu, &config).unwrap()));
    let server = start(pipeline(&config, Some(poisoned)), None, ServeOptions::default());
    let url = server.url("/v1/mel");
    let raw = |v: f32| (0..4096).flat_map(|_| v.to_le_bytes()).collect::<Vec<u8>>();
    let content_type = "application/x-f32; rate=4096; channels=1";
    let (status, _, body) = post(&url, content_type, &raw(0.5));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["error"].as_str()), (500, Some("internal")));
    let (status, _, body) = post(&url, content_type, &raw(0.25));
    assert_eq!(status, 200);
    assert_eq!(npy(&body).1, [40, 2, 64, 17]);
    assert_eq!(get(&server.url("/readyz")), (200, "ready\n".into()));
    let (_, metrics) = get(&server.url("/metrics"));
    assert_eq!(metric(&metrics, "melkit_rejections_total{reason=\"panic\"}"), 1.0);
}

#[test]
fn a_request_whose_client_has_gone_is_dropped_before_compute() {
    let config = Config::default();
    let slow = Altered::boxed(&config, 1.0, Duration::from_millis(400));
    let server = start(pipeline(&config, Some(slow)), None, ServeOptions::default());
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    let url = server.url("/v1/mel");
    std::thread::scope(|s| {
        // The first request holds the executor; the second's client gives up meanwhile.
        let first = s.spawn(|| post(&url, "audio/wav", &wav).0);
        std::thread::sleep(Duration::from_millis(100));
        let gone = agent()
            .post(&url)
            .header("Content-Type", "audio/wav")
            .config()
            .timeout_global(Some(Duration::from_millis(100)))
            .build()
            .send(&wav[..]);
        assert!(gone.is_err(), "the second client should have timed out");
        assert_eq!(first.join().unwrap(), 200);
    });
    // The executor drops the second request when it takes it, just after answering the first:
    // on a busy machine a metrics read can come in between, so wait (at most 10 s) for it.
    let gone = "melkit_rejections_total{reason=\"client_gone\"}";
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (_, metrics) = get(&server.url("/metrics"));
        if metric(&metrics, gone) >= 1.0 || std::time::Instant::now() > until {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(metric(&metrics, gone), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "melkit_compute_duration_seconds_count"), 1.0, "{metrics}");
}
