//! Decoding to 8-bit RGB(A): JPEG with libjpeg-turbo (DCT-domain shrink-on-load at 1/2, 1/4,
//! 1/8; CMYK through its ICC profile), PNG, GIF (every frame, composited), WebP (still and
//! animated, every frame) and AVIF (still).

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder};

use super::avif;
use super::bitmap::{Bitmap, Channels, Frame};
use super::icc;
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
    if let Some(format) = probe.legacy {
        return decode_with_image_crate(bytes, format);
    }
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
        Format::Avif => {
            let bitmap = avif::decode(bytes, probe.size.pixels())?.without_opaque_alpha();
            Ok(Decoded { frames: vec![Frame { bitmap, delay_ms: 0 }], loop_count: 0, icc: None })
        }
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
    // CMYK becomes sRGB, through the embedded CMYK profile when there is a usable one; the
    // profile then no longer describes the pixels and is dropped.
    let (pixels, icc) = if cmyk {
        let through_profile = meta.icc.as_deref().and_then(|icc| icc::cmyk_to_srgb(&image.pixels, meta.adobe, icc));
        (through_profile.unwrap_or_else(|| cmyk_to_rgb(&image.pixels, meta.adobe)), None)
    } else {
        (image.pixels, meta.icc)
    };
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
        icc,
    })
}

/// CMYK to RGB without a colour profile (or with one moxcms cannot use). Adobe writes CMYK inverted (0 = full ink), which most
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
    let image = match DynamicImage::from_decoder(decoder) {
        Ok(image) => image,
        Err(e) => return decode_truncated_png(bytes).ok_or_else(|| undecodable("PNG data", e)),
    };
    Ok(Decoded { frames: vec![Frame { bitmap: to_bitmap(image), delay_ms: 0 }], loop_count: 0, icc })
}

