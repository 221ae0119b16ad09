//! The NPY format (readable by `numpy.load`): headers, and the values in the element type asked
//! for, written as they come so that a long tensor never has to be held whole.

use std::io::{Read, Write};

use half::f16;

use crate::error::WriteError;
use crate::output::Dtype;

/// An NPY (version 1.0) header for a C-ordered array of `descr` (`<f4`, `<f2`, `<U12`...).
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [] => String::new(),
        [n] => format!("{n},"),
        _ => shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// The NPY type of `dtype`.
pub fn descr(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::F32 => "<f4",
        Dtype::F16 => "<f2",
    }
}

/// Writes `values` as little-endian `dtype` (f16 through `scratch`, a few dozen KiB at a time).
///
/// # Errors
/// The writer fails.
pub fn write_values<W: Write>(
    writer: &mut W,
    values: &[f32],
    dtype: Dtype,
    scratch: &mut Vec<f16>,
) -> Result<(), WriteError> {
    match dtype {
        Dtype::F32 if cfg!(target_endian = "little") => {
            writer.write_all(bytemuck::cast_slice(values))?
        }
        Dtype::F32 => {
            for v in values {
                writer.write_all(&v.to_le_bytes())?;
            }
        }
        Dtype::F16 => {
            for part in values.chunks(16 * 1024) {
                scratch.clear();
                scratch.extend(part.iter().map(|&v| f16::from_f32(v)));
                if cfg!(target_endian = "little") {
                    writer.write_all(bytemuck::cast_slice(scratch))?;
                } else {
                    scratch.iter().try_for_each(|h| writer.write_all(&h.to_le_bytes()))?;
                }
            }
        }
    }
    Ok(())
}

/// What an NPY header says: the element type and the shape of a C-ordered array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type, as NumPy spells it (`<f4`, `<f2`, ...).
    pub descr: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// Its length in the file, in bytes (magic, length and padding included).
    pub bytes: u64,
}

/// Reads an NPY header (versions 1 to 3), leaving `reader` at the first value; `None` when it
/// is not an NPY file of a C-ordered array.
///
/// # Errors
/// The reader fails or ends early.
pub fn read_header<R: Read>(reader: &mut R) -> std::io::Result<Option<NpyHeader>> {
    let mut magic = [0u8; 10];
    reader.read_exact(&mut magic)?;
    if &magic[..6] != b"\x93NUMPY" {
        return Ok(None);
    }
    let (len, prefix) = match magic[6] {
        1 => (usize::from(u16::from_le_bytes([magic[8], magic[9]])), 10),
        _ => {
            let mut more = [0u8; 2];
            reader.read_exact(&mut more)?;
            (u32::from_le_bytes([magic[8], magic[9], more[0], more[1]]) as usize, 12)
        }
    };
    if len > 1 << 16 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("its header is {len} bytes long, more than the 64 KiB an NPY header may take"),
        ));
    }
    let mut header = vec![0u8; len];
    reader.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    if header.contains("'fortran_order': True") {
        return Ok(None);
    }
    let field = |name: &str, open: char, close: char| {
        let rest = header.split(&format!("'{name}': {open}")).nth(1)?;
        rest.split(close).next().map(str::to_string)
    };
    let (Some(descr), Some(dims)) = (field("descr", '\'', '\''), field("shape", '(', ')')) else {
        return Ok(None);
    };
    let shape = dims.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    Ok(Some(NpyHeader { descr, shape, bytes: prefix + len as u64 }))
}

impl NpyHeader {
    /// The number of values its shape holds, `None` when the product overflows.
    pub fn values(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }
}

/// The size in bytes of one value of type `descr`, for the types melkit reads.
fn item_size(descr: &str) -> Option<u64> {
    match descr {
        "<f4" => Some(4),
        "<f2" => Some(2),
        _ => None,
    }
}

/// Reads `n` little-endian values of type `descr` (`<f4` or `<f2`) as f32 into `out` (replacing
/// what it holds); `false` for another type. `available` is what the source can still give, in
/// bytes: a header that claims more values than that is refused before anything is allocated.
///
/// # Errors
/// The claim exceeds `available`, or the reader fails or ends early.
pub fn read_values<R: Read>(
    reader: &mut R,
    descr: &str,
    n: usize,
    available: u64,
    out: &mut Vec<f32>,
) -> std::io::Result<bool> {
    let Some(size) = item_size(descr) else { return Ok(false) };
    if (n as u64).checked_mul(size).is_none_or(|bytes| bytes > available) {
        return Err(claims_more(n, size, available));
    }
    if descr == "<f4" {
        out.resize(n, 0.0);
        reader.read_exact(bytemuck::cast_slice_mut(out.as_mut_slice()))?;
        if cfg!(target_endian = "big") {
            out.iter_mut().for_each(|v| *v = f32::from_bits(v.to_bits().swap_bytes()));
        }
        return Ok(true);
    }
    // f16 converts as it reads, into room for the `n` values the source was shown to hold (a
    // reused `out` already has it: nothing allocated or zeroed).
    out.clear();
    out.reserve(n);
    read_values_as_they_come(reader, descr, n, out)
}

/// The error of a header that claims `n` values of `size` bytes where the source holds only
/// `held` bytes.
fn claims_more(n: usize, size: u64, held: u64) -> std::io::Error {
    let claimed = (n as u64).checked_mul(size);
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "its header claims {n} values ({} bytes) but it holds only {held} bytes of data",
            claimed.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string())
        ),
    )
}

