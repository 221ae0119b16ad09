//! melkit-serve: melkit as a service. `POST /v1/mel` takes an audio file (any format melkit
//! decodes, or raw f32 PCM) and answers its tensor as NPY or JSON. One executor thread owns
//! the backend and batches concurrent requests into one call (a bounded queue, a maximum batch
//! in long segments, an optional maximum queue delay); decoding runs on a bounded blocking pool,
//! off the async workers. A full queue answers 503 at once; bad input gets its own status and
//! reason. `/healthz`, `/readyz`, `/metrics` (Prometheus) and `/v1/config`; SIGTERM drains.
//! With a canary, a share of requests is computed by both arms and the candidate's result is
//! served only when it agrees with the stable one (see [`canary`]).

pub mod canary;
mod decode;
mod executor;
mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use melkit::Pipeline;

pub use canary::{CanaryOptions, CanaryState};
pub use http::router;

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Requests waiting for the executor at most; more are answered 503.
    pub queue: usize,
    /// Long segments in one backend call at most.
    pub max_batch_longs: usize,
    /// How long the executor waits for more requests to fill a batch (0: never).
    pub max_queue_delay: Duration,
    /// Bytes of a request body at most (413 beyond).
    pub body_limit: usize,
    /// A request not computed within this is dropped (504).
    pub deadline: Duration,
    /// Decodes at once at most (the cores the service may use).
    pub decoders: usize,
    /// The canary, if any.
    pub canary: Option<CanaryOptions>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            queue: 256,
            max_batch_longs: 4096,
            max_queue_delay: Duration::ZERO,
            body_limit: 64 << 20,
            deadline: Duration::from_secs(30),
            decoders: std::thread::available_parallelism().map_or(1, |n| n.get()),
            canary: None,
        }
    }
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server failed.
    #[error("server: {0}")]
    Server(String),
}

/// What the handlers share.
pub struct Service {
    pub(crate) options: ServeOptions,
    pub(crate) config_json: String,
    pub(crate) plan: melkit::SegmentPlan,
    pub(crate) backend: &'static str,
    pub(crate) queue: executor::Queue,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) canary: Option<Arc<canary::Canary>>,
    pub(crate) decoders: Arc<tokio::sync::Semaphore>,
    draining: AtomicBool,
    ready: AtomicBool,
}

impl Service {
    /// The service on `stable` (and `candidate`, the canary's arm), its executor started.
    pub fn start(
        stable: Pipeline,
        candidate: Option<Pipeline>,
        options: ServeOptions,
    ) -> Arc<Self> {
        let metrics = Arc::new(metrics::Metrics::new());
        let canary = match (&options.canary, &candidate) {
            (Some(o), Some(_)) => Some(Arc::new(canary::Canary::new(o.clone(), metrics.clone()))),
            _ => None,
        };
        let config_json = stable.config().to_json().to_string();
        let plan = stable.plan().clone();
        let backend = stable.backend_name();
        let queue = executor::start(stable, candidate, &options, metrics.clone(), canary.clone());
        Arc::new(Service {
            decoders: Arc::new(tokio::sync::Semaphore::new(options.decoders.max(1))),
            options,
            config_json,
            plan,
            backend,
            queue,
            metrics,
            canary,
            draining: AtomicBool::new(false),
            ready: AtomicBool::new(true),
        })
    }

    /// Whether it takes requests (warmed up and not draining).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }

    /// Stops taking requests; those accepted still complete.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The canary's state, if there is one.
    pub fn canary(&self) -> Option<CanaryState> {
        self.canary.as_ref().map(|c| c.state())
    }
}

/// Serves `service` on `listener` until `shutdown` resolves; then drains: readiness goes to
/// 503, accepted requests complete, and the server returns within `grace`.
///
/// # Errors
/// The server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServeError> {
    let app = router(service.clone());
    let draining = service.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining");
        draining.drain();
    };
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let served = tokio::spawn(async move { server.await });
    match served.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ServeError::Server(e.to_string())),
        Err(e) => return Err(ServeError::Server(e.to_string())),
    }
    // The executor finishes what it was given.
    service.queue.close(grace).await;
    Ok(())
}
