//! `equalize()`: histogram equalisation of the red, green and blue channels, as thumbor's
//! `_equalize.c` does it, including its quirk: the search for each channel's smallest non-zero
//! cumulative count stops at the first level where any channel has one, so the other channels
//! keep 0 there. Alpha is untouched (but every pixel counts, transparent or not).

use super::{Args, Filter, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `equalize()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Equalize {}

pub const SPEC: Spec = Spec { name: "equalize", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Equalize {})))
}

/// C's float to `unsigned char` on x86-64 (`cvttss2si`, low byte): truncation, 0 for NaN.
fn c_u8(x: f32) -> u8 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        0
    } else {
        x as i32 as u8
    }
}

impl PixelFilter for Equalize {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let channels = bitmap.channels.count();
        let area = (bitmap.pixels.len() / channels) as i64;
        let mut histograms = [[0i64; 256]; 3];
        for pixel in bitmap.pixels.chunks_exact(channels) {
            for (histogram, &c) in histograms.iter_mut().zip(&pixel[..3]) {
                histogram[usize::from(c)] += 1;
            }
        }
        // Cumulative counts, kept only at levels that occur.
        let mut cumulative = [[0i64; 256]; 3];
        for (histogram, cumulative) in histograms.iter().zip(&mut cumulative) {
            let mut sum = 0;
            for (count, cum) in histogram.iter().zip(cumulative.iter_mut()) {
                sum += count;
                if *count > 0 {
                    *cum = sum;
                }
            }
        }
        // thumbor's loop: `while (rMin == 0 && gMin == 0 && bMin == 0 && i < 256)`.
        let mut min = [0i64; 3];
        for level in 0..256 {
            if min.iter().any(|&m| m != 0) {
                break;
            }
            for (m, cumulative) in min.iter_mut().zip(&cumulative) {
                *m = cumulative[level];
            }
        }
        // `((float)cum - min) / (area - min) * 255.0f`, single precision as in thumbor.
        let tables: [[u8; 256]; 3] = std::array::from_fn(|ch| {
            let (cumulative, min) = (&cumulative[ch], min[ch]);
            std::array::from_fn(|v| c_u8((cumulative[v] as f32 - min as f32) / (area - min) as f32 * 255.0))
        });
        for pixel in bitmap.pixels.chunks_exact_mut(channels) {
            for (c, table) in pixel[..3].iter_mut().zip(&tables) {
                *c = table[usize::from(*c)];
            }
        }
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg, with_context};

    fn run(bitmap: Bitmap) -> Vec<u8> {
        with_context(|ctx| Equalize {}.apply(bitmap, ctx).unwrap().pixels)
    }

    fn row(channels: Channels, pixels: &[u8]) -> Bitmap {
        Bitmap { width: (pixels.len() / channels.count()) as u32, height: 1, channels, pixels: pixels.to_vec() }
    }

    /// Expected bytes from thumbor 7.8's `_equalize.apply`.
    #[test]
    fn matches_thumbor() {
        // Red has the lowest level (0), so green and blue keep a minimum of 0 (thumbor's quirk):
        // green 1 becomes 63, not 0.
        let rgb = [0, 1, 2, 127, 128, 129, 250, 254, 255, 10, 100, 200];
        assert_eq!(run(row(Channels::Rgb, &rgb)), [0, 63, 63, 170, 191, 127, 255, 255, 255, 85, 127, 191]);
        let six = [10, 200, 30, 10, 100, 30, 50, 100, 31, 90, 100, 255, 10, 0, 30, 255, 255, 255];
        assert_eq!(
            run(row(Channels::Rgb, &six)),
            [127, 204, 127, 127, 153, 127, 170, 153, 170, 212, 153, 255, 127, 0, 127, 255, 255, 255]
        );
    }

    #[test]
    fn alpha_untouched() {
        let rgba = [0, 1, 2, 0, 127, 128, 129, 77, 250, 254, 255, 255, 10, 100, 200, 128];
        assert_eq!(
            run(row(Channels::Rgba, &rgba)),
            [0, 63, 63, 0, 170, 191, 127, 77, 255, 255, 255, 255, 85, 127, 191, 128]
        );
    }

    /// A flat channel divides 0 by 0 in thumbor: NaN, stored as 0. The other channels, whose
    /// minimum stayed 0, become 255.
    #[test]
    fn flat_image() {
        assert_eq!(run(row(Channels::Rgb, &[5, 6, 7].repeat(4))), [0, 255, 255].repeat(4));
    }

    /// FNV-1a of thumbor's output on 64x64 LCG noise, and on noise squeezed into narrow ranges
    /// (green starts lowest, so red and blue keep a minimum of 0).
    #[test]
    fn matches_thumbor_on_noise() {
        let noise = |channels: Channels, seed| Bitmap {
            width: 64,
            height: 64,
            channels,
            pixels: lcg(64 * 64 * channels.count(), seed),
        };
        assert_eq!(fnv(&run(noise(Channels::Rgb, 7))), 0xb398c3590f666fdb);
        assert_eq!(fnv(&run(noise(Channels::Rgba, 9))), 0x919755d272e74dc6);
        let squeezed = lcg(48 * 32 * 3, 11)
            .iter()
            .enumerate()
            .map(|(i, &b)| match i % 3 {
                0 => b % 40 + 100,
                1 => b % 90 + 20,
                _ => b % 200 + 50,
            })
            .collect();
        let bitmap = Bitmap { width: 48, height: 32, channels: Channels::Rgb, pixels: squeezed };
        assert_eq!(fnv(&run(bitmap)), 0xcd159142011ed7fe);
    }
}
