//! `brightness(n)`: adds n percent of 255 to the red, green and blue channels, as thumbor's
//! `_brightness.c` does (C `int` arithmetic, alpha untouched).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `brightness()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Brightness {
    pub value: i64,
}

pub const SPEC: Spec =
    Spec { name: "brightness", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Brightness { value: args.int(0)? })))
}

impl PixelFilter for Brightness {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame. A value outside C `int` is a 500, like thumbor's `OverflowError`.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let value = i32::try_from(self.value)
            .map_err(|_| Error::new(ErrorKind::ThumborFails, "brightness(): value does not fit a C int"))?;
        // `(255 * delta) / 100` in 32-bit arithmetic: thumbor's build wraps on overflow.
        let delta = 255i32.wrapping_mul(value) / 100;
        let table: [u8; 256] = std::array::from_fn(|v| (v as i32 + delta).clamp(0, 255) as u8);
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
        with_context(|ctx| Ok(Brightness { value }.apply(bitmap, ctx)?.pixels))
    }

    /// Expected bytes from thumbor 7.8's `_brightness.apply`.
    #[test]
    fn matches_thumbor() {
        let cases: &[(i64, [u8; 12])] = &[
            (10, [25, 26, 27, 152, 153, 154, 255, 255, 255, 35, 125, 225]),
            (-10, [0, 0, 0, 102, 103, 104, 225, 229, 230, 0, 75, 175]),
            (50, [127, 128, 129, 254, 255, 255, 255, 255, 255, 137, 227, 255]),
            (1, [2, 3, 4, 129, 130, 131, 252, 255, 255, 12, 102, 202]),
            (0, RGB),
            (100, [255; 12]),
            (-100, [0; 12]),
            (1000, [255; 12]),
            // 255 * 8421505 wraps to a negative int in thumbor's C code: black, not white.
            (8421505, [0; 12]),
            (i64::from(i32::MAX), [255; 12]),
            (i64::from(i32::MIN), [0; 12]),
        ];
        for (value, expected) in cases {
            assert_eq!(run(*value, Channels::Rgb, &RGB).unwrap(), expected, "brightness({value})");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(10, Channels::Rgba, &RGBA).unwrap(),
            [25, 26, 27, 0, 152, 153, 154, 77, 255, 255, 255, 255, 35, 125, 225, 128]
        );
        assert_eq!(run(-100, Channels::Rgba, &RGBA).unwrap(), [0, 0, 0, 0, 0, 0, 0, 77, 0, 0, 0, 255, 0, 0, 0, 128]);
    }

    #[test]
    fn beyond_c_int_is_internal_error() {
        let err = run(i64::from(i32::MAX) + 1, Channels::Rgb, &RGB).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ThumborFails);
        assert!(run(i64::MIN, Channels::Rgb, &RGB).is_err());
    }
}
