//! The guarded canary. A share of requests (the weight, in percent) is computed by both arms;
//! the candidate's result is served only when it agrees with the stable one within SPEC §2's
//! bounds, else the stable result is served and the candidate is rolled back at once. Every
//! `window` compared requests, the arms' latency (per long segment) and errors are judged: a
//! candidate whose P99 exceeds the stable arm's by the margin, or that failed more often, fails
//! the window, and after `failed_windows` such windows it is rolled back; a passed window
//! promotes it to the next step of `steps`, the last being 100 %.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use melkit::MelTensor;
use melkit::compare::{Precision, Tolerance, ToleranceClass, compare};

use crate::metrics::Metrics;

/// How the canary goes.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryOptions {
    /// The weights the candidate goes through, in percent (the first is where it starts).
    pub steps: Vec<u8>,
    /// Compared requests per window.
    pub window: usize,
    /// A window fails when the candidate's P99 exceeds `margin` × the stable arm's.
    pub margin: f64,
    /// Failed windows before a rollback.
    pub failed_windows: usize,
    /// The precision the candidate is held to (SPEC §2: CPU 1e-5, GPU 1e-4 of the maximum).
    pub precision: Precision,
}

impl Default for CanaryOptions {
    fn default() -> Self {
        CanaryOptions {
            steps: vec![10, 25, 50, 100],
            window: 200,
            margin: 1.5,
            failed_windows: 2,
            precision: Precision::Gpu,
        }
    }
}

/// Which arm served a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The stable arm.
    Stable,
    /// The candidate.
    Candidate,
}

impl Arm {
    /// The arm's name, as the `x-melkit-arm` header gives it.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Stable => "stable",
            Arm::Candidate => "candidate",
        }
    }
}

/// The canary as the admin endpoint shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryState {
    /// The candidate's weight, in percent.
    pub weight: u8,
    /// `progressing`, `promoted` or `rolled_back`.
    pub phase: &'static str,
    /// Requests both arms computed.
    pub compared: u64,
    /// Results that disagreed.
    pub mismatches: u64,
    /// Windows passed and failed.
    pub passed_windows: usize,
    /// Windows failed.
    pub failed_windows: usize,
    /// Why it was rolled back.
    pub reason: Option<String>,
}

struct Inner {
    state: CanaryState,
    step: usize,
    /// Routing: a request goes to the candidate each time this passes 100.
    credit: u32,
    /// The window: per arm, seconds per long segment; candidate errors.
    stable: Vec<f64>,
    candidate: Vec<f64>,
    errors: usize,
}

/// The canary (see the module documentation).
pub struct Canary {
    options: CanaryOptions,
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
}

fn p99(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 * 0.99).ceil() as usize).clamp(1, values.len().max(1)) - 1;
    values.get(at).copied().unwrap_or(0.0)
}

