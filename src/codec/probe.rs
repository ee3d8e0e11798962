//! Header probing: format, dimensions, EXIF orientation, frame count and what decoding will cost
//! (JPEG scans and coefficient memory, GIF frame sizes), read without decoding pixels, so hostile
//! sizes are refused before anything is allocated. Metadata is read through decoders created
//! with tight limits: a compressed profile or text chunk cannot inflate here.

use std::io::Cursor;

use super::jpeg_markers;
use super::{sniff, Format, Sniffed};
use crate::error::{Error, ErrorKind, Result};
use crate::geometry::Size;

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
    /// JPEG: scans (SOS markers), counted up to one past [`MAX_SCANS_COUNTED`].
    pub scans: u32,
    /// JPEG: bytes libjpeg keeps for DCT coefficients (0 when it decodes row by row: a
    /// sequential image in one scan).
    pub coefficient_bytes: u64,
    /// GIF: the largest frame's own area, in pixels (each frame is decoded at its own size
    /// before being drawn onto the canvas).
    pub largest_frame_pixels: u64,
    /// Samples a decoded pixel has before any conversion: 3 (RGB) or 4 (RGBA; CMYK for JPEG).
    pub decoded_channels: u8,
    /// PNG: Adam7-interlaced (decoded whole before conversion, not row by row).
    pub interlaced: bool,
}

/// Scans are counted up to this many (plus one): far beyond any limit worth configuring.
pub const MAX_SCANS_COUNTED: u32 = 10_000;

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
            Probe { size: Size::new(width, height), ..Probe::still(format) }
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
    Ok(Probe { size: Size::new(width, height), legacy: Some(source), ..Probe::still(format) })
}

impl Probe {
    /// A still image of `format` with nothing known yet.
    fn still(format: Format) -> Probe {
        Probe {
            format,
            size: Size::new(0, 0),
            orientation: 1,
            frames: 1,
            exif: None,
            legacy: None,
            scans: 1,
            coefficient_bytes: 0,
            largest_frame_pixels: 0,
            decoded_channels: 4,
            interlaced: false,
        }
    }
}

fn probe_jpeg(bytes: &[u8]) -> Result<Probe> {
    let header = turbojpeg::read_header(bytes).map_err(|e| undecodable("JPEG header").with_source(e))?;
    let meta = jpeg_markers::read_metadata(bytes);
    let orientation = meta.exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    let scans = jpeg_markers::count_scans(bytes, MAX_SCANS_COUNTED);
    let size = Size::new(to_u32(header.width)?, to_u32(header.height)?);
    // Several scans (progressive, or one scan per component) make libjpeg buffer every
    // coefficient of the image; one sequential scan is decoded row by row.
    let coefficient_bytes = match &meta.frame {
        Some(frame) if frame.progressive || scans > 1 => frame.coefficient_bytes(),
        _ => 0,
    };
    // Gray and YCbCr decode to RGB; CMYK and YCCK to CMYK (then converted).
    let decoded_channels = if meta.frame.as_ref().is_some_and(|f| f.sampling.len() == 4) { 4 } else { 3 };
    Ok(Probe {
        size,
        orientation,
        exif: meta.exif,
        scans,
        coefficient_bytes,
        decoded_channels,
        ..Probe::still(Format::Jpeg)
    })
}

fn probe_png(bytes: &[u8]) -> Result<Probe> {
    // Dimensions straight from IHDR, before the decoder reads anything else.
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return Err(undecodable("PNG without IHDR"));
    }
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    // EXIF (eXIf chunk) needs the chunks before IDAT; the decoder reads only those here, with the
    // profile and text chunks skipped and every other chunk held to the metadata limit.
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: super::MAX_METADATA_BYTES });
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    let reader = decoder.read_info().ok();
    let info = reader.as_ref().map(|r| r.info());
    let exif = info.and_then(|i| i.exif_metadata.as_ref().map(|e| e.to_vec()));
    let orientation = exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    // Alpha from the colour type or a transparency chunk; without a readable header, assume it.
    let alpha = info.is_none_or(|i| i.color_type.samples() % 2 == 0 || i.trns.is_some());
    Ok(Probe {
        size: Size::new(width, height),
        orientation,
        exif,
        decoded_channels: if alpha { 4 } else { 3 },
        interlaced: info.is_some_and(|i| i.interlaced),
        ..Probe::still(Format::Png)
    })
}

