//! Every CUDA kernel compiles through NVRTC, for every kind of configuration (power-of-two and
//! other `n_fft`, f32 and f64, each power mode), where the NVRTC library is present (it installs
//! from PyPI as nvidia-cuda-nvrtc-cu12 on a machine with no GPU); skipped with the reason where
//! it is not, unless `MELKIT_REQUIRE_NVRTC=1`.

use melkit_backend_cuda::kernels::{self, FILES};
use melkit_core::config::Config;
use melkit_core::device::DeviceTables;
use melkit_core::plan::SegmentPlan;

fn configs() -> Vec<Config> {
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("scale", "db")],
        &[("n_fft", "400"), ("hop_length", "160"), ("power", "1")],
        &[("n_fft", "2048"), ("hop_length", "512"), ("power", "1.5"), ("scale", "db")],
        &[("n_fft", "100"), ("hop_length", "50"), ("n_mels", "16"), ("scale", "db")],
    ];
    cases
        .iter()
        .map(|pairs| {
            let mut c = Config::default();
            for (k, v) in *pairs {
                c.set(k, v).unwrap();
            }
            c.validate().unwrap();
            c
        })
        .collect()
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    if !kernels::nvrtc_present() {
        let required = std::env::var("MELKIT_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
        assert!(!required, "NVRTC is required but libnvrtc was not found");
        eprintln!("skipping: the NVRTC library (libnvrtc) was not found");
        return;
    }
    let mut compiled = 0;
    for config in configs() {
        let plan = SegmentPlan::new(&config).unwrap();
        let tables = DeviceTables::new(&config, &plan);
        for double in [false, true] {
            let defines = kernels::defines(&plan, &tables, double);
            for (name, kernel) in FILES {
                let source = kernels::source(&defines, kernel);
                let ptx = kernels::compile(&source, (8, 0))
                    .unwrap_or_else(|e| panic!("{name}, n_fft {}: {e}", plan.n_fft));
                let entry = match name {
                    "framing.cu" => "frame_window",
                    "mel.cu" => "power_mel",
                    _ => "fused",
                };
                assert!(ptx.to_src().contains(&format!(".entry {entry}")), "{name}: no {entry}");
                compiled += 1;
            }
        }
    }
    assert_eq!(compiled, 5 * 2 * 3);
}
