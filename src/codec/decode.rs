//! Decoding to 8-bit RGB(A): JPEG with libjpeg-turbo (DCT-domain shrink-on-load at 1/2, 1/4,
//! 1/8; CMYK through its ICC profile), PNG row by row, GIF (every frame, composited), WebP (still
//! and animated, every frame) and AVIF (still). [`peak_bytes`] says what each path holds at its
//! peak, before anything is decoded; a path the estimate cannot foresee (the lenient JPEG decoder)
//! takes its memory from the render's budget first. Long loops stop at the render's checkpoints.

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage};

use super::avif;
use super::bitmap::{Bitmap, Canvas, Channels, Frame};
use super::icc;
use super::jpeg_markers;
use super::probe::Probe;
use super::{Format, MAX_METADATA_BYTES};
use crate::budget;
use crate::error::{Error, ErrorKind, Result};

/// A decoded source.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub canvas: Canvas,
    /// The data ended early and the decoder filled in the rest (thumbor renders such files too):
    /// the download may have been cut, so the source is not kept for other renders.
    pub truncated: bool,
}

impl Decoded {
    fn still(bitmap: Bitmap, icc: Option<Vec<u8>>) -> Decoded {
        Decoded { canvas: Canvas::still(bitmap, icc), truncated: false }
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
    /// JPEG only: most scans libjpeg-turbo reads (0: no limit). The probe refuses files over the
    /// limit; this stops the decoder too, should a file count differently.
    pub max_scans: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { shrink: 1, all_frames: true, max_frames: 500, max_scans: 0 }
    }
}

fn undecodable(context: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::UndecodableImage, context.to_string()).with_source(source)
}

/// The size a JPEG decodes to at `1/shrink` (libjpeg rounds up).
pub fn shrunk_dimension(stored: u32, shrink: u32) -> u32 {
    stored.div_ceil(shrink.max(1))
}

/// The most memory decoding `probe`'s source with `options` holds at once, in bytes: the decoded
/// frames and what the decoder keeps beside them. Paths it cannot foresee reserve their own.
pub fn peak_bytes(probe: &Probe, options: DecodeOptions) -> u64 {
    let canvas = probe.size.pixels();
    let frames = if options.all_frames { u64::from(probe.frames.clamp(1, options.max_frames.max(1))) } else { 1 };
    // Row buffers and decoder state: a few rows of the widest format, plus the metadata kept.
    let working = u64::from(probe.size.width) * 64 + MAX_METADATA_BYTES as u64;
    if probe.legacy.is_some() {
        // The image crate's BMP and TIFF decoders: a full-size image (up to 16 bits a sample),
        // then its RGB(A) copy, and their working buffers.
        return canvas * 12 + working + 16 * 1024 * 1024;
    }
    match probe.format {
        Format::Jpeg => {
            let out = u64::from(shrunk_dimension(probe.size.width, options.shrink))
                * u64::from(shrunk_dimension(probe.size.height, options.shrink));
            // RGB out (or CMYK, then its RGB conversion), plus every DCT coefficient when the
            // file has several scans: at the stored size, whatever the output scale.
            let samples = if probe.decoded_channels == 4 { 4 + 3 } else { 3 };
            out * samples + probe.coefficient_bytes + working
        }
        // RGB(A) rows written straight into the image (interlaced files: one more image in the
        // decoder's layout, deinterlaced before conversion).
        Format::Png => canvas * u64::from(probe.decoded_channels) * (1 + u64::from(probe.interlaced)) + working,
        // Each frame decoded at its own size (at most the screen's, see the probe), composited
        // over the previous one, and kept.
        Format::Gif => frames * canvas * 4 + 3 * canvas.max(probe.largest_frame_pixels) * 4 + working,
        // The canvas per frame, the decoder's own canvas and YUV planes.
        Format::Webp => frames * canvas * 4 + canvas * 2 + working,
        // dav1d's planes (up to 16 bits, 4:4:4, colour and alpha) and the RGBA result.
        Format::Avif => canvas * 12 + working,
    }
}

