//! The NPY format (readable by `numpy.load`): headers, and the values in the element type asked
//! for, written as they come so that a long tensor never has to be held whole.

use std::io::Write;

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
    fn unicode_scalar_is_utf32() {
        let npy = unicode_scalar_npy("héllo");
        let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(npy.len(), 10 + header_len + 4 * 5);
        assert_eq!(&npy[10 + header_len + 4..10 + header_len + 8], &[0xE9, 0, 0, 0]);
    }
}
