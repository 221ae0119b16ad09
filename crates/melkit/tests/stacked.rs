//! A stacked run's report: its wall time is the whole call's, the stacking of the parts into
//! the HDF5 file included (it used to stop where the parts were written, about half the call).
#![cfg(feature = "hdf5")]

use std::path::PathBuf;
use std::time::Instant;

use melkit::discover::Inputs;
use melkit::shard::Shard;
use melkit::{BackendKind, Config, OutputOptions, Pipeline};

/// Files in the run: enough that stacking them is a large share of the call.
const FILES: usize = 48;

#[test]
fn a_stacked_runs_report_times_the_whole_call() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 4096,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let first = input.join("clip_000.wav");
    let mut wav = hound::WavWriter::create(&first, spec).unwrap();
    for i in 0..40_960u32 {
        let t = f64::from(i) / 4096.0;
        let x = (2.0 * std::f64::consts::PI * (200.0 + 60.0 * t) * t).sin() * 0.5;
        wav.write_sample((x * 32767.0) as i16).unwrap();
    }
    wav.finalize().unwrap();
    for k in 1..FILES {
        std::fs::hard_link(&first, input.join(format!("clip_{k:03}.wav"))).unwrap();
    }

    let out = dir.path().join("out");
    let mut pipeline = Pipeline::new(Config::default(), BackendKind::Cpu).unwrap();
    let inputs = Inputs::new(&[PathBuf::from(&input)]);
    let whole = Shard { index: 0, count: 1 };
    let called = Instant::now();
    let report =
        pipeline.process_stacked(&inputs, whole, &out, &OutputOptions::default(), &()).unwrap();
    let wall = called.elapsed();

    assert_eq!((report.files_ok, report.failures.len()), (FILES, 0));
    assert!(out.join("melkit-stacked.h5").is_file());
    assert!(report.total_time <= wall, "{:?} reported, {wall:?} taken", report.total_time);
    // All but the call's first and last instants; stacking alone took a quarter to a half.
    let outside = wall - report.total_time;
    assert!(outside * 10 <= wall, "{outside:?} of {wall:?} left out of the report");
}
