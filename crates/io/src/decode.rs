//! Decoding audio files to mono f32 in [-1, 1) (SPEC §1 steps 1–2): WAV streamed from disk
//! (its header checked by hound), every other format through symphonia (`codec`). The format is
//! found from the content, not the file name. Samples that are NaN or infinite are refused.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use hound::SampleFormat;

use crate::codec::Packets;
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

/// Compressed files expected to decode to at most this many mono samples (16 MiB of f32) are
/// decoded whole when opened; longer ones are decoded twice, once to count their samples (which
/// the output's shape needs) and once as they are read, so memory stays bounded.
const DECODE_WHOLE: u64 = 4 << 20;

/// An open audio file read a block at a time, mixed to mono.
pub struct AudioStream {
    sample_rate: u32,
    channels: u16,
    frames: u64,
    /// Samples handed out so far (for the position in messages).
    position: u64,
    source: Source,
}

enum Source {
    Wav(WavSource),
    Decoded { samples: Vec<f32>, pos: usize },
    Packets(Box<Packets>),
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
        if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
            match open_wav(file, size, head) {
                Err(DecodeError::Unsupported(reason)) => {
                    // hound reads most WAVs; symphonia reads a few more (64-bit float).
                    Self::open_packets(path, size, DECODE_WHOLE)
                        .map_err(|_| DecodeError::Unsupported(reason))
                }
                other => other,
            }
        } else {
            drop(file);
            Self::open_packets(path, size, DECODE_WHOLE)
        }
    }

    /// Opens a file symphonia decodes: whole when it is short (`size` × 12 ≤ `whole`), else
    /// counted first.
    fn open_packets(path: &Path, size: u64, whole: u64) -> Result<Self, DecodeError> {
        let mut packets = guard(|| Packets::open(File::open(path)?, path))?;
        let rate = packets.sample_rate();
        let mut stream = AudioStream {
            sample_rate: rate,
            channels: packets.channels(),
            frames: 0,
            position: 0,
            source: Source::Decoded { samples: Vec::new(), pos: 0 },
        };
        // No format packs more than ~12 samples into a byte (MP3 at 32 kbit/s, 48 kHz).
        if size.saturating_mul(12) <= whole {
            let mut samples = Vec::new();
            while guard(|| packets.read(1 << 20, &mut samples))? > 0 {
                check_finite(&samples[stream.frames as usize..], stream.frames)?;
                stream.frames = samples.len() as u64;
            }
            stream.channels = packets.channels();
            stream.source = Source::Decoded { samples, pos: 0 };
        } else {
            let mut counter = guard(|| Packets::open(File::open(path)?, path))?;
            let mut scratch = Vec::with_capacity(1 << 16);
            loop {
                scratch.clear();
                let n = guard(|| counter.read(1 << 16, &mut scratch))?;
                if n == 0 {
                    break;
                }
                check_finite(&scratch, stream.frames)?;
                stream.frames += n as u64;
            }
            stream.channels = counter.channels();
            stream.source = Source::Packets(Box::new(packets));
        }
        if stream.channels == 0 {
            return Err(DecodeError::Invalid("the header gives 0 channels".into()));
        }
        if stream.frames == 0 {
            return Err(no_samples());
        }
        Ok(stream)
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
        let n = match &mut self.source {
            Source::Decoded { samples, pos } => {
                // Checked for NaN and Inf when decoded.
                let n = max.min(samples.len() - *pos);
                out.extend_from_slice(&samples[*pos..*pos + n]);
                *pos += n;
                n
            }
            Source::Packets(packets) => {
                // Checked when counted; the second decode gives the same samples.
                let n = max.min((self.frames - self.position) as usize);
                let before = out.len();
                while out.len() - before < n {
                    if guard(|| packets.read(n - (out.len() - before), out))? == 0 {
                        break;
                    }
                }
                out.len() - before
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
                if matches!(wav.kind, SampleKind::F32) {
                    check_finite(&out[before..], self.position)?;
                }
                out.len() - before
            }
        };
        self.position += n as u64;
        Ok(n)
    }
}

/// Runs a step of a decoder written by others; a panic on malformed data becomes an error
/// for the file rather than ending the run.
fn guard<T>(step: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(DecodeError::Invalid(format!("the decoder failed on malformed data ({what})")))
    })
}

/// Refuses NaN and infinite samples (`samples` start at sample `first` of the file): they would
/// spread through every frame they touch.
fn check_finite(samples: &[f32], first: u64) -> Result<(), DecodeError> {
    if samples.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let (i, x) = samples.iter().enumerate().find(|(_, x)| !x.is_finite()).unwrap_or((0, &0.0));
    Err(DecodeError::Invalid(format!(
        "sample {} is {x}: audio with NaN or infinite samples is refused",
        first + i as u64
    )))
}

fn no_samples() -> DecodeError {
    DecodeError::Invalid("the file holds no audio samples".into())
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
        return Err(DecodeError::Invalid(format!(
            "truncated: the WAV header says {} bytes of samples, the file holds {}",
            layout.data_len,
            size.saturating_sub(layout.data_start)
        )));
    }
    if layout.data_len < (kind.bytes() * channels) as u64 {
        return Err(no_samples());
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
        position: 0,
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
        // hound reports a header cut short as an I/O error of its own ("Failed to read enough
        // bytes."): the file was read, it is the audio that is invalid.
        hound::Error::IoError(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.to_string().contains("read enough bytes") =>
        {
            DecodeError::Invalid("the WAV header ends early (a truncated or damaged file)".into())
        }
        hound::Error::IoError(io) => DecodeError::Io(io),
        hound::Error::Unsupported => {
            DecodeError::Unsupported("a WAV encoding hound does not read".into())
        }
        hound::Error::FormatError(msg) if msg.contains("zero channels") => {
            DecodeError::Invalid("the header gives 0 channels".into())
        }
        hound::Error::FormatError(msg) if msg.contains("bits per sample") => {
            DecodeError::Unsupported(format!("WAV: {msg}"))
        }
        other => DecodeError::Invalid(format!("WAV: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_compressed_files_stream_the_same_samples() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../melkit/tests/data/formats");
        for name in
            ["flac_44100_pcm16_stereo.flac", "mp3_48000_stereo.mp3", "m4a_aac_44100_stereo.m4a"]
        {
            let path = dir.join(name);
            let size = std::fs::metadata(&path).unwrap().len();
            let mut whole = AudioStream::open_packets(&path, size, u64::MAX).unwrap();
            let mut streamed = AudioStream::open_packets(&path, size, 0).unwrap();
            assert!(matches!(whole.source, Source::Decoded { .. }), "{name}");
            assert!(matches!(streamed.source, Source::Packets(_)), "{name}");
            assert_eq!(whole.frames(), streamed.frames(), "{name}");
            assert_eq!(whole.channels(), streamed.channels(), "{name}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            while whole.read(1000, &mut a).unwrap() > 0 {}
            while streamed.read(777, &mut b).unwrap() > 0 {}
            assert_eq!(a.len() as u64, whole.frames(), "{name}");
            assert_eq!(a, b, "{name}");
        }
    }
}
