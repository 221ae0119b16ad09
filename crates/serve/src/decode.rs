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
    melkit_io::resample(&samples, rate, target)
        .map_err(|e| BodyError::Unprocessable(format!("{e}")))
}

fn raw(body: &[u8], channels: usize) -> Result<Vec<f32>, BodyError> {
    let frame = 4 * channels;
    if body.is_empty() || body.len() % frame != 0 {
        return Err(BodyError::Undecodable(format!(
            "{} bytes are not whole frames of {channels} f32 channels",
            body.len()
        )));
    }
    let values: Vec<f32> =
        body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(BodyError::Undecodable(format!("sample {} is not finite", i / channels)));
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
