//! The core conformance suite, run for the CPU backend against the reference backend.

use melkit_backend_cpu::CpuBackend;
use melkit_core::compare::Precision;
use melkit_core::{Backend, BackendError, Config};

fn cpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(CpuBackend::new(config)?))
}

melkit_core::conformance_tests!(cpu, Precision::Cpu);
