//! AVIF sources: the HEIF container with avif-parse, the AV1 colour and alpha images with rav1d
//! (re_rav1d, a Rust port of dav1d), and their YUV samples converted to 8-bit RGB(A) here. Still
//! images only: an image sequence gives its primary image.

use std::io::Cursor;

use re_rav1d::dav1d::{self, pixel, Picture, PixelLayout, PlanarImageComponent as Component};

use super::bitmap::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Result};

fn undecodable(context: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::new(ErrorKind::UndecodableImage, context.to_string()).with_source(source)
}

fn parse(bytes: &[u8]) -> Result<avif_parse::AvifData> {
    check_box_sizes(bytes)?;
    avif_parse::read_avif(&mut Cursor::new(bytes)).map_err(|e| undecodable("AVIF container", e.to_string()))
}

/// Refuse a file whose top-level boxes claim more bytes than it has: avif-parse sizes some
/// buffers from a box's declared length before reading it (a 46-byte `ftyp` declaring 3 GB asked
/// for a 3 GB allocation; found by `scripts/fuzz.sh probe`).
fn check_box_sizes(bytes: &[u8]) -> Result<()> {
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(header) = rest.get(..8) else { break };
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let size = match size {
            // To the end of the file.
            0 => rest.len() as u64,
            // A 64-bit size follows the type.
            1 => match rest.get(8..16) {
                Some(large) => u64::from_be_bytes(large.try_into().unwrap_or_default()),
                None => break,
            },
            n => n,
        };
        if size < 8 || size > rest.len() as u64 {
            return Err(Error::new(
                ErrorKind::UndecodableImage,
                format!("AVIF box at byte {at} declares {size} bytes, {} are left", rest.len()),
            ));
        }
        at += size as usize;
    }
    Ok(())
}

/// The size of the primary image, from its AV1 sequence header (nothing is decoded).
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32)> {
    let meta = parse(bytes)?.primary_item_metadata().map_err(|e| undecodable("AV1 sequence header", e.to_string()))?;
    Ok((meta.max_frame_width.get(), meta.max_frame_height.get()))
}

/// Decode the primary image (with its alpha image, when there is one) to RGB or RGBA.
/// `max_pixels` bounds what the AV1 decoder may allocate.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Bitmap> {
    let data = parse(bytes)?;
    let limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let color = decode_av1(&data.primary_item, limit)?;
    let alpha = data.alpha_item.as_ref().map(|item| decode_av1(item, limit)).transpose()?;
    let (w, h) = (color.width(), color.height());
    if let Some(a) = &alpha {
        if (a.width(), a.height()) != (w, h) {
            return Err(Error::new(ErrorKind::UndecodableImage, "AVIF alpha and colour sizes differ"));
        }
    }
    let channels = if alpha.is_some() { Channels::Rgba } else { Channels::Rgb };
    let mut pixels = Vec::with_capacity(w as usize * h as usize * channels.count());
    let color_planes = Planes::new(&color);
    let alpha_plane = alpha.as_ref().map(Planes::new);
    let to_rgb = YuvToRgb::new(&color);
    for y in 0..h as usize {
        for x in 0..w as usize {
            let rgb = to_rgb.convert(color_planes.sample(x, y));
            pixels.extend_from_slice(&rgb);
            if let Some(a) = &alpha_plane {
                let mut value = a.plane_sample(0, x, y);
                if a.limited {
                    value = (value - 16.0 * a.scale) / (219.0 * a.scale) * a.max;
                }
                let alpha = to_u8(value / a.max);
                if data.premultiplied_alpha && alpha > 0 {
                    let n = pixels.len();
                    for v in &mut pixels[n - 3..] {
                        *v = (u32::from(*v) * 255 / u32::from(alpha)).min(255) as u8;
                    }
                }
                pixels.push(alpha);
            }
        }
    }
    Ok(Bitmap { width: w, height: h, channels, pixels })
}

