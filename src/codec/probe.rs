//! Header probing: format, dimensions, EXIF orientation and frame count, read without decoding
//! pixels, so hostile sizes are refused before anything is allocated.

use std::io::Cursor;

use image::ImageDecoder;

use super::jpeg_markers;
use super::{sniff, Format, Sniffed};
use crate::error::{Error, ErrorKind, Result};
use crate::pipeline::geometry::Size;

/// What the header says about a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    /// Stored dimensions (before EXIF orientation); the canvas size of an animation.
    pub size: Size,
    /// EXIF orientation, 1..=8 (1 when absent).
    pub orientation: u8,
    /// Frames of an animation (1 for a still image). Counted up to `max_frames + 1`.
    pub frames: u32,
    /// The raw EXIF payload, when the format carries one.
    pub exif: Option<Vec<u8>>,
    /// A BMP or TIFF source (only with `image.legacy_formats`): decoded by the image crate,
    /// `format` is then what thumbor writes it as (BMP: JPEG, TIFF: PNG).
    pub legacy: Option<image::ImageFormat>,
}

impl Probe {
    /// The size after applying the EXIF orientation when `respect` is set.
    pub fn oriented_size(&self, respect: bool) -> Size {
        if respect && (5..=8).contains(&self.orientation) {
            self.size.transposed()
        } else {
            self.size
        }
    }

    pub fn is_animated(&self) -> bool {
        self.frames > 1
    }

    /// A JPEG that libjpeg-turbo decodes (and can shrink on load).
    pub fn is_jpeg(&self) -> bool {
        self.format == Format::Jpeg && self.legacy.is_none()
    }
}

fn undecodable(context: impl Into<String>) -> Error {
    Error::new(ErrorKind::UndecodableImage, context)
}

/// Read the header of `bytes`. Frame counting stops after `max_frames + 1` frames.
pub fn probe(bytes: &[u8], max_frames: u32) -> Result<Probe> {
    probe_with(bytes, max_frames, false)
}

/// [`probe`], also accepting BMP and TIFF when `legacy_formats` is set (thumbor's Pillow opens
/// them; Thumbora refuses them by default).
pub fn probe_with(bytes: &[u8], max_frames: u32, legacy_formats: bool) -> Result<Probe> {
    let format = match sniff(bytes) {
        Sniffed::Supported(f) => f,
        Sniffed::Unsupported(kind @ ("image/bmp" | "image/tiff")) if legacy_formats => {
            return probe_legacy(bytes, kind)
        }
        Sniffed::Unsupported(kind) => return Err(undecodable(format!("unsupported format {kind}"))),
        Sniffed::Unknown => return Err(undecodable("not an image (unknown magic bytes)")),
    };
    let probe = match format {
        Format::Jpeg => probe_jpeg(bytes)?,
        Format::Png => probe_png(bytes)?,
        Format::Gif => probe_gif(bytes, max_frames)?,
        Format::Webp => probe_webp(bytes)?,
        Format::Avif => {
            let (width, height) = super::avif::dimensions(bytes)?;
            Probe { format, size: Size::new(width, height), orientation: 1, frames: 1, exif: None, legacy: None }
        }
    };
    if probe.size.width == 0 || probe.size.height == 0 {
        return Err(undecodable("image has a zero dimension"));
    }
    Ok(probe)
}

/// BMP and TIFF headers through the image crate (pure Rust); thumbor writes BMP as JPEG (its
/// default extension) and TIFF as PNG.
fn probe_legacy(bytes: &[u8], kind: &str) -> Result<Probe> {
    let (source, format) = if kind == "image/bmp" {
        (image::ImageFormat::Bmp, Format::Jpeg)
    } else {
        (image::ImageFormat::Tiff, Format::Png)
    };
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), source)
        .into_dimensions()
        .map_err(|e| undecodable(format!("{kind} header")).with_source(e))?;
    Ok(Probe { format, size: Size::new(width, height), orientation: 1, frames: 1, exif: None, legacy: Some(source) })
}

fn probe_jpeg(bytes: &[u8]) -> Result<Probe> {
    let header = turbojpeg::read_header(bytes).map_err(|e| undecodable("JPEG header").with_source(e))?;
    let meta = jpeg_markers::read_metadata(bytes);
    let orientation = meta.exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    Ok(Probe {
        format: Format::Jpeg,
        size: Size::new(to_u32(header.width)?, to_u32(header.height)?),
        orientation,
        frames: 1,
        exif: meta.exif,
        legacy: None,
    })
}

