//! The jobs a device backend has submitted and not yet given back, oldest first: each with where
//! it runs (the backend's own notion: a slot, a device), the device's time on it and the first
//! error it met, given back exactly once and in submission order.

use std::collections::VecDeque;

use crate::backend::{DeviceTimes, Done, Job};
use crate::error::BackendError;

/// A job in flight.
#[derive(Debug)]
pub struct Flight<P> {
    /// Its place in the stream (0, 1, 2, … in submission order).
    pub seq: u64,
    /// The batch and its output.
    pub job: Job,
    /// Where it runs.
    pub place: P,
    /// The device's time on it so far.
    pub times: DeviceTimes,
    /// The first thing that went wrong with it.
    pub error: Option<BackendError>,
}

/// The jobs in flight.
#[derive(Debug)]
pub struct Flights<P> {
    flights: VecDeque<Flight<P>>,
    next_seq: u64,
}

impl<P> Default for Flights<P> {
    fn default() -> Self {
        Flights { flights: VecDeque::new(), next_seq: 0 }
    }
}

impl<P> Flights<P> {
    /// Whether no job is in flight.
    pub fn is_empty(&self) -> bool {
        self.flights.is_empty()
    }

    /// Jobs in flight.
    pub fn len(&self) -> usize {
        self.flights.len()
    }

    /// Adds a job, returning its `seq`.
    pub fn push(&mut self, job: Job, place: P) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flights.push_back(Flight {
            seq,
            job,
            place,
            times: DeviceTimes::default(),
            error: None,
        });
        seq
    }

    /// The job `seq`, while it is in flight.
    pub fn get(&mut self, seq: u64) -> Option<&mut Flight<P>> {
        self.flights.iter_mut().find(|f| f.seq == seq)
    }

    /// The oldest job.
    pub fn oldest(&mut self) -> Option<&mut Flight<P>> {
        self.flights.front_mut()
    }

    /// Records what went wrong with job `seq` (the first error stays).
    pub fn fail(&mut self, seq: u64, error: BackendError) {
        if let Some(flight) = self.get(seq) {
            flight.error.get_or_insert(error);
        }
    }

    /// Gives back the oldest job: its output, or its first error.
    pub fn pop(&mut self) -> Option<Done> {
        let flight = self.flights.pop_front()?;
        let result = match flight.error {
            Some(e) => Err(e),
            None => Ok(flight.times.steps()),
        };
        Some((flight.job, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_come_back_once_in_order_with_their_first_error() {
        let mut flights = Flights::default();
        let seqs: Vec<u64> = (0..3).map(|i| flights.push(Job::default(), i)).collect();
        assert_eq!(seqs, [0, 1, 2]);
        flights.fail(1, BackendError::Failed { backend: "t", reason: "first".into() });
        flights.fail(1, BackendError::Failed { backend: "t", reason: "second".into() });
        assert_eq!(flights.oldest().map(|f| f.place), Some(0));
        assert!(flights.pop().unwrap().1.is_ok());
        let (_, second) = flights.pop().unwrap();
        assert_eq!(second.unwrap_err().to_string(), "backend t failed: first");
        assert_eq!(flights.len(), 1);
        assert!(flights.pop().is_some());
        assert!(flights.pop().is_none() && flights.is_empty());
    }
}
