//! The HTTP side: routes, the `/v1/mel` handler (decode on the blocking pool, admission, the
//! answer as NPY or JSON with the backend, arm and timings in headers), health, readiness,
//! metrics, the configuration, and the loopback-only canary admin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::Service;
use crate::canary::CanaryState;
use crate::decode;
use crate::executor::{Job, Refused};

/// The service's routes.
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.options.body_limit;
    Router::new()
        .route("/v1/mel", post(mel))
        .route("/v1/config", get(config))
        .route("/healthz", get(|| async { "alive\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/admin/canary", get(canary_state))
        .route("/admin/canary/{action}", post(canary_admin))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

/// A JSON error body: `{"error": name, "reason": reason}`.
fn error(status: u16, name: &str, reason: &str) -> Response {
    let body = serde_json::json!({ "error": name, "reason": reason }).to_string();
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Counts the request in flight while it lives.
struct InFlight(Arc<Service>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.dec();
    }
}

async fn mel(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let arrived = Instant::now();
    s.metrics.in_flight.inc();
    let _guard = InFlight(s.clone());
    let response = match body {
        Ok(body) => answer(&s, &headers, body, arrived).await,
        // Over the body limit (413), or a body that could not be read.
        Err(e) => error(e.status().as_u16(), "body", &e.body_text()),
    };
    s.metrics.request_seconds.observe(arrived.elapsed().as_secs_f64());
    s.metrics.answered(response.status().as_u16());
    response
}

async fn answer(s: &Arc<Service>, headers: &HeaderMap, body: Bytes, arrived: Instant) -> Response {
    // While draining, requests are still served until the listener closes (readiness says 503
    // so that load balancers stop sending): a request accepted is a request answered.
    // Admission first: the requests held at once (decoding, queued, computing) are bounded, and
    // so is the memory their bodies and tensors take; beyond, 503 at once.
    let Ok(_held) = s.held.clone().try_acquire_owned() else {
        s.admission.full();
        return overloaded(s);
    };
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let target = s.plan.sample_rate;
    let decoded = if decode::is_plain(content_type.as_deref(), target) {
        Ok(decode::signal(&body, content_type.as_deref(), target))
    } else {
        // Decoding and resampling on the blocking pool, as many at once as there are cores.
        let Ok(permit) = s.decoders.clone().acquire_owned().await else {
            return error(503, "draining", "the service is shutting down");
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            decode::signal(&body, content_type.as_deref(), target)
        })
        .await
    };
    let signal = match decoded {
        Ok(Ok(signal)) => signal,
        Ok(Err(e)) => {
            let (name, reason) = e.parts();
            return error(e.status(), name, reason);
        }
        Err(e) => return error(500, "internal", &e.to_string()),
    };
    let longs = s.plan.n_long(s.plan.fixed_length(signal.len()));
    let (reply, replied) = oneshot::channel();
    let job = Job {
        signal,
        longs,
        enqueued: Instant::now(),
        deadline: arrived + s.options.deadline,
        reply,
    };
    if !s.admission.admits(s.queue.depth()) {
        return overloaded(s);
    }
    match s.queue.try_send(job) {
        Ok(()) => {}
        Err(Refused::Full) => {
            s.admission.full();
            return overloaded(s);
        }
        Err(Refused::Closed) => {
            s.metrics.rejected("draining");
            return error(503, "draining", "the service is shutting down");
        }
    }
    // The executor answers every job it takes, even at shutdown; only a panic drops one.
    let Ok(reply) = replied.await else {
        return error(500, "internal", "the computation failed (a bug: see the server's log)");
    };
    let tensor = match reply.result {
        Ok(t) => t,
        Err(e) if e == "deadline" => {
            return error(504, "deadline", "not computed within the deadline");
        }
        Err(e) => return error(500, "backend", &e),
    };
    let mut response = if json {
        let body =
            serde_json::json!({ "shape": tensor.shape(), "data": tensor.data() }).to_string();
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        let body = axum::body::Body::new(crate::npy::NpyBody::new(tensor));
        ([(header::CONTENT_TYPE, "application/x-npy")], body).into_response()
    };
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-melkit-backend", s.backend.to_string());
    set("x-melkit-arm", reply.arm.name().to_string());
    set("x-melkit-queue-seconds", format!("{:.6}", reply.queue.as_secs_f64()));
    set("x-melkit-compute-seconds", format!("{:.6}", reply.compute.as_secs_f64()));
    response
}

/// 503 with `Retry-After`: the queue is full.
fn overloaded(s: &Service) -> Response {
    s.metrics.rejected("queue_full");
    let mut r = error(503, "overloaded", "the queue is full: retry later");
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

async fn config(State(s): State<Arc<Service>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.config_json.clone()).into_response()
}

async fn ready(State(s): State<Arc<Service>>) -> Response {
    if s.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Service>>) -> Response {
    s.metrics.queue_depth.set(s.queue.depth() as i64);
    s.metrics.queue_standing.set(i64::from(s.admission.overloaded()));
    let content = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content)], s.metrics.encode()).into_response()
}

fn state_json(state: &CanaryState) -> String {
    serde_json::json!({
        "weight": state.weight,
        "phase": state.phase,
        "compared": state.compared,
        "mismatches": state.mismatches,
        "passed_windows": state.passed_windows,
        "failed_windows": state.failed_windows,
        "reason": state.reason,
    })
    .to_string()
}

/// The admin answers only on the loopback interface.
fn loopback(peer: Option<&Extension<ConnectInfo<SocketAddr>>>) -> bool {
    peer.is_some_and(|c| c.0.0.ip().is_loopback())
}

async fn canary_state(
    State(s): State<Arc<Service>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    if !loopback(peer.as_ref()) {
        return error(403, "forbidden", "the admin answers on the loopback interface only");
    }
    match s.canary() {
        Some(state) => {
            ([(header::CONTENT_TYPE, "application/json")], state_json(&state)).into_response()
        }
        None => error(404, "no_canary", "this service runs no canary"),
    }
}

async fn canary_admin(
    State(s): State<Arc<Service>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(action): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !loopback(peer.as_ref()) {
        return error(403, "forbidden", "the admin answers on the loopback interface only");
    }
    let Some(canary) = &s.canary else {
        return error(404, "no_canary", "this service runs no canary");
    };
    let weight = query.get("value").and_then(|v| v.parse::<u8>().ok());
    match canary.admin(&action, weight) {
        Ok(state) => {
            ([(header::CONTENT_TYPE, "application/json")], state_json(&state)).into_response()
        }
        Err(reason) => error(400, "bad_action", &reason),
    }
}
