//! `contrast(n)`: scales each colour channel's distance from 128 by ((n+100)^2/100)%, as
//! thumbor's `_contrast.c` does (C `int` arithmetic, alpha untouched).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `contrast()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    pub value: i64,
}

pub const SPEC: Spec =
    Spec { name: "contrast", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Contrast { value: args.int(0)? })))
}

impl PixelFilter for Contrast {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame. A value outside C `int` is a 500, like thumbor's `OverflowError`.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let value = i32::try_from(self.value)
            .map_err(|_| Error::new(ErrorKind::ThumborFails, "contrast(): value does not fit a C int"))?;
        // thumbor: `d = n + 100; d = d * d / 100; c = d * (c - 128) / 100 + 128`, all in 32-bit
        // ints that wrap on overflow in its build (so -150 equals -50, and huge values fold back).
        let factor = value.wrapping_add(100);
        let factor = factor.wrapping_mul(factor) / 100;
        let table: [u8; 256] =
            std::array::from_fn(|v| (factor.wrapping_mul(v as i32 - 128) / 100).wrapping_add(128).clamp(0, 255) as u8);
        bitmap.apply_luts(&[table; 3]);
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{row, with_context, RGB, RGBA};

    fn run(value: i64, channels: Channels, pixels: &[u8]) -> Result<Vec<u8>> {
        let bitmap = row(channels, pixels);
        with_context(|ctx| Ok(Contrast { value }.apply(bitmap, ctx)?.pixels))
    }

    /// Expected bytes from thumbor 7.8's `_contrast.apply`.
    #[test]
    fn matches_thumbor() {
        let cases: &[(i64, [u8; 12])] = &[
            (10, [0, 0, 0, 127, 128, 129, 255, 255, 255, 0, 95, 215]),
            (-10, [25, 26, 26, 128, 128, 128, 226, 230, 230, 33, 106, 186]),
            (40, [0, 0, 0, 127, 128, 129, 255, 255, 255, 0, 74, 255]),
            (-50, [96, 97, 97, 128, 128, 128, 158, 159, 159, 99, 121, 146]),
            (-100, [128; 12]),
            // The factor is squared: -150 is the same as -50.
            (-150, [96, 97, 97, 128, 128, 128, 158, 159, 159, 99, 121, 146]),
            (0, RGB),
            (100, [0, 0, 0, 124, 128, 132, 255, 255, 255, 0, 16, 255]),
            (1000, [0, 0, 0, 7, 128, 249, 255, 255, 255, 0, 0, 255]),
            // Overflowing C ints, as thumbor's build computes them.
            (46241, [0, 0, 0, 255, 128, 0, 255, 255, 255, 0, 255, 0]),
            (i64::from(i32::MAX), [3, 4, 5, 128, 128, 128, 247, 251, 252, 13, 101, 198]),
            (i64::from(i32::MIN), RGB),
        ];
        for (value, expected) in cases {
            assert_eq!(run(*value, Channels::Rgb, &RGB).unwrap(), expected, "contrast({value})");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(-10, Channels::Rgba, &RGBA).unwrap(),
            [25, 26, 26, 0, 128, 128, 128, 77, 226, 230, 230, 255, 33, 106, 186, 128]
        );
    }

    #[test]
    fn beyond_c_int_is_internal_error() {
        let err = run(i64::from(i32::MIN) - 1, Channels::Rgb, &RGB).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ThumborFails);
    }
}
