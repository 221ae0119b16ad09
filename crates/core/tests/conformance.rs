//! The conformance suite run for the reference backend itself: it checks the suite's own
//! plumbing and that batching never changes the reference's numbers.

use melkit_core::compare::Precision;
use melkit_core::{Backend, BackendError, Config, ReferenceBackend};

fn reference(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(ReferenceBackend::new(config)?))
}

melkit_core::conformance_tests!(reference, Precision::Cpu);
