//! The executor: one thread owning the pipelines (the stable arm and the canary's candidate),
//! taking requests from a bounded queue and computing as many as fit a batch in one backend
//! call. A request whose client has gone, or whose deadline has passed, is dropped before
//! compute. A candidate-routed request is computed by both arms and checked (see `canary`); a
//! sample of the served results goes to the reference check (see `verify`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use melkit::{MelTensor, Pipeline};
use tokio::sync::{mpsc, oneshot};

use crate::ServeOptions;
use crate::admission::Admission;
use crate::canary::{Arm, Canary};
use crate::metrics::Metrics;
use crate::verify::Verifier;

/// A request for the executor.
pub(crate) struct Job {
    /// Mono samples at the configured rate.
    pub signal: Vec<f32>,
    /// Its long segments.
    pub longs: usize,
    pub enqueued: Instant,
    pub deadline: Instant,
    pub reply: oneshot::Sender<Reply>,
}

/// What the executor answers.
pub(crate) struct Reply {
    pub result: Result<MelTensor, String>,
    pub arm: Arm,
    pub queue: Duration,
    pub compute: Duration,
}

/// The sending side of the queue, and the executor's thread.
pub(crate) struct Queue {
    sender: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    done: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// Why a request was not queued.
pub(crate) enum Refused {
    /// The queue is full.
    Full,
    /// The service is shutting down.
    Closed,
}

impl Queue {
    /// Queues `job`, or says why not at once.
    pub fn try_send(&self, job: Job) -> Result<(), Refused> {
        let sender = self.sender.lock().ok().and_then(|s| s.clone()).ok_or(Refused::Closed)?;
        sender.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.max_capacity() - s.capacity()))
            .unwrap_or(0)
    }

    /// Closes the queue and waits (at most `grace`) for the executor to finish what it holds.
    pub async fn close(&self, grace: Duration) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = tokio::time::timeout(grace, done).await;
        }
    }
}

/// What the executor computes with.
pub(crate) struct Arms {
    /// The stable arm.
    pub stable: Pipeline,
    /// The canary's candidate.
    pub candidate: Option<Pipeline>,
    /// The canary's judge.
    pub canary: Option<Arc<Canary>>,
    /// The reference check.
    pub verifier: Option<Verifier>,
}

