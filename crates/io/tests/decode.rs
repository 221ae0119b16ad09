//! Decoding every WAV sample format to mono f32 in [-1, 1), as soundfile (and librosa) do.

use std::path::Path;

use hound::{SampleFormat, WavSpec, WavWriter};
use melkit_io::{AudioStream, decode_file};

fn spec(channels: u16, bits: u16, format: SampleFormat) -> WavSpec {
    WavSpec { channels, sample_rate: 8000, bits_per_sample: bits, sample_format: format }
}

fn format_tag(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    u16::from_le_bytes([bytes[20], bytes[21]])
}

#[test]
fn integer_pcm_is_scaled_by_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(u16, &[i32], f64)] = &[
        (8, &[-128, -1, 0, 64, 127], 128.0),
        (16, &[-32768, -1, 0, 12345, 32767], 32768.0),
        (24, &[-8_388_608, -3, 0, 4_000_000, 8_388_607], 8_388_608.0),
        (32, &[i32::MIN, -7, 0, 1_000_000_000, i32::MAX], 2_147_483_648.0),
    ];
    for &(bits, samples, full) in cases {
        let path = dir.path().join(format!("pcm{bits}.wav"));
        let mut w = WavWriter::create(&path, spec(1, bits, SampleFormat::Int)).unwrap();
        for &s in samples {
            match bits {
                8 => w.write_sample(s as i8).unwrap(),
                16 => w.write_sample(s as i16).unwrap(),
                _ => w.write_sample(s).unwrap(),
            }
        }
        w.finalize().unwrap();
        let audio = decode_file(&path).unwrap();
        assert_eq!((audio.sample_rate, audio.channels), (8000, 1));
        let want: Vec<f32> = samples.iter().map(|&s| (f64::from(s) / full) as f32).collect();
        assert_eq!(audio.samples, want, "{bits}-bit");
    }
}

#[test]
fn float_wavs_are_taken_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let values = [-1.0f32, -0.25, 0.0, 0.123_456_79, 0.999];
    let path = dir.path().join("f32.wav");
    let mut w = WavWriter::create(&path, spec(1, 32, SampleFormat::Float)).unwrap();
    values.iter().for_each(|&v| w.write_sample(v).unwrap());
    w.finalize().unwrap();
    assert_eq!(decode_file(&path).unwrap().samples, values);

    // 64-bit float (hound does not read it; the symphonia path does).
    let path = dir.path().join("f64.wav");
    std::fs::write(&path, float64_wav(&[-0.5, 0.25, 0.1, 1e-9], 22050)).unwrap();
    let audio = decode_file(&path).unwrap();
    assert_eq!(audio.sample_rate, 22050);
    assert_eq!(audio.samples, [-0.5f32, 0.25, 0.1, 1e-9]);
}

/// A minimal mono IEEE-float WAV with 64-bit samples.
fn float64_wav(samples: &[f64], rate: u32) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 8 + 16 + 8 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // WAVE_FORMAT_IEEE_FLOAT
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 8).to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn channels_are_averaged_including_extensible_files() {
    let dir = tempfile::tempdir().unwrap();
    // Three channels of 24-bit: hound writes WAVE_FORMAT_EXTENSIBLE.
    let path = dir.path().join("three.wav");
    let mut w = WavWriter::create(&path, spec(3, 24, SampleFormat::Int)).unwrap();
    let frames = [[100, 200, 300], [-8_388_608, 0, 8_388_607], [1, 2, 4]];
    for frame in frames {
        frame.iter().for_each(|&s| w.write_sample(s).unwrap());
    }
    w.finalize().unwrap();
    assert_eq!(format_tag(&path), 0xFFFE, "expected WAVE_FORMAT_EXTENSIBLE");
    let audio = decode_file(&path).unwrap();
    assert_eq!(audio.channels, 3);
    let want: Vec<f32> = frames
        .iter()
        .map(|f| (f.iter().map(|&s| f64::from(s)).sum::<f64>() / 3.0 / 8_388_608.0) as f32)
        .collect();
    assert_eq!(audio.samples, want);

    let path = dir.path().join("stereo.wav");
    let mut w = WavWriter::create(&path, spec(2, 16, SampleFormat::Int)).unwrap();
    for (l, r) in [(1000i16, -1000i16), (32767, 32767), (-2, 1)] {
        w.write_sample(l).unwrap();
        w.write_sample(r).unwrap();
    }
    w.finalize().unwrap();
    let audio = decode_file(&path).unwrap();
    assert_eq!(audio.samples, [0.0, 32767.0 / 32768.0, -0.5 / 32768.0]);
    assert!((audio.duration() - 3.0 / 8000.0).abs() < 1e-12);
}

