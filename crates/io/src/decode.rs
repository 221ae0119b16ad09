//! Decoding audio files to mono f32 in [-1, 1) (SPEC §1 steps 1–2): WAV through hound, and what
//! hound does not read (64-bit float WAV) through symphonia. The format is found from the
//! content, not the file name.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use hound::SampleFormat;
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

/// Decodes a whole file to mono f32.
///
/// # Errors
/// The file cannot be read, is not audio melkit reads, or its header or data are invalid.
pub fn decode_file(path: &Path) -> Result<Audio, DecodeError> {
    let mut stream = AudioStream::open(path)?;
    let mut samples = Vec::with_capacity(stream.frames().min(1 << 28) as usize);
    while stream.read(1 << 20, &mut samples)? > 0 {}
    Ok(Audio { samples, sample_rate: stream.sample_rate(), channels: stream.channels() })
}

/// Bytes read at once when a file is opened: a WAV header and ten seconds of 16-bit audio.
const HEAD_BYTES: usize = 128 * 1024;

/// An open audio file read a block at a time, mixed to mono: WAV streams from disk; other
/// formats are decoded whole when opened.
pub struct AudioStream {
    sample_rate: u32,
    channels: u16,
    frames: u64,
    source: Source,
}

enum Source {
    Wav(WavSource),
    Decoded { samples: Vec<f32>, pos: usize },
}

/// A WAV data chunk read from the file as it is needed.
struct WavSource {
    file: File,
    kind: SampleKind,
    channels: usize,
    /// Bytes of whole frames left in the data chunk.
    remaining: u64,
    /// The start of the data, read with the header (`head[at..]` is still to be used).
    head: Vec<u8>,
    at: usize,
    buf: Vec<u8>,
}

impl AudioStream {
    /// Opens `path`, recognising the format from its content.
    ///
    /// # Errors
    /// The file cannot be read, is not audio melkit reads, or its header is invalid.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let mut file = File::open(path)?;
        let size = file.metadata()?.len();
        // One read takes the header and, for a short file, all of its samples.
        let mut head = Vec::with_capacity(HEAD_BYTES.min(size as usize));
        (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
        if head.is_empty() {
            return Err(DecodeError::Invalid("the file is empty".into()));
        }
        let decoded = if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
            match open_wav(file, size, head) {
                Err(DecodeError::Unsupported(reason)) => {
                    // hound reads most WAVs; symphonia reads a few more (64-bit float).
                    decode_symphonia(File::open(path)?, path)
                        .map_err(|_| DecodeError::Unsupported(reason))?
                }
                other => return other,
            }
        } else {
            file.seek(SeekFrom::Start(0))?;
            decode_symphonia(file, path)?
        };
        Ok(AudioStream {
            sample_rate: decoded.sample_rate,
            channels: decoded.channels,
            frames: decoded.samples.len() as u64,
            source: Source::Decoded { samples: decoded.samples, pos: 0 },
        })
    }

    /// The file's sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The file's channel count (averaged into the samples read).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// The number of (mono) samples the file holds.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends up to `max` mono samples to `out`; returns how many (0 at the end).
    ///
    /// # Errors
    /// The file cannot be read, or ends before its header says it does.
    pub fn read(&mut self, max: usize, out: &mut Vec<f32>) -> Result<usize, DecodeError> {
        match &mut self.source {
            Source::Decoded { samples, pos } => {
                let n = max.min(samples.len() - *pos);
                out.extend_from_slice(&samples[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
            Source::Wav(wav) => {
                let frame = wav.kind.bytes() * wav.channels;
                let bytes = (wav.remaining.min((max * frame) as u64)) as usize;
                let cached = wav.head.len() - wav.at;
                let before = out.len();
                if cached >= bytes {
                    wav.kind.mono(&wav.head[wav.at..wav.at + bytes], wav.channels, out);
                    wav.at += bytes;
                } else {
                    wav.buf.clear();
                    wav.buf.extend_from_slice(&wav.head[wav.at..]);
                    wav.at = wav.head.len();
                    wav.buf.resize(bytes, 0);
                    wav.file.read_exact(&mut wav.buf[cached..]).map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => truncated(),
                        _ => DecodeError::Io(e),
                    })?;
                    wav.kind.mono(&wav.buf, wav.channels, out);
                }
                wav.remaining -= bytes as u64;
                Ok(out.len() - before)
            }
        }
    }
}

fn truncated() -> DecodeError {
    DecodeError::Invalid("the WAV data ends before its header says it does".into())
}

