//! Encoding: JPEG with libjpeg-turbo (progressive, optimised Huffman tables, 4:2:0), PNG, lossy
//! and lossless WebP with libwebp (animated too), AVIF with rav1e (ravif), GIF (animated too).
//! JPEG, PNG and WebP carry the ICC profile they are given.

use image::ImageEncoder;
use rgb::FromSlice;

use super::bitmap::{Bitmap, Channels, Frame};
use super::jpeg_markers;
use super::webp_container;
use super::Format;
use crate::error::{Error, ErrorKind, Result};

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions<'a> {
    pub format: Format,
    /// 1..=100. For WebP, 100 means lossless (as thumbor does).
    pub quality: u8,
    pub progressive_jpeg: bool,
    /// ICC profile to embed (JPEG, PNG, WebP; AVIF and GIF ignore it).
    pub icc: Option<&'a [u8]>,
    /// EXIF payload (TIFF header onwards) to embed (JPEG, PNG and still WebP; the others
    /// ignore it).
    pub exif: Option<&'a [u8]>,
    /// Loop count of an animation (0 = forever).
    pub loop_count: u16,
    /// rav1e speed for AVIF, 1..=10.
    pub avif_speed: u8,
}

impl EncodeOptions<'static> {
    /// `format` at `quality`, progressive JPEG, no profile, looping forever, AVIF speed 10.
    pub fn new(format: Format, quality: u8) -> Self {
        EncodeOptions { format, quality, progressive_jpeg: true, icc: None, exif: None, loop_count: 0, avif_speed: 10 }
    }
}

fn failed(context: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::Internal, context.to_string()).with_source(source)
}

/// Encode `frames` (one for a still image) as `options.format`. GIF and WebP keep every frame;
/// the other formats get the first.
pub fn encode(frames: &[Frame], options: &EncodeOptions) -> Result<Vec<u8>> {
    let first = &frames.first().ok_or_else(|| Error::new(ErrorKind::Internal, "nothing to encode"))?.bitmap;
    match options.format {
        Format::Jpeg => encode_jpeg(first, options),
        Format::Png => encode_png(first, options),
        Format::Webp if frames.len() > 1 => encode_animated_webp(frames, options),
        Format::Webp => encode_webp(first, options),
        Format::Gif => encode_gif(frames, options.loop_count),
        Format::Avif => encode_avif(first, options),
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
    let mut jpeg = compressor.compress_to_vec(image).map_err(|e| failed("JPEG encode", e))?;
    if let Some(icc) = options.icc {
        jpeg = jpeg_markers::insert_icc(jpeg, icc);
    }
    if let Some(exif) = options.exif {
        jpeg = jpeg_markers::insert_exif(jpeg, exif);
    }
    Ok(jpeg)
}

/// Raw bytes per deflated byte above which a PNG is deflated again, harder: graphics (flat
/// areas, few colours) compress 10-50:1 and lose 10-60% more at zlib level 4, for 0.5-1.5 ms on a
/// 300x300 thumbnail; photos compress 1.5-5:1, where the fast deflate is as small as zlib's
/// level 6 at a twenty-fifth of its time (measured on the compatibility fixtures and the logo in
/// `samples/`; `png_compression_pays_where_it_is_cheap` checks which images get it).
const RECOMPRESS_ABOVE_RATIO: usize = 8;

fn encode_png(bitmap: &Bitmap, options: &EncodeOptions) -> Result<Vec<u8>> {
    // A gray image goes out gray, as Pillow writes its L and LA images (a gray source, the
    // `grayscale` filter); not beside a profile, which is an RGB one here (PNG gives a gray
    // image only a gray profile).
    let gray = if options.icc.is_none() { gray_samples(bitmap) } else { None };
    let (samples, color) = match (gray.as_deref(), bitmap.channels) {
        (Some(gray), Channels::Rgb) => (gray, image::ExtendedColorType::L8),
        (Some(gray), Channels::Rgba) => (gray, image::ExtendedColorType::La8),
        (None, Channels::Rgb) => (&bitmap.pixels[..], image::ExtendedColorType::Rgb8),
        (None, Channels::Rgba) => (&bitmap.pixels[..], image::ExtendedColorType::Rgba8),
    };
    let png = |compression| -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(samples.len() / 4 + 1024);
        let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            compression,
            image::codecs::png::FilterType::Adaptive,
        );
        if let Some(icc) = options.icc {
            // A profile the encoder refuses is dropped rather than failing the image.
            let _ = encoder.set_icc_profile(icc.to_vec());
        }
        if let Some(exif) = options.exif {
            let _ = encoder.set_exif_metadata(exif.to_vec());
        }
        encoder.write_image(samples, bitmap.width, bitmap.height, color).map_err(|e| failed("PNG encode", e))?;
        Ok(out)
    };
    let fast = png(image::codecs::png::CompressionType::Fast)?;
    if fast.len().saturating_mul(RECOMPRESS_ABOVE_RATIO) >= samples.len() {
        return Ok(fast);
    }
    let harder = png(image::codecs::png::CompressionType::Level(4))?;
    Ok(if harder.len() < fast.len() { harder } else { fast })
}