fn probe_gif(bytes: &[u8], max_frames: u32) -> Result<Probe> {
    if bytes.len() < 13 {
        return Err(undecodable("GIF shorter than its header"));
    }
    let width = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let height = u32::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let layout = gif_layout(bytes, max_frames.saturating_add(1));
    // Every frame is decoded at its own size, then clipped to the screen: a frame larger than the
    // whole screen is work and memory for pixels nobody sees (200 frames of 2000x2000 on a 1x1
    // screen took 10 s). Browsers draw such files; Thumbora refuses them.
    let screen = u64::from(width) * u64::from(height);
    if layout.largest_frame_pixels > screen.max(1) {
        return Err(undecodable(format!(
            "GIF frame of {} pixels on a {width}x{height} screen",
            layout.largest_frame_pixels
        )));
    }
    Ok(Probe {
        size: Size::new(width, height),
        frames: layout.frames.max(1),
        largest_frame_pixels: layout.largest_frame_pixels,
        ..Probe::still(Format::Gif)
    })
}

/// Count image descriptors by walking the GIF block structure, stopping at `limit`.
pub fn count_gif_frames(data: &[u8], limit: u32) -> u32 {
    gif_layout(data, limit).frames
}

/// The frames of a GIF, as its block structure describes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GifLayout {
    /// Image descriptors found, up to the limit.
    pub frames: u32,
    /// The largest frame's own width x height.
    pub largest_frame_pixels: u64,
}

/// Walk the GIF block structure (no decoding), stopping after `limit` frames.
pub fn gif_layout(data: &[u8], limit: u32) -> GifLayout {
    let skip_color_table = |i: usize, flags: u8| -> usize {
        if flags & 0x80 != 0 {
            i + (3usize << ((flags & 7) + 1))
        } else {
            i
        }
    };
    let mut layout = GifLayout::default();
    let Some(&flags) = data.get(10) else { return layout };
    let mut i = skip_color_table(13, flags);
    while layout.frames < limit {
        let Some(&block) = data.get(i) else { break };
        i += 1;
        match block {
            0x3B => break,
            0x21 => i += 1, // extension label
            0x2C => {
                layout.frames += 1;
                let side = |at: usize| data.get(at..at + 2).map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])));
                layout.largest_frame_pixels = layout.largest_frame_pixels.max(side(i + 4) * side(i + 6));
                let Some(&desc_flags) = data.get(i + 8) else { break };
                i = skip_color_table(i + 9, desc_flags);
                i += 1; // LZW minimum code size
            }
            _ => break,
        }
        // Sub-blocks until the zero terminator.
        loop {
            let Some(&len) = data.get(i) else { return layout };
            i += 1;
            if len == 0 {
                break;
            }
            i += usize::from(len);
        }
    }
    layout
}

fn probe_webp(bytes: &[u8]) -> Result<Probe> {
    let mut decoder =
        image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("WebP header").with_source(e))?;
    let (width, height) = decoder.dimensions();
    let frames = if decoder.is_animated() { decoder.num_frames().max(1) } else { 1 };
    let exif = decoder.exif_metadata().ok().flatten().filter(|e| e.len() <= super::MAX_METADATA_BYTES);
    let orientation = exif.as_deref().map(jpeg_markers::exif_orientation).unwrap_or(1);
    Ok(Probe { size: Size::new(width, height), orientation, frames, exif, ..Probe::still(Format::Webp) })
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
    fn jpeg_scans_and_coefficients() {
        let rgb = vec![100u8; 64 * 48 * 3];
        let image = turbojpeg::Image {
            pixels: rgb.as_slice(),
            width: 64,
            pitch: 64 * 3,
            height: 48,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).unwrap();
        let baseline = compressor.compress_to_vec(image.as_deref()).unwrap();
        let p = probe(&baseline, 10).unwrap();
        assert_eq!((p.scans, p.coefficient_bytes), (1, 0), "one sequential scan: decoded row by row");
        compressor.set_progressive(true).unwrap();
        let progressive = compressor.compress_to_vec(image.as_deref()).unwrap();
        let p = probe(&progressive, 10).unwrap();
        assert!(p.scans > 5, "{}", p.scans);
        assert_eq!(p.coefficient_bytes, (8 * 6 + 2 * 4 * 3) * 128);
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
        assert_eq!(gif_layout(&gif, 100).largest_frame_pixels, 4);
        // The same frames on a 1x1 screen: larger than the screen, refused.
        let mut small_screen = gif.clone();
        small_screen[6] = 1;
        small_screen[8] = 1;
        assert_eq!(probe(&small_screen, 100).unwrap_err().kind(), ErrorKind::UndecodableImage);
        for end in 0..gif.len() {
            count_gif_frames(&gif[..end], 100);
        }
    }
}
