//! Encoding: JPEG with libjpeg-turbo (progressive, optimised Huffman tables, 4:2:0), PNG, lossy
//! and lossless WebP with libwebp, GIF (animated too).

use image::ImageEncoder;

use super::bitmap::{Bitmap, Channels, Frame};
use super::jpeg_markers;
use super::Format;
use crate::error::{Error, ErrorKind, Result};

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions<'a> {
    pub format: Format,
    /// 1..=100. For WebP, 100 means lossless (as thumbor does).
    pub quality: u8,
    pub progressive_jpeg: bool,
    /// ICC profile to embed (JPEG, PNG).
    pub icc: Option<&'a [u8]>,
    /// Loop count of an animation (0 = forever).
    pub loop_count: u16,
}

fn failed(context: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::Internal, context.to_string()).with_source(source)
}

/// Encode `frames` (one for a still image) as `options.format`. Formats without animation
/// support get the first frame.
pub fn encode(frames: &[Frame], options: &EncodeOptions) -> Result<Vec<u8>> {
    let first = &frames.first().ok_or_else(|| Error::new(ErrorKind::Internal, "nothing to encode"))?.bitmap;
    match options.format {
        Format::Jpeg => encode_jpeg(first, options),
        Format::Png => encode_png(first, options),
        Format::Webp => encode_webp(first, options.quality),
        Format::Gif => encode_gif(frames, options.loop_count),
        Format::Avif => Err(Error::new(ErrorKind::Internal, "AVIF encoding is not available")),
    }
}

fn encode_jpeg(bitmap: &Bitmap, options: &EncodeOptions) -> Result<Vec<u8>> {
    // JPEG has no alpha: PIL's convert("RGB") drops it without compositing; so does Thumbora.
    let rgb;
    let bitmap = if bitmap.channels == Channels::Rgba {
        rgb = bitmap.to_rgb();
        &rgb
    } else {
        bitmap
    };
    let mut compressor = turbojpeg::Compressor::new().map_err(|e| failed("JPEG encoder", e))?;
    compressor.set_quality(i32::from(options.quality.clamp(1, 100))).map_err(|e| failed("JPEG quality", e))?;
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(|e| failed("JPEG subsampling", e))?;
    compressor.set_optimize(true).map_err(|e| failed("JPEG optimize", e))?;
    compressor.set_progressive(options.progressive_jpeg).map_err(|e| failed("JPEG progressive", e))?;
    let image = turbojpeg::Image {
        pixels: bitmap.pixels.as_slice(),
        width: bitmap.width as usize,
        pitch: bitmap.stride(),
        height: bitmap.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let jpeg = compressor.compress_to_vec(image).map_err(|e| failed("JPEG encode", e))?;
    Ok(match options.icc {
        Some(icc) => jpeg_markers::insert_icc(jpeg, icc),
        None => jpeg,
    })
}

fn encode_png(bitmap: &Bitmap, options: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bitmap.pixels.len() / 4 + 1024);
    let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    if let Some(icc) = options.icc {
        // A profile the encoder refuses is dropped rather than failing the image.
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    let color = match bitmap.channels {
        Channels::Rgb => image::ExtendedColorType::Rgb8,
        Channels::Rgba => image::ExtendedColorType::Rgba8,
    };
    encoder.write_image(&bitmap.pixels, bitmap.width, bitmap.height, color).map_err(|e| failed("PNG encode", e))?;
    Ok(out)
}

fn encode_webp(bitmap: &Bitmap, quality: u8) -> Result<Vec<u8>> {
    if bitmap.width > 16_383 || bitmap.height > 16_383 {
        return Err(Error::new(ErrorKind::TooLarge, "WebP is limited to 16383 pixels per side"));
    }
    let encoder = match bitmap.channels {
        Channels::Rgb => webp::Encoder::from_rgb(&bitmap.pixels, bitmap.width, bitmap.height),
        Channels::Rgba => webp::Encoder::from_rgba(&bitmap.pixels, bitmap.width, bitmap.height),
    };
    let memory = if quality >= 100 { encoder.encode_lossless() } else { encoder.encode(f32::from(quality)) };
    Ok(memory.to_vec())
}

fn encode_gif(frames: &[Frame], loop_count: u16) -> Result<Vec<u8>> {
    let first = &frames[0].bitmap;
    let (width, height) = (
        u16::try_from(first.width).map_err(|_| Error::new(ErrorKind::TooLarge, "GIF side above 65535"))?,
        u16::try_from(first.height).map_err(|_| Error::new(ErrorKind::TooLarge, "GIF side above 65535"))?,
    );
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &[]).map_err(|e| failed("GIF encoder", e))?;
        if frames.len() > 1 {
            let repeat = if loop_count == 0 { gif::Repeat::Infinite } else { gif::Repeat::Finite(loop_count) };
            encoder.set_repeat(repeat).map_err(|e| failed("GIF repeat", e))?;
        }
        for frame in frames {
            let mut rgba = frame.bitmap.to_rgba().pixels;
            let mut gif_frame = gif::Frame::from_rgba_speed(width, height, &mut rgba, 10);
            gif_frame.delay = u16::try_from(frame.delay_ms / 10).unwrap_or(u16::MAX);
            gif_frame.dispose = gif::DisposalMethod::Background;
            encoder.write_frame(&gif_frame).map_err(|e| failed("GIF frame", e))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32, channels: Channels) -> Bitmap {
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                pixels.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
                if channels == Channels::Rgba {
                    pixels.push(if x < w / 2 { 255 } else { 0 });
                }
            }
        }
        Bitmap { width: w, height: h, channels, pixels }
    }

    fn options(format: Format) -> EncodeOptions<'static> {
        EncodeOptions { format, quality: 80, progressive_jpeg: true, icc: None, loop_count: 0 }
    }

    #[test]
    fn every_format_round_trips_its_size() {
        for format in [Format::Jpeg, Format::Png, Format::Webp, Format::Gif] {
            for channels in [Channels::Rgb, Channels::Rgba] {
                let frame = Frame { bitmap: gradient(37, 21, channels), delay_ms: 0 };
                let bytes = encode(&[frame], &options(format)).unwrap();
                let decoded = image::load_from_memory(&bytes).unwrap();
                assert_eq!((decoded.width(), decoded.height()), (37, 21), "{format:?} {channels:?}");
                assert_eq!(super::super::sniff(&bytes), super::super::Sniffed::Supported(format));
            }
        }
    }

    #[test]
    fn jpeg_is_progressive_420() {
        let frame = Frame { bitmap: gradient(64, 64, Channels::Rgb), delay_ms: 0 };
        let bytes = encode(&[frame], &options(Format::Jpeg)).unwrap();
        let header = turbojpeg::read_header(&bytes).unwrap();
        assert_eq!(header.subsamp, turbojpeg::Subsamp::Sub2x2);
        assert!(header.is_progressive);
    }

    #[test]
    fn animated_gif_keeps_frames() {
        let frames: Vec<Frame> =
            (0..3).map(|_| Frame { bitmap: gradient(10, 8, Channels::Rgba), delay_ms: 100 }).collect();
        let bytes = encode(&frames, &options(Format::Gif)).unwrap();
        assert_eq!(super::super::probe::count_gif_frames(&bytes, 100), 3);
    }
}
