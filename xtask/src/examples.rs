//! The bundled example audio: a few short, deterministic files in the formats users have.

use std::f64::consts::PI;
use std::path::Path;

use anyhow::Result;
use hound::{SampleFormat, WavSpec, WavWriter};

/// A small deterministic noise source.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn write(path: &Path, rate: u32, channels: u16, float: bool, frames: &[Vec<f64>]) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let spec = WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float { SampleFormat::Float } else { SampleFormat::Int },
    };
    let mut w = WavWriter::create(path, spec)?;
    for frame in frames {
        for &x in frame {
            if float {
                w.write_sample(x as f32)?;
            } else {
                w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
            }
        }
    }
    w.finalize()?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Writes the example files under `dir`.
pub fn generate(dir: &Path) -> Result<()> {
    let mut noise = Lcg(2026);
    let t = |rate: u32, i: usize| i as f64 / f64::from(rate);
    // 10 s at the default rate: two tones and noise, no resampling needed.
    let frames: Vec<Vec<f64>> = (0..40960)
        .map(|i| {
            let x = t(4096, i);
            vec![
                0.3 * (2.0 * PI * 440.0 * x).sin()
                    + 0.2 * (2.0 * PI * 1200.0 * x).sin()
                    + 0.05 * noise.next(),
            ]
        })
        .collect();
    write(&dir.join("tones_4096.wav"), 4096, 1, false, &frames)?;
    // 2 s at 16 kHz: a vowel-like harmonic series with a gliding pitch.
    let frames: Vec<Vec<f64>> = (0..32000)
        .map(|i| {
            let x = t(16000, i);
            let f0 = 120.0 + 40.0 * (2.0 * PI * 0.5 * x).sin();
            let v: f64 = (1..12).map(|h| (2.0 * PI * f0 * h as f64 * x).sin() / h as f64).sum();
            vec![0.2 * v * (0.6 + 0.4 * (2.0 * PI * 3.0 * x).sin())]
        })
        .collect();
    write(&dir.join("voice/glide_16000.wav"), 16000, 1, false, &frames)?;
    // 1 s of 44.1 kHz stereo: chirping birds left, wind right.
    let frames: Vec<Vec<f64>> = (0..44100)
        .map(|i| {
            let x = t(44100, i);
            let chirp = 0.4 * (2.0 * PI * (800.0 + 900.0 * (x * 8.0).fract()) * x).sin();
            vec![chirp * ((x * 8.0).fract() < 0.3) as u8 as f64, 0.1 * noise.next()]
        })
        .collect();
    write(&dir.join("field/birds_44100_stereo.wav"), 44100, 2, false, &frames)?;
    // 1 s of 22.05 kHz float: a decaying bell.
    let frames: Vec<Vec<f64>> = (0..22050)
        .map(|i| {
            let x = t(22050, i);
            let partials = [(523.0, 1.0), (1046.0, 0.5), (1569.0, 0.3), (2711.0, 0.2)];
            let v: f64 = partials.iter().map(|(f, a)| a * (2.0 * PI * f * x).sin()).sum();
            vec![0.3 * v * (-3.0 * x).exp()]
        })
        .collect();
    write(&dir.join("field/bell_22050_float.wav"), 22050, 1, true, &frames)?;
    Ok(())
}
