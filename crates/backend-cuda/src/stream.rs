//! The batches submitted to the CUDA backend as a stream: which device and slot each is on, in
//! submission order. Batch i goes to device i mod D, and at most one batch per device is kept in
//! flight between calls, so a slot is always free again when its turn comes.

use std::collections::VecDeque;

use melkit_core::backend::Job;
use melkit_core::error::BackendError;

use crate::engine::Times;

/// A job in flight: its device, its slot, and how its start went.
pub(crate) type Flight = (Job, usize, usize, Result<Times, BackendError>);

/// The jobs in flight.
pub(crate) struct Stream {
    devices: usize,
    next: usize,
    flights: VecDeque<Flight>,
}

impl Stream {
    /// A stream over `devices` devices.
    pub fn new(devices: usize) -> Self {
        Stream { devices: devices.max(1), next: 0, flights: VecDeque::new() }
    }

    /// Whether no job is in flight.
    pub fn is_idle(&self) -> bool {
        self.flights.is_empty()
    }

    /// The device and slot of the next job.
    pub fn place(&mut self) -> (usize, usize) {
        let i = self.next;
        self.next = (self.next + 1) % (2 * self.devices);
        (i % self.devices, i / self.devices)
    }

    /// Adds a started job.
    pub fn push(
        &mut self,
        job: Job,
        device: usize,
        slot: usize,
        started: Result<Times, BackendError>,
    ) {
        self.flights.push_back((job, device, slot, started));
    }

    /// Whether more jobs are in flight than there are devices (the oldest is then given back).
    pub fn over(&self) -> bool {
        self.flights.len() > self.devices
    }

    /// The oldest job.
    pub fn pop(&mut self) -> Option<Flight> {
        self.flights.pop_front()
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
        one.push(Job::default(), 0, 0, Ok(Times::default()));
        assert!(!one.over());
        one.push(Job::default(), 0, 1, Ok(Times::default()));
        assert!(one.over());
        assert_eq!(one.pop().map(|f| f.2), Some(0));
    }
}