#[test]
fn unreadable_inputs_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(decode_file(&empty).unwrap_err().to_string(), "invalid audio: the file is empty");
    let text = dir.path().join("text.wav");
    std::fs::write(&text, "hello, this is text").unwrap();
    assert_eq!(
        decode_file(&text).unwrap_err().to_string(),
        "not a supported audio file: the content is not in an audio format melkit reads"
    );
    let missing = dir.path().join("missing.wav");
    assert_eq!(
        decode_file(&missing).unwrap_err().to_string(),
        "cannot read the file: no such file or directory"
    );
    // A data chunk cut short of what the header promises.
    let path = dir.path().join("cut.wav");
    let mut w = WavWriter::create(&path, spec(1, 16, SampleFormat::Int)).unwrap();
    (0..1000).for_each(|i| w.write_sample(i as i16).unwrap());
    w.finalize().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 501]).unwrap();
    assert_eq!(
        decode_file(&path).unwrap_err().to_string(),
        "invalid audio: truncated: the WAV header says 2000 bytes of samples, the file holds 1499"
    );
}

/// A mono 16-bit WAV at 8 kHz with a LIST chunk of `list` bytes before `samples`.
fn wav_with_list(list: usize, samples: &[i16]) -> Vec<u8> {
    let mut bytes = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    bytes.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"LIST");
    bytes.extend_from_slice(&(list as u32).to_le_bytes());
    bytes.resize(bytes.len() + list, b'x');
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(2 * samples.len() as u32).to_le_bytes());
    for v in samples {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let riff_len = (bytes.len() - 8) as u32;
    bytes[4..8].copy_from_slice(&riff_len.to_le_bytes());
    bytes
}

#[test]
fn headers_and_data_of_any_size_are_read_across_buffers() {
    // A header larger than the first read, and data that straddles it, read in odd blocks.
    let samples: Vec<i16> = (0..150_000).map(|i| (i % 65536 - 32768) as i16).collect();
    let dir = tempfile::tempdir().unwrap();
    for list in [4, 100_000, 200_000] {
        let path = dir.path().join(format!("list{list}.wav"));
        std::fs::write(&path, wav_with_list(list, &samples)).unwrap();
        let want: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
        assert_eq!(decode_file(&path).unwrap().samples, want, "LIST of {list} bytes");
        let mut stream = AudioStream::open(&path).unwrap();
        assert_eq!(stream.frames(), 150_000);
        let mut got = Vec::new();
        while stream.read(7777, &mut got).unwrap() > 0 {}
        assert_eq!(got, want, "LIST of {list} bytes in blocks");
    }
}

#[test]
fn chunks_before_the_data_are_skipped() {
    // RIFF/WAVE, fmt (16-bit mono 8 kHz), a LIST chunk, then data and trailing bytes.
    let mut bytes = wav_with_list(4, &[16384, -32768, 1]);
    bytes.extend_from_slice(b"junk after the data");
    let riff_len = (bytes.len() - 8) as u32;
    bytes[4..8].copy_from_slice(&riff_len.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.wav");
    std::fs::write(&path, bytes).unwrap();
    let audio = decode_file(&path).unwrap();
    assert_eq!(audio.samples, [0.5, -1.0, 1.0 / 32768.0]);
}
