//! `saturation(x)`: moves each pixel's colour away from (x > 1) or toward (x < 1) its perceived
//! brightness `sqrt(0.299 r² + 0.587 g² + 0.114 b²)`, as thumbor's `_saturation.c` does (single
//! precision, truncation toward zero, alpha untouched).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `saturation()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    pub change: f64,
}

pub const SPEC: Spec =
    Spec { name: "saturation", params: &[Param::DecimalNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Saturation { change: args.float(0)? })))
}

/// C's `(int)` of a float on x86-64 (`cvttss2si`): truncation, and `INT_MIN` for NaN and values
/// out of range (so an infinite change gives black, as in thumbor).
fn c_int(x: f32) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

impl PixelFilter for Saturation {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        // thumbor receives the change as a C float.
        let change = self.change as f32;
        // `r*r*0.299` is an int square times a double; tabulated once.
        let weighted = |weight: f64| -> [f64; 256] { std::array::from_fn(|v| (v * v) as f64 * weight) };
        let (wr, wg, wb) = (weighted(0.299), weighted(0.587), weighted(0.114));
        let channels = bitmap.channels.count();
        for pixel in bitmap.pixels.chunks_exact_mut(channels) {
            let (r, g, b) = (usize::from(pixel[0]), usize::from(pixel[1]), usize::from(pixel[2]));
            let p = (wr[r] + wg[g] + wb[b]).sqrt() as f32;
            for c in &mut pixel[..3] {
                *c = c_int(p + (f32::from(*c) - p) * change).clamp(0, 255) as u8;
            }
        }
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg_bitmap, with_context, RGB, RGBA};

    fn run(change: f64, bitmap: Bitmap) -> Vec<u8> {
        with_context(|ctx| Saturation { change }.apply(bitmap, ctx).unwrap().pixels)
    }

    fn row(channels: Channels, pixels: &[u8]) -> Bitmap {
        Bitmap { width: (pixels.len() / channels.count()) as u32, height: 1, channels, pixels: pixels.to_vec() }
    }

    /// Expected bytes from thumbor 7.8's `_saturation.apply`.
    #[test]
    fn matches_thumbor() {
        let cases: &[(f64, [u8; 12])] = &[
            (1.5, [0, 0, 2, 126, 128, 129, 248, 254, 255, 0, 98, 248]),
            (-1.0, [2, 1, 0, 128, 127, 126, 255, 251, 250, 194, 104, 4]),
            (0.0, [1, 1, 1, 127, 127, 127, 252, 252, 252, 102, 102, 102]),
            (0.5, [0, 1, 1, 127, 127, 128, 251, 253, 253, 56, 101, 151]),
            (1.0, RGB),
            (100.0, [0, 0, 98, 46, 146, 246, 0, 255, 255, 0, 0, 255]),
            // Out of C int range: thumbor's conversion gives INT_MIN, clamped to 0.
            (1e30, [0; 12]),
            (f64::INFINITY, [0; 12]),
        ];
        for (change, expected) in cases {
            assert_eq!(run(*change, row(Channels::Rgb, &RGB)), expected, "saturation({change})");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(-1.0, row(Channels::Rgba, &RGBA)),
            [2, 1, 0, 0, 128, 127, 126, 77, 255, 251, 250, 255, 194, 104, 4, 128]
        );
    }

    /// FNV-1a of thumbor's output on 64x64 LCG noise: every rounding step matches.
    #[test]
    fn matches_thumbor_on_noise() {
        let cases: &[(f64, u64, u64)] = &[
            (1.5, 0x3a10d7e1c0147c01, 0x039fe1792cadad19),
            (-1.0, 0xeb55c08c7d374c22, 0x74ec327fa91d919e),
            (0.0, 0xe394a01bbaf9c806, 0xb31efc1d34c4de38),
            (0.5, 0xf31051eb21a6b52c, 0xb6406c0a6458675b),
            (2.0, 0xd3e16ec592199c08, 0x86b1497655175862),
            (0.3333333333, 0x2dc2ef4f0888ef23, 0x5bcca2d85c0287e0),
        ];
        for (change, rgb, rgba) in cases {
            assert_eq!(fnv(&run(*change, lcg_bitmap(Channels::Rgb, 7))), *rgb, "saturation({change}) RGB");
            assert_eq!(fnv(&run(*change, lcg_bitmap(Channels::Rgba, 9))), *rgba, "saturation({change}) RGBA");
        }
    }
}
