//! Closed-form checks of the reference backend: where a tone's energy lands, silence, Parseval.

use std::f64::consts::PI;

use super::*;

fn backend(pairs: &[(&str, &str)]) -> ReferenceBackend {
    let mut c = Config::default();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    ReferenceBackend::new(&c).unwrap()
}

fn run(b: &mut ReferenceBackend, signal: &[f32]) -> Vec<f32> {
    let mut batch = SignalBatch::new();
    batch.push(b.plan(), signal);
    let mut out = vec![0.0; batch.output_len(b.plan())];
    b.compute(&batch, &mut out).unwrap();
    out
}

#[test]
fn bin_centred_tone_lands_in_its_mel_bins() {
    // 512 Hz at 4096 Hz with n_fft 256 is exactly FFT bin 32. A periodic Hann window spreads a
    // bin-centred tone over bins 31..=33 only, with magnitudes A·N/4, A·N/8, A·N/8.
    let mut b = backend(&[]);
    let amp = 0.5;
    let signal: Vec<f32> =
        (0..40960).map(|i| (amp * (2.0 * PI * 512.0 * i as f64 / 4096.0).cos()) as f32).collect();
    let out = run(&mut b, &signal);
    let (n_mels, n_frames) = (64, 17);
    let fb = b.filterbank().clone();
    let spectrum = |k: usize| match k {
        32 => (amp * 64.0f64).powi(2),
        31 | 33 => (amp * 32.0f64).powi(2),
        _ => 0.0,
    };
    let expected: Vec<f64> =
        (0..n_mels).map(|m| (31..=33).map(|k| fb.row(m)[k] * spectrum(k)).sum()).collect();
    let loudest = (0..n_mels).max_by(|&a, &c| expected[a].total_cmp(&expected[c])).unwrap();
    // Interior frames (4..=12) of every short segment see the steady tone.
    for short in 0..80 {
        for t in 4..=12 {
            let frame: Vec<f32> =
                (0..n_mels).map(|m| out[short * n_mels * n_frames + m * n_frames + t]).collect();
            for m in 0..n_mels {
                let tol = 1e-5 * expected[loudest];
                assert!(
                    (f64::from(frame[m]) - expected[m]).abs() <= tol,
                    "short {short} frame {t} mel {m}"
                );
            }
            let argmax = (0..n_mels).max_by(|&a, &c| frame[a].total_cmp(&frame[c])).unwrap();
            assert_eq!(argmax, loudest);
        }
    }
    // 512 Hz is 7.68 on the Slaney scale, which falls in the bin whose triangle peaks nearest.
    assert_eq!(loudest, 19);
}

#[test]
fn silence_is_zero_power_and_the_db_floor() {
    let mut b = backend(&[]);
    assert!(run(&mut b, &[0.0; 40960]).iter().all(|&v| v == 0.0));
    let mut b = backend(&[("scale", "db")]);
    assert!(run(&mut b, &[0.0; 4096]).iter().all(|&v| v == -100.0));
}

#[test]
fn parseval_holds_for_the_power_spectrum() {
    let b = backend(&[("window", "boxcar"), ("center", "false")]);
    let mut state = 12345u64;
    let short: Vec<f64> = (0..512)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    for t in [0, 3, 8] {
        let p = b.frame_spectrum(&short, t);
        let energy: f64 = short[t * 32..t * 32 + 256].iter().map(|x| x * x).sum();
        let spectral: f64 =
            p.iter().enumerate().map(|(k, v)| if k == 0 || k == 128 { *v } else { 2.0 * v }).sum();
        assert!((spectral / 256.0 - energy).abs() < 1e-9 * energy, "frame {t}");
    }
}

#[test]
fn magnitude_is_the_square_root_of_power() {
    let short: Vec<f64> = (0..512).map(|i| (i as f64 * 0.37).sin()).collect();
    let p2 = backend(&[]).frame_spectrum(&short, 5);
    let p1 = backend(&[("power", "1")]).frame_spectrum(&short, 5);
    for (a, b) in p1.iter().zip(&p2) {
        assert!((a * a - b).abs() <= 1e-9 * b.max(1.0));
    }
}
