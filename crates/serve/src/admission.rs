//! Admission with a controlled delay, after CoDel: a burst may fill the queue up to its hard
//! bound, but a standing queue is refused. The executor reports each request's wait in the
//! queue; when the shortest wait over an interval exceeds the target (the queue never emptied),
//! the service is overloaded and a request is admitted only while the wait it would see
//! (requests ahead × the recent compute time of one) stays under the target, until an interval's
//! arrivals ask for less compute than the interval holds. Under a burst the
//! queue drains within the interval and everything up to the hard bound is taken; under a
//! sustained overload the excess is answered 503 at once and the accepted wait stays near the
//! target. A queue full to its bound is an overload at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The admission state the executor updates and the handlers read.
pub(crate) struct Admission {
    target: Duration,
    interval: Duration,
    overloaded: AtomicBool,
    /// Seconds of compute per request, a moving average (f64 bits).
    per_request: AtomicU64,
    /// The current interval: its start and the shortest wait seen in it.
    window: Mutex<(Instant, Duration)>,
    /// Requests that asked for admission in the current interval.
    arrivals: AtomicU64,
}

impl Admission {
    /// Admission aiming at waits under `target`, judged over `interval`.
    pub fn new(target: Duration, interval: Duration) -> Self {
        Admission {
            target,
            interval,
            overloaded: AtomicBool::new(false),
            per_request: AtomicU64::new(0f64.to_bits()),
            window: Mutex::new((Instant::now(), Duration::MAX)),
            arrivals: AtomicU64::new(0),
        }
    }

    /// Whether a request may join a queue of `depth` requests.
    pub fn admits(&self, depth: usize) -> bool {
        self.arrivals.fetch_add(1, Ordering::Relaxed);
        if !self.overloaded.load(Ordering::Relaxed) {
            return true;
        }
        let per_request = f64::from_bits(self.per_request.load(Ordering::Relaxed));
        (depth as f64 + 1.0) * per_request <= self.target.as_secs_f64()
    }

    /// The executor took a request that waited `waited`.
    pub fn waited(&self, waited: Duration, now: Instant) {
        let mut window = self.lock();
        window.1 = window.1.min(waited);
        let elapsed = now.duration_since(window.0);
        if elapsed >= self.interval {
            // The admission holds a standing queue near the target, so its waits say nothing
            // of the load: the overload ends when the arrivals ask for less compute than the
            // interval held.
            let arrivals = self.arrivals.swap(0, Ordering::Relaxed) as f64;
            let per_request = f64::from_bits(self.per_request.load(Ordering::Relaxed));
            let offered = arrivals * per_request / elapsed.as_secs_f64();
            let standing = if self.overloaded() { offered >= 1.0 } else { window.1 > self.target };
            if standing != self.overloaded.swap(standing, Ordering::Relaxed) {
                tracing::info!(standing, shortest = ?window.1, "queue admission");
            }
            *window = (now, Duration::MAX);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Instant, Duration)> {
        self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request found the queue full to its bound: overloaded at once, judged again after a
    /// whole interval.
    pub fn full(&self) {
        if !self.overloaded.swap(true, Ordering::Relaxed) {
            tracing::info!(standing = true, "queue admission: the queue is full");
            *self.lock() = (Instant::now(), Duration::MAX);
            self.arrivals.store(0, Ordering::Relaxed);
        }
    }

    /// The executor computed `requests` requests in `took`.
    pub fn computed(&self, requests: usize, took: Duration) {
        let one = took.as_secs_f64() / requests.max(1) as f64;
        let old = f64::from_bits(self.per_request.load(Ordering::Relaxed));
        let new = if old == 0.0 { one } else { 0.9 * old + 0.1 * one };
        self.per_request.store(new.to_bits(), Ordering::Relaxed);
    }

    /// Whether the queue is standing now.
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_and_a_standing_queue_is_cut_to_the_target() {
        let ms = Duration::from_millis;
        let admission = Admission::new(ms(5), ms(100));
        let start = Instant::now();
        admission.computed(1, ms(1));
        // A burst: long waits, but the queue emptied within the interval.
        admission.waited(ms(30), start);
        admission.waited(Duration::ZERO, start + ms(50));
        admission.waited(ms(20), start + ms(100));
        assert!(!admission.overloaded() && admission.admits(60));
        // A standing queue: no wait under the target for a whole interval.
        admission.waited(ms(20), start + ms(150));
        admission.waited(ms(25), start + ms(200));
        assert!(admission.overloaded());
        assert!(admission.admits(3) && !admission.admits(5) && !admission.admits(60));
        // Held near the target, even with short waits, it stays overloaded while the arrivals
        // ask for more than the time (60 × 1 ms in 50 ms); fewer (30) end it.
        (0..60).for_each(|_| _ = admission.admits(10));
        admission.waited(Duration::ZERO, start + ms(250));
        assert!(admission.overloaded());
        (0..30).for_each(|_| _ = admission.admits(2));
        admission.waited(Duration::ZERO, start + ms(300));
        assert!(!admission.overloaded() && admission.admits(60));
        admission.full();
        assert!(admission.overloaded() && !admission.admits(60));
    }
}
