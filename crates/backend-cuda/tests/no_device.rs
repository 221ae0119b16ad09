//! Where the machine has no CUDA device (CI), the backend says so clearly instead of panicking.

use melkit_backend_cuda::{CudaBackend, devices, driver_present};
use melkit_core::{BackendError, Config};

#[test]
fn without_a_device_the_backend_reports_no_cuda_device() {
    match CudaBackend::new(&Config::default()) {
        Ok(backend) => {
            eprintln!(
                "a CUDA device is present ({} used): nothing to check",
                backend.device_count()
            );
            assert!(!devices().is_empty());
        }
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(reason.starts_with("no CUDA device: "), "{reason}");
            if !driver_present() {
                let want = "no CUDA device: the CUDA driver library (libcuda) was not found";
                assert_eq!(reason, want);
                assert!(devices().is_empty());
            }
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn an_invalid_configuration_is_refused_before_looking_for_a_device() {
    let config = Config { n_mels: 0, ..Config::default() };
    let e = CudaBackend::new(&config).err().unwrap();
    assert!(matches!(e, BackendError::Config(_)), "{e}");
}