/// A PNG whose image data ends early: the rows that arrived, the rest left zero (black, or
/// transparent), as Pillow loads it with `LOAD_TRUNCATED_IMAGES` (thumbor sets it). `None` when
/// the header itself is cut or the data is corrupt rather than short.
fn decode_truncated_png(bytes: &[u8]) -> Option<Decoded> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    match reader.next_frame(&mut buf) {
        Ok(_) => {}
        Err(png::DecodingError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            log::debug!("truncated PNG: the rows that arrived, the rest left blank");
        }
        Err(_) => return None,
    }
    let (width, height) = (reader.info().width, reader.info().height);
    let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
    let image = match reader.output_color_type().0 {
        png::ColorType::Grayscale => DynamicImage::ImageLuma8(image::ImageBuffer::from_raw(width, height, buf)?),
        png::ColorType::GrayscaleAlpha => DynamicImage::ImageLumaA8(image::ImageBuffer::from_raw(width, height, buf)?),
        png::ColorType::Rgb => DynamicImage::ImageRgb8(image::ImageBuffer::from_raw(width, height, buf)?),
        png::ColorType::Rgba => DynamicImage::ImageRgba8(image::ImageBuffer::from_raw(width, height, buf)?),
        png::ColorType::Indexed => return None,
    };
    Some(Decoded { frames: vec![Frame { bitmap: to_bitmap(image), delay_ms: 0 }], loop_count: 0, icc })
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
    fn a_truncated_png_keeps_the_rows_that_arrived() {
        use image::ImageEncoder;
        // 64x64 RGBA noise (barely compressible), cut at 60%: about the top half arrives.
        let mut state = 1u32;
        let pixels: Vec<u8> = (0..64 * 64 * 4)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 4 == 3 {
                    255
                } else {
                    (state >> 16) as u8 | 1
                }
            })
            .collect();
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&pixels, 64, 64, image::ExtendedColorType::Rgba8)
            .unwrap();
        let cut = &png[..png.len() * 6 / 10];
        let decoded = decode_png(cut).expect("decoded as far as it goes");
        let bitmap = &decoded.frames[0].bitmap;
        assert_eq!((bitmap.width, bitmap.height), (64, 64));
        assert_eq!(bitmap.channels, Channels::Rgba, "the rows that never arrived are transparent, as Pillow's");
        let row = |y: usize| &bitmap.pixels[y * 64 * 4..(y + 1) * 64 * 4];
        assert_eq!(row(0), &pixels[..64 * 4]);
        assert!(row(63).iter().all(|&v| v == 0), "rows that never arrived are zero");
        // A cut inside the header is still refused.
        assert!(decode_png(&png[..20]).is_err());
    }

    #[test]
    fn cmyk_conversion() {
        // Adobe-inverted: 255 = no ink.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], true), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 255], true), vec![255, 0, 0]);
        // Plain CMYK: 0 = no ink.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
    }

    /// A CMYK profile (lut16, Lab PCS) where only black ink counts and paper is mid gray: no ink
    /// is L*=50, full black L*=0. Far from the naive formula, so a result shows which path ran.
    fn gray_paper_cmyk_profile() -> Vec<u8> {
        use moxcms::{ColorProfile, DataColorSpace, LutDataType, LutStore, LutType, LutWarehouse, Matrix3d};
        let linear = |channels: usize| LutStore::Store16((0..channels).flat_map(|_| [0u16, 65535]).collect());
        // 2x2x2x2 grid, C outermost, K innermost; legacy 16-bit Lab: L 100 = 0xFF00, a = b = 0x8000.
        let clut = (0..16u16).flat_map(|i| [if i & 1 == 0 { 0x7F80 } else { 0 }, 0x8000, 0x8000]).collect();
        let lut = LutDataType {
            num_input_channels: 4,
            num_output_channels: 3,
            num_clut_grid_points: 2,
            matrix: Matrix3d::IDENTITY,
            num_input_table_entries: 2,
            num_output_table_entries: 2,
            input_table: linear(4),
            clut_table: LutStore::Store16(clut),
            output_table: linear(3),
            lut_type: LutType::Lut16,
        };
        let mut profile = ColorProfile::default();
        profile.color_space = DataColorSpace::Cmyk;
        profile.pcs = DataColorSpace::Lab;
        profile.profile_class = moxcms::ProfileClass::OutputDevice;
        profile.white_point = moxcms::Chromaticity::D50.to_xyzd();
        profile.media_white_point = Some(moxcms::Chromaticity::D50.to_xyzd());
        profile.lut_a_to_b_perceptual = Some(LutWarehouse::Lut(lut.clone()));
        profile.lut_a_to_b_colorimetric = Some(LutWarehouse::Lut(lut));
        profile.encode().unwrap()
    }

    /// A 16x8 Adobe CMYK JPEG: left half no ink, right half full black (stored inverted).
    fn cmyk_jpeg(icc: Option<&[u8]>) -> Vec<u8> {
        let mut pixels = Vec::new();
        for _y in 0..8 {
            for x in 0..16 {
                pixels.extend_from_slice(if x < 8 { &[255, 255, 255, 255] } else { &[255, 255, 255, 0] });
            }
        }
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: 16,
            pitch: 64,
            height: 8,
            format: turbojpeg::PixelFormat::CMYK,
        };
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(95).unwrap();
        let jpeg = compressor.compress_to_vec(image).unwrap();
        match icc {
            Some(icc) => jpeg_markers::insert_icc(jpeg, icc),
            None => jpeg,
        }
    }

    fn decode_all(bytes: &[u8]) -> Decoded {
        let probe = super::super::probe::probe(bytes, 10).unwrap();
        decode(bytes, &probe, DecodeOptions::default()).unwrap()
    }

    #[test]
    fn cmyk_jpeg_goes_through_its_profile() {
        let plain = decode_all(&cmyk_jpeg(None));
        assert!(jpeg_markers::read_metadata(&cmyk_jpeg(None)).adobe);
        let px = |d: &Decoded, x: usize| d.first().pixels[(4 * 16 + x) * 3];
        assert!(px(&plain, 2) > 245 && px(&plain, 13) < 10, "formula: white paper, black ink");

        let icc = gray_paper_cmyk_profile();
        let managed = decode_all(&cmyk_jpeg(Some(&icc)));
        let paper = px(&managed, 2);
        assert!((100..140).contains(&paper), "the profile's gray paper (L*=50 is sRGB ~119): {paper}");
        assert!(px(&managed, 13) < 10, "full black stays black");
        assert_eq!(managed.icc, None, "the CMYK profile no longer describes the pixels");
    }

    #[test]
    fn shrunk_sizes_round_up() {
        assert_eq!(shrunk_dimension(4000, 8), 500);
        assert_eq!(shrunk_dimension(4001, 8), 501);
        assert_eq!(shrunk_dimension(5, 4), 2);
    }
}
