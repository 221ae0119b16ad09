//! melkit-serve: melkit as a service. `POST /v1/mel` takes an audio file (any format melkit
//! decodes, or raw f32 PCM) and answers its tensor as NPY or JSON. One executor thread owns
//! the backend and batches concurrent requests into one call (a bounded queue, a maximum batch
//! in long segments, an optional maximum queue delay); decoding runs on a bounded blocking pool,
//! off the async workers. A full queue answers 503 at once; bad input gets its own status and
//! reason. `/healthz`, `/readyz`, `/metrics` (Prometheus) and `/v1/config`; SIGTERM drains.
//! With a canary, a share of requests is computed by both arms and the candidate's result is
//! served only when it agrees with the stable one (see [`canary`]); a sample of the served
//! results is re-checked against the reference backend off the request path (see `verify`).

mod admission;
pub mod canary;
mod decode;
mod executor;
mod http;
pub mod metrics;
mod npy;
mod verify;

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
    /// Requests waiting for the executor at most (besides those being decoded), bursts
    /// included; more are answered 503. It bounds the memory requests hold.
    pub queue: usize,
    /// The wait in the queue to aim at: once the queue stands above it for a whole
    /// `queue_interval`, requests that would wait longer are answered 503 (see `admission`).
    pub queue_target: Duration,
    /// The interval over which a standing queue is judged.
    pub queue_interval: Duration,
    /// Long segments in one backend call at most (a request longer still goes alone); 0:
    /// 4096 on a device, and on the host 8 per worker, enough to keep every worker busy (a
    /// batch is answered when it is all computed, and on the host a larger one gains nothing).
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
    /// The share of served results re-checked against the reference backend (0: none).
    pub verify_fraction: f64,
    /// After the shutdown signal, how long new connections are still accepted (readiness
    /// answering 503 meanwhile, so that load balancers move away first).
    pub grace: Duration,
    /// After the grace period, how long accepted requests have to complete.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            queue: 64,
            queue_target: Duration::from_millis(10),
            queue_interval: Duration::from_millis(50),
            max_batch_longs: 0,
            max_queue_delay: Duration::ZERO,
            body_limit: 64 << 20,
            deadline: Duration::from_secs(30),
            decoders: std::thread::available_parallelism().map_or(1, |n| n.get()),
            canary: None,
            verify_fraction: 0.0,
            grace: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
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
    /// The reference backend of `verify_fraction` could not be made.
    #[error("the reference check: {0}")]
    Reference(String),
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
    /// Requests held at once: the queue's and the decoders' (see `http::answer`).
    pub(crate) held: Arc<tokio::sync::Semaphore>,
    /// The controlled-delay admission the executor feeds.
    pub(crate) admission: Arc<admission::Admission>,
    verifier: Option<verify::Verifier>,
    draining: AtomicBool,
    ready: AtomicBool,
}

impl Service {
    /// The service on `stable` (and `candidate`, the canary's arm), its executor started (and,
    /// with `verify_fraction`, the reference check's thread).
    ///
    /// # Errors
    /// The reference backend cannot be made for the stable arm's configuration.
    pub fn start(
        stable: Pipeline,
        candidate: Option<Pipeline>,
        options: ServeOptions,
    ) -> Result<Arc<Self>, ServeError> {
        let metrics = Arc::new(metrics::Metrics::new(stable.backend_name()));
        let verifier = if options.verify_fraction > 0.0 {
            let reference = Pipeline::new(stable.config().clone(), melkit::BackendKind::Reference)
                .map_err(|e| ServeError::Reference(e.to_string()))?;
            let precision = melkit::compare::Precision::of_backend(stable.backend_name());
            Some(verify::Verifier::start(reference, precision, options.verify_fraction, &metrics))
        } else {
            None
        };
        let canary = match (&options.canary, &candidate) {
            (Some(o), Some(_)) => Some(Arc::new(canary::Canary::new(o.clone(), metrics.clone()))),
            _ => None,
        };
        let config_json = stable.config().to_json().to_string();
        let plan = stable.plan().clone();
        let backend = stable.backend_name();
        let mut options = options;
        if options.max_batch_longs == 0 {
            options.max_batch_longs =
                if stable.on_device() { 4096 } else { 8 * stable.workers().max(1) };
        }
        let admission =
            Arc::new(admission::Admission::new(options.queue_target, options.queue_interval));
        let arms = executor::Arms {
            stable,
            candidate,
            canary: canary.clone(),
            verifier: verifier.clone(),
        };
        let queue = executor::start(arms, &options, metrics.clone(), admission.clone());
        Ok(Arc::new(Service {
            decoders: Arc::new(tokio::sync::Semaphore::new(options.decoders.max(1))),
            held: Arc::new(tokio::sync::Semaphore::new(
                options.queue.max(1) + options.decoders.max(1),
            )),
            admission,
            options,
            config_json,
            plan,
            backend,
            queue,
            metrics,
            canary,
            verifier,
            draining: AtomicBool::new(false),
            ready: AtomicBool::new(true),
        }))
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
/// 503 while new connections are still accepted for the grace period, then the listener
/// closes, accepted requests complete (within the shutdown timeout) and the server returns.
///
/// # Errors
/// The server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(service.clone());
    let draining = service.clone();
    let signalled = Arc::new(tokio::sync::Notify::new());
    let notify = signalled.clone();
    let signal = async move {
        shutdown.await;
        notify.notify_one();
        draining.drain();
        tracing::info!(grace = ?draining.options.grace, "shutting down: not ready, still accepting");
        tokio::time::sleep(draining.options.grace).await;
        tracing::info!("shutting down: listener closed, finishing accepted requests");
    };
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let served = tokio::spawn(async move { server.await });
    // From the signal, the whole drain takes the grace period and the shutdown timeout at most.
    let limit = service.options.grace + service.options.shutdown_timeout;
    let overdue = async move {
        signalled.notified().await;
        tokio::time::sleep(limit).await;
    };
    tokio::select! {
        done = served => match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ServeError::Server(e.to_string())),
            Err(e) => return Err(ServeError::Server(e.to_string())),
        },
        () = overdue => {
            tracing::warn!("connections still open after the shutdown timeout: closing them");
            return Ok(());
        }
    }
    // The executor finishes what it was given; the reference check stops.
    service.queue.close(service.options.shutdown_timeout).await;
    if let Some(v) = &service.verifier {
        v.close();
    }
    Ok(())
}