/// One AV1 still picture.
fn decode_av1(obus: &[u8], max_pixels: u32) -> Result<Picture> {
    let mut settings = dav1d::Settings::new();
    settings.set_n_threads(1);
    settings.set_max_frame_delay(1);
    settings.set_frame_size_limit(max_pixels);
    let mut decoder = dav1d::Decoder::with_settings(&settings).map_err(|e| undecodable("AV1 decoder", e))?;
    let mut pending = match decoder.send_data(obus.to_vec(), None, None, None) {
        Ok(()) => false,
        Err(e) if e.is_again() => true,
        Err(e) => return Err(undecodable("AV1 data", e)),
    };
    // Each round either yields the picture or feeds the decoder more of the data; bounded.
    for _ in 0..64 {
        match decoder.get_picture() {
            Ok(picture) => return Ok(picture),
            Err(e) if e.is_again() && pending => {
                pending = match decoder.send_pending_data() {
                    Ok(()) => false,
                    Err(e) if e.is_again() => true,
                    Err(e) => return Err(undecodable("AV1 data", e)),
                };
            }
            Err(e) if e.is_again() => break,
            Err(e) => return Err(undecodable("AV1 picture", e)),
        }
    }
    Err(Error::new(ErrorKind::UndecodableImage, "AV1 data without a picture"))
}

/// Sample access to a picture's planes.
struct Planes {
    planes: Vec<(dav1d::Plane, usize)>,
    wide: bool,
    /// Chroma subsampling shifts (x, y).
    shift: (usize, usize),
    limited: bool,
    /// `2^(bits - 8)`, and the largest sample value.
    scale: f32,
    max: f32,
}

impl Planes {
    fn new(picture: &Picture) -> Self {
        let layout = picture.pixel_layout();
        let components: &[Component] =
            if layout == PixelLayout::I400 { &[Component::Y] } else { &[Component::Y, Component::U, Component::V] };
        let planes = components.iter().map(|&c| (picture.plane(c), picture.stride(c) as usize)).collect();
        let bits = picture.bits_per_component().map(|b| b.0).unwrap_or(8) as i32;
        let shift = match layout {
            PixelLayout::I420 => (1, 1),
            PixelLayout::I422 => (1, 0),
            PixelLayout::I400 | PixelLayout::I444 => (0, 0),
        };
        Planes {
            planes,
            wide: picture.bit_depth() > 8,
            shift,
            limited: picture.color_range() == pixel::YUVRange::Limited,
            scale: 2f32.powi(bits - 8),
            max: 2f32.powi(bits) - 1.0,
        }
    }

    fn plane_sample(&self, index: usize, x: usize, y: usize) -> f32 {
        let (plane, stride) = &self.planes[index];
        let (x, y) = if index == 0 { (x, y) } else { (x >> self.shift.0, y >> self.shift.1) };
        if self.wide {
            let i = y * stride + 2 * x;
            f32::from(u16::from_le_bytes([plane[i], plane[i + 1]]))
        } else {
            f32::from(plane[y * stride + x])
        }
    }

    /// Y, Cb, Cr normalised to 0..1 and -0.5..0.5 (Cb = Cr = 0 for monochrome).
    fn sample(&self, x: usize, y: usize) -> [f32; 3] {
        let luma = self.plane_sample(0, x, y);
        let (cb, cr) = if self.planes.len() == 3 {
            (self.plane_sample(1, x, y), self.plane_sample(2, x, y))
        } else {
            (128.0 * self.scale, 128.0 * self.scale)
        };
        if self.limited {
            let s = self.scale;
            [(luma - 16.0 * s) / (219.0 * s), (cb - 128.0 * s) / (224.0 * s), (cr - 128.0 * s) / (224.0 * s)]
        } else {
            let half = (self.max + 1.0) / 2.0;
            [luma / self.max, (cb - half) / self.max, (cr - half) / self.max]
        }
    }
}

/// The matrix from Y'CbCr to R'G'B' (identity: the planes hold G, B, R).
struct YuvToRgb {
    identity: bool,
    kr: f32,
    kb: f32,
}

impl YuvToRgb {
    fn new(picture: &Picture) -> Self {
        use pixel::MatrixCoefficients as M;
        let (kr, kb) = match picture.matrix_coefficients() {
            M::BT709 => (0.2126, 0.0722),
            M::BT2020NonConstantLuminance | M::BT2020ConstantLuminance => (0.2627, 0.0593),
            M::ST240M => (0.212, 0.087),
            M::BT470M => (0.30, 0.11),
            // BT.601, also libavif's choice for unspecified coefficients.
            _ => (0.299, 0.114),
        };
        YuvToRgb { identity: picture.matrix_coefficients() == M::Identity, kr, kb }
    }

