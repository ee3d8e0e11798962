//! `grayscale()`: Pillow's `convert("L")` luminance (ITU-R 601, fixed point) in every colour
//! channel; alpha is kept, as thumbor's `convert("LA")` keeps it.

use super::{Args, Filter, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `grayscale()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Grayscale {}

pub const SPEC: Spec = Spec { name: "grayscale", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Grayscale {})))
}

/// Pillow's `L24` luminance: `(r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16`.
fn luminance(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

impl PixelFilter for Grayscale {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame. thumbor's result is an `L`/`LA` image; here the bitmap stays RGB(A)
    /// with r = g = b, which is the same picture.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let channels = bitmap.channels.count();
        for pixel in bitmap.pixels.chunks_exact_mut(channels) {
            let l = luminance(pixel[0], pixel[1], pixel[2]);
            pixel[..3].fill(l);
        }
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{row, with_context};

    fn run(channels: Channels, pixels: &[u8]) -> Vec<u8> {
        let bitmap = row(channels, pixels);
        with_context(|ctx| Grayscale {}.apply(bitmap, ctx).unwrap().pixels)
    }

    /// Expected values from Pillow 12.3 (`Image.convert("L")` / `convert("LA")`), as thumbor 7.8 runs it.
    #[test]
    fn matches_pillow() {
        let rgb = [0, 1, 2, 127, 128, 129, 250, 254, 255, 10, 100, 200];
        assert_eq!(run(Channels::Rgb, &rgb), [1, 1, 1, 128, 128, 128, 253, 253, 253, 84, 84, 84]);
        let primaries = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        assert_eq!(run(Channels::Rgb, &primaries), [76, 76, 76, 150, 150, 150, 29, 29, 29, 255, 255, 255]);
    }

    #[test]
    fn alpha_kept() {
        let rgba = [0, 1, 2, 0, 127, 128, 129, 77, 250, 254, 255, 255, 10, 100, 200, 128];
        assert_eq!(run(Channels::Rgba, &rgba), [1, 1, 1, 0, 128, 128, 128, 77, 253, 253, 253, 255, 84, 84, 84, 128]);
    }

    /// The fixed-point formula against every grey level and the extremes.
    #[test]
    fn greys_stay_put() {
        for v in 0..=255u8 {
            assert_eq!(luminance(v, v, v), v);
        }
    }
}