/// The gray (and alpha) samples of `bitmap` when every pixel is gray (R = G = B): the same
/// image in a third of the colour samples, which deflate makes 2-3x smaller. A colour image
/// usually shows it at its first pixels.
fn gray_samples(bitmap: &Bitmap) -> Option<Vec<u8>> {
    let pixels = bitmap.pixels.chunks_exact(bitmap.channels.count());
    if !pixels.clone().all(|p| p[0] == p[1] && p[1] == p[2]) {
        return None;
    }
    Some(match bitmap.channels {
        Channels::Rgb => pixels.map(|p| p[0]).collect(),
        Channels::Rgba => pixels.flat_map(|p| [p[0], p[3]]).collect(),
    })
}

fn check_webp_size(bitmap: &Bitmap) -> Result<()> {
    if bitmap.width > 16_383 || bitmap.height > 16_383 {
        return Err(Error::new(ErrorKind::TooLarge, "WebP is limited to 16383 pixels per side"));
    }
    Ok(())
}

fn encode_webp(bitmap: &Bitmap, options: &EncodeOptions) -> Result<Vec<u8>> {
    check_webp_size(bitmap)?;
    let encoder = match bitmap.channels {
        Channels::Rgb => webp::Encoder::from_rgb(&bitmap.pixels, bitmap.width, bitmap.height),
        Channels::Rgba => webp::Encoder::from_rgba(&bitmap.pixels, bitmap.width, bitmap.height),
    };
    let quality = options.quality;
    let memory = if quality >= 100 { encoder.encode_lossless() } else { encoder.encode(f32::from(quality)) };
    let mut webp = memory.to_vec();
    if let Some(icc) = options.icc {
        webp = webp_container::with_icc(webp, icc, bitmap.width, bitmap.height, bitmap.has_alpha());
    }
    if let Some(exif) = options.exif {
        webp = webp_container::with_exif(webp, exif, bitmap.width, bitmap.height, bitmap.has_alpha());
    }
    Ok(webp)
}

/// An animated WebP: libwebp's animation encoder (lossy at `quality`, lossless at 100), every
/// frame at its delay, the loop count kept.
fn encode_animated_webp(frames: &[Frame], options: &EncodeOptions) -> Result<Vec<u8>> {
    let first = &frames[0].bitmap;
    check_webp_size(first)?;
    let mut config = webp::WebPConfig::new().map_err(|()| Error::new(ErrorKind::Internal, "WebP configuration"))?;
    if options.quality >= 100 {
        config.lossless = 1;
    } else {
        config.quality = f32::from(options.quality);
    }
    let mut encoder = webp::AnimEncoder::new(first.width, first.height, &config);
    encoder.set_loop_count(i32::from(options.loop_count));
    // Transparent background, as a GIF's disposal to background means.
    encoder.set_bgcolor([0, 0, 0, 0]);
    let mut timestamp: u64 = 0;
    for frame in frames {
        crate::budget::checkpoint()?;
        let b = &frame.bitmap;
        let ms = i32::try_from(timestamp).map_err(|_| Error::new(ErrorKind::TooLarge, "animation too long"))?;
        encoder.add_frame(match b.channels {
            Channels::Rgb => webp::AnimFrame::from_rgb(&b.pixels, b.width, b.height, ms),
            Channels::Rgba => webp::AnimFrame::from_rgba(&b.pixels, b.width, b.height, ms),
        });
        timestamp += u64::from(frame.delay_ms);
    }
    let webp = encoder.try_encode().map_err(|e| failed("WebP animation", format!("{e:?}")))?.to_vec();
    let webp = webp_container::set_total_duration(webp, timestamp);
    Ok(match options.icc {
        Some(icc) => webp_container::with_icc(webp, icc, first.width, first.height, true),
        None => webp,
    })
}

