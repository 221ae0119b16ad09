//! Framing exactly as `librosa.stft` frames: every configuration recorded from librosa by
//! `tests/data/make_librosa_frames.py` (frame count and a digest of where each frame sample
//! comes from) must come out of `SegmentPlan::frame_source` the same.

use melkit_core::{Config, SegmentPlan};

fn plan(points: usize, n_fft: usize, hop: usize, center: bool, reflect: bool) -> SegmentPlan {
    let mut c = Config::default();
    // A long segment of exactly `points` samples at 1000 Hz.
    let long = format!("{}", points as f64 / 1000.0);
    for (k, v) in [
        ("sample_rate", "1000"),
        ("long_segment_scale", long.as_str()),
        ("short_segment_points", &points.to_string()),
        ("n_fft", &n_fft.to_string()),
        ("hop_length", &hop.to_string()),
        ("center", if center { "true" } else { "false" }),
        ("pad_mode", if reflect { "reflect" } else { "constant" }),
        ("n_mels", "4"),
    ] {
        c.set(k, v).unwrap();
    }
    SegmentPlan::new(&c).unwrap_or_else(|e| panic!("{points} {n_fft} {hop}: {e}"))
}

fn fnv1a(values: impl Iterator<Item = i64>) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    for v in values {
        for b in v.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

#[test]
fn frames_match_librosa() {
    let table = include_str!("data/librosa_frames.txt");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<usize>().unwrap();
        let (points, n_fft, hop, center, reflect, frames) =
            (n(0), n(1), n(2), n(3) == 1, n(4) == 1, n(5));
        let plan = plan(points, n_fft, hop, center, reflect);
        let sources = (0..plan.n_frames).flat_map(|t| {
            let plan = &plan;
            (0..n_fft).map(move |i| plan.frame_source(t, i).map_or(-1, |j| j as i64))
        });
        let digest = format!("{:016x}", fnv1a(sources));
        if plan.n_frames != frames || digest != f[6] {
            wrong.push(format!("{line} (melkit: {} frames, {digest})", plan.n_frames));
        }
        checked += 1;
    }
    assert!(checked > 2500, "only {checked} configurations read");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ from librosa:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
