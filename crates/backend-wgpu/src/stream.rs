//! The batches submitted to the wgpu backend as a stream: the jobs in flight (core's
//! [`Flights`]), and which chunk of which job each of the two device slots holds.

use std::ops::Range;

use melkit_core::backend::{Done, Job};
use melkit_core::device::flights::{Flight, Flights};
use melkit_core::error::BackendError;

/// The jobs in flight and the device slots' chunks.
#[derive(Default)]
pub(crate) struct Stream {
    flights: Flights<()>,
    /// The job (by `seq`) and the output values of the chunk each slot computes.
    slots: [Option<(u64, Range<usize>)>; 2],
    next_slot: usize,
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
        self.flights.push(job, ())
    }

    /// The job `seq`, while it is in flight.
    pub fn flight(&mut self, seq: u64) -> Option<&mut Flight<()>> {
        self.flights.get(seq)
    }

    /// The slot the next chunk goes to (the two take turns).
    pub fn take_slot(&mut self) -> usize {
        let slot = self.next_slot;
        self.next_slot ^= 1;
        slot
    }

    /// Records that `slot` computes output values `range` of job `seq`.
    pub fn occupy(&mut self, slot: usize, seq: u64, range: Range<usize>) {
        self.slots[slot] = Some((seq, range));
    }

    /// Empties `slot`, returning what it held.
    pub fn vacate(&mut self, slot: usize) -> Option<(u64, Range<usize>)> {
        self.slots[slot].take()
    }

    /// Records what went wrong with job `seq` (the first error stays).
    pub fn fail(&mut self, seq: u64, error: BackendError) {
        self.flights.fail(seq, error);
    }

    /// The slots holding chunks of the oldest job, in the order of the chunks.
    pub fn slots_of_oldest(&mut self) -> Vec<usize> {
        let Some(oldest) = self.flights.oldest().map(|f| f.seq) else { return Vec::new() };
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
        self.flights.pop()
    }
}
