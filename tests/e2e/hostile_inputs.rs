//! Hostile sources, generated rather than committed: one of each family the hardening issue
//! measured (metadata bombs, deep PNGs, tiny JPEGs declaring huge sizes, scan floods, GIF frames
//! far larger than their screen). Shared by the end-to-end tests and `examples/hostile.rs`, which
//! writes them to a directory for the soak and for the release-build figures.

#![allow(dead_code)] // each user takes the generators it needs

use std::io::Write;

/// A PNG chunk: length, type, data, CRC.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A zlib stream of `rows` copies of `row`, fed row by row (nothing of that size is held).
fn zlib_repeated(row: &[u8], rows: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..rows {
        encoder.write_all(row).unwrap();
    }
    encoder.finish().unwrap()
}

/// A PNG of one colour (all zero samples): `bit_depth` 8 or 16, `color_type` 0 (gray),
/// 2 (RGB) or 6 (RGBA), with `extra` chunks written before the image data.
pub fn png(width: u32, height: u32, bit_depth: u8, color_type: u8, extra: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let channels = match color_type {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => panic!("colour type {color_type}"),
    };
    let row_bytes = 1 + width as usize * channels * usize::from(bit_depth) / 8;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        png_chunk(&mut out, kind, data);
    }
    png_chunk(&mut out, b"IDAT", &zlib_repeated(&vec![0u8; row_bytes], height as usize));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// An 8x8 PNG whose colour profile (`iCCP`) inflates to `inflated` bytes of zeros: about
/// `inflated / 1000` bytes on the wire.
pub fn png_icc_bomb(inflated: usize) -> Vec<u8> {
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_repeated(&vec![0u8; 1 << 20], inflated >> 20));
    png(8, 8, 8, 6, &[(*b"iCCP", iccp)])
}

/// An 8x8 PNG with `chunks` compressed text chunks (`zTXt`), each inflating to `inflated` bytes.
pub fn png_text_bomb(chunks: usize, inflated: usize) -> Vec<u8> {
    let mut ztxt = b"Comment\0\0".to_vec();
    ztxt.extend(zlib_repeated(&vec![b'a'; 1 << 20], inflated >> 20));
    let extra: Vec<_> = (0..chunks).map(|_| (*b"zTXt", ztxt.clone())).collect();
    png(8, 8, 8, 6, &extra)
}

/// A small JPEG of one colour encoded by libjpeg-turbo, 4:4:4, optionally progressive.
pub fn small_jpeg(width: usize, height: usize, progressive: bool) -> Vec<u8> {
    let pixels = vec![128u8; width * height * 3];
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_subsamp(turbojpeg::Subsamp::None).unwrap();
    compressor.set_quality(90).unwrap();
    compressor.set_progressive(progressive).unwrap();
    compressor.compress_to_vec(image).unwrap()
}

/// The marker segments of a JPEG up to its first scan, as (offset of the 0xFF, marker).
fn jpeg_segments(jpeg: &[u8]) -> Vec<(usize, u8)> {
    let mut found = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        found.push((pos, marker));
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
    found
}

/// `jpeg` with its frame header claiming `width`x`height`: the data then covers only its first
/// blocks, and a decoder fills the rest.
pub fn jpeg_declaring(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let (sof, _) = *jpeg_segments(jpeg).iter().find(|(_, m)| matches!(m, 0xC0..=0xC2)).expect("a frame header");
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

/// A progressive JPEG declaring `width`x`height` whose first scan is repeated `scans` times: each
/// scan walks every block of the declared size.
pub fn jpeg_scan_flood(width: u16, height: u16, scans: usize) -> Vec<u8> {
    let jpeg = jpeg_declaring(&small_jpeg(8, 8, true), width, height);
    let (sos, _) = *jpeg_segments(&jpeg).last().expect("a scan");
    // The first scan runs from its SOS to the next marker that is not a stuffed byte or restart.
    let mut end = sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    while end + 1 < jpeg.len() && !(jpeg[end] == 0xFF && jpeg[end + 1] != 0 && !(0xD0..=0xD7).contains(&jpeg[end + 1]))
    {
        end += 1;
    }
    let scan = &jpeg[sos..end];
    let mut out = jpeg[..end].to_vec();
    for _ in 1..scans {
        out.extend_from_slice(scan);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A GIF whose logical screen is `screen`x`screen` pixels and whose `frames` frames are each
/// `frame_side`x`frame_side` pixels of one colour (LZW packs them into a few KiB each).
pub fn gif_frames_beyond_screen(screen: u16, frames: usize, frame_side: u16) -> Vec<u8> {
    let palette = [0u8, 0, 0, 255, 255, 255];
    let mut one = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut one, frame_side, frame_side, &palette).unwrap();
        let frame = gif::Frame {
            width: frame_side,
            height: frame_side,
            buffer: std::borrow::Cow::Owned(vec![1u8; usize::from(frame_side) * usize::from(frame_side)]),
            ..gif::Frame::default()
        };
        encoder.write_frame(&frame).unwrap();
    }
    // Header (6) + screen descriptor (7) + global palette (2 colours = 6), then the frame's
    // blocks up to the trailer.
    let frame_blocks = &one[19..one.len() - 1];
    let mut out = one[..19].to_vec();
    out[6..8].copy_from_slice(&screen.to_le_bytes());
    out[8..10].copy_from_slice(&screen.to_le_bytes());
    for _ in 0..frames {
        out.extend_from_slice(frame_blocks);
    }
    out.push(0x3B);
    out
}

/// Photo-like RGB pixels (gradients, a disc and grain): renders of them cost real work.
pub fn photo_rgb(width: usize, height: usize) -> Vec<u8> {
    let mut state = 0x2545_F491u32;
    let mut pixels = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let grain = (state % 16) as i32 - 8;
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let disc = (fx - 0.3).powi(2) + (fy - 0.4).powi(2) < 0.04;
            let base = if disc {
                [230, 60, 40]
            } else {
                [(255.0 * fx) as i32, (200.0 * fy) as i32, (120.0 + 100.0 * fx * fy) as i32]
            };
            pixels.extend(base.iter().map(|v| (v + grain).clamp(0, 255) as u8));
        }
    }
    pixels
}

/// [`photo_rgb`] as a baseline 4:2:0 JPEG at quality 90.
pub fn photo_jpeg(width: usize, height: usize) -> Vec<u8> {
    let pixels = photo_rgb(width, height);
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_quality(90).unwrap();
    compressor.compress_to_vec(image).unwrap()
}

/// An animated GIF of `frames` frames of `side`x`side` noise-like bands (no two frames alike):
/// legitimate, and costly to re-encode (each frame is quantised anew).
pub fn gif_animation(frames: usize, side: u16) -> Vec<u8> {
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, i.wrapping_mul(3), i.wrapping_mul(7)]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, side, side, &palette).unwrap();
        encoder.set_repeat(gif::Repeat::Infinite).unwrap();
        let n = usize::from(side) * usize::from(side);
        for f in 0..frames {
            let buffer: Vec<u8> = (0..n).map(|p| ((p / usize::from(side) + p % 97 + f * 5) % 256) as u8).collect();
            let frame =
                gif::Frame { width: side, height: side, buffer: buffer.into(), delay: 4, ..gif::Frame::default() };
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}
