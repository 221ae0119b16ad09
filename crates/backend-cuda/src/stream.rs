//! The batches submitted to the CUDA backend as a stream (core's [`Flights`]), each placed on a
//! device and a slot: batch i goes to device i mod D, and at most one batch per device is kept
//! in flight between calls, so a slot is always free again when its turn comes.

use melkit_core::backend::{Done, Job};
use melkit_core::device::flights::Flights;
use melkit_core::error::BackendError;

use crate::engine::Times;

/// A device and one of its two slots.
pub(crate) type Place = (usize, usize);

/// A job's output buffer and times, taken out while its device is waited for.
pub(crate) type Pending = (Vec<f32>, Times);

/// The jobs in flight and where the next one goes.
pub(crate) struct Stream {
    devices: usize,
    next: usize,
    flights: Flights<Place>,
}

impl Stream {
    /// A stream over `devices` devices.
    pub fn new(devices: usize) -> Self {
        Stream { devices: devices.max(1), next: 0, flights: Flights::default() }
    }

    /// Whether no job is in flight.
    pub fn is_idle(&self) -> bool {
        self.flights.is_empty()
    }

    /// The device and slot of the next job.
    pub fn place(&mut self) -> Place {
        let i = self.next;
        self.next = (self.next + 1) % (2 * self.devices);
        (i % self.devices, i / self.devices)
    }

    /// Adds a job and how its start went.
    pub fn push(&mut self, job: Job, place: Place, started: Result<Times, BackendError>) {
        let seq = self.flights.push(job, place);
        match started {
            Ok(times) => {
                if let Some(flight) = self.flights.get(seq) {
                    flight.times = times;
                }
            }
            Err(e) => self.flights.fail(seq, e),
        }
    }

    /// Whether more jobs are in flight than there are devices (the oldest is then given back).
    pub fn over(&self) -> bool {
        self.flights.len() > self.devices
    }

    /// The oldest job: where it runs, and (unless it already failed) its output buffer and
    /// times, taken out to be filled by waiting for the device.
    pub fn oldest(&mut self) -> Option<(Place, Option<Pending>)> {
        let flight = self.flights.oldest()?;
        let pending =
            flight.error.is_none().then(|| (std::mem::take(&mut flight.job.out), flight.times));
        Some((flight.place, pending))
    }

    /// Puts the oldest job's output and times back, with how waiting went, and gives it back.
    pub fn finish_oldest(
        &mut self,
        filled: Option<(Vec<f32>, Times, Result<(), BackendError>)>,
    ) -> Option<Done> {
        if let (Some((out, times, waited)), Some(flight)) = (filled, self.flights.oldest()) {
            flight.job.out = out;
            flight.times = times;
            if let Err(e) = waited {
                flight.error = Some(e);
            }
        }
        self.flights.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_take_devices_in_turn_and_slots_alternate() {
        let mut s = Stream::new(2);
        let places: Vec<_> = (0..5).map(|_| s.place()).collect();
        assert_eq!(places, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 0)]);
        let mut one = Stream::new(1);
        assert_eq!((0..3).map(|_| one.place()).collect::<Vec<_>>(), [(0, 0), (0, 1), (0, 0)]);
        one.push(Job::default(), (0, 0), Ok(Times::default()));
        assert!(!one.over());
        let failed = BackendError::Failed { backend: "cuda", reason: "x".into() };
        one.push(Job::default(), (0, 1), Err(failed));
        assert!(one.over());
        assert_eq!(one.oldest().map(|(p, pending)| (p, pending.is_some())), Some(((0, 0), true)));
        assert!(one.finish_oldest(None).unwrap().1.is_ok());
        // A job that failed to start has nothing to wait for, and comes back with its error.
        assert_eq!(one.oldest().map(|(p, pending)| (p, pending.is_some())), Some(((0, 1), false)));
        assert!(one.finish_oldest(None).unwrap().1.is_err());
        assert!(one.is_idle());
    }
}
