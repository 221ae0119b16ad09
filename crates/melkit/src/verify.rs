//! The field canary of `melkit run --verify-fraction`: a backend wrapper that recomputes a random
//! fraction of the long segments on the reference backend and fails, or falls back, when the
//! fast backend's numbers leave SPEC §2's tolerance.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use melkit_core::compare::{Precision, Tolerance, ToleranceClass};
use melkit_core::{
    Backend, BackendError, Config, Done, Job, ReferenceBackend, SegmentPlan, SignalBatch,
    StepTimings,
};

/// What to do when a checked segment diverges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMismatch {
    /// Fail the batch and every later one: nothing computed by a broken backend is written.
    Fail,
    /// Recompute the batch, and every later one, on the fallback backend.
    Fallback,
}

impl OnMismatch {
    /// Parses `fail` or `fallback`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fail" => Some(OnMismatch::Fail),
            "fallback" => Some(OnMismatch::Fallback),
            _ => None,
        }
    }
}

/// What the canary saw, shared with the caller while the run goes on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyStats {
    /// Long segments recomputed on the reference backend.
    pub checked: u64,
    /// Long segments the fast backend computed.
    pub computed: u64,
    /// The largest error seen, `max|a-b| / max|b|` over one long segment.
    pub max_error: f64,
    /// The first mismatch, as reported.
    pub mismatch: Option<String>,
    /// Batches recomputed on the fallback backend.
    pub fallback_batches: u64,
}

/// A backend whose output is spot-checked against the reference backend.
pub struct Verified {
    inner: Box<dyn Backend>,
    reference: ReferenceBackend,
    fallback: Option<Box<dyn Backend>>,
    policy: OnMismatch,
    fraction: f64,
    bound: f64,
    floor: f32,
    rng: u64,
    tripped: bool,
    /// Batches given back by the backends and not yet to the caller, oldest first.
    ready: VecDeque<Done>,
    stats: Arc<Mutex<VerifyStats>>,
}

impl Verified {
    /// Wraps `inner` (built for `config`): each long segment is checked with probability
    /// `fraction` (at least one per batch), drawn from `seed`. `fallback` computes instead of
    /// `inner` after a mismatch under [`OnMismatch::Fallback`].
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(
        inner: Box<dyn Backend>,
        config: &Config,
        fraction: f64,
        policy: OnMismatch,
        fallback: Option<Box<dyn Backend>>,
        seed: u64,
    ) -> Result<Self, BackendError> {
        let precision = Precision::of_backend(inner.name());
        // Values below `amin` are below the dB floor: no error relative to them means anything.
        let floor = if config.power == 1.0 { config.amin.sqrt() } else { config.amin } as f32;
        Ok(Verified {
            reference: ReferenceBackend::new(config)?,
            inner,
            fallback,
            policy,
            fraction: fraction.clamp(0.0, 1.0),
            bound: Tolerance { class: ToleranceClass::Exact, precision }.bound(),
            floor,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            tripped: false,
            ready: VecDeque::new(),
            stats: Arc::default(),
        })
    }

    /// The canary's counts, readable while and after the pipeline runs.
    pub fn stats(&self) -> Arc<Mutex<VerifyStats>> {
        Arc::clone(&self.stats)
    }

    fn next_unit(&mut self) -> f64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The long segments of a batch to check: each with probability `fraction`, at least one.
    fn pick(&mut self, n_long: usize) -> Vec<usize> {
        let mut picked: Vec<usize> =
            (0..n_long).filter(|_| self.next_unit() < self.fraction).collect();
        if picked.is_empty() && n_long > 0 && self.fraction > 0.0 {
            picked.push(((self.next_unit() * n_long as f64) as usize).min(n_long - 1));
        }
        picked
    }

