//! Decoding to 8-bit RGB(A): JPEG with libjpeg-turbo (DCT-domain shrink-on-load at 1/2, 1/4,
//! 1/8), PNG, GIF (every frame, composited) and WebP (still and animated).

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder};

use super::bitmap::{Bitmap, Channels, Frame};
use super::jpeg_markers;
use super::probe::Probe;
use super::Format;
use crate::error::{Error, ErrorKind, Result};

/// A decoded source.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// At least one frame; all frames have the canvas size.
    pub frames: Vec<Frame>,
    /// Loop count of an animation (0 = forever).
    pub loop_count: u16,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

impl Decoded {
    pub fn first(&self) -> &Bitmap {
        &self.frames[0].bitmap
    }
}

/// How to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// JPEG only: decode at `1/shrink` of the stored size (1, 2, 4 or 8).
    pub shrink: u32,
    /// Decode every frame of an animation (otherwise the first only).
    pub all_frames: bool,
    /// Most frames decoded.
    pub max_frames: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { shrink: 1, all_frames: true, max_frames: 500 }
    }
}

fn undecodable(context: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::UndecodableImage, context.to_string()).with_source(source)
}

/// The size a JPEG decodes to at `1/shrink` (libjpeg rounds up).
pub fn shrunk_dimension(stored: u32, shrink: u32) -> u32 {
    stored.div_ceil(shrink.max(1))
}

/// Decode `bytes`, whose header is `probe`.
pub fn decode(bytes: &[u8], probe: &Probe, options: DecodeOptions) -> Result<Decoded> {
    match probe.format {
        // libjpeg-turbo reports recoverable damage (a truncated file) as an error; thumbor's
        // Pillow decodes such files (LOAD_TRUNCATED_IMAGES), so fall back to a lenient decoder.
        Format::Jpeg => decode_jpeg(bytes, options.shrink).or_else(|e| {
            log::debug!("libjpeg-turbo refused the JPEG ({e}); trying the lenient decoder");
            decode_with_image_crate(bytes, image::ImageFormat::Jpeg)
        }),
        Format::Png => decode_png(bytes),
        Format::Gif => decode_gif(bytes, options),
        Format::Webp => decode_webp(bytes, probe, options),
        Format::Avif => Err(Error::new(ErrorKind::UndecodableImage, "AVIF sources are not decoded")),
    }
}

fn decode_jpeg(bytes: &[u8], shrink: u32) -> Result<Decoded> {
    let meta = jpeg_markers::read_metadata(bytes);
    let mut decompressor = turbojpeg::Decompressor::new().map_err(|e| undecodable("JPEG decoder", e))?;
    let header = decompressor.read_header(bytes).map_err(|e| undecodable("JPEG header", e))?;
    let factor = turbojpeg::ScalingFactor::new(1, shrink.clamp(1, 8) as usize);
    decompressor.set_scaling_factor(factor).map_err(|e| undecodable("JPEG scaling", e))?;
    let scaled = header.scaled(factor);
    let cmyk = matches!(header.colorspace, turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK);
    let format = if cmyk { turbojpeg::PixelFormat::CMYK } else { turbojpeg::PixelFormat::RGB };
    let channels = format.size();
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; scaled.width * scaled.height * channels],
        width: scaled.width,
        pitch: scaled.width * channels,
        height: scaled.height,
        format,
    };
    decompressor.decompress(bytes, image.as_deref_mut()).map_err(|e| undecodable("JPEG data", e))?;
    let pixels = if cmyk { cmyk_to_rgb(&image.pixels, meta.adobe) } else { image.pixels };
    Ok(Decoded {
        frames: vec![Frame {
            bitmap: Bitmap {
                width: scaled.width as u32,
                height: scaled.height as u32,
                channels: Channels::Rgb,
                pixels,
            },
            delay_ms: 0,
        }],
        loop_count: 0,
        icc: meta.icc,
    })
}

/// CMYK to RGB without a colour profile. Adobe writes CMYK inverted (0 = full ink), which most
/// CMYK JPEGs in the wild are; the multiplicative formula then gives the expected colours.
fn cmyk_to_rgb(cmyk: &[u8], adobe_inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = if adobe_inverted {
            [px[0], px[1], px[2], px[3]]
        } else {
            [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]]
        };
        let mul = |a: u8, b: u8| ((u16::from(a) * u16::from(b) + 127) / 255) as u8;
        rgb.extend_from_slice(&[mul(c, k), mul(m, k), mul(y, k)]);
    }
    rgb
}

/// A decoded `DynamicImage` as RGB or RGBA 8-bit, dropping an alpha channel that is all opaque.
fn to_bitmap(image: DynamicImage) -> Bitmap {
    let bitmap = if image.color().has_alpha() {
        let rgba = image.into_rgba8();
        Bitmap { width: rgba.width(), height: rgba.height(), channels: Channels::Rgba, pixels: rgba.into_raw() }
    } else {
        let rgb = image.into_rgb8();
        Bitmap { width: rgb.width(), height: rgb.height(), channels: Channels::Rgb, pixels: rgb.into_raw() }
    };
    bitmap.without_opaque_alpha()
}

