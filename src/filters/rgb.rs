//! `rgb(r,g,b)`: adds r, g and b percent of 255 to the red, green and blue channels, as
//! thumbor's `_rgb.c` does (C `int` arithmetic, alpha untouched).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `rgb()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub red: i64,
    pub green: i64,
    pub blue: i64,
}

pub const SPEC: Spec = Spec {
    name: "rgb",
    params: &[Param::Number, Param::Number, Param::Number],
    required: 3,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Rgb { red: args.int(0)?, green: args.int(1)?, blue: args.int(2)? })))
}

/// thumbor's per-channel lookup: `c + (255 * percent) / 100` in 32-bit ints (wrapping on
/// overflow as its build does), clamped to 0..=255.
fn table(percent: i64) -> Result<[u8; 256]> {
    let percent =
        i32::try_from(percent).map_err(|_| Error::new(ErrorKind::ThumborFails, "rgb(): value does not fit a C int"))?;
    let delta = 255i32.wrapping_mul(percent) / 100;
    Ok(std::array::from_fn(|v| (v as i32 + delta).clamp(0, 255) as u8))
}

impl PixelFilter for Rgb {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame. A value outside C `int` is a 500, like thumbor's `OverflowError`.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let tables = [table(self.red)?, table(self.green)?, table(self.blue)?];
        bitmap.apply_luts(&tables);
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{row, with_context, RGB, RGBA};

    fn run(filter: Rgb, channels: Channels, pixels: &[u8]) -> Result<Vec<u8>> {
        let bitmap = row(channels, pixels);
        with_context(|ctx| Ok(filter.apply(bitmap, ctx)?.pixels))
    }

    /// Expected bytes from thumbor 7.8's `_rgb.apply`.
    #[test]
    fn matches_thumbor() {
        let (max, min) = (i64::from(i32::MAX), i64::from(i32::MIN));
        let cases: &[([i64; 3], [u8; 12])] = &[
            ([10, -10, 20], [25, 0, 53, 152, 103, 180, 255, 229, 255, 35, 75, 251]),
            ([100, 0, -100], [255, 1, 0, 255, 128, 0, 255, 254, 0, 255, 100, 0]),
            ([1, -1, 0], [2, 0, 2, 129, 126, 129, 252, 252, 255, 12, 98, 200]),
            ([max, min, 3], [255, 0, 9, 255, 0, 136, 255, 0, 255, 255, 0, 207]),
            ([0, 0, 0], RGB),
        ];
        for ([red, green, blue], expected) in cases {
            let got = run(Rgb { red: *red, green: *green, blue: *blue }, Channels::Rgb, &RGB).unwrap();
            assert_eq!(got, expected, "rgb({red},{green},{blue})");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(Rgb { red: 10, green: -10, blue: 20 }, Channels::Rgba, &RGBA).unwrap(),
            [25, 0, 53, 0, 152, 103, 180, 77, 255, 229, 255, 255, 35, 75, 251, 128]
        );
    }

    #[test]
    fn beyond_c_int_is_internal_error() {
        let err = run(Rgb { red: 0, green: 1 << 40, blue: 0 }, Channels::Rgb, &RGB).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ThumborFails);
    }
}