    /// Checks `out` (the fast backend's output of `batch`); the mismatch, if any.
    fn check(&mut self, batch: &SignalBatch, out: &[f32]) -> Result<Option<String>, BackendError> {
        let picked = self.pick(batch.n_long());
        let plan = self.reference.plan().clone();
        let mut sub = SignalBatch::new();
        for &i in &picked {
            sub.push_prepared(&plan, batch.long(&plan, i), 1);
        }
        let mut expected = vec![0.0; sub.output_len(&plan)];
        self.reference.compute(&sub, &mut expected)?;
        let per = plan.long_output_len();
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.checked += picked.len() as u64;
        stats.computed += batch.n_long() as u64;
        for (k, &i) in picked.iter().enumerate() {
            let got = &out[i * per..(i + 1) * per];
            let want = &expected[k * per..(k + 1) * per];
            let error = segment_error(got, want, self.floor);
            stats.max_error = stats.max_error.max(error);
            if error > self.bound || error.is_nan() {
                let reason = format!(
                    "verification failed: backend {} differs from the reference on a checked \
                     long segment by {error:.3e} (max|a-b|/max|b|), beyond the tolerance {:.0e}",
                    self.inner.name(),
                    self.bound
                );
                stats.mismatch.get_or_insert_with(|| reason.clone());
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// Applies the canary to `batch`, which the fast backend computed into `out` with
    /// `result`: it is checked; after a mismatch it is recomputed on the fallback, or failed.
    fn settle(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
        result: Result<StepTimings, BackendError>,
    ) -> Result<StepTimings, BackendError> {
        if self.tripped {
            return self.after_mismatch(batch, out, None);
        }
        let steps = result?;
        match self.check(batch, out)? {
            None => Ok(steps),
            Some(reason) => {
                self.tripped = true;
                tracing::error!("{reason}");
                self.after_mismatch(batch, out, Some(reason))
            }
        }
    }

    /// [`settle`](Self::settle) for a batch given back by the fast backend.
    fn verify(&mut self, done: Done) -> Done {
        let (mut job, result) = done;
        job.out.resize(job.batch.output_len(self.inner.plan()), 0.0);
        let result = self.settle(&job.batch, &mut job.out, result);
        (job, result)
    }

    /// A batch computed after (or by) a mismatch: recomputed on the fallback, or failed.
    fn after_mismatch(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
        reason: Option<String>,
    ) -> Result<StepTimings, BackendError> {
        match (self.policy, &mut self.fallback) {
            (OnMismatch::Fallback, Some(fallback)) => {
                if reason.is_some() {
                    tracing::warn!(
                        "falling back to backend {} for the rest of the run",
                        fallback.name()
                    );
                }
                self.stats.lock().unwrap_or_else(PoisonError::into_inner).fallback_batches += 1;
                fallback.compute(batch, out)
            }
            _ => {
                let reason = reason.unwrap_or_else(|| {
                    let stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
                    stats.mismatch.clone().unwrap_or_default()
                });
                Err(BackendError::Failed { backend: self.inner.name(), reason })
            }
        }
    }

    /// Whether batches now go to the fallback.
    fn on_fallback(&self) -> bool {
        self.tripped && self.policy == OnMismatch::Fallback && self.fallback.is_some()
    }
}

/// The canary's statistics, shared with the caller while the run goes on.
pub type SharedStats = Arc<Mutex<VerifyStats>>;

/// The canary of a run: `fast` wrapped so that a `fraction` of its long segments is checked
/// against the reference backend, with the fallback `policy` needs (the CPU backend, or the
/// reference when the CPU backend is the one checked), seeded from the clock. Returns the
/// wrapped backend and the statistics it keeps while the run goes on.
///
/// # Errors
/// The configuration's first invalid key, or a fallback backend that cannot start.
pub fn canary(
    fast: Box<dyn Backend>,
    config: &Config,
    fraction: f64,
    policy: OnMismatch,
) -> Result<(Box<dyn Backend>, SharedStats), BackendError> {
    let fallback = match policy {
        OnMismatch::Fail => None,
        OnMismatch::Fallback => {
            let kind = if fast.name() == "cpu" {
                crate::BackendKind::Reference
            } else {
                crate::BackendKind::Cpu
            };
            Some(crate::create_backend(kind, config)?)
        }
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let wrapped = Verified::new(fast, config, fraction, policy, fallback, seed)?;
    let stats = wrapped.stats();
    Ok((Box::new(wrapped), stats))
}

/// `max|a-b| / max(max|b|, floor)` over one long segment (NaN anywhere: infinite).
fn segment_error(got: &[f32], want: &[f32], floor: f32) -> f64 {
    let (mut diff, mut max) = (0f64, f64::from(floor));
    for (&a, &b) in got.iter().zip(want) {
        let d = (f64::from(a) - f64::from(b)).abs();
        diff = if d.is_nan() { f64::INFINITY } else { diff.max(d) };
        max = max.max(f64::from(b).abs());
    }
    diff / max
}

impl Backend for Verified {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn plan(&self) -> &SegmentPlan {
        self.inner.plan()
    }

    fn on_device(&self) -> bool {
        self.inner.on_device()
    }

    fn device_memory(&self) -> Option<u64> {
        self.inner.device_memory()
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        let result =
            if self.tripped { Ok(StepTimings::default()) } else { self.inner.compute(batch, out) };
        self.settle(batch, out, result)
    }

    fn compute_here(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        let result = match self.tripped {
            true => Ok(StepTimings::default()),
            false => self.inner.compute_here(batch, out),
        };
        self.settle(batch, out, result)
    }

    fn submit(&mut self, job: Job) -> Option<Done> {
        if self.on_fallback() {
            // Batches still in the fast backend come back first, in order.
            while let Some(old) = self.inner.flush() {
                let done = self.verify(old);
                self.ready.push_back(done);
            }
            let done = self.verify((job, Ok(StepTimings::default())));
            self.ready.push_back(done);
        } else if let Some(done) = self.inner.submit(job) {
            let done = self.verify(done);
            self.ready.push_back(done);
        }
        self.ready.pop_front()
    }

    fn flush(&mut self) -> Option<Done> {
        if let Some(done) = self.ready.pop_front() {
            return Some(done);
        }
        let done = self.inner.flush()?;
        Some(self.verify(done))
    }
}
