//! Deterministic photo-like test images (gradients, discs, fine noise), shared by the benches and
//! the load-benchmark source generator, so the entropy decoder does realistic work.

use thumbora::codec::encode::{self, EncodeOptions};
use thumbora::codec::{Bitmap, Channels, Format, Frame};

/// A photo-like bitmap; `seed` varies the noise and disc placement.
pub fn photo(width: u32, height: u32, channels: Channels, seed: u32) -> Bitmap {
    let mut pixels = Vec::with_capacity((width * height) as usize * channels.count());
    let mut state: u32 = 0x1234_5678 ^ seed.wrapping_mul(0x9E37_79B9);
    let (cx, cy) = (0.25 + (seed % 5) as f32 * 0.1, 0.3 + (seed % 3) as f32 * 0.15);
    for y in 0..height {
        for x in 0..width {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state % 24) as i32 - 12;
            let fx = x as f32 / width as f32;
            let fy = y as f32 / height as f32;
            let disc = ((fx - cx).powi(2) + (fy - cy).powi(2)) < 0.04;
            let base = if disc {
                [220, 70, 50]
            } else {
                [(60.0 + 160.0 * fx) as i32, (90.0 + 120.0 * fy) as i32, (200.0 - 120.0 * fx * fy) as i32]
            };
            for c in base {
                pixels.push((c + noise).clamp(0, 255) as u8);
            }
            if channels == Channels::Rgba {
                pixels.push(if disc { 255 } else { (255.0 * fy) as u8 });
            }
        }
    }
    Bitmap { width, height, channels, pixels }
}

/// Encode a bitmap (baseline JPEG, as cameras write them).
pub fn encoded(bitmap: Bitmap, format: Format, quality: u8) -> Vec<u8> {
    let options = EncodeOptions { progressive_jpeg: false, ..EncodeOptions::new(format, quality) };
    encode::encode(&[Frame { bitmap, delay_ms: 0 }], &options).expect("encode fixture")
}
