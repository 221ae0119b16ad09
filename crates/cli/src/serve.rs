//! `melkit serve`: the service (melkit-serve) on a socket, its configuration fixed at start like
//! a deployed model's, with an optional guarded canary; SIGTERM or Ctrl-C drains it (readiness
//! 503 while still accepting for the grace period, then accepted requests finish) and it exits
//! 0 within the shutdown timeout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use melkit::BackendKind;
use melkit_serve::{CanaryOptions, ServeOptions, Service};

use crate::args::{ConfigFlags, parse_backend};
use crate::{Failure, backend, configuration, pipeline, usage};

/// `melkit serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Compute backend.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,
    /// A TOML file of configuration keys (flags given here override it).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Requests waiting for the executor at most, bursts included, besides those being
    /// decoded (503 beyond); it bounds the memory requests hold.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Milliseconds of queue wait to aim at: once the queue stands above it for a whole
    /// --queue-interval-ms, requests that would wait longer are answered 503 at once.
    #[arg(long, default_value_t = 10.0)]
    pub queue_target_ms: f64,
    /// Milliseconds over which a standing queue is judged.
    #[arg(long, default_value_t = 50.0)]
    pub queue_interval_ms: f64,
    /// Long segments in one backend call at most (0: 4096 on a GPU, 8 per worker on the CPU).
    #[arg(long, default_value_t = 0)]
    pub max_batch_longs: usize,
    /// Milliseconds the executor waits to fill a batch (0 on the CPU; a few on a GPU).
    #[arg(long, default_value_t = 0.0)]
    pub max_queue_delay_ms: f64,
    /// Request bodies in MiB at most (413 beyond).
    #[arg(long, default_value_t = 64)]
    pub body_limit_mib: usize,
    /// Seconds a request may wait before it is dropped (504).
    #[arg(long, default_value_t = 30.0)]
    pub deadline_s: f64,
    /// Seconds after SIGTERM during which new connections are still accepted (readiness 503).
    #[arg(long, default_value_t = 5.0)]
    pub grace_s: f64,
    /// Seconds accepted requests have to finish once the listener has closed.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_timeout_s: f64,
    /// The share of served results re-checked against the reference backend, off the request
    /// path (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub verify_fraction: f64,
    /// The canary's backend (its configuration is the stable one's unless --canary-config).
    #[arg(long, value_parser = parse_backend)]
    pub canary_backend: Option<BackendKind>,
    /// The canary's configuration file.
    #[arg(long, value_name = "FILE.toml")]
    pub canary_config: Option<PathBuf>,
    /// The canary's starting weight in percent (the share of requests both arms compute).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub canary_percent: u8,
    /// The weights the canary is promoted through, in percent, after the starting one.
    #[arg(long, default_value = "25,50,100", value_delimiter = ',')]
    pub canary_steps: Vec<u8>,
    /// Compared requests per canary window.
    #[arg(long, default_value_t = 200)]
    pub canary_window: usize,
    /// A window fails when the candidate's P99 exceeds this many times the stable arm's.
    #[arg(long, default_value_t = 1.5)]
    pub canary_margin: f64,
    /// Failed windows before a rollback.
    #[arg(long, default_value_t = 2)]
    pub canary_failed_windows: usize,
    /// Configuration keys (see SPEC §1).
    #[command(flatten)]
    pub keys: ConfigFlags,
}

/// Runs the service until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs) -> Result<u8, Failure> {
    let (config, _) = configuration(args.config.as_deref(), &args.keys)?;
    crate::init_logging(false, config.verbose, config.debug);
    let stable = pipeline(config.clone(), backend(args.backend, &config)?)?;
    let canary = args.canary_backend.is_some() || args.canary_config.is_some();
    let candidate = if canary {
        let (candidate_config, _) = match &args.canary_config {
            Some(file) => configuration(Some(file), &ConfigFlags::default())?,
            None => (config.clone(), Vec::new()),
        };
        let kind = args.canary_backend.unwrap_or(args.backend);
        Some(pipeline(candidate_config.clone(), backend(kind, &candidate_config)?)?)
    } else {
        None
    };
    let precision = melkit::compare::Precision::of_backend(
        candidate.as_ref().map_or("cpu", |c| c.backend_name()),
    );
    let options = ServeOptions {
        queue: args.queue,
        max_batch_longs: args.max_batch_longs,
        max_queue_delay: Duration::from_secs_f64(args.max_queue_delay_ms.max(0.0) / 1e3),
        queue_target: Duration::from_secs_f64(args.queue_target_ms.max(0.0) / 1e3),
        queue_interval: Duration::from_secs_f64(args.queue_interval_ms.max(1.0) / 1e3),
        body_limit: args.body_limit_mib << 20,
        deadline: Duration::from_secs_f64(args.deadline_s.max(0.001)),
        canary: canary.then(|| CanaryOptions {
            steps: std::iter::once(args.canary_percent)
                .chain(args.canary_steps.iter().copied().filter(|w| *w > args.canary_percent))
                .collect(),
            window: args.canary_window,
            margin: args.canary_margin,
            failed_windows: args.canary_failed_windows,
            precision,
        }),
        verify_fraction: args.verify_fraction.clamp(0.0, 1.0),
        grace: Duration::from_secs_f64(args.grace_s.max(0.0)),
        shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout_s.max(0.0)),
        ..ServeOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("melkit-http")
        .build()
        .map_err(|e| Failure(crate::EXIT_FATAL, e.into()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| usage(anyhow::anyhow!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr().map_err(|e| Failure(crate::EXIT_FATAL, e.into()))?;
        let service = Service::start(stable, candidate, options)
            .map_err(|e| Failure(crate::EXIT_FATAL, e.into()))?;
        println!("listening on http://{addr}");
        let signalled = async {
            terminated().await;
            eprintln!("melkit serve: draining");
        };
        let served = melkit_serve::serve(listener, service, signalled);
        match served.await {
            Ok(()) => {
                eprintln!("melkit serve: drained");
                Ok(crate::EXIT_OK)
            }
            Err(e) => Err(Failure(crate::EXIT_FATAL, e.into())),
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