fn probe_png(bytes: &[u8]) -> Result<Probe> {
    // Dimensions straight from IHDR, before the decoder reads anything else.
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return Err(undecodable("PNG without IHDR"));
    }
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    // EXIF (eXIf chunk) needs the chunks before IDAT; the decoder reads only those here.
    let exif =
        image::codecs::png::PngDecoder::new(Cursor::new(bytes)).ok().and_then(|mut d| d.exif_metadata().ok().flatten());
    let orientation = exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    Ok(Probe { format: Format::Png, size: Size::new(width, height), orientation, frames: 1, exif, legacy: None })
}

fn probe_gif(bytes: &[u8], max_frames: u32) -> Result<Probe> {
    if bytes.len() < 13 {
        return Err(undecodable("GIF shorter than its header"));
    }
    let width = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let height = u32::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    Ok(Probe {
        format: Format::Gif,
        size: Size::new(width, height),
        orientation: 1,
        frames: count_gif_frames(bytes, max_frames.saturating_add(1)).max(1),
        exif: None,
        legacy: None,
    })
}

/// Count image descriptors by walking the GIF block structure, stopping at `limit`.
pub fn count_gif_frames(data: &[u8], limit: u32) -> u32 {
    let skip_color_table = |i: usize, flags: u8| -> usize {
        if flags & 0x80 != 0 {
            i + (3usize << ((flags & 7) + 1))
        } else {
            i
        }
    };
    let mut frames = 0u32;
    let Some(&flags) = data.get(10) else { return 0 };
    let mut i = skip_color_table(13, flags);
    while frames < limit {
        let Some(&block) = data.get(i) else { break };
        i += 1;
        match block {
            0x3B => break,
            0x21 => i += 1, // extension label
            0x2C => {
                frames += 1;
                let Some(&desc_flags) = data.get(i + 8) else { break };
                i = skip_color_table(i + 9, desc_flags);
                i += 1; // LZW minimum code size
            }
            _ => break,
        }
        // Sub-blocks until the zero terminator.
        loop {
            let Some(&len) = data.get(i) else { return frames };
            i += 1;
            if len == 0 {
                break;
            }
            i += usize::from(len);
        }
    }
    frames
}

fn probe_webp(bytes: &[u8]) -> Result<Probe> {
    let mut decoder =
        image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("WebP header").with_source(e))?;
    let (width, height) = decoder.dimensions();
    let frames = if decoder.is_animated() { decoder.num_frames().max(1) } else { 1 };
    let exif = decoder.exif_metadata().ok().flatten();
    let orientation = exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    Ok(Probe { format: Format::Webp, size: Size::new(width, height), orientation, frames, exif, legacy: None })
}

fn to_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::new(ErrorKind::TooLarge, "dimension above u32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_bomb_header_is_read_without_decoding() {
        // A 8000x8000 PNG header with no data: the probe reports the size, nothing is allocated.
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&8000u32.to_be_bytes());
        png.extend_from_slice(&8000u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        let p = probe(&png, 10).unwrap();
        assert_eq!(p.size, Size::new(8000, 8000));
    }

    #[test]
    fn garbage_is_undecodable() {
        assert_eq!(probe(b"hello", 10).unwrap_err().kind(), ErrorKind::UndecodableImage);
        assert_eq!(probe(b"\xff\xd8\xff", 10).unwrap_err().kind(), ErrorKind::UndecodableImage);
        assert_eq!(probe(b"GIF89a", 10).unwrap_err().kind(), ErrorKind::UndecodableImage);
        assert_eq!(probe(b"II*\0\0\0", 10).unwrap_err().kind(), ErrorKind::UndecodableImage);
    }

    #[test]
    fn gif_frames_are_counted_up_to_the_limit() {
        // Header, no global colour table, then N minimal frames.
        let mut gif = b"GIF89a\x02\x00\x02\x00\x00\x00\x00".to_vec();
        for _ in 0..5 {
            gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        gif.push(0x3B);
        assert_eq!(count_gif_frames(&gif, 100), 5);
        assert_eq!(count_gif_frames(&gif, 3), 3);
        for end in 0..gif.len() {
            count_gif_frames(&gif[..end], 100);
        }
    }
}
