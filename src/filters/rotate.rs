//! `rotate(deg)`: rotates counter-clockwise by a multiple of 90 degrees; other angles are ignored.

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `rotate()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotate {
    /// The angle modulo 360, in 0..360, computed exactly from the argument's digits (thumbor's
    /// integers are unbounded: `rotate(99999999999999999990)` is 270 degrees).
    pub degrees: i64,
}

pub const SPEC: Spec =
    Spec { name: "rotate", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Rotate { degrees: modulo_360(args.raw(0)?)? })))
}

/// Python's `int(text) % 360` (always in 0..360) for a `-?\d+` argument of any length.
fn modulo_360(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut m = 0i64;
    for d in digits.bytes() {
        if !d.is_ascii_digit() {
            return None;
        }
        m = (m * 10 + i64::from(d - b'0')) % 360;
    }
    Some(if negative { (360 - m) % 360 } else { m })
}

impl PixelFilter for Rotate {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor: `if value % 90 == 0: engine.rotate(value % 360)`, PIL's `transpose(ROTATE_*)`,
    /// which turns counter-clockwise. 0 leaves the image as it is.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(match self.degrees {
            90 => bitmap.rotate270(),
            180 => bitmap.rotate180(),
            270 => bitmap.rotate90(),
            _ => bitmap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::config::ImageConfig;
    use crate::filters::{parse_all, Assets};
    use crate::url::split_filters;

    fn rotate(text: &str, img: Bitmap) -> Bitmap {
        let assets = Assets::default();
        let image = ImageConfig::default();
        let ctx = PostContext { box_width: None, box_height: None, assets: &assets, image: &image };
        let filters = parse_all(&split_filters(text), false).unwrap();
        filters.iter().try_fold(img, |b, f| f.apply(b, &ctx)).unwrap()
    }

    /// 3x2, one distinct red value per pixel: 0 1 2 / 3 4 5.
    fn numbered() -> Bitmap {
        let pixels = (0..6u8).flat_map(|i| [i, 0, 0]).collect();
        Bitmap { width: 3, height: 2, channels: Channels::Rgb, pixels }
    }

    fn reds(b: &Bitmap) -> Vec<u8> {
        b.pixels.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn counter_clockwise_like_pil() {
        // PIL: numbered().transpose(ROTATE_90 / ROTATE_180 / ROTATE_270).
        let r = rotate("rotate(90)", numbered());
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(reds(&r), [2, 5, 1, 4, 0, 3]);
        assert_eq!(reds(&rotate("rotate(180)", numbered())), [5, 4, 3, 2, 1, 0]);
        let r = rotate("rotate(270)", numbered());
        assert_eq!(reds(&r), [3, 0, 4, 1, 5, 2]);
        assert_eq!(reds(&rotate("rotate(-90)", numbered())), reds(&r));
        assert_eq!(reds(&rotate("rotate(450)", numbered())), [2, 5, 1, 4, 0, 3]);
        assert_eq!(reds(&rotate("rotate(90):rotate(90)", numbered())), [5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn other_angles_change_nothing() {
        for text in ["rotate(0)", "rotate(360)", "rotate(45)", "rotate(-45)", "rotate(91)"] {
            assert_eq!(rotate(text, numbered()), numbered(), "{text}");
        }
    }

    #[test]
    fn huge_angles_reduce_exactly() {
        // Python: 99999999999999999990 % 360 == 270, -99999999999999999990 % 360 == 90.
        assert_eq!(modulo_360("99999999999999999990"), Some(270));
        assert_eq!(modulo_360("-99999999999999999990"), Some(90));
        assert_eq!(modulo_360("-0"), Some(0));
        assert_eq!(modulo_360("-360"), Some(0));
        assert_eq!(modulo_360("99999999999999999991"), Some(271));
    }
}
