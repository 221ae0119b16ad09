//! Every golden case of `../shared/golden` through the library API, on the reference and the
//! CPU backend, within its tolerance class (SPEC §2).

mod common;

use melkit::compare::Precision;
use melkit::{BackendKind, Pipeline};

fn run_all(kind: BackendKind) {
    let mut failed = Vec::new();
    for case in common::cases() {
        let mut pipeline = Pipeline::new(case.config.clone(), kind).unwrap();
        let (tensor, stats) = pipeline.process_file(&case.input).unwrap();
        assert_eq!(stats.long_segments, case.shape[0]);
        let result = std::panic::catch_unwind(|| {
            case.check(kind.name(), tensor.shape(), tensor.data(), Precision::Cpu)
        });
        match result {
            Ok(report) => eprintln!("{kind} {}: {report}", case.name),
            Err(_) => failed.push(case.name.clone()),
        }
    }
    assert!(failed.is_empty(), "{kind}: golden cases out of tolerance: {failed:?}");
}

#[test]
fn golden_cases_on_the_reference_backend() {
    run_all(BackendKind::Reference);
}

#[test]
fn golden_cases_on_the_cpu_backend() {
    run_all(BackendKind::Cpu);
}
