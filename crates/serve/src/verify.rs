//! The reference check, off the request path: a share of the served results (every request
//! adds the fraction to a credit; one is sampled each time it reaches 1) is handed, already
//! answered, to a thread that recomputes it on the reference backend and compares within
//! SPEC §2's bounds, like `melkit run --verify-fraction`. A full hand-off queue skips the check
//! (counted) rather than slowing a request; a mismatch is logged and counted.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use melkit::compare::{Precision, Tolerance, ToleranceClass, compare};
use melkit::{MelTensor, Pipeline};

use crate::metrics::Metrics;

/// Results waiting for the check at most; more are skipped.
const WAITING: usize = 4;

/// A served result and the signal it came from.
type Sample = (Vec<f32>, MelTensor);

/// The handle the executor samples through.
#[derive(Clone)]
pub(crate) struct Verifier {
    sender: Arc<Mutex<Option<SyncSender<Sample>>>>,
    fraction: f64,
    credit: Arc<Mutex<f64>>,
    metrics: Arc<Metrics>,
}

impl Verifier {
    /// Starts the checking thread on `reference`, holding results to `precision`.
    pub fn start(
        reference: Pipeline,
        precision: Precision,
        fraction: f64,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let (sender, receiver) = sync_channel(WAITING);
        let checking = metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("melkit-verify".into())
            .spawn(move || check(reference, precision, &receiver, &checking));
        if let Err(e) = spawned {
            tracing::error!("cannot start the reference check's thread: {e}");
        }
        Verifier {
            sender: Arc::new(Mutex::new(Some(sender))),
            fraction: fraction.clamp(0.0, 1.0),
            credit: Arc::new(Mutex::new(0.0)),
            metrics: metrics.clone(),
        }
    }

    /// Whether the next served result is checked.
    pub fn sample(&self) -> bool {
        let mut credit = self.credit.lock().unwrap_or_else(PoisonError::into_inner);
        *credit += self.fraction;
        if *credit >= 1.0 {
            *credit -= 1.0;
            true
        } else {
            false
        }
    }

    /// Hands a served result to the check, or skips it when the check is behind.
    pub fn submit(&self, signal: Vec<f32>, served: MelTensor) {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else { return };
        match sender.try_send((signal, served)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.verify_skipped.inc();
            }
        }
    }

    /// Stops the thread once it has checked what it holds.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

fn check(
    mut reference: Pipeline,
    precision: Precision,
    receiver: &Receiver<Sample>,
    metrics: &Metrics,
) {
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision };
    while let Ok((signal, served)) = receiver.recv() {
        let expected = match reference.process_signals(&[&signal]) {
            Ok(mut tensors) if tensors.len() == 1 => tensors.remove(0),
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("the reference check could not compute a sample: {e}");
                metrics.verify_skipped.inc();
                continue;
            }
        };
        let report = compare(served.data(), expected.data());
        metrics.verify_checked.inc();
        if served.shape() != expected.shape() || !tolerance.passes(&report) {
            metrics.verify_mismatches.inc();
            tracing::error!(
                "a served result disagrees with the reference backend: {report} (shape {:?} \
                 against {:?})",
                served.shape(),
                expected.shape()
            );
        }
    }
}
