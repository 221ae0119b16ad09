//! The conformance suite: the same test bodies for every backend, each compared with the
//! reference backend on deterministic signals over many configurations.
//!
//! A backend crate instantiates it in a test file with
//! `melkit_core::conformance_tests!(my_factory, Precision::Cpu);` where `my_factory` has the
//! signature of [`Factory`].
// Test support, compiled only for tests (the `testing` feature): a failure here is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::backend::{Backend, SignalBatch};
use crate::compare::{Precision, Tolerance, ToleranceClass, compare};
use crate::config::Config;
use crate::error::BackendError;
use crate::plan::SegmentPlan;
use crate::reference::ReferenceBackend;

/// Builds the backend under test for a configuration.
pub type Factory = fn(&Config) -> Result<Box<dyn Backend>, BackendError>;

/// The configurations of the suite: a name and the keys that differ from the defaults. Cases
/// named `tone_*` run on pure tones, where dB values reach the `amin` floor; the others on
/// tones, a chirp and noise.
pub const CASES: &[(&str, &[(&str, &str)])] = &[
    ("defaults", &[]),
    (
        "every_knob",
        &[
            ("sample_rate", "8000"),
            ("sample_length", "full"),
            ("long_segment_scale", "0.5"),
            ("long_segment_hop", "0.25"),
            ("short_segment_points", "1024"),
            ("short_segment_hop", "512"),
            ("n_fft", "512"),
            ("hop_length", "128"),
            ("n_mels", "40"),
            ("fmin", "50"),
            ("fmax", "3800"),
            ("mel_scale", "htk"),
            ("mel_norm", "none"),
            ("power", "1"),
            ("scale", "db"),
            ("top_db", "80"),
            ("pad_mode", "reflect"),
        ],
    ),
    ("n_fft_400", &[("n_fft", "400"), ("hop_length", "100")]),
    ("odd_n_fft", &[("n_fft", "255"), ("hop_length", "31")]),
    ("short_window", &[("win_length", "200"), ("window", "hamming")]),
    ("blackman_window", &[("window", "blackman")]),
    ("uncentred", &[("center", "false")]),
    ("reflect_padding", &[("pad_mode", "reflect")]),
    ("reflect_large_hop", &[("pad_mode", "reflect"), ("n_fft", "64"), ("hop_length", "48")]),
    ("magnitude_db_ref_max", &[("power", "1"), ("scale", "db"), ("ref", "max"), ("top_db", "60")]),
    ("power_db", &[("scale", "db"), ("ref", "0.01"), ("amin", "1e-8")]),
    ("fractional_power", &[("power", "1.5")]),
    ("fractional_power_db", &[("power", "0.5"), ("scale", "db"), ("ref", "max")]),
    ("htk_band", &[("mel_scale", "htk"), ("fmin", "100"), ("fmax", "1800"), ("n_mels", "40")]),
    ("overlapping_segments", &[("long_segment_hop", "0.125"), ("short_segment_hop", "256")]),
    ("full_length", &[("sample_length", "full")]),
    ("small_fft", &[("n_fft", "64"), ("hop_length", "16"), ("n_mels", "16")]),
    ("tone_db_floor", &[("scale", "db"), ("power", "1")]),
    ("tone_power_db_floor", &[("scale", "db")]),
];

/// Pure tones of the given lengths (a different pitch for each).
pub fn tones(sample_rate: u32, lengths: &[usize]) -> Vec<Vec<f32>> {
    let sr = f64::from(sample_rate);
    lengths
        .iter()
        .enumerate()
        .map(|(n, &len)| {
            let hz = 0.1 * sr + 37.0 * n as f64;
            (0..len)
                .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / sr).sin()) as f32)
                .collect()
        })
        .collect()
}

/// Deterministic test signals of the given lengths: tones, a chirp and noise.
pub fn signals(sample_rate: u32, lengths: &[usize]) -> Vec<Vec<f32>> {
    let sr = f64::from(sample_rate);
    lengths
        .iter()
        .enumerate()
        .map(|(n, &len)| {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
            (0..len)
                .map(|i| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    let t = i as f64 / sr;
                    let tone =
                        0.3 * (2.0 * std::f64::consts::PI * (220.0 + 110.0 * n as f64) * t).sin();
                    let chirp =
                        0.2 * (2.0 * std::f64::consts::PI * (50.0 + 0.2 * sr * t) * t).sin();
                    (tone + chirp + 0.05 * noise) as f32
                })
                .collect()
        })
        .collect()
}

fn config(name: &str) -> Config {
    let (_, pairs) =
        CASES.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no case {name}"));
    let mut config = Config::default();
    for (k, v) in *pairs {
        config.set(k, v).unwrap_or_else(|e| panic!("case {name}: {e}"));
    }
    config.validate().unwrap_or_else(|e| panic!("case {name}: {e}"));
    config
}

/// A batch of `signals` in which every one is handed over as a block of its own, as the
/// pipeline hands over its decoded blocks, except every third (the first, the fourth, ..),
/// which is copied: its samples lie in several parts, blocks follow blocks and copies, and a
/// backend must read each long segment where it lies.
pub fn mixed_batch<S: AsRef<[f32]>>(plan: &SegmentPlan, signals: &[S]) -> SignalBatch {
    let mut batch = SignalBatch::new();
    for (i, s) in signals.iter().enumerate() {
        if i % 3 == 0 {
            batch.push(plan, s.as_ref());
        } else {
            let mut own = SignalBatch::new();
            let item = own.push(plan, s.as_ref());
            batch.push_block(plan, own.samples_in(0..own.samples_len()).into_owned(), item.n_long);
        }
    }
    batch
}