/// AVIF with rav1e at `avif_speed`, colour and alpha at `quality`, 8 bits per sample: at speed 10
/// a 300x200 thumbnail takes ~28 ms on one core, 10 bits ~35 ms for 5% smaller files. ravif writes
/// sRGB (nclx) colour information and no ICC profile.
fn encode_avif(bitmap: &Bitmap, options: &EncodeOptions) -> Result<Vec<u8>> {
    let quality = f32::from(options.quality.clamp(1, 100));
    let encoder = ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(options.avif_speed.clamp(1, 10))
        .with_num_threads(Some(1))
        .with_bit_depth(ravif::BitDepth::Eight);
    let (w, h) = (bitmap.width as usize, bitmap.height as usize);
    let encoded = match bitmap.channels {
        Channels::Rgb => encoder.encode_rgb(ravif::Img::new(bitmap.pixels.as_rgb(), w, h)),
        Channels::Rgba => encoder.encode_rgba(ravif::Img::new(bitmap.pixels.as_rgba(), w, h)),
    }
    .map_err(|e| failed("AVIF encode", e))?;
    Ok(encoded.avif_file)
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
            crate::budget::checkpoint()?;
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
        EncodeOptions::new(format, 80)
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

    /// The `ispe` (image spatial extent) property of an AVIF file: its width and height.
    fn avif_ispe(avif: &[u8]) -> (u32, u32) {
        let at = avif.windows(4).position(|w| w == b"ispe").expect("ispe box");
        let be = |i: usize| u32::from_be_bytes(avif[i..i + 4].try_into().unwrap());
        (be(at + 8), be(at + 12))
    }

    #[test]
    fn avif_has_its_brand_and_size_with_and_without_alpha() {
        for channels in [Channels::Rgb, Channels::Rgba] {
            let frame = Frame { bitmap: gradient(37, 21, channels), delay_ms: 0 };
            let avif = encode(&[frame], &options(Format::Avif)).unwrap();
            assert_eq!(&avif[4..12], b"ftypavif");
            assert_eq!(super::super::sniff(&avif), super::super::Sniffed::Supported(Format::Avif));
            assert_eq!(avif_ispe(&avif), (37, 21), "{channels:?}");
            // An alpha plane is an auxiliary image with the alpha URN.
            let has_alpha_plane = avif.windows(8).any(|w| w == b"urn:mpeg");
            assert_eq!(has_alpha_plane, channels == Channels::Rgba, "{channels:?}");
        }
    }

    #[test]
    fn avif_quality_changes_the_size() {
        let frame = Frame { bitmap: gradient(64, 64, Channels::Rgb), delay_ms: 0 };
        let low =
            encode(std::slice::from_ref(&frame), &EncodeOptions { quality: 20, ..options(Format::Avif) }).unwrap();
        let high = encode(&[frame], &EncodeOptions { quality: 95, ..options(Format::Avif) }).unwrap();
        assert!(low.len() < high.len(), "{} < {}", low.len(), high.len());
    }

    fn animation(delays: &[u32]) -> Vec<Frame> {
        delays
            .iter()
            .enumerate()
            .map(|(i, &delay_ms)| {
                let mut bitmap = gradient(30, 20, Channels::Rgba);
                // A different square per frame, so no frame merges with the previous one.
                for y in 0..5 {
                    for x in i * 8..i * 8 + 5 {
                        let p = (y * 30 + x) * 4;
                        bitmap.pixels[p..p + 4].copy_from_slice(&[255, 0, 0, 255]);
                    }
                }
                Frame { bitmap, delay_ms }
            })
            .collect()
    }

    #[test]
    fn animated_webp_keeps_frames_delays_and_loop_count() {
        let frames = animation(&[100, 250, 70]);
        let bytes = encode(&frames, &EncodeOptions { loop_count: 3, ..options(Format::Webp) }).unwrap();
        let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
        assert!(decoder.is_animated());
        assert_eq!(decoder.dimensions(), (30, 20));
        assert_eq!(decoder.num_frames(), 3);
        assert_eq!(decoder.loop_count(), image_webp::LoopCount::Times(3.try_into().unwrap()));
        let mut delays = Vec::new();
        let mut buf = vec![0u8; 30 * 20 * 4];
        for _ in 0..3 {
            delays.push(decoder.read_frame(&mut buf).unwrap());
        }
        assert_eq!(delays, vec![100, 250, 70], "the last delay too, not libwebp's average");
        // Forever by default.
        let bytes = encode(&animation(&[50, 50]), &options(Format::Webp)).unwrap();
        let decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(decoder.loop_count(), image_webp::LoopCount::Forever);
    }

    #[test]
    fn a_gray_image_is_written_as_a_gray_png() {
        // IHDR's colour type: 0 gray, 2 RGB, 4 gray + alpha, 6 RGBA.
        let colour_type = |bytes: &[u8]| bytes[25];
        for channels in [Channels::Rgb, Channels::Rgba] {
            let colour = gradient(37, 21, channels);
            let mut gray = colour.clone();
            for p in gray.pixels.chunks_exact_mut(channels.count()) {
                (p[1], p[2]) = (p[0], p[0]);
            }
            let png = |bitmap: &Bitmap, icc| {
                let options = EncodeOptions { icc, ..options(Format::Png) };
                encode(&[Frame { bitmap: bitmap.clone(), delay_ms: 0 }], &options).unwrap()
            };
            let alpha = u8::from(channels == Channels::Rgba) * 4;
            assert_eq!(colour_type(&png(&colour, None)), 2 + alpha, "{channels:?}");
            let written = png(&gray, None);
            assert_eq!(colour_type(&written), alpha, "{channels:?}");
            // The same pixels.
            let decoded = image::load_from_memory(&written).unwrap();
            let back =
                if channels == Channels::Rgb { decoded.to_rgb8().into_raw() } else { decoded.to_rgba8().into_raw() };
            assert_eq!(back, gray.pixels, "{channels:?}");
            // Beside a (colour) profile, it stays RGB.
            let icc = super::super::icc::tests::display_p3();
            assert_eq!(colour_type(&png(&gray, Some(&icc))), 2 + alpha, "{channels:?}");
        }
    }

    #[test]
    fn icc_profile_is_embedded_and_read_back() {
        let icc = super::super::icc::tests::display_p3();
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            for frames in [1, 2] {
                if frames == 2 && format != Format::Webp {
                    continue;
                }
                let input = animation(&vec![100; frames]);
                let bytes = encode(&input, &EncodeOptions { icc: Some(&icc), ..options(format) }).unwrap();
                let read_back = match format {
                    Format::Jpeg => jpeg_markers::read_metadata(&bytes).icc,
                    Format::Png => {
                        use image::ImageDecoder;
                        image::codecs::png::PngDecoder::new(std::io::Cursor::new(&bytes))
                            .unwrap()
                            .icc_profile()
                            .unwrap()
                    }
                    _ => {
                        let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
                        assert_eq!(d.num_frames().max(1), frames as u32);
                        d.icc_profile().unwrap()
                    }
                };
                assert_eq!(read_back.as_deref(), Some(icc.as_slice()), "{format:?} {frames} frame(s)");
                // Still decodable.
                assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 30);
            }
        }
    }

    /// A photo-like 300x200 image: gradients, a disc and some texture.
    fn photo_300x200() -> Bitmap {
        let (w, h) = (300u32, 200u32);
        let mut pixels = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let texture = ((x * 7 + y * 13) % 17) as f32;
                if (fx - 0.3).powi(2) + (fy - 0.4).powi(2) < 0.04 {
                    pixels.extend_from_slice(&[230, 60 + texture as u8, 40]);
                } else {
                    pixels.extend_from_slice(&[
                        (240.0 * fx + texture) as u8,
                        (200.0 * fy + texture) as u8,
                        (120.0 + 100.0 * fx * fy) as u8,
                    ]);
                }
            }
        }
        Bitmap { width: w, height: h, channels: Channels::Rgb, pixels }
    }

    /// A graphic: flat colours, a few shapes, hard edges (a logo or a chart).
    fn graphic_300x300() -> Bitmap {
        let (w, h) = (300u32, 300u32);
        let mut pixels = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                let disc = (x as i32 - 150).pow(2) + (y as i32 - 150).pow(2) < 90 * 90;
                let band = (y / 40) % 2 == 0;
                pixels.extend_from_slice(match (disc, band) {
                    (true, _) => &[200, 30, 40, 255],
                    (false, true) => &[20, 60, 160, 255],
                    (false, false) => &[0, 0, 0, 0],
                });
            }
        }
        Bitmap { width: w, height: h, channels: Channels::Rgba, pixels }
    }

    #[test]
    fn png_compression_pays_where_it_is_cheap() {
        use image::codecs::png::CompressionType;
        let fast_only = |bitmap: &Bitmap| {
            let mut out = Vec::new();
            let color = if bitmap.channels == Channels::Rgb {
                image::ExtendedColorType::Rgb8
            } else {
                image::ExtendedColorType::Rgba8
            };
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(&bitmap.pixels, bitmap.width, bitmap.height, color)
            .unwrap();
            out
        };
        let frame = |bitmap: &Bitmap| [Frame { bitmap: bitmap.clone(), delay_ms: 0 }];
        // A photo: the fast deflate, as it is.
        let photo = photo_300x200();
        assert_eq!(encode(&frame(&photo), &options(Format::Png)).unwrap(), fast_only(&photo));
        // A graphic: deflated again, smaller, the same pixels.
        let graphic = graphic_300x300();
        let written = encode(&frame(&graphic), &options(Format::Png)).unwrap();
        let fast = fast_only(&graphic);
        assert!(written.len() < fast.len(), "{} vs {} bytes", written.len(), fast.len());
        assert_eq!(image::load_from_memory(&written).unwrap().to_rgba8().into_raw(), graphic.pixels);
    }

    /// Encode times of a 300x200 thumbnail at quality 80, median and fastest of 15 runs (the
    /// fastest is the least disturbed by other load), printed, not asserted:
    /// `cargo test --lib encode_times -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run it with --ignored --nocapture"]
    fn encode_times_300x200() {
        let frame = Frame { bitmap: photo_300x200(), delay_ms: 0 };
        let mut cases: Vec<(String, EncodeOptions)> = vec![
            ("jpeg".into(), options(Format::Jpeg)),
            ("webp".into(), options(Format::Webp)),
            ("png".into(), options(Format::Png)),
        ];
        for speed in [8, 9, 10] {
            cases.push((format!("avif speed {speed}"), EncodeOptions { avif_speed: speed, ..options(Format::Avif) }));
        }
        for (name, opts) in cases {
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..15 {
                let start = std::time::Instant::now();
                size = encode(std::slice::from_ref(&frame), &opts).unwrap().len();
                times.push(start.elapsed());
            }
            times.sort();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            println!("{name:>14}: {:>7.2} ms median, {:>7.2} ms fastest, {size} bytes", ms(times[7]), ms(times[0]));
        }
    }

    #[test]
    fn animated_gif_keeps_frames() {
        let frames: Vec<Frame> =
            (0..3).map(|_| Frame { bitmap: gradient(10, 8, Channels::Rgba), delay_ms: 100 }).collect();
        let bytes = encode(&frames, &options(Format::Gif)).unwrap();
        assert_eq!(super::super::probe::count_gif_frames(&bytes, 100), 3);
    }
}