fn decode_with_image_crate(bytes: &[u8], format: image::ImageFormat) -> Result<Decoded> {
    let image = image::load_from_memory_with_format(bytes, format).map_err(|e| undecodable("image data", e))?;
    Ok(Decoded { frames: vec![Frame { bitmap: to_bitmap(image), delay_ms: 0 }], loop_count: 0, icc: None })
}

fn decode_png(bytes: &[u8]) -> Result<Decoded> {
    let mut decoder =
        image::codecs::png::PngDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("PNG header", e))?;
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(|e| undecodable("PNG data", e))?;
    Ok(Decoded { frames: vec![Frame { bitmap: to_bitmap(image), delay_ms: 0 }], loop_count: 0, icc })
}

fn decode_gif(bytes: &[u8], options: DecodeOptions) -> Result<Decoded> {
    let decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("GIF header", e))?;
    let loop_count = gif_loop_count(bytes);
    let limit = if options.all_frames { options.max_frames as usize } else { 1 };
    let mut frames = Vec::new();
    for frame in decoder.into_frames().take(limit) {
        let frame = match frame {
            Ok(f) => f,
            // A corrupt later frame ends the animation (PIL keeps what it could read).
            Err(e) if !frames.is_empty() => {
                log::debug!("GIF frame {} unreadable, animation cut: {e}", frames.len());
                break;
            }
            Err(e) => return Err(undecodable("GIF frame", e)),
        };
        let (num, den) = frame.delay().numer_denom_ms();
        let delay_ms = num.checked_div(den).unwrap_or(0);
        let buffer = frame.into_buffer();
        frames.push(Frame {
            bitmap: Bitmap {
                width: buffer.width(),
                height: buffer.height(),
                channels: Channels::Rgba,
                pixels: buffer.into_raw(),
            },
            delay_ms,
        });
    }
    if frames.is_empty() {
        return Err(Error::new(ErrorKind::UndecodableImage, "GIF without frames"));
    }
    if frames.len() == 1 {
        let only = frames.pop().expect("one frame");
        frames.push(Frame { bitmap: only.bitmap.without_opaque_alpha(), delay_ms: only.delay_ms });
    }
    Ok(Decoded { frames, loop_count, icc: None })
}

/// The NETSCAPE2.0 loop count (0 = forever, the default when absent).
fn gif_loop_count(bytes: &[u8]) -> u16 {
    bytes
        .windows(11)
        .position(|w| w == b"NETSCAPE2.0")
        .and_then(|p| bytes.get(p + 13..p + 15))
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0)
}

fn decode_webp(bytes: &[u8], probe: &Probe, options: DecodeOptions) -> Result<Decoded> {
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("WebP header", e))?;
    let icc = decoder.icc_profile().ok().flatten();
    let (width, height) = decoder.dimensions();
    let channels = if decoder.has_alpha() { Channels::Rgba } else { Channels::Rgb };
    let frame_len = width as usize * height as usize * channels.count();
    if !probe.is_animated() {
        let mut pixels = vec![0u8; frame_len];
        decoder.read_image(&mut pixels).map_err(|e| undecodable("WebP data", e))?;
        let bitmap = Bitmap { width, height, channels, pixels };
        return Ok(Decoded {
            frames: vec![Frame { bitmap: bitmap.without_opaque_alpha(), delay_ms: 0 }],
            loop_count: 0,
            icc,
        });
    }
    let loop_count = match decoder.loop_count() {
        image_webp::LoopCount::Forever => 0,
        image_webp::LoopCount::Times(n) => n.get(),
    };
    let limit = if options.all_frames { options.max_frames } else { 1 };
    let mut frames = Vec::new();
    for _ in 0..probe.frames.min(limit) {
        let mut pixels = vec![0u8; frame_len];
        match decoder.read_frame(&mut pixels) {
            Ok(delay_ms) => frames.push(Frame { bitmap: Bitmap { width, height, channels, pixels }, delay_ms }),
            Err(e) if frames.is_empty() => return Err(undecodable("WebP frame", e)),
            Err(_) => break,
        }
    }
    Ok(Decoded { frames, loop_count, icc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion() {
        // Adobe-inverted: 255 = no ink.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], true), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 255], true), vec![255, 0, 0]);
        // Plain CMYK: 0 = no ink.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
    }

    #[test]
    fn shrunk_sizes_round_up() {
        assert_eq!(shrunk_dimension(4000, 8), 500);
        assert_eq!(shrunk_dimension(4001, 8), 501);
        assert_eq!(shrunk_dimension(5, 4), 2);
    }
}
