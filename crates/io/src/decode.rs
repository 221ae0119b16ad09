//! Decoding audio files to mono f32 in [-1, 1) (SPEC §1 steps 1–2): WAV through hound, and what
//! hound does not read (64-bit float WAV) through symphonia. The format is found from the
//! content, not the file name.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use hound::{SampleFormat, WavReader};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::DecodeError;

/// A decoded file: the mean of its channels, at its own sample rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Mono samples in [-1, 1).
    pub samples: Vec<f32>,
    /// The file's sample rate in Hz.
    pub sample_rate: u32,
    /// The file's channel count (averaged into `samples`).
    pub channels: u16,
}

impl Audio {
    /// The duration in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Decodes a file to mono f32.
///
/// # Errors
/// The file cannot be read, is not audio melkit reads, or its header or data are invalid.
pub fn decode_file(path: &Path) -> Result<Audio, DecodeError> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut head = [0u8; 12];
    let got = read_up_to(&mut file, &mut head)?;
    if got == 0 {
        return Err(DecodeError::Invalid("the file is empty".into()));
    }
    file.seek(SeekFrom::Start(0))?;
    if got == 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        match decode_wav(file, size) {
            Err(DecodeError::Unsupported(reason)) => {
                // hound reads most WAVs; symphonia reads a few more (64-bit float).
                decode_symphonia(File::open(path)?, path)
                    .map_err(|_| DecodeError::Unsupported(reason))
            }
            other => other,
        }
    } else {
        decode_symphonia(file, path)
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn decode_wav(file: File, size: u64) -> Result<Audio, DecodeError> {
    let reader = WavReader::new(BufReader::new(file)).map_err(hound_error)?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(DecodeError::Invalid("the header gives 0 channels".into()));
    }
    if spec.sample_rate == 0 {
        return Err(DecodeError::Invalid("the header gives a sample rate of 0 Hz".into()));
    }
    let channels = usize::from(spec.channels);
    // Reserve no more than the file can hold, whatever the header claims.
    let bytes_per_frame = channels * usize::from(spec.bits_per_sample.div_ceil(8)).max(1);
    let frames = (reader.len() as usize / channels).min(size as usize / bytes_per_frame);
    let samples = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, 1..=8) => mix(reader.into_samples::<i8>(), channels, 128.0, frames),
        (SampleFormat::Int, 9..=16) => mix(reader.into_samples::<i16>(), channels, 32768.0, frames),
        (SampleFormat::Int, 17..=24) => {
            mix(reader.into_samples::<i32>(), channels, 8_388_608.0, frames)
        }
        (SampleFormat::Int, 25..=32) => {
            mix(reader.into_samples::<i32>(), channels, 2_147_483_648.0, frames)
        }
        (SampleFormat::Float, 32) => mix(reader.into_samples::<f32>(), channels, 1.0, frames),
        (format, bits) => {
            return Err(DecodeError::Unsupported(format!("{bits}-bit {format:?} WAV samples")));
        }
    }?;
    Ok(Audio { samples, sample_rate: spec.sample_rate, channels: spec.channels })
}

/// Averages interleaved samples over `channels`, dividing by `full_scale`.
fn mix<S, I>(
    samples: I,
    channels: usize,
    full_scale: f64,
    frames: usize,
) -> Result<Vec<f32>, DecodeError>
where
    S: hound::Sample + Into<f64>,
    I: Iterator<Item = hound::Result<S>>,
{
    let mut out = Vec::with_capacity(frames);
    let scale = 1.0 / (full_scale * channels as f64);
    let (mut sum, mut count) = (0.0f64, 0);
    for sample in samples {
        sum += sample
            .map_err(|e| match e {
                // Reading stops short of the length in the header: the file was cut.
                hound::Error::IoError(_) => {
                    DecodeError::Invalid("the WAV data ends before its header says it does".into())
                }
                other => hound_error(other),
            })?
            .into();
        count += 1;
        if count == channels {
            out.push((sum * scale) as f32);
            (sum, count) = (0.0, 0);
        }
    }
    Ok(out)
}

fn hound_error(e: hound::Error) -> DecodeError {
    match e {
        hound::Error::IoError(io) => DecodeError::Io(io),
        hound::Error::Unsupported => {
            DecodeError::Unsupported("a WAV encoding hound does not read".into())
        }
        hound::Error::FormatError(msg) if msg.contains("bits per sample") => {
            DecodeError::Unsupported(format!("WAV: {msg}"))
        }
        other => DecodeError::Invalid(format!("WAV: {other}")),
    }
}

fn decode_symphonia(file: File, path: &Path) -> Result<Audio, DecodeError> {
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => {
                DecodeError::Format("the content is not in an audio format melkit reads".into())
            }
            other => symphonia_error(other),
        })?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| DecodeError::Invalid("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate = params
        .sample_rate
        .filter(|&r| r > 0)
        .ok_or_else(|| DecodeError::Invalid("the header gives no sample rate".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(symphonia_error)?;
    let mut samples = Vec::new();
    let mut channels = params.channels.map_or(0, |c| c.count());
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(symphonia_error(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(symphonia_error)?;
        let spec = *decoded.spec();
        channels = spec.channels.count();
        if channels == 0 {
            return Err(DecodeError::Invalid("the header gives 0 channels".into()));
        }
        let needed = decoded.capacity() as u64;
        let buf = match &mut buffer {
            Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
            _ => buffer.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f64;
        samples.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| (frame.iter().map(|&x| f64::from(x)).sum::<f64>() * scale) as f32),
        );
    }
    let channels = u16::try_from(channels)
        .map_err(|_| DecodeError::Invalid(format!("{channels} channels")))?;
    Ok(Audio { samples, sample_rate, channels })
}

fn symphonia_error(e: SymphoniaError) -> DecodeError {
    match e {
        SymphoniaError::IoError(io) => DecodeError::Io(io),
        SymphoniaError::Unsupported(what) => DecodeError::Unsupported(what.to_string()),
        SymphoniaError::DecodeError(what) => DecodeError::Invalid(what.to_string()),
        other => DecodeError::Invalid(other.to_string()),
    }
}
