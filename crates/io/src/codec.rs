//! Audio that is not plain WAV, through symphonia: FLAC, Ogg Vorbis, MP3 (MP1/MP2), AAC and
//! ALAC in MP4/M4A, AIFF, CAF, Matroska/WebM and 64-bit float WAV, decoded a packet at a time
//! and mixed to mono. Encoder delay and padding are trimmed as libsndfile and ffmpeg do: from
//! the LAME/Xing header for MP3, the granule positions for Vorbis, the edit list for MP4.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{self, CodecType, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::DecodeError;
use crate::mp4;

/// Decode errors in a row after which a file is given up as corrupt (a single bad packet is
/// skipped, as ffmpeg does).
const MAX_BAD_PACKETS: usize = 16;

/// An open symphonia stream, handing out mono samples as its packets are decoded.
pub(crate) struct Packets {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    sample_rate: u32,
    channels: u16,
    buffer: Option<SampleBuffer<f32>>,
    /// Decoded mono samples not yet handed out (`pending[pos..]`).
    pending: Vec<f32>,
    pos: usize,
    /// Samples still to drop at the start, and to hand out at most (an MP4 edit list).
    skip: u64,
    left: Option<u64>,
    done: bool,
}

impl Packets {
    /// Opens `file`, recognising the container from its content (`path`'s extension is only
    /// a hint).
    pub(crate) fn open(file: File, path: &Path) -> Result<Self, DecodeError> {
        let edit = mp4::edit_list(&file);
        let source = Patched::new(file);
        let stream = MediaSourceStream::new(Box::new(source), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let options = FormatOptions { enable_gapless: true, ..FormatOptions::default() };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &options, &MetadataOptions::default())
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) => {
                    DecodeError::Format("the content is not in an audio format melkit reads".into())
                }
                other => symphonia_error(other),
            })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != codecs::CODEC_TYPE_NULL)
            .ok_or_else(|| DecodeError::Invalid("the file has no audio track".into()))?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let sample_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| DecodeError::Invalid("the header gives no sample rate".into()))?;
        let channels = params.channels.map_or(0, |c| c.count());
        if params.channels.is_some() && channels == 0 {
            return Err(DecodeError::Invalid("the header gives 0 channels".into()));
        }
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) => DecodeError::Unsupported(format!(
                    "the {} codec is not supported",
                    codec_name(params.codec)
                )),
                other => symphonia_error(other),
            })?;
        let (skip, left) = match (params.codec, edit) {
            (codecs::CODEC_TYPE_AAC | codecs::CODEC_TYPE_ALAC, Some(e)) => {
                (e.samples(e.skip, sample_rate), e.keep.map(|k| e.samples(k, sample_rate)))
            }
            _ => (0, None),
        };
        Ok(Packets {
            format,
            decoder,
            track_id,
            sample_rate,
            channels: u16::try_from(channels).unwrap_or(u16::MAX),
            buffer: None,
            pending: Vec::new(),
            pos: 0,
            skip,
            left,
            done: false,
        })
    }

    /// The stream's sample rate in Hz.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The stream's channel count (0 until known for a few formats).
    pub(crate) fn channels(&self) -> u16 {
        self.channels
    }

    /// Appends up to `max` mono samples to `out`; returns how many (0 at the end).
    pub(crate) fn read(&mut self, max: usize, out: &mut Vec<f32>) -> Result<usize, DecodeError> {
        while self.pos == self.pending.len() && !self.done {
            self.pending.clear();
            self.pos = 0;
            self.decode_packet()?;
        }
        let n = max.min(self.pending.len() - self.pos);
        out.extend_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    /// Decodes the next packet of the track into `pending` (nothing at the end).
    fn decode_packet(&mut self) -> Result<(), DecodeError> {
        let mut bad = 0;
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.done = true;
                    return Ok(());
                }
                Err(SymphoniaError::ResetRequired) => {
                    self.done = true;
                    return Ok(());
                }
                Err(e) => return Err(symphonia_error(e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymphoniaError::DecodeError(what)) if bad < MAX_BAD_PACKETS => {
                    bad += 1;
                    if bad == MAX_BAD_PACKETS {
                        return Err(DecodeError::Invalid(format!(
                            "{MAX_BAD_PACKETS} packets in a row failed to decode: {what}"
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(symphonia_error(e)),
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            if channels == 0 {
                return Err(DecodeError::Invalid("the stream has 0 channels".into()));
            }
            self.channels = u16::try_from(channels).unwrap_or(u16::MAX);
            let frames = decoded.frames() as u64;
            let needed = decoded.capacity() as u64 * channels as u64;
            let buf = match &mut self.buffer {
                Some(b) if b.capacity() as u64 >= needed => b,
                _ => self.buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
            };
            buf.copy_interleaved_ref(decoded);
            let mut interleaved = buf.samples();
            // The edit list of an MP4: drop the priming samples, stop after the duration.
            let drop = self.skip.min(frames);
            self.skip -= drop;
            interleaved = &interleaved[drop as usize * channels..];
            if let Some(left) = &mut self.left {
                let take = (*left).min(frames - drop);
                *left -= take;
                interleaved = &interleaved[..take as usize * channels];
                if *left == 0 {
                    self.done = true;
                }
            }
            mono(interleaved, channels, &mut self.pending);
            return Ok(());
        }
    }
}

/// Appends the mean of the channels of each interleaved frame to `out`.
fn mono(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f64;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| (frame.iter().map(|&x| f64::from(x)).sum::<f64>() * scale) as f32),
    );
}

/// A codec's name for messages.
fn codec_name(codec: CodecType) -> String {
    let name = match codec {
        codecs::CODEC_TYPE_OPUS => "Opus",
        codecs::CODEC_TYPE_SPEEX => "Speex",
        codecs::CODEC_TYPE_MUSEPACK => "Musepack",
        codecs::CODEC_TYPE_WMA => "Windows Media Audio",
        codecs::CODEC_TYPE_EAC3 => "AC-3/E-AC-3",
        codecs::CODEC_TYPE_AC4 => "AC-4",
        codecs::CODEC_TYPE_DCA => "DTS",
        codecs::CODEC_TYPE_WAVPACK => "WavPack",
        codecs::CODEC_TYPE_MONKEYS_AUDIO => "Monkey's Audio",
        codecs::CODEC_TYPE_TTA => "True Audio",
        codecs::CODEC_TYPE_ATRAC1
        | codecs::CODEC_TYPE_ATRAC3
        | codecs::CODEC_TYPE_ATRAC3PLUS
        | codecs::CODEC_TYPE_ATRAC9 => "ATRAC",
        codecs::CODEC_TYPE_ADPCM_G722
        | codecs::CODEC_TYPE_ADPCM_G726
        | codecs::CODEC_TYPE_ADPCM_G726LE => "G.72x ADPCM",
        codecs::CODEC_TYPE_PCM_ALAW => "A-law PCM",
        codecs::CODEC_TYPE_PCM_MULAW => "mu-law PCM",
        other => return format!("codec {other}"),
    };
    name.into()
}

/// An error of symphonia's, in melkit's terms.
pub(crate) fn symphonia_error(e: SymphoniaError) -> DecodeError {
    match e {
        SymphoniaError::IoError(io) => DecodeError::Io(io),
        SymphoniaError::Unsupported(what) => DecodeError::Unsupported(what.to_string()),
        SymphoniaError::DecodeError(what) => DecodeError::Invalid(what.to_string()),
        other => DecodeError::Invalid(other.to_string()),
    }
}

/// The file as symphonia reads it, with the FLAC metadata blocks melkit does not need
/// (application data, comments, cue sheets, pictures) marked as padding: symphonia allocates
/// what their length fields claim before reading them, so a corrupt length could take
/// gigabytes; padding it skips.
struct Patched {
    file: File,
    len: u64,
    pos: u64,
    /// Offsets of bytes to replace, and their new values.
    patches: Vec<(u64, u8)>,
}

impl Patched {
    fn new(mut file: File) -> Self {
        let len = file.metadata().map_or(0, |m| m.len());
        let patches = flac_patches(&mut file).unwrap_or_default();
        let _ = file.seek(SeekFrom::Start(0));
        Patched { file, len, pos: 0, patches }
    }
}

/// The type bytes of the FLAC metadata blocks to turn into padding.
fn flac_patches(file: &mut File) -> std::io::Result<Vec<(u64, u8)>> {
    let mut patches = Vec::new();
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)?;
    if &magic != b"fLaC" {
        return Ok(patches);
    }
    let mut at = 4u64;
    for _ in 0..1024 {
        let mut header = [0u8; 4];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut header)?;
        let (last, kind) = (header[0] & 0x80, header[0] & 0x7f);
        if matches!(kind, 2 | 4 | 5 | 6) {
            patches.push((at, last | 1));
        }
        at += 4 + u64::from(u32::from_be_bytes([0, header[1], header[2], header[3]]));
        if last != 0 {
            break;
        }
    }
    Ok(patches)
}

impl Read for Patched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let end = self.pos + n as u64;
        for &(at, value) in &self.patches {
            if (self.pos..end).contains(&at) {
                buf[(at - self.pos) as usize] = value;
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Patched {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for Patched {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flac_comment_and_picture_blocks_are_read_as_padding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.flac");
        // STREAMINFO (34 bytes), a comment block claiming a 4 GiB comment, a last picture block.
        let mut bytes = b"fLaC".to_vec();
        bytes.extend_from_slice(&[0x00, 0, 0, 34]);
        bytes.extend_from_slice(&[0u8; 34]);
        bytes.extend_from_slice(&[0x04, 0, 0, 12]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        bytes.extend_from_slice(&[0x86, 0, 0, 2, 9, 9]);
        std::fs::write(&path, &bytes).unwrap();
        let mut source = Patched::new(File::open(&path).unwrap());
        assert_eq!(source.patches, [(42, 0x01), (58, 0x81)]);
        let mut read = Vec::new();
        source.read_to_end(&mut read).unwrap();
        assert_eq!((read[42], read[58]), (0x01, 0x81));
        assert_eq!(read[..42], bytes[..42]);
        assert_eq!(read[59..], bytes[59..]);
    }
}