/// Reads `n` little-endian values of type `descr` (`<f4` or `<f2`) as f32 into `out`
/// (replacing what it holds) from a source whose length is not known beforehand (a compressed
/// entry, whose declared size is only a claim): `out` grows with the values as they really
/// arrive, never by the claim. `false` for another type.
///
/// # Errors
/// The source ends before `n` values (saying how many bytes it held), or the reader fails.
pub fn read_values_as_they_come<R: Read>(
    reader: &mut R,
    descr: &str,
    n: usize,
    out: &mut Vec<f32>,
) -> std::io::Result<bool> {
    let Some(size) = item_size(descr) else { return Ok(false) };
    let width = size as usize;
    out.clear();
    // `raw[..held]`: bytes read and not yet converted (less than one value's between reads).
    let (mut raw, mut held, mut total) = ([0u8; 1 << 16], 0usize, 0u64);
    while out.len() < n {
        let want = (raw.len() - held).min((n - out.len()) * width - held);
        let got = reader.read(&mut raw[held..held + want])?;
        if got == 0 {
            return Err(claims_more(n, size, total));
        }
        (held, total) = (held + got, total + got as u64);
        let whole = held / width * width;
        let values = raw[..whole].chunks_exact(width);
        if width == 4 {
            out.extend(values.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        } else {
            out.extend(values.map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()));
        }
        raw.copy_within(whole..held, 0);
        held -= whole;
    }
    Ok(true)
}

/// A 0-d NPY array of dtype `<U{n}` holding `text` (what `numpy.save(f, numpy.array(text))`
/// writes).
pub fn unicode_scalar_npy(text: &str) -> Vec<u8> {
    let chars = text.chars().count().max(1);
    let mut out = npy_header(&format!("<U{chars}"), &[]);
    let mut count = 0;
    for c in text.chars() {
        out.extend_from_slice(&u32::from(c).to_le_bytes());
        count += 1;
    }
    out.resize(out.len() + 4 * (chars - count), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_aligned_and_spell_the_shape_as_python() {
        for shape in [&[][..], &[7][..], &[40, 2, 64, 17][..]] {
            let h = npy_header("<f4", shape);
            assert_eq!(h.len() % 64, 0);
            let text = std::str::from_utf8(&h[10..]).unwrap();
            let dims = match shape.len() {
                0 => "()".to_string(),
                1 => "(7,)".to_string(),
                _ => "(40, 2, 64, 17)".to_string(),
            };
            assert!(text.contains(&format!("'shape': {dims}")), "{text}");
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn headers_and_values_read_back() {
        for (dtype, descr) in [(Dtype::F32, "<f4"), (Dtype::F16, "<f2")] {
            let mut file = npy_header(descr, &[2, 3]);
            write_values(&mut file, &[1.0, -2.5, 3.0, 0.5, 0.0, 8.0], dtype, &mut Vec::new())
                .unwrap();
            let mut reader = file.as_slice();
            let header = read_header(&mut reader).unwrap().unwrap();
            let bytes = npy_header(descr, &[2, 3]).len() as u64;
            assert_eq!(header, NpyHeader { descr: descr.into(), shape: vec![2, 3], bytes });
            let mut values = Vec::new();
            assert!(read_values(&mut reader, &header.descr, 6, 1 << 10, &mut values).unwrap());
            assert_eq!(values, [1.0, -2.5, 3.0, 0.5, 0.0, 8.0]);
        }
        assert_eq!(read_header(&mut &b"not an npy file"[..]).unwrap(), None);
    }

    #[test]
    fn unicode_scalar_is_utf32() {
        let npy = unicode_scalar_npy("héllo");
        let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(npy.len(), 10 + header_len + 4 * 5);
        assert_eq!(&npy[10 + header_len + 4..10 + header_len + 8], &[0xE9, 0, 0, 0]);
    }

    /// A reader that gives at most `step` bytes a call, so values arrive split across reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.1.min(buf.len()).min(self.0.len());
            buf[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }

    /// Values read as they come equal what was written, f32 and f16, whether they arrive three
    /// bytes at a time or in blocks larger than the conversion's; a source that ends early says
    /// how many bytes it held, and `out` grew only with those.
    #[test]
    fn values_read_as_they_come_are_the_values_written() {
        let values: Vec<f32> = (0..40_000).map(|i| (i % 1000) as f32 - 500.0).collect();
        let f4: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f2: Vec<u8> = values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
        for (descr, bytes) in [("<f4", &f4), ("<f2", &f2)] {
            for step in [3, 1 << 20] {
                let mut out = vec![f32::NAN; 7];
                let read = read_values_as_they_come(
                    &mut Trickle(bytes, step),
                    descr,
                    values.len(),
                    &mut out,
                );
                assert!(read.unwrap(), "{descr}");
                assert!(out == values, "{descr}, {step} bytes a read: other values");
            }
            let mut out = Vec::new();
            let short = &bytes[..bytes.len() / 2 + 1];
            let e = read_values_as_they_come(&mut Trickle(short, 5), descr, 40_000, &mut out);
            let (width, held) = (bytes.len() / 40_000, short.len());
            assert_eq!(
                e.unwrap_err().to_string(),
                format!(
                    "its header claims 40000 values ({} bytes) but it holds only {held} bytes of \
                     data",
                    40_000 * width
                )
            );
            assert!(out.len() <= held / width, "{descr}: {} values from {held} bytes", out.len());
        }
        assert!(
            !read_values_as_they_come(&mut Trickle(&f4, 4), "<i4", 3, &mut Vec::new()).unwrap()
        );
    }

    /// A header that says it is longer than 64 KiB is refused with its length.
    #[test]
    fn a_header_longer_than_64_kib_is_refused() {
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend(70_000u32.to_le_bytes());
        bytes.extend(vec![b' '; 70_000]);
        let e = read_header(&mut bytes.as_slice()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "its header is 70000 bytes long, more than the 64 KiB an NPY header may take"
        );
    }
}