/// Decode `bytes`, whose header is `probe`.
pub fn decode(bytes: &[u8], probe: &Probe, options: DecodeOptions) -> Result<Decoded> {
    if let Some(format) = probe.legacy {
        return decode_with_image_crate(bytes, format, probe.size.pixels() * 12);
    }
    match probe.format {
        Format::Jpeg => decode_jpeg(bytes, probe, options),
        Format::Png => decode_png(bytes),
        Format::Gif => decode_gif(bytes, options),
        Format::Webp => decode_webp(bytes, probe, options),
        Format::Avif => {
            let bitmap = avif::decode(bytes, probe.size.pixels())?.without_opaque_alpha();
            Ok(Decoded::still(bitmap, None))
        }
    }
}

/// libjpeg-turbo first. What it reports as a warning (a truncated file, corrupt data it skipped)
/// still decodes, as Pillow decodes it for thumbor (`LOAD_TRUNCATED_IMAGES`). A file it refuses
/// outright goes to the image crate's more lenient decoder, at full size: that memory is taken
/// from the render's budget before decoding.
fn decode_jpeg(bytes: &[u8], probe: &Probe, options: DecodeOptions) -> Result<Decoded> {
    match decode_with_libjpeg(bytes, options) {
        Ok(decoded) => Ok(decoded),
        Err(e) if e.kind() != ErrorKind::UndecodableImage => Err(e),
        Err(e) => {
            log::debug!("libjpeg-turbo refused the JPEG ({e}); trying the lenient decoder");
            // zune-jpeg's planes and the RGB result, at the stored size.
            let full = probe.size.pixels() * 7;
            budget::reserve(full)?;
            let mut decoded = decode_with_image_crate(bytes, image::ImageFormat::Jpeg, full)?;
            decoded.truncated = true;
            Ok(decoded)
        }
    }
}

/// Whether a libjpeg message is one of its warnings (`JWRN_*` in jerror.h): the decoder went on
/// and the image is complete, with the missing or corrupt part filled in.
fn is_libjpeg_warning(message: &str) -> bool {
    const WARNINGS: &[&str] = &[
        "Corrupt JPEG data",
        "Premature end of JPEG file",
        "Warning: ",
        "Inconsistent progression sequence",
        "Invalid SOS parameters for sequential JPEG",
        "Unknown Adobe color transform",
        "Application transferred too many scanlines",
    ];
    WARNINGS.iter().any(|w| message.contains(w))
}

fn decode_with_libjpeg(bytes: &[u8], options: DecodeOptions) -> Result<Decoded> {
    let meta = jpeg_markers::read_metadata(bytes);
    let mut decompressor = turbojpeg::Decompressor::new().map_err(|e| undecodable("JPEG decoder", e))?;
    let header = decompressor.read_header(bytes).map_err(|e| undecodable("JPEG header", e))?;
    let factor = turbojpeg::ScalingFactor::new(1, options.shrink.clamp(1, 8) as usize);
    decompressor.set_scaling_factor(factor).map_err(|e| undecodable("JPEG scaling", e))?;
    if options.max_scans > 0 {
        decompressor.set_scan_limit(options.max_scans).map_err(|e| undecodable("JPEG scan limit", e))?;
    }
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
    let mut truncated = false;
    if let Err(e) = decompressor.decompress(bytes, image.as_deref_mut()) {
        let message = e.to_string();
        if message.contains("more than") && message.contains("scans") {
            return Err(Error::new(ErrorKind::TooLarge, format!("JPEG: {message}")));
        }
        if !is_libjpeg_warning(&message) {
            return Err(undecodable("JPEG data", e));
        }
        log::debug!("JPEG decoded with a warning: {message}");
        truncated = message.contains("Premature end") || message.contains("premature end");
    }
    budget::checkpoint()?;
    // CMYK becomes sRGB, through the embedded CMYK profile when there is a usable one; the
    // profile then no longer describes the pixels and is dropped.
    let (pixels, icc) = if cmyk {
        let through_profile = meta.icc.as_deref().and_then(|icc| icc::cmyk_to_srgb(&image.pixels, meta.adobe, icc));
        (through_profile.unwrap_or_else(|| cmyk_to_rgb(&image.pixels, meta.adobe)), None)
    } else {
        (image.pixels, meta.icc)
    };
    let bitmap = Bitmap { width: scaled.width as u32, height: scaled.height as u32, channels: Channels::Rgb, pixels };
    Ok(Decoded { truncated, ..Decoded::still(bitmap, icc) })
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

/// The image crate's decoder for `format`, allowed to allocate `max_alloc` bytes for the image
/// (plus its decoders' own working buffers, such as a TIFF strip).
fn decode_with_image_crate(bytes: &[u8], format: image::ImageFormat, max_alloc: u64) -> Result<Decoded> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc + 16 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| undecodable("image data", e))?;
    Ok(Decoded::still(to_bitmap(image), None))
}

