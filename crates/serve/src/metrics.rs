//! The service's Prometheus metrics (the `prometheus-client` crate), served at `/metrics` in
//! the text format: request, queue and compute durations, batch sizes, queue depth, requests in
//! flight, requests by status, rejections by reason, the canary's weight, comparisons,
//! mismatches and rollbacks, the reference check's samples and mismatches, the backend's busy
//! time and share (on a GPU backend, the device's busy fraction as the host sees it: the time
//! work was submitted to it and not yet done), and the resident memory.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// A status code label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    /// The HTTP status.
    pub code: u16,
}

/// A rejection reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why: `queue_full`, `draining`, `client_gone`, `deadline`, `panic`.
    pub reason: String,
}

/// Every metric, registered.
pub struct Metrics {
    registry: Registry,
    /// Seconds from a request's arrival to its answer.
    pub request_seconds: Histogram,
    /// Seconds a request waited for the executor.
    pub queue_seconds: Histogram,
    /// Seconds of one backend call.
    pub compute_seconds: Histogram,
    /// Long segments per backend call.
    pub batch_longs: Histogram,
    /// Requests waiting for the executor.
    pub queue_depth: Gauge,
    /// 1 while the queue stands above its target (requests that would wait longer refused).
    pub queue_standing: Gauge,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Requests answered, by status.
    pub requests: Family<Status, Counter>,
    /// Requests refused, by reason.
    pub rejections: Family<Reason, Counter>,
    /// The canary's weight, in percent.
    pub canary_weight: Gauge,
    /// Requests both arms computed.
    pub canary_compared: Counter,
    /// Comparisons that disagreed.
    pub canary_mismatches: Counter,
    /// Rollbacks.
    pub canary_rollbacks: Counter,
    /// Results re-checked against the reference backend.
    pub verify_checked: Counter,
    /// Re-checked results that disagreed.
    pub verify_mismatches: Counter,
    /// Samples skipped because the check was behind.
    pub verify_skipped: Counter,
    /// Seconds the executor spent in backend calls.
    pub busy_seconds: Counter<f64, AtomicU64>,
    /// The share of time in backend calls since the last scrape.
    pub busy_ratio: Gauge<f64, AtomicU64>,
    /// Resident memory, in bytes (read when scraped).
    pub resident_bytes: Gauge,
    /// The last scrape: when, and the busy seconds then.
    scraped: Mutex<(Instant, f64)>,
}

impl Metrics {
    /// The metrics of a service on `backend`, registered under `melkit_`.
    pub fn new(backend: &str) -> Self {
        let seconds = || Histogram::new(exponential_buckets(1e-5, 2.0, 22));
        let m = Metrics {
            registry: Registry::with_prefix("melkit"),
            request_seconds: seconds(),
            queue_seconds: seconds(),
            compute_seconds: seconds(),
            batch_longs: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            queue_depth: Gauge::default(),
            queue_standing: Gauge::default(),
            in_flight: Gauge::default(),
            requests: Family::default(),
            rejections: Family::default(),
            canary_weight: Gauge::default(),
            canary_compared: Counter::default(),
            canary_mismatches: Counter::default(),
            canary_rollbacks: Counter::default(),
            verify_checked: Counter::default(),
            verify_mismatches: Counter::default(),
            verify_skipped: Counter::default(),
            busy_seconds: Counter::default(),
            busy_ratio: Gauge::default(),
            resident_bytes: Gauge::default(),
            scraped: Mutex::new((Instant::now(), 0.0)),
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register("request_duration_seconds", "Arrival to answer", m.request_seconds.clone());
        r.register("queue_duration_seconds", "Wait for the executor", m.queue_seconds.clone());
        r.register("compute_duration_seconds", "One backend call", m.compute_seconds.clone());
        r.register("batch_long_segments", "Long segments per backend call", m.batch_longs.clone());
        r.register("queue_depth", "Requests waiting for the executor", m.queue_depth.clone());
        r.register(
            "queue_standing",
            "1 while the queue stands over its target",
            m.queue_standing.clone(),
        );
        r.register("in_flight", "Requests being handled", m.in_flight.clone());
        r.register("requests", "Requests answered, by status", m.requests.clone());
        r.register("rejections", "Requests refused, by reason", m.rejections.clone());
        r.register("canary_weight_percent", "The canary's weight", m.canary_weight.clone());
        r.register("canary_compared", "Requests both arms computed", m.canary_compared.clone());
        r.register("canary_mismatches", "Comparisons that disagreed", m.canary_mismatches.clone());
        r.register("canary_rollbacks", "Canary rollbacks", m.canary_rollbacks.clone());
        r.register(
            "verify_checked",
            "Results re-checked on the reference",
            m.verify_checked.clone(),
        );
        r.register(
            "verify_mismatches",
            "Re-checked results that disagreed",
            m.verify_mismatches.clone(),
        );
        r.register("verify_skipped", "Re-checks skipped (behind)", m.verify_skipped.clone());
        r.register("backend_busy_seconds", "Seconds in backend calls", m.busy_seconds.clone());
        r.register(
            "backend_busy_ratio",
            "Share in backend calls since last scrape",
            m.busy_ratio.clone(),
        );
        r.register("resident_memory_bytes", "Resident memory", m.resident_bytes.clone());
        r.register(
            "backend",
            "The stable arm's backend",
            Info::new(vec![("name", backend.to_string())]),
        );
        // Every reason from zero, so that rates over them are defined before the first refusal.
        for reason in ["queue_full", "draining", "client_gone", "deadline", "panic"] {
            let _ = m.rejections.get_or_create(&Reason { reason: reason.into() });
        }
        m
    }

    /// Counts a refusal.
    pub fn rejected(&self, reason: &str) {
        self.rejections.get_or_create(&Reason { reason: reason.into() }).inc();
    }

    /// Counts an answer.
    pub fn answered(&self, code: u16) {
        self.requests.get_or_create(&Status { code }).inc();
    }

    /// The text format, the resident memory read now.
    pub fn encode(&self) -> String {
        if let Some(bytes) = resident_bytes() {
            self.resident_bytes.set(bytes as i64);
        }
        {
            let mut last = self.scraped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (now, busy) = (Instant::now(), self.busy_seconds.get());
            let wall = now.duration_since(last.0).as_secs_f64();
            if wall > 0.0 {
                self.busy_ratio.set(((busy - last.1) / wall).clamp(0.0, 1.0));
            }
            *last = (now, busy);
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("metrics: {e}");
        }
        text
    }
}

/// This process's resident memory (Linux: `/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
