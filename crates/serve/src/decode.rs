//! A request body to a mono signal at the configured rate: an audio file in any format melkit
//! decodes (recognised by content), or raw little-endian f32 PCM whose rate and channels the
//! content type gives (`application/x-f32; rate=16000; channels=2`), then resampled.

use std::io::Write;

/// Why a body gives no signal, with the HTTP status it means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// 415: a content type the service does not take.
    Unsupported(String),
    /// 400: the body is not audio melkit decodes.
    Undecodable(String),
    /// 422: valid audio the configuration cannot take.
    Unprocessable(String),
}

impl BodyError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::Unsupported(_) => 415,
            BodyError::Undecodable(_) => 400,
            BodyError::Unprocessable(_) => 422,
        }
    }

    /// The error's name and reason.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            BodyError::Unsupported(r) => ("unsupported_media_type", r),
            BodyError::Undecodable(r) => ("undecodable", r),
            BodyError::Unprocessable(r) => ("unprocessable", r),
        }
    }
}

/// What a content type asks for.
enum Kind {
    File,
    Raw { rate: u32, channels: usize },
}

fn kind(content_type: Option<&str>) -> Result<Kind, BodyError> {
    let Some(value) = content_type else { return Ok(Kind::File) };
    let mut parts = value.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default().to_ascii_lowercase();
    if essence == "application/x-f32" || essence == "audio/x-f32" {
        let (mut rate, mut channels) = (None, 1usize);
        for p in parts {
            match p.split_once('=') {
                Some(("rate", v)) => rate = v.trim().parse::<u32>().ok(),
                Some(("channels", v)) => channels = v.trim().parse::<usize>().unwrap_or(0),
                _ => {}
            }
        }
        let bad = || {
            BodyError::Undecodable(format!("`{value}`: raw f32 needs rate=N and channels=C ≥ 1"))
        };
        let rate = rate.filter(|r| *r > 0).ok_or_else(bad)?;
        if channels == 0 {
            return Err(bad());
        }
        return Ok(Kind::Raw { rate, channels });
    }
    if essence.starts_with("audio/") || essence == "application/octet-stream" {
        return Ok(Kind::File);
    }
    Err(BodyError::Unsupported(format!(
        "content type `{value}`: send audio/* or application/octet-stream (an audio file), or \
         application/x-f32; rate=N; channels=C (raw PCM)"
    )))
}

/// Whether the body is raw mono PCM already at `target` Hz: no decoding nor resampling, only
/// a copy (cheap enough for the async worker).
pub(crate) fn is_plain(content_type: Option<&str>, target: u32) -> bool {
    matches!(kind(content_type), Ok(Kind::Raw { rate, channels: 1 }) if rate == target)
}

/// The body's samples, mono, at `target` Hz.
pub(crate) fn signal(
    body: &[u8],
    content_type: Option<&str>,
    target: u32,
) -> Result<Vec<f32>, BodyError> {
    let (samples, rate) = match kind(content_type)? {
        Kind::Raw { rate, channels } => (raw(body, channels)?, rate),
        Kind::File => {
            let audio = file(body)?;
            (audio.samples, audio.sample_rate)
        }
    };
    if rate == target {
        return Ok(samples);
    }
    melkit_io::resample(&samples, rate, target)
        .map_err(|e| BodyError::Unprocessable(format!("{e}")))
}

fn raw(body: &[u8], channels: usize) -> Result<Vec<f32>, BodyError> {
    let frame = 4 * channels;
    if body.is_empty() || !body.len().is_multiple_of(frame) {
        return Err(BodyError::Undecodable(format!(
            "{} bytes are not whole frames of {channels} f32 channels",
            body.len()
        )));
    }
    // A copy at memory speed, then a branch-free check (the position found only on failure).
    let mut values = vec![0f32; body.len() / 4];
    bytemuck::cast_slice_mut::<f32, u8>(&mut values).copy_from_slice(body);
    if cfg!(target_endian = "big") {
        values.iter_mut().for_each(|v| *v = f32::from_bits(v.to_bits().swap_bytes()));
    }
    if !values.iter().fold(true, |ok, v| ok & v.is_finite()) {
        let i = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(BodyError::Undecodable(format!("sample {} is not finite", i / channels)));
    }
    if channels == 1 {
        return Ok(values);
    }
    Ok(values.chunks_exact(channels).map(|f| f.iter().sum::<f32>() / channels as f32).collect())
}

/// Decodes an audio file held in memory (through a file in memory-backed storage where there
/// is one: melkit's decoders read files).
fn file(body: &[u8]) -> Result<melkit_io::Audio, BodyError> {
    let dir = std::path::Path::new("/dev/shm");
    let temp = if dir.is_dir() {
        tempfile::NamedTempFile::new_in(dir)
    } else {
        tempfile::NamedTempFile::new()
    };
    let internal = |e: std::io::Error| BodyError::Unprocessable(format!("no room to decode: {e}"));
    let mut temp = temp.map_err(internal)?;
    temp.write_all(body).map_err(internal)?;
    melkit_io::decode_file(temp.path()).map_err(|e| BodyError::Undecodable(e.to_string()))
}