/// PNG with the png crate, row by row into 8-bit RGB or RGBA: 16-bit samples are cut to 8 bits as
/// each row arrives (Pillow keeps the high byte too), palette and gray are expanded, `tRNS`
/// becomes alpha. Metadata is held to [`MAX_METADATA_BYTES`] (a larger profile is dropped, never
/// inflated) and text chunks are skipped. A file whose image data ends early keeps the rows that
/// arrived, the rest left zero (black, or transparent), as Pillow loads it with
/// `LOAD_TRUNCATED_IMAGES` (thumbor sets it).
fn decode_png(bytes: &[u8]) -> Result<Decoded> {
    // The decoder's own allowance: the metadata, and its row buffers (up to 8 bytes a pixel).
    let width = bytes.get(16..20).map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let allowance = MAX_METADATA_BYTES + 4 * 8 * width as usize + 64 * 1024;
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: allowance });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    let mut reader = decoder.read_info().map_err(|e| undecodable("PNG header", e))?;
    let info = reader.info();
    let (width, height, interlaced) = (info.width, info.height, info.interlaced);
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec()).filter(|p| p.len() <= MAX_METADATA_BYTES);
    let (color, _) = reader.output_color_type();
    let from = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(Error::new(ErrorKind::UndecodableImage, "PNG palette not expanded")),
    };
    let channels = if from % 2 == 0 { Channels::Rgba } else { Channels::Rgb };
    let stride = width as usize * channels.count();
    let mut pixels = vec![0u8; stride * height as usize];
    let short = |e: &png::DecodingError| matches!(e, png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
    let mut truncated = false;
    if interlaced {
        // Adam7: the crate deinterlaces into a whole image in its own layout first.
        let mut whole = vec![0u8; reader.output_buffer_size().ok_or_else(|| undecodable_msg("PNG too large"))?];
        match reader.next_frame(&mut whole) {
            Ok(_) => {}
            Err(e) if short(&e) => truncated = true,
            Err(e) => return Err(undecodable("PNG data", e)),
        }
        let row_len = width as usize * from;
        for (y, row) in whole.chunks_exact(row_len).take(height as usize).enumerate() {
            widen_row(row, from, &mut pixels[y * stride..(y + 1) * stride]);
        }
    } else {
        for y in 0..height as usize {
            budget::checkpoint_every(y, 64)?;
            match reader.next_row() {
                Ok(Some(row)) => widen_row(row.data(), from, &mut pixels[y * stride..(y + 1) * stride]),
                Ok(None) => break,
                Err(e) if short(&e) => {
                    truncated = true;
                    break;
                }
                Err(e) => return Err(undecodable("PNG data", e)),
            }
        }
    }
    if truncated {
        log::debug!("truncated PNG: the rows that arrived, the rest left blank");
    }
    let bitmap = Bitmap { width, height, channels, pixels }.without_opaque_alpha();
    Ok(Decoded { truncated, ..Decoded::still(bitmap, icc) })
}

fn undecodable_msg(context: &str) -> Error {
    Error::new(ErrorKind::UndecodableImage, context.to_string())
}