fn run(backend: &mut dyn Backend, signals: &[&[f32]]) -> Vec<Vec<f32>> {
    let batch = mixed_batch(backend.plan(), signals);
    let mut out = vec![f32::NAN; batch.output_len(backend.plan())];
    backend.compute(&batch, &mut out).unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
    batch
        .items()
        .iter()
        .map(|&item| batch.item_output(backend.plan(), item, &out).to_vec())
        .collect()
}

/// Whether `MELKIT_REQUIRE_GPU=1` (every GPU backend) or `MELKIT_REQUIRE_<BACKEND>=1` (this
/// one, as CI sets `MELKIT_REQUIRE_WGPU` where lavapipe is installed) makes a missing device a
/// failure rather than a skip.
pub fn gpu_required(backend: &str) -> bool {
    let set = |name: String| std::env::var(name).as_deref() == Ok("1");
    set("MELKIT_REQUIRE_GPU".into()) || set(require_variable(backend))
}

/// The variable that makes backend `backend` required: `MELKIT_REQUIRE_CUDA_EMULATED` for
/// `cuda-emulated`.
pub fn require_variable(backend: &str) -> String {
    format!("MELKIT_REQUIRE_{}", backend.to_uppercase().replace('-', "_"))
}

/// The backend under test, or `None` (after printing why) when it cannot start here and
/// `MELKIT_REQUIRE_GPU=1` is not set.
pub fn backend_or_skip(factory: Factory, config: &Config) -> Option<Box<dyn Backend>> {
    match factory(config) {
        Ok(backend) => Some(backend),
        Err(BackendError::Unavailable { backend, reason }) => {
            assert!(
                !gpu_required(backend),
                "MELKIT_REQUIRE_GPU=1 or {}=1 but backend {backend} is unavailable: {reason}",
                require_variable(backend)
            );
            eprintln!("skipping: backend {backend} is unavailable: {reason}");
            None
        }
        Err(e) => panic!("backend failed to start: {e}"),
    }
}

/// Runs case `name`: three signals (cut, padded, shorter than a long segment) in one batch
/// must match the reference backend within `precision`, and match what the backend gives for
/// each signal alone.
pub fn run_case(name: &str, factory: Factory, precision: Precision) {
    let config = config(name);
    let Some(mut backend) = backend_or_skip(factory, &config) else {
        return;
    };
    let mut reference = ReferenceBackend::new(&config).expect("reference backend");
    let sr = config.sample_rate as usize;
    let lengths = [sr * 10 + 123, sr * 3 + 17, sr / 10];
    let inputs = if name.starts_with("tone_") {
        tones(config.sample_rate, &lengths)
    } else {
        signals(config.sample_rate, &lengths)
    };
    let inputs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let expected = run(&mut reference, &inputs);
    let together = run(backend.as_mut(), &inputs);
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision };
    for (i, (got, want)) in together.iter().zip(&expected).enumerate() {
        let report = compare(got, want);
        eprintln!("{} {name}, signal {i}: {report}", backend.name());
        assert!(
            tolerance.passes(&report),
            "case {name}, signal {i}: {} against the reference: {report}",
            backend.name()
        );
    }
    for (i, input) in inputs.iter().enumerate() {
        let alone = run(backend.as_mut(), &[input]);
        let report = compare(&alone[0], &together[i]);
        assert!(
            tolerance.passes(&report),
            "case {name}, signal {i}: batched and alone differ: {report}"
        );
    }
}

/// Instantiates one `#[test]` per conformance case for a backend factory.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path, $precision:expr) => {
        $crate::conformance_tests!(@cases $factory, $precision;
            defaults, every_knob, n_fft_400, odd_n_fft, short_window, blackman_window, uncentred,
            reflect_padding, reflect_large_hop, magnitude_db_ref_max, power_db, fractional_power, fractional_power_db, htk_band,
            overlapping_segments, full_length, small_fft, tone_db_floor, tone_power_db_floor);
    };
    (@cases $factory:path, $precision:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::run_case(stringify!($case), $factory, $precision);
            }
        )*
        #[test]
        fn every_case_is_instantiated() {
            let names = [$(stringify!($case)),*];
            for (name, _) in $crate::testing::CASES {
                assert!(names.contains(name), "conformance case {name} has no test");
            }
        }
    };
}

/// Gives Vulkan drivers a private `XDG_RUNTIME_DIR` when it is unset (lavapipe complains on
/// stderr otherwise). Call it at the start of a GPU test, before it starts threads.
#[allow(unsafe_code)] // setting the environment once, before the test's own threads
pub fn quiet_lavapipe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            let dir = std::env::temp_dir().join("melkit-test-runtime");
            let _ = std::fs::create_dir_all(&dir);
            // SAFETY: tests that call this do not read the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    });
}

/// A backend whose values are all off by the factor `1 + error`: a broken kernel, for tests of
/// what catches one.
pub struct Perturbed {
    /// The backend whose values are perturbed.
    pub inner: Box<dyn Backend>,
    /// The relative error added to every value.
    pub error: f32,
}

impl Backend for Perturbed {
    fn name(&self) -> &'static str {
        "perturbed"
    }

    fn plan(&self) -> &crate::plan::SegmentPlan {
        self.inner.plan()
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<crate::backend::StepTimings, BackendError> {
        let steps = self.inner.compute(batch, out)?;
        out.iter_mut().for_each(|v| *v *= 1.0 + self.error);
        Ok(steps)
    }
}
