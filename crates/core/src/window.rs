//! Analysis windows: periodic, as `scipy.signal.get_window(name, win_length, fftbins=True)`,
//! zero-padded to `n_fft` and centred as `librosa.util.pad_center` does.

use std::f64::consts::PI;

use crate::config::WindowKind;

/// The window of `kind` and `win_length` samples, centred in `n_fft` samples of zeros.
pub fn window(kind: WindowKind, win_length: usize, n_fft: usize) -> Vec<f64> {
    let mut out = vec![0.0; n_fft];
    let offset = (n_fft - win_length) / 2;
    let m = win_length as f64;
    for (n, w) in out[offset..offset + win_length].iter_mut().enumerate() {
        let x = 2.0 * PI * n as f64 / m;
        *w = if win_length == 1 {
            1.0
        } else {
            match kind {
                WindowKind::Hann => 0.5 - 0.5 * x.cos(),
                WindowKind::Hamming => 0.54 - 0.46 * x.cos(),
                WindowKind::Blackman => 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos(),
                WindowKind::Boxcar => 1.0,
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_hann() {
        let w = window(WindowKind::Hann, 8, 8);
        let expected = [0.0, 0.146_446_6, 0.5, 0.853_553_4, 1.0, 0.853_553_4, 0.5, 0.146_446_6];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-7, "{w:?}");
        }
    }

    #[test]
    fn short_window_is_centred() {
        let w = window(WindowKind::Boxcar, 4, 10);
        assert_eq!(w, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        let w = window(WindowKind::Hann, 5, 8);
        assert_eq!(w[0], 0.0);
        assert_eq!(w[1], 0.0);
        assert!((w[3] - (0.5 - 0.5 * (4.0 * PI / 5.0).cos())).abs() < 1e-15);
    }

    #[test]
    fn blackman_and_hamming_match_scipy() {
        // scipy.signal.get_window("blackman", 4) = [-1.39e-17, 0.34, 1.0, 0.34]
        let w = window(WindowKind::Blackman, 4, 4);
        assert!(w[0].abs() < 1e-15 && (w[1] - 0.34).abs() < 1e-15 && (w[2] - 1.0).abs() < 1e-15);
        // get_window("hamming", 4) = [0.08, 0.54, 1.0, 0.54]
        let w = window(WindowKind::Hamming, 4, 4);
        assert!((w[0] - 0.08).abs() < 1e-15 && (w[1] - 0.54).abs() < 1e-15);
    }
}
