//! Every golden case of `../shared/golden` through the library API, on the reference and the
//! CPU backend, within its tolerance class (SPEC §2).

mod common;

use melkit::BackendKind;

fn run_all(kind: BackendKind) {
    common::check_all(&common::cases(), kind, "golden");
}

#[test]
fn golden_cases_on_the_reference_backend() {
    run_all(BackendKind::Reference);
}

#[test]
fn golden_cases_on_the_cpu_backend() {
    run_all(BackendKind::Cpu);
}

#[test]
fn golden_cases_on_the_wgpu_backend() {
    quiet_lavapipe();
    run_all(BackendKind::Wgpu);
}

/// lavapipe complains on stderr when `XDG_RUNTIME_DIR` is unset; give it a private folder.
#[allow(unsafe_code)] // set before this test starts any thread of its own
fn quiet_lavapipe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("melkit-test-runtime");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: the other tests of this binary do not read the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
