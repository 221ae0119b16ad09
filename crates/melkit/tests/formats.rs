//! Every format melkit decodes (FLAC, Ogg Vorbis, MP3, AAC in M4A, AIFF, a FLAC named `.wav`)
//! against librosa's tensors of what soundfile or ffmpeg decode (`tests/data/formats`), and the
//! formats it must refuse, with their errors.

mod common;

use melkit::{BackendKind, Config, OutputFormat, OutputOptions, Pipeline};

#[test]
fn every_format_matches_librosa_through_the_pipeline() {
    let cases = common::cases_in(&common::format_dir());
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "aiff_16000_pcm16",
            "flac_22050_pcm24",
            "flac_44100_pcm16_stereo",
            "flac_8000_pcm8_6ch",
            "flac_named_wav",
            "m4a_aac_44100_stereo",
            "mp3_44100_mono",
            "mp3_48000_stereo",
            "ogg_vorbis_22050_stereo",
        ]
    );
    common::check_all(&cases, BackendKind::Cpu, "format");
}

#[test]
fn unsupported_codecs_are_named() {
    let dir = common::format_dir();
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("unsupported.json")).unwrap())
            .unwrap();
    assert!(!expected.is_empty());
    let mut pipeline = Pipeline::new(Config::default(), BackendKind::Cpu).unwrap();
    for (file, message) in &expected {
        let err = pipeline.process_file(&dir.join(file)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: {}", dir.join(file).display(), message.as_str().unwrap())
        );
    }
}

#[test]
fn a_folder_of_mixed_formats_is_found_and_written() {
    let out = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::new(Config::default(), BackendKind::Cpu).unwrap();
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let report = pipeline.process_paths(&[common::format_dir()], out.path(), &options).unwrap();
    let mut written: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != melkit::manifest::MANIFEST)
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "aiff_16000_pcm16.npy",
            "flac_22050_pcm24.npy",
            "flac_44100_pcm16_stereo.npy",
            "flac_8000_pcm8_6ch.npy",
            "flac_named_wav.npy",
            "m4a_aac_44100_stereo.npy",
            "mp3_44100_mono.npy",
            "mp3_48000_stereo.npy",
            "ogg_vorbis_22050_stereo.npy",
        ]
    );
    let failures: Vec<String> = report.failures.iter().map(|f| f.reason.clone()).collect();
    assert_eq!(failures, ["unsupported encoding: the Opus codec is not supported"]);
}
