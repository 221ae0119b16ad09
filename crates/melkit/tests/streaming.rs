//! Long files go through the pipeline in blocks of long segments under a small memory limit;
//! the outputs must equal, value for value, the tensor of the whole file computed at once.

use std::fs::File;
use std::path::Path;

use melkit::{BackendKind, Config, OutputFormat, OutputOptions, Pipeline};
use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

/// A WAV of `seconds` of a gliding tone with noise bursts at `rate` Hz.
fn long_wav(path: &Path, rate: u32, seconds: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut state = 1u64;
    for i in 0..(f64::from(rate) * seconds) as usize {
        let t = i as f64 / f64::from(rate);
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let noise = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5)
            * if (t * 0.7).fract() < 0.3 { 0.4 } else { 0.0 };
        let tone = 0.4 * (2.0 * std::f64::consts::PI * (300.0 + 20.0 * t) * t).sin();
        w.write_sample(((tone + noise) * 20000.0) as i16).unwrap();
        w.write_sample(((tone - noise) * 20000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut c = Config::default();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    c
}

fn read(path: &Path, format: OutputFormat) -> (Vec<usize>, Vec<f32>) {
    match format {
        OutputFormat::Npy => {
            let a = Array4::<f32>::read_npy(File::open(path).unwrap()).unwrap();
            (a.shape().to_vec(), a.into_raw_vec_and_offset().0)
        }
        OutputFormat::Npz => {
            let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
            let a = Array4::<f32>::read_npy(zip.by_name("mel.npy").unwrap()).unwrap();
            (a.shape().to_vec(), a.into_raw_vec_and_offset().0)
        }
        OutputFormat::H5 => {
            let mel = hdf5::File::open(path).unwrap().dataset("mel").unwrap();
            (mel.shape(), mel.read_raw::<f32>().unwrap())
        }
    }
}

#[test]
fn long_files_stream_in_blocks_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    long_wav(&dir.path().join("native.wav"), 4096, 70.0);
    long_wav(&dir.path().join("resampled.wav"), 16000, 45.0);
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("power", &[]),
        ("db_top_db", &[("scale", "db"), ("top_db", "50")]),
        ("ref_max_magnitude", &[("scale", "db"), ("power", "1"), ("ref", "max")]),
        ("overlapping", &[("long_segment_hop", "0.125"), ("short_segment_hop", "256")]),
        ("gaps", &[("long_segment_hop", "0.4")]),
    ];
    for (name, pairs) in cases {
        let mut pairs = pairs.to_vec();
        // 256 KiB in flight: a few dozen long segments a block, so each file takes many blocks.
        pairs.extend([("sample_length", "full"), ("memory_limit", "256K")]);
        let config = config(&pairs);
        let mut pipeline = Pipeline::new(config, BackendKind::Cpu).unwrap();
        assert!(pipeline.budget().batch_longs < 40, "{name}: {:?}", pipeline.budget());
        for (format, file) in [
            (OutputFormat::Npy, "native"),
            (OutputFormat::H5, "resampled"),
            (OutputFormat::Npz, "native"),
        ] {
            let input = dir.path().join(format!("{file}.wav"));
            let (whole, _) = pipeline.process_file(&input).unwrap();
            let out = dir.path().join(format!("out-{name}-{format}"));
            let options = OutputOptions { format, ..OutputOptions::default() };
            let report =
                pipeline.process_paths(std::slice::from_ref(&input), &out, &options).unwrap();
            assert!(report.success(), "{name} {format}: {:?}", report.failures);
            let (shape, values) = read(&out.join(format!("{file}.{format}")), format);
            assert_eq!(shape, whole.shape(), "{name} {format}");
            assert!(
                values == whole.data(),
                "{name} {format}: streamed output differs from the whole file"
            );
            let names: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != melkit::manifest::MANIFEST)
                .collect();
            assert_eq!(names.len(), 1, "{name} {format}: left behind {names:?}");
        }
    }
}

#[test]
fn many_files_and_a_long_one_share_a_small_budget() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    long_wav(&input.join("long.wav"), 4096, 40.0);
    for i in 0..12 {
        long_wav(
            &input.join(format!("short{i:02}.wav")),
            if i % 3 == 0 { 8000 } else { 4096 },
            3.0 + i as f64,
        );
    }
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let mut outputs = Vec::new();
    for limit in ["256K", "64M"] {
        let config = config(&[
            ("sample_length", "full"),
            ("memory_limit", limit),
            ("scale", "db"),
            ("top_db", "60"),
        ]);
        let mut pipeline = Pipeline::new(config, BackendKind::Cpu).unwrap();
        let out = dir.path().join(format!("out-{limit}"));
        let report = pipeline.process_paths(std::slice::from_ref(&input), &out, &options).unwrap();
        assert_eq!((report.files_ok, report.failures.len()), (13, 0));
        let mut files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with(melkit::manifest::MANIFEST))
            .collect();
        files.sort();
        outputs.push(files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>());
    }
    assert_eq!(outputs[0], outputs[1], "the memory limit changed the numbers");
}