/// Starts the executor thread.
pub(crate) fn start(
    arms: Arms,
    options: &ServeOptions,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
) -> Queue {
    let (tx, rx) = mpsc::channel(options.queue.max(1));
    let (done_tx, done_rx) = oneshot::channel();
    let executor = Executor {
        stable: arms.stable,
        candidate: arms.candidate,
        rx,
        max_longs: options.max_batch_longs.max(1),
        delay: options.max_queue_delay,
        metrics,
        canary: arms.canary,
        verifier: arms.verifier,
        admission,
        carried: None,
    };
    let spawned = std::thread::Builder::new().name("melkit-executor".into()).spawn(move || {
        let mut executor = executor;
        executor.run();
        let _ = done_tx.send(());
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the executor thread: {e}");
    }
    Queue { sender: std::sync::Mutex::new(Some(tx)), done: std::sync::Mutex::new(Some(done_rx)) }
}

struct Executor {
    stable: Pipeline,
    candidate: Option<Pipeline>,
    rx: mpsc::Receiver<Job>,
    max_longs: usize,
    delay: Duration,
    metrics: Arc<Metrics>,
    canary: Option<Arc<Canary>>,
    verifier: Option<Verifier>,
    admission: Arc<Admission>,
    /// A request taken that did not fit the last batch.
    carried: Option<Job>,
}

impl Executor {
    fn run(&mut self) {
        while let Some(batch) = self.next_batch() {
            let now = Instant::now();
            // Requests whose client has gone or whose time is up are not computed.
            for job in &batch {
                self.admission.waited(now - job.enqueued, now);
            }
            let (live, dropped): (Vec<Job>, Vec<Job>) =
                batch.into_iter().partition(|j| !j.reply.is_closed() && j.deadline > now);
            for job in dropped {
                let reason = if job.reply.is_closed() { "client_gone" } else { "deadline" };
                self.metrics.rejected(reason);
                let queue = now - job.enqueued;
                let reply = Reply {
                    result: Err("deadline".into()),
                    arm: Arm::Stable,
                    queue,
                    compute: Duration::ZERO,
                };
                let _ = job.reply.send(reply);
            }
            // A panic in a backend answers its batch 500 (the replies dropped) and the executor
            // goes on with the next one.
            if !live.is_empty() {
                let computed =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compute(live)));
                if computed.is_err() {
                    tracing::error!("a backend call panicked: its requests are answered 500");
                    self.metrics.rejected("panic");
                }
            }
        }
    }

    /// Waits for a request, then takes more while they fit and arrive within the delay.
    fn next_batch(&mut self) -> Option<Vec<Job>> {
        let first = match self.carried.take() {
            Some(job) => job,
            None => self.rx.blocking_recv()?,
        };
        let mut longs = first.longs;
        let mut batch = vec![first];
        let until = Instant::now() + self.delay;
        loop {
            match self.rx.try_recv() {
                Ok(job) if longs + job.longs > self.max_longs => {
                    self.carried = Some(job);
                    break;
                }
                Ok(job) => {
                    longs += job.longs;
                    batch.push(job);
                }
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    fn compute(&mut self, jobs: Vec<Job>) {
        let started = Instant::now();
        let total_longs = jobs.iter().map(|j| j.longs).sum::<usize>().max(1);
        self.metrics.batch_longs.observe(total_longs as f64);
        let signals: Vec<&[f32]> = jobs.iter().map(|j| j.signal.as_slice()).collect();
        let stable = self.stable.process_signals(&signals).map_err(|e| e.to_string());
        let compute = started.elapsed();
        self.metrics.compute_seconds.observe(compute.as_secs_f64());
        self.metrics.busy_seconds.inc_by(compute.as_secs_f64());
        self.admission.computed(jobs.len(), compute);
        // The candidate computes the requests routed to it, and is checked against the stable.
        let routed: Vec<bool> = jobs
            .iter()
            .map(|_| self.candidate.is_some() && self.canary.as_ref().is_some_and(|c| c.route()))
            .collect();
        let mut candidate_results: Vec<Option<(Result<MelTensor, String>, Duration)>> =
            jobs.iter().map(|_| None).collect();
        if let (Some(candidate), true) = (&mut self.candidate, routed.iter().any(|r| *r)) {
            let chosen: Vec<&[f32]> = jobs
                .iter()
                .zip(&routed)
                .filter(|(_, r)| **r)
                .map(|(j, _)| j.signal.as_slice())
                .collect();
            let routed_longs: usize =
                jobs.iter().zip(&routed).filter(|(_, r)| **r).map(|(j, _)| j.longs).sum();
            let started = Instant::now();
            let results = candidate.process_signals(&chosen);
            let took = started.elapsed();
            self.metrics.busy_seconds.inc_by(took.as_secs_f64());
            let took = took / routed_longs.max(1) as u32;
            let mut results = match results {
                Ok(tensors) => tensors.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => chosen.iter().map(|_| Err(e.to_string())).collect(),
            };
            results.reverse();
            for (slot, r) in candidate_results.iter_mut().zip(&routed) {
                if *r {
                    *slot = results.pop().map(|res| (res, took));
                }
            }
        }
        let mut stable = match stable {
            Ok(tensors) => tensors.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
        };
        stable.reverse();
        for (job, candidate) in jobs.into_iter().zip(candidate_results) {
            let Some(result) = stable.pop() else { break };
            let queue = started - job.enqueued;
            self.metrics.queue_seconds.observe(queue.as_secs_f64());
            let (result, arm) = match (candidate, &self.canary) {
                (Some((theirs, took)), Some(canary)) => {
                    canary.judge(result, theirs, (compute / total_longs as u32, took))
                }
                _ => (result, Arm::Stable),
            };
            if let (Some(verifier), Ok(served)) = (&self.verifier, &result)
                && verifier.sample()
            {
                verifier.submit(job.signal, served.clone());
            }
            let _ = job.reply.send(Reply { result, arm, queue, compute });
        }
    }
}