/// A WAV stream positioned at its data; its format checked by hound.
fn open_wav(mut file: File, size: u64, head: Vec<u8>) -> Result<AudioStream, DecodeError> {
    // The header is parsed from the bytes already read when it fits in them (it nearly always
    // does), else from the file.
    let whole = head.len() as u64 == size;
    let spec = match hound::WavReader::new(Cursor::new(&head[..])) {
        Ok(reader) => reader.spec(),
        Err(_) if !whole => {
            file.seek(SeekFrom::Start(0))?;
            hound::WavReader::new(BufReader::new(&file)).map_err(hound_error)?.spec()
        }
        Err(e) => return Err(hound_error(e)),
    };
    if spec.channels == 0 {
        return Err(DecodeError::Invalid("the header gives 0 channels".into()));
    }
    if spec.sample_rate == 0 {
        return Err(DecodeError::Invalid("the header gives a sample rate of 0 Hz".into()));
    }
    let layout = match riff_layout(&mut Cursor::new(&head[..])) {
        Ok(layout) => layout,
        Err(_) if !whole => {
            file.seek(SeekFrom::Start(0))?;
            riff_layout(&mut BufReader::new(&file))?
        }
        Err(e) => return Err(e),
    };
    let channels = usize::from(spec.channels);
    let container = layout.block_align / channels.max(1);
    let kind = SampleKind::of(spec.sample_format, container).ok_or_else(|| {
        DecodeError::Unsupported(format!(
            "{}-bit {:?} WAV samples in {container}-byte containers",
            spec.bits_per_sample, spec.sample_format
        ))
    })?;
    if layout.data_start + layout.data_len > size {
        return Err(truncated());
    }
    let frame = (kind.bytes() * channels) as u64;
    // Keep the samples already read; the file continues right after them.
    let at = (layout.data_start as usize).min(head.len());
    file.seek(SeekFrom::Start(layout.data_start.max(head.len() as u64)))?;
    let mut head = head;
    head.truncate((layout.data_start + layout.data_len).min(head.len() as u64) as usize);
    Ok(AudioStream {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        frames: layout.data_len / frame,
        source: Source::Wav(WavSource {
            file,
            kind,
            channels,
            remaining: layout.data_len / frame * frame,
            head,
            at,
            buf: Vec::new(),
        }),
    })
}

/// Where a (validated) WAV file keeps its samples.
struct RiffLayout {
    block_align: usize,
    data_start: u64,
    data_len: u64,
}

/// Walks the RIFF chunks up to `data`, noting the frame size from `fmt `.
fn riff_layout(reader: &mut impl Read) -> Result<RiffLayout, DecodeError> {
    let bad = |what: &str| DecodeError::Invalid(format!("WAV: {what}"));
    let mut head = [0u8; 12];
    reader.read_exact(&mut head)?;
    let (mut at, mut block_align) = (12u64, None);
    loop {
        let mut chunk = [0u8; 8];
        reader.read_exact(&mut chunk).map_err(|_| bad("no data chunk"))?;
        let len = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        at += 8;
        match &chunk[..4] {
            b"data" => {
                let block_align =
                    block_align.ok_or_else(|| bad("the data chunk comes before fmt"))?;
                return Ok(RiffLayout { block_align, data_start: at, data_len: len });
            }
            b"fmt " => {
                let mut fmt = vec![0u8; len.min(1024) as usize];
                reader.read_exact(&mut fmt)?;
                if fmt.len() < 16 {
                    return Err(bad("the fmt chunk is too short"));
                }
                block_align = Some(usize::from(u16::from_le_bytes([fmt[12], fmt[13]])));
                std::io::copy(
                    &mut reader.take(len - fmt.len() as u64 + (len & 1)),
                    &mut std::io::sink(),
                )?;
            }
            _ => {
                std::io::copy(&mut reader.take(len + (len & 1)), &mut std::io::sink())?;
            }
        }
        at += len + (len & 1);
    }
}

/// How the samples of a WAV data chunk are stored.
#[derive(Clone, Copy, Debug)]
enum SampleKind {
    U8,
    I16,
    I24,
    I32,
    F32,
}

impl SampleKind {
    fn of(format: SampleFormat, bytes: usize) -> Option<Self> {
        match (format, bytes) {
            (SampleFormat::Int, 1) => Some(SampleKind::U8),
            (SampleFormat::Int, 2) => Some(SampleKind::I16),
            (SampleFormat::Int, 3) => Some(SampleKind::I24),
            (SampleFormat::Int, 4) => Some(SampleKind::I32),
            (SampleFormat::Float, 4) => Some(SampleKind::F32),
            _ => None,
        }
    }

    fn bytes(self) -> usize {
        match self {
            SampleKind::U8 => 1,
            SampleKind::I16 => 2,
            SampleKind::I24 => 3,
            SampleKind::I32 | SampleKind::F32 => 4,
        }
    }

    /// One sample in [-1, 1): integers divided by their container's full scale (libsndfile's
    /// rule, which also suits left-justified samples narrower than their container).
    #[inline(always)]
    fn value(self, b: &[u8]) -> f32 {
        match self {
            SampleKind::U8 => (f32::from(b[0]) - 128.0) * (1.0 / 128.0),
            SampleKind::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32768.0),
            SampleKind::I24 => {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * (1.0 / 8_388_608.0)
            }
            SampleKind::I32 => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            }
            SampleKind::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    /// Appends the mean of the channels of every whole frame of `data` to `out`.
    fn mono(self, data: &[u8], channels: usize, out: &mut Vec<f32>) {
        let width = self.bytes();
        if channels == 1 {
            // One tight loop per format (the format is not re-examined per sample).
            match self {
                SampleKind::I16 => out.extend(
                    data.chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32768.0)),
                ),
                SampleKind::F32 => out.extend(
                    data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                kind => out.extend(data.chunks_exact(width).map(|b| kind.value(b))),
            }
            return;
        }
        let scale = 1.0 / channels as f64;
        out.extend(data.chunks_exact(width * channels).map(|frame| {
            let sum: f64 = frame.chunks_exact(width).map(|b| f64::from(self.value(b))).sum();
            (sum * scale) as f32
        }));
    }
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