/// One row of 8-bit gray, gray+alpha, RGB or RGBA (`from` samples a pixel) as RGB or RGBA.
fn widen_row(row: &[u8], from: usize, out: &mut [u8]) {
    match from {
        1 => out.chunks_exact_mut(3).zip(row).for_each(|(o, &g)| o.copy_from_slice(&[g, g, g])),
        2 => out
            .chunks_exact_mut(4)
            .zip(row.chunks_exact(2))
            .for_each(|(o, ga)| o.copy_from_slice(&[ga[0], ga[0], ga[0], ga[1]])),
        _ => {
            let n = out.len().min(row.len());
            out[..n].copy_from_slice(&row[..n]);
        }
    }
}

fn decode_gif(bytes: &[u8], options: DecodeOptions) -> Result<Decoded> {
    let decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(|e| undecodable("GIF header", e))?;
    let loop_count = gif_loop_count(bytes);
    let limit = if options.all_frames { options.max_frames as usize } else { 1 };
    let mut frames = Vec::new();
    let mut truncated = false;
    for frame in decoder.into_frames().take(limit) {
        budget::checkpoint()?;
        let frame = match frame {
            Ok(f) => f,
            // A corrupt later frame ends the animation (PIL keeps what it could read).
            Err(e) if !frames.is_empty() => {
                log::debug!("GIF frame {} unreadable, animation cut: {e}", frames.len());
                truncated = true;
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
    Ok(Decoded { canvas: Canvas { frames, loop_count, icc: None }, truncated })
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
    let icc = decoder.icc_profile().ok().flatten().filter(|p| p.len() <= MAX_METADATA_BYTES);
    let (width, height) = decoder.dimensions();
    let channels = if decoder.has_alpha() { Channels::Rgba } else { Channels::Rgb };
    let frame_len = width as usize * height as usize * channels.count();
    if !probe.is_animated() {
        let mut pixels = vec![0u8; frame_len];
        decoder.read_image(&mut pixels).map_err(|e| undecodable("WebP data", e))?;
        let bitmap = Bitmap { width, height, channels, pixels };
        return Ok(Decoded::still(bitmap.without_opaque_alpha(), icc));
    }
    let loop_count = match decoder.loop_count() {
        image_webp::LoopCount::Forever => 0,
        image_webp::LoopCount::Times(n) => n.get(),
    };
    let limit = if options.all_frames { options.max_frames } else { 1 };
    let mut frames = Vec::new();
    let mut truncated = false;
    for _ in 0..probe.frames.min(limit) {
        budget::checkpoint()?;
        let mut pixels = vec![0u8; frame_len];
        match decoder.read_frame(&mut pixels) {
            Ok(delay_ms) => frames.push(Frame { bitmap: Bitmap { width, height, channels, pixels }, delay_ms }),
            Err(e) if frames.is_empty() => return Err(undecodable("WebP frame", e)),
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    Ok(Decoded { canvas: Canvas { frames, loop_count, icc }, truncated })
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
        let bitmap = &decoded.canvas.frames[0].bitmap;
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
        let px = |d: &Decoded, x: usize| d.canvas.first().pixels[(4 * 16 + x) * 3];
        assert!(px(&plain, 2) > 245 && px(&plain, 13) < 10, "formula: white paper, black ink");

        let icc = gray_paper_cmyk_profile();
        let managed = decode_all(&cmyk_jpeg(Some(&icc)));
        let paper = px(&managed, 2);
        assert!((100..140).contains(&paper), "the profile's gray paper (L*=50 is sRGB ~119): {paper}");
        assert!(px(&managed, 13) < 10, "full black stays black");
        assert_eq!(managed.canvas.icc, None, "the CMYK profile no longer describes the pixels");
    }

    #[test]
    fn shrunk_sizes_round_up() {
        assert_eq!(shrunk_dimension(4000, 8), 500);
        assert_eq!(shrunk_dimension(4001, 8), 501);
        assert_eq!(shrunk_dimension(5, 4), 2);
    }
}
