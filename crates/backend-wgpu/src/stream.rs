//! The batches submitted to the wgpu backend as a stream: the jobs in flight, oldest first, and
//! which chunk of which job each of the two device slots holds.

use std::collections::VecDeque;
use std::ops::Range;

use melkit_core::backend::{Done, Job};
use melkit_core::error::BackendError;

use crate::gpu::Times;

/// A job submitted and not yet given back.
pub(crate) struct Flight {
    /// Its place in the stream.
    pub seq: u64,
    /// The batch and its output.
    pub job: Job,
    /// The device's time on it so far.
    pub times: Times,
    /// The first thing that went wrong with it.
    pub error: Option<BackendError>,
}

/// The jobs in flight and the device slots' chunks.
#[derive(Default)]
pub(crate) struct Stream {
    flights: VecDeque<Flight>,
    /// The job (by `seq`) and long segments of the chunk each slot computes.
    slots: [Option<(u64, Range<usize>)>; 2],
    next_slot: usize,
    next_seq: u64,
}

impl Stream {
    /// Whether no job is in flight.
    pub fn is_idle(&self) -> bool {
        self.flights.is_empty()
    }

    /// Jobs in flight.
    pub fn len(&self) -> usize {
        self.flights.len()
    }

    /// Adds a job, returning its `seq`.
    pub fn push(&mut self, job: Job) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flights.push_back(Flight { seq, job, times: Times::default(), error: None });
        seq
    }

    /// The job `seq`, while it is in flight.
    pub fn flight(&mut self, seq: u64) -> Option<&mut Flight> {
        self.flights.iter_mut().find(|f| f.seq == seq)
    }

    /// The slot the next chunk goes to (the two take turns).
    pub fn take_slot(&mut self) -> usize {
        let slot = self.next_slot;
        self.next_slot ^= 1;
        slot
    }

    /// Records that `slot` computes long segments `range` of job `seq`.
    pub fn occupy(&mut self, slot: usize, seq: u64, range: Range<usize>) {
        self.slots[slot] = Some((seq, range));
    }

    /// Empties `slot`, returning what it held.
    pub fn vacate(&mut self, slot: usize) -> Option<(u64, Range<usize>)> {
        self.slots[slot].take()
    }

    /// Records what went wrong with job `seq` (the first error stays).
    pub fn fail(&mut self, seq: u64, error: BackendError) {
        if let Some(flight) = self.flight(seq) {
            flight.error.get_or_insert(error);
        }
    }

    /// The slots holding chunks of the oldest job, in the order of the chunks.
    pub fn slots_of_oldest(&self) -> Vec<usize> {
        let Some(oldest) = self.flights.front().map(|f| f.seq) else { return Vec::new() };
        let mut slots: Vec<(usize, usize)> = (0..2)
            .filter_map(|s| match &self.slots[s] {
                Some((seq, range)) if *seq == oldest => Some((range.start, s)),
                _ => None,
            })
            .collect();
        slots.sort_unstable();
        slots.into_iter().map(|(_, s)| s).collect()
    }

    /// Gives back the oldest job, which no slot may hold any more.
    pub fn pop(&mut self) -> Option<Done> {
        let flight = self.flights.pop_front()?;
        let result = match flight.error {
            Some(e) => Err(e),
            None => Ok(flight.times.steps()),
        };
        Some((flight.job, result))
    }
}
