//! The edit list of an MP4/M4A sound track (`moov/trak/edts/elst`), which says how many priming
//! samples of an AAC stream to drop and how long the audio is: symphonia reads but does not
//! apply it, ffmpeg does.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// What the edit list of the first sound track keeps, in ticks of the track's timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    /// Ticks to drop at the start (encoder delay).
    pub skip: u64,
    /// Ticks to keep after them, when the list says.
    pub keep: Option<u64>,
    /// Ticks per second (the sample rate, for nearly every sound track).
    pub scale: u64,
}

impl Edit {
    /// `ticks` in samples at `rate`.
    pub fn samples(&self, ticks: u64, rate: u32) -> u64 {
        if self.scale == u64::from(rate) || self.scale == 0 {
            ticks
        } else {
            (u128::from(ticks) * u128::from(rate) / u128::from(self.scale)) as u64
        }
    }
}

/// Atoms are nested at most this deep on the way to `elst`.
const PATH: [&[u8; 4]; 4] = [b"moov", b"trak", b"edts", b"elst"];

/// The edit of the first sound track of an MP4 file, if it has one; the file is left at its
/// start. Anything malformed gives `None` (symphonia then reports the real problem).
pub(crate) fn edit_list(mut file: &File) -> Option<Edit> {
    let edit = read_edit(&mut file);
    file.seek(SeekFrom::Start(0)).ok()?;
    edit
}

fn read_edit(file: &mut &File) -> Option<Edit> {
    let size = file.metadata().ok()?.len();
    let mut head = [0u8; 8];
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_exact(&mut head).ok()?;
    if &head[4..8] != b"ftyp" {
        return None;
    }
    let (moov, moov_len) = find(file, 0, size, PATH[0])?;
    let mut movie_scale = None;
    let mut at = moov;
    while at < moov + moov_len {
        let (kind, body, len) = atom(file, at, moov + moov_len)?;
        if &kind == b"mvhd" {
            movie_scale = Some(timescale(file, body)?);
        } else if &kind == PATH[1]
            && let Some(edit) = track_edit(file, body, len, movie_scale?)
        {
            return Some(edit);
        }
        at = body + len;
    }
    None
}

/// The edit of one `trak` if it is a sound track with an edit list.
fn track_edit(file: &mut &File, trak: u64, len: u64, movie_scale: u64) -> Option<Edit> {
    let (mdia, mdia_len) = find(file, trak, trak + len, b"mdia")?;
    let (hdlr, _) = find(file, mdia, mdia + mdia_len, b"hdlr")?;
    let mut handler = [0u8; 12];
    file.seek(SeekFrom::Start(hdlr)).ok()?;
    file.read_exact(&mut handler).ok()?;
    if &handler[8..12] != b"soun" {
        return None;
    }
    let (mdhd, _) = find(file, mdia, mdia + mdia_len, b"mdhd")?;
    let media_scale = timescale(file, mdhd)?;
    let (edts, edts_len) = find(file, trak, trak + len, PATH[2])?;
    let (elst, _) = find(file, edts, edts + edts_len, PATH[3])?;
    file.seek(SeekFrom::Start(elst)).ok()?;
    let version = read_u32(file)? >> 24;
    let entries = read_u32(file)?;
    for _ in 0..entries.min(64) {
        let (duration, media_time) = if version == 1 {
            (read_u64(file)?, read_u64(file)? as i64)
        } else {
            (u64::from(read_u32(file)?), i64::from(read_u32(file)? as i32))
        };
        read_u32(file)?; // media rate
        if media_time < 0 {
            continue; // an empty edit (a pause before the track)
        }
        let keep = (duration > 0 && movie_scale > 0).then(|| {
            (u128::from(duration) * u128::from(media_scale) / u128::from(movie_scale)) as u64
        });
        return Some(Edit { skip: media_time as u64, keep, scale: media_scale });
    }
    None
}

/// The timescale of an `mvhd` or `mdhd` whose body starts at `body`.
fn timescale(file: &mut &File, body: u64) -> Option<u64> {
    file.seek(SeekFrom::Start(body)).ok()?;
    let version = read_u32(file)? >> 24;
    let skip = if version == 1 { 16 } else { 8 };
    file.seek(SeekFrom::Current(skip)).ok()?;
    Some(u64::from(read_u32(file)?))
}

/// The body start and length of the first atom `kind` within `[from, to)`.
fn find(file: &mut &File, from: u64, to: u64, kind: &[u8; 4]) -> Option<(u64, u64)> {
    let mut at = from;
    while at + 8 <= to {
        let (k, body, len) = atom(file, at, to)?;
        if &k == kind {
            return Some((body, len));
        }
        at = body + len;
    }
    None
}

/// The atom at `at`: its type, body start and body length (bounded by `to`).
fn atom(file: &mut &File, at: u64, to: u64) -> Option<([u8; 4], u64, u64)> {
    file.seek(SeekFrom::Start(at)).ok()?;
    let size = u64::from(read_u32(file)?);
    let mut kind = [0u8; 4];
    file.read_exact(&mut kind).ok()?;
    let (header, size) = match size {
        0 => (8, to - at),
        1 => (16, read_u64(file)?),
        n => (8, n),
    };
    if size < header || at + size > to {
        return None;
    }
    Some((kind, at + header, size - header))
}

fn read_u32(file: &mut &File) -> Option<u32> {
    let mut b = [0u8; 4];
    file.read_exact(&mut b).ok()?;
    Some(u32::from_be_bytes(b))
}

fn read_u64(file: &mut &File) -> Option<u64> {
    let mut b = [0u8; 8];
    file.read_exact(&mut b).ok()?;
    Some(u64::from_be_bytes(b))
}