    fn convert(&self, [y, cb, cr]: [f32; 3]) -> [u8; 3] {
        if self.identity {
            return [to_u8(cr + 0.5), to_u8(y), to_u8(cb + 0.5)];
        }
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / (1.0 - self.kr - self.kb);
        [to_u8(r), to_u8(g), to_u8(b)]
    }
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::super::encode::{encode, EncodeOptions};
    use super::super::{Format, Frame};
    use super::*;

    fn avif_of(bitmap: Bitmap, quality: u8) -> Vec<u8> {
        let options = EncodeOptions::new(Format::Avif, quality);
        encode(&[Frame { bitmap, delay_ms: 0 }], &options).unwrap()
    }

    #[test]
    fn round_trip_keeps_size_colours_and_alpha() {
        let mut pixels = Vec::new();
        for y in 0..24u32 {
            for x in 0..40u32 {
                let color: [u8; 3] = if x < 20 { [220, 40, 30] } else { [30, 90, 200] };
                pixels.extend_from_slice(&color);
                pixels.push(if y < 12 { 255 } else { 60 });
            }
        }
        let avif = avif_of(Bitmap { width: 40, height: 24, channels: Channels::Rgba, pixels }, 95);
        assert_eq!(dimensions(&avif).unwrap(), (40, 24));
        let decoded = decode(&avif, 1 << 20).unwrap();
        assert_eq!((decoded.width, decoded.height, decoded.channels), (40, 24, Channels::Rgba));
        let px = |x: usize, y: usize| &decoded.pixels[(y * 40 + x) * 4..(y * 40 + x) * 4 + 4];
        let close = |a: &[u8], b: [u8; 4]| a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 12);
        assert!(close(px(5, 5), [220, 40, 30, 255]), "{:?}", px(5, 5));
        assert!(close(px(35, 5), [30, 90, 200, 255]), "{:?}", px(35, 5));
        assert!(close(px(5, 20), [220, 40, 30, 60]), "{:?}", px(5, 20));
    }

    #[test]
    fn ten_bit_images_decode() {
        use rgb::FromSlice;
        let pixels: Vec<u8> =
            (0..32 * 16).flat_map(|i| if i % 32 < 16 { [200, 30, 90] } else { [20, 160, 240] }).collect();
        let avif = ravif::Encoder::new()
            .with_quality(95.0)
            .with_speed(10)
            .with_bit_depth(ravif::BitDepth::Ten)
            .encode_rgb(ravif::Img::new(pixels.as_rgb(), 32, 16))
            .unwrap()
            .avif_file;
        let decoded = decode(&avif, 1 << 20).unwrap();
        assert_eq!((decoded.width, decoded.height, decoded.channels), (32, 16, Channels::Rgb));
        for (x, expected) in [(4usize, [200u8, 30, 90]), (28, [20, 160, 240])] {
            let p = &decoded.pixels[(8 * 32 + x) * 3..(8 * 32 + x) * 3 + 3];
            assert!(p.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 10), "{p:?} vs {expected:?}");
        }
    }

    #[test]
    fn boxes_larger_than_the_file_are_refused_before_parsing() {
        // The fuzzer's finding: an `ftyp` declaring 0xbc4dc6d8 bytes in a 46-byte file.
        let mut bytes = vec![0xbc, 0x4d, 0xc6, 0xd8];
        bytes.extend_from_slice(b"ftypavif");
        bytes.resize(46, 0);
        assert_eq!(dimensions(&bytes).unwrap_err().kind(), ErrorKind::UndecodableImage);
    }

    #[test]
    fn opaque_images_have_no_alpha_and_garbage_is_undecodable() {
        let avif = avif_of(Bitmap::filled(16, 8, Channels::Rgb, &[128, 128, 128]), 80);
        let decoded = decode(&avif, 1 << 20).unwrap();
        assert_eq!(decoded.channels, Channels::Rgb);
        assert!(decoded.pixels.iter().all(|&v| v.abs_diff(128) <= 3));
        assert_eq!(decode(b"\x00\x00\x00\x1cftypavif junk", 1 << 20).unwrap_err().kind(), ErrorKind::UndecodableImage);
        let truncated = &avif[..avif.len() / 2];
        assert!(decode(truncated, 1 << 20).is_err());
        assert!(decode(&avif, 10).is_err(), "frame size limit");
    }
}