impl Canary {
    /// A canary at its first step.
    pub fn new(options: CanaryOptions, metrics: Arc<Metrics>) -> Self {
        let weight = options.steps.first().copied().unwrap_or(0).min(100);
        let state = CanaryState {
            weight,
            phase: "progressing",
            compared: 0,
            mismatches: 0,
            passed_windows: 0,
            failed_windows: 0,
            reason: None,
        };
        metrics.canary_weight.set(i64::from(weight));
        let inner = Inner {
            state,
            step: 0,
            credit: 0,
            stable: Vec::new(),
            candidate: Vec::new(),
            errors: 0,
        };
        Canary { options, inner: Mutex::new(inner), metrics }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state now.
    pub fn state(&self) -> CanaryState {
        self.lock().state.clone()
    }

    /// Whether the next request goes to both arms.
    pub fn route(&self) -> bool {
        let mut inner = self.lock();
        inner.credit += u32::from(inner.state.weight);
        if inner.credit >= 100 {
            inner.credit -= 100;
            true
        } else {
            false
        }
    }

    /// The result to serve for a request both arms computed, `times` their seconds per long
    /// segment (stable, candidate).
    pub fn judge(
        &self,
        stable: Result<MelTensor, String>,
        candidate: Result<MelTensor, String>,
        times: (Duration, Duration),
    ) -> (Result<MelTensor, String>, Arm) {
        let Ok(stable) = stable else { return (stable, Arm::Stable) };
        let mut inner = self.lock();
        if inner.state.phase == "rolled_back" {
            return (Ok(stable), Arm::Stable);
        }
        inner.state.compared += 1;
        self.metrics.canary_compared.inc();
        let served = match candidate {
            Ok(theirs) => {
                let report = compare(theirs.data(), stable.data());
                let tolerance =
                    Tolerance { class: ToleranceClass::Exact, precision: self.options.precision };
                if theirs.shape() == stable.shape() && tolerance.passes(&report) {
                    (Ok(theirs), Arm::Candidate)
                } else {
                    inner.state.mismatches += 1;
                    self.metrics.canary_mismatches.inc();
                    let reason = format!("results disagree: {report}");
                    self.roll_back(&mut inner, reason);
                    return (Ok(stable), Arm::Stable);
                }
            }
            Err(e) => {
                inner.errors += 1;
                tracing::warn!("canary candidate failed: {e}");
                (Ok(stable), Arm::Stable)
            }
        };
        inner.stable.push(times.0.as_secs_f64());
        inner.candidate.push(times.1.as_secs_f64());
        if inner.stable.len() >= self.options.window.max(1) {
            self.close_window(&mut inner);
        }
        served
    }

    fn close_window(&self, inner: &mut Inner) {
        let (stable, candidate) = (p99(&mut inner.stable), p99(&mut inner.candidate));
        let errors = inner.errors;
        inner.stable.clear();
        inner.candidate.clear();
        inner.errors = 0;
        if candidate > stable * self.options.margin || errors > 0 {
            inner.state.failed_windows += 1;
            tracing::warn!(stable, candidate, errors, "canary window failed");
            if inner.state.failed_windows >= self.options.failed_windows.max(1) {
                let reason = format!(
                    "{} failed windows (last: P99 {candidate:.3e} s against {stable:.3e} s per \
                     long segment, {errors} errors)",
                    inner.state.failed_windows
                );
                self.roll_back(inner, reason);
            }
            return;
        }
        inner.state.passed_windows += 1;
        if inner.state.weight >= 100 {
            inner.state.phase = "promoted";
            return;
        }
        inner.step = (inner.step + 1).min(self.options.steps.len().saturating_sub(1));
        let next = self.options.steps.get(inner.step).copied().unwrap_or(100).min(100);
        self.set_weight(inner, next.max(inner.state.weight));
    }

    fn set_weight(&self, inner: &mut Inner, weight: u8) {
        inner.state.weight = weight;
        self.metrics.canary_weight.set(i64::from(weight));
        tracing::info!(weight, "canary weight");
    }

    fn roll_back(&self, inner: &mut Inner, reason: String) {
        tracing::error!("canary rolled back: {reason}");
        inner.state.phase = "rolled_back";
        inner.state.reason = Some(reason);
        self.set_weight(inner, 0);
        self.metrics.canary_rollbacks.inc();
    }

    /// The admin's promotion to the next step (or `weight`), or abort.
    pub fn admin(&self, action: &str, weight: Option<u8>) -> Result<CanaryState, String> {
        let mut inner = self.lock();
        match (action, weight) {
            ("abort", _) => self.roll_back(&mut inner, "aborted by the admin".into()),
            ("promote", _) => {
                let next = self.options.steps.iter().copied().find(|w| *w > inner.state.weight);
                self.set_weight(&mut inner, next.unwrap_or(100).min(100));
                if inner.state.weight == 100 {
                    inner.state.phase = "promoted";
                }
            }
            ("weight", Some(w)) if w <= 100 => {
                inner.state.phase = if w == 100 { "promoted" } else { "progressing" };
                inner.state.reason = None;
                self.set_weight(&mut inner, w);
            }
            _ => return Err(format!("unknown action `{action}` (promote, abort, weight=0..100)")),
        }
        Ok(inner.state.clone())
    }
}
