//! `colorize(r,g,b,fill)`: blends each colour channel toward a hex fill colour by a percentage,
//! as thumbor's `_colorize.c` does (alpha untouched). A fill that `bytearray.fromhex` rejects, or
//! that is not three bytes, is a 500 as in thumbor.

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `colorize()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Colorize {
    pub red: i64,
    pub green: i64,
    pub blue: i64,
    pub fill: String,
}

pub const SPEC: Spec = Spec {
    name: "colorize",
    params: &[Param::PositiveNumber, Param::PositiveNumber, Param::PositiveNumber, Param::String],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Colorize {
        red: args.int(0)?,
        green: args.int(1)?,
        blue: args.int(2)?,
        fill: args.string(3)?,
    })))
}

/// Python's `bytearray.fromhex`: pairs of hex digits, ASCII whitespace allowed between pairs.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let digit = |b: u8| char::from(b).to_digit(16);
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        if is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let high = digit(bytes[i])?;
        let low = digit(*bytes.get(i + 1)?)?;
        out.push((high * 16 + low) as u8);
        i += 2;
    }
    Some(out)
}

/// C's `(int)` of a double on x86-64 (`cvttsd2si`): truncation, `INT_MIN` when out of range.
fn c_int(x: f64) -> i32 {
    if x.is_nan() || x >= 2_147_483_648.0 || x <= -2_147_483_649.0 {
        i32::MIN
    } else {
        x as i32
    }
}

/// thumbor's `COLORIZE(pixel, pct, fill)`: `(pixel * (100.0 - pct) + fill * pct) / 100.0`, where
/// `fill * pct` is a C int product (it wraps for huge percentages), truncated and clamped.
fn table(percent: i64, fill: u8) -> Result<[u8; 256]> {
    let percent = i32::try_from(percent)
        .map_err(|_| Error::new(ErrorKind::Internal, "colorize(): percentage does not fit a C int"))?;
    let fill_part = f64::from(i32::from(fill).wrapping_mul(percent));
    let keep = 100.0 - f64::from(percent);
    Ok(std::array::from_fn(|v| c_int((v as f64 * keep + fill_part) / 100.0).clamp(0, 255) as u8))
}

impl PixelFilter for Colorize {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let fill = match from_hex(&self.fill).as_deref() {
            Some(&[r, g, b]) => [r, g, b],
            _ => {
                return Err(Error::new(ErrorKind::Internal, format!("colorize(): fill {:?} is not hex RGB", self.fill)))
            }
        };
        let tables = [table(self.red, fill[0])?, table(self.green, fill[1])?, table(self.blue, fill[2])?];
        bitmap.apply_luts(&tables);
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{row, with_context, RGB, RGBA};

    fn colorize(red: i64, green: i64, blue: i64, fill: &str) -> Colorize {
        Colorize { red, green, blue, fill: fill.into() }
    }

    fn run(filter: &Colorize, channels: Channels, pixels: &[u8]) -> Result<Vec<u8>> {
        let bitmap = row(channels, pixels);
        with_context(|ctx| Ok(filter.apply(bitmap, ctx)?.pixels))
    }

    /// Expected bytes from thumbor 7.8's `_colorize.apply`.
    #[test]
    fn matches_thumbor() {
        let cases: &[(Colorize, [u8; 12])] = &[
            (colorize(10, 20, 30, "ff0000"), [25, 0, 1, 139, 102, 90, 250, 203, 178, 34, 80, 140]),
            (colorize(100, 100, 100, "010203"), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]),
            (colorize(0, 0, 0, "090909"), RGB),
            (colorize(150, 200, 1000, "FF8000"), [255, 255, 0, 255, 128, 0, 255, 2, 0, 255, 156, 0]),
            (colorize(33, 66, 99, "123456"), [5, 34, 85, 91, 77, 86, 173, 120, 87, 12, 68, 87]),
            // 255 * INT_MAX wraps in thumbor's int product.
            (colorize(i64::from(i32::MAX), 5, 100, "ff0080"), [255, 0, 128, 0, 121, 128, 0, 241, 128, 0, 95, 128]),
            // fromhex skips whitespace between pairs.
            (colorize(10, 20, 30, " ff 00\t00 "), [25, 0, 1, 139, 102, 90, 250, 203, 178, 34, 80, 140]),
        ];
        for (filter, expected) in cases {
            assert_eq!(run(filter, Channels::Rgb, &RGB).unwrap(), expected, "{filter:?}");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(&colorize(10, 20, 30, "ff0000"), Channels::Rgba, &RGBA).unwrap(),
            [25, 0, 1, 0, 139, 102, 90, 77, 250, 203, 178, 255, 34, 80, 140, 128]
        );
    }

    /// thumbor answers 500 when `bytearray.fromhex(fill)` fails or is not three bytes.
    #[test]
    fn bad_fill_is_internal_error() {
        for fill in ["red", "#ff0000", "ff00", "ff000000", "f f0000", "ff000", "", "ff\u{a0}0000"] {
            let err = run(&colorize(10, 20, 30, fill), Channels::Rgb, &RGB).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Internal, "{fill:?}");
        }
        let err = run(&colorize(1 << 31, 0, 0, "ff0000"), Channels::Rgb, &RGB).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
