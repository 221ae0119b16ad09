//! The CUDA kernels' arithmetic checked on a CPU, where there is no GPU: g++ compiles the very
//! `.cu` sources the backend gives NVRTC, with a small CUDA shim (tests/emulation/shim.h), and
//! both paths (fused; framing → an exact DFT standing in for cuFFT → power + mel) run the whole
//! conformance suite against the reference backend within the GPU tolerance. This proves the
//! indexing, framing, FFT, spectrum separation, mel and scaling code; it cannot prove what
//! only a device shows (races between threads, the driver's compiler, cuFFT itself), which the
//! conformance suite in tests/conformance.rs checks on a real GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use melkit_backend_cuda::kernels;
use melkit_core::backend::{Backend, SignalBatch, StepTimings, check_output};
use melkit_core::compare::compare;
use melkit_core::config::Config;
use melkit_core::device::DeviceTables;
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;

const SHIM: &str = include_str!("emulation/shim.h");
const DRIVER: &str = include_str!("emulation/driver.cpp");

struct Emulated {
    plan: SegmentPlan,
    tables: DeviceTables,
    double: bool,
    path: &'static str,
    exe: PathBuf,
    dir: tempfile::TempDir,
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable { backend: "cuda_emulated", reason }
}

impl Emulated {
    fn new(config: &Config, path: &'static str) -> Result<Self, BackendError> {
        Self::with_fused(config, path, kernels::FUSED)
    }

    fn with_fused(config: &Config, path: &'static str, fused: &str) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let tables = DeviceTables::new(config, &plan);
        let double = tables.db.is_some();
        let dir = tempfile::tempdir().map_err(|e| unavailable(e.to_string()))?;
        let defines = kernels::defines(&plan, &tables, double);
        let source = format!(
            "{SHIM}{defines}{}{}{}{}{DRIVER}",
            kernels::COMMON,
            kernels::FRAMING,
            kernels::MEL,
            fused
        );
        let src = dir.path().join("kernels.cpp");
        std::fs::write(&src, source).map_err(|e| unavailable(e.to_string()))?;
        let exe = dir.path().join("kernels");
        let built = Command::new("g++")
            .args(["-std=c++20", "-O2", "-pthread", "-o"])
            .arg(&exe)
            .arg(&src)
            .output()
            .map_err(|e| unavailable(format!("g++ not found: {e}")))?;
        assert!(built.status.success(), "g++: {}", String::from_utf8_lossy(&built.stderr));
        Ok(Emulated { plan, tables, double, path, exe, dir })
    }

    fn reals(&self, name: &str, values: impl Iterator<Item = f64>) {
        let bytes: Vec<u8> = if self.double {
            values.flat_map(f64::to_le_bytes).collect()
        } else {
            values.flat_map(|x| (x as f32).to_le_bytes()).collect()
        };
        write(self.dir.path(), name, &bytes);
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn fused(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(Emulated::new(config, "fused")?))
}

fn cufft(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(Emulated::new(config, "cufft")?))
}

impl Backend for Emulated {
    fn name(&self) -> &'static str {
        "cuda_emulated"
    }

    fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        check_output(&self.plan, batch, out)?;
        let dir = self.dir.path().to_path_buf();
        let n = self.plan.n_fft;
        write(
            &dir,
            "signal.bin",
            &batch.samples().iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
        );
        let starts: Vec<u8> =
            batch.long_starts().iter().flat_map(|&s| (s as u32).to_le_bytes()).collect();
        write(&dir, "starts.bin", &starts);
        let index: Vec<u8> = self.tables.frame_index.iter().flat_map(|i| i.to_le_bytes()).collect();
        write(&dir, "frame_index.bin", &index);
        let spans: Vec<u8> =
            self.tables.mel_spans.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        write(&dir, "spans.bin", &spans);
        self.reals("window.bin", self.tables.window.clone().into_iter());
        self.reals("weights.bin", self.tables.mel_weights.clone().into_iter());
        self.reals(
            "twiddles.bin",
            (0..n).flat_map(|k| {
                let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                [angle.cos(), angle.sin()]
            }),
        );
        let run = Command::new(&self.exe).arg(self.path).arg(&dir).output().unwrap();
        assert!(run.status.success(), "kernels: {}", String::from_utf8_lossy(&run.stderr));
        let bytes = std::fs::read(dir.join("out.bin")).unwrap();
        assert_eq!(bytes.len(), out.len() * 4, "output size");
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(StepTimings::default())
    }
}

mod fused_path {
    melkit_core::conformance_tests!(super::fused, melkit_core::compare::Precision::Gpu);
}

mod cufft_path {
    melkit_core::conformance_tests!(super::cufft, melkit_core::compare::Precision::Gpu);
}

/// The emulation can fail: the fused kernel with the two frames' spectra mixed up is caught.
#[test]
fn the_emulation_catches_a_wrong_kernel() {
    let config = Config::default();
    let broken = kernels::FUSED.replace("(p.y - q.y) * (real)0.5", "(p.y + q.y) * (real)0.5");
    assert_ne!(broken, kernels::FUSED);
    let mut batch = SignalBatch::new();
    let plan = SegmentPlan::new(&config).unwrap();
    for s in melkit_core::testing::signals(config.sample_rate, &[5000, 9000]) {
        batch.push(&plan, &s);
    }
    let mut want = vec![0.0; batch.output_len(&plan)];
    melkit_core::ReferenceBackend::new(&config).unwrap().compute(&batch, &mut want).unwrap();
    let mut errors = Vec::new();
    for source in [kernels::FUSED, broken.as_str()] {
        let mut backend = match Emulated::with_fused(&config, "fused", source) {
            Ok(b) => b,
            Err(e) => {
                assert!(!melkit_core::testing::gpu_required("cuda_emulated"), "{e}");
                eprintln!("skipping: {e}");
                return;
            }
        };
        let mut got = vec![0.0; want.len()];
        backend.compute(&batch, &mut got).unwrap();
        errors.push(compare(&got, &want).max_rel);
    }
    assert!(errors[0] < 1e-4, "the kernel: {}", errors[0]);
    assert!(errors[1] > 1e-2, "the broken kernel passed: {}", errors[1]);
}
