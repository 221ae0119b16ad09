//! Helpers of the service tests: a service on a free loopback port in its own runtime, an HTTP
//! client that hands back every status, backends made wrong or slow on purpose.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use melkit::{
    Backend, BackendError, BackendKind, Config, Pipeline, SegmentPlan, SignalBatch, StepTimings,
};
use melkit_serve::{ServeOptions, Service};

/// The golden cases' folder.
pub fn golden_dir() -> PathBuf {
    match std::env::var("MELKIT_GOLDEN_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    }
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    /// The service (the canary tests read its state; the others need only the address).
    pub service: Arc<Service>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `stable` (and `candidate`) with `options` (no grace period: the tests stop it at once;
/// the CLI's SIGTERM test covers the grace period).
pub fn start(stable: Pipeline, candidate: Option<Pipeline>, options: ServeOptions) -> Running {
    let options = ServeOptions { grace: Duration::ZERO, ..options };
    let service = Service::start(stable, candidate, options).unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = service.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let shutdown = async move {
                let _ = stopped.await;
            };
            melkit_serve::serve(listener, served, shutdown).await.unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    Running { addr, service, stop: Some(stop), thread: Some(thread) }
}

/// A pipeline for `config` on the CPU backend (or `backend`).
pub fn pipeline(config: &Config, backend: Option<Box<dyn Backend>>) -> Pipeline {
    match backend {
        Some(b) => Pipeline::with_backend(config.clone(), b).unwrap(),
        None => Pipeline::new(config.clone(), BackendKind::Cpu).unwrap(),
    }
}

/// An agent that returns every status as a response.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A POST of `body` with `content_type`: status, headers, body.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut r = agent().post(url).header("Content-Type", content_type).send(body).unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
    (status, headers, body)
}

/// A GET: status and body as text.
pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// The value of the sample `name` (with its labels, if any) in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.split_once(' ').is_some_and(|(n, _)| n == name));
    let value = line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("{name} missing: {text}"))
}

/// An NPY body's values and shape.
pub fn npy(bytes: &[u8]) -> (Vec<f32>, Vec<usize>) {
    let a: ndarray::ArrayD<f32> = ndarray_npy::ReadNpyExt::read_npy(bytes).unwrap();
    (a.iter().copied().collect(), a.shape().to_vec())
}

/// The CPU backend, its results scaled by `factor` and each call delayed by `delay`.
pub struct Altered {
    inner: Box<dyn Backend>,
    factor: f32,
    delay: Duration,
}

impl Altered {
    /// The altered backend for `config`.
    pub fn boxed(config: &Config, factor: f32, delay: Duration) -> Box<dyn Backend> {
        let inner = melkit::create_backend(BackendKind::Cpu, config).unwrap();
        Box::new(Altered { inner, factor, delay })
    }
}

impl Backend for Altered {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn plan(&self) -> &SegmentPlan {
        self.inner.plan()
    }
    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        std::thread::sleep(self.delay);
        let steps = self.inner.compute(batch, out)?;
        out.iter_mut().for_each(|v| *v *= self.factor);
        Ok(steps)
    }
}
