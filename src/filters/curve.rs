//! `curve(all,r,g,b)`: tone curves through `(x,y)` control points, interpolated with thumbor's
//! natural cubic spline (`_curve.c`): each colour channel goes through its own curve, then
//! through the first one. Alpha is untouched. Coordinates are taken modulo 256 as thumbor's
//! `unsigned char` casts do; text that Python's `ast.literal_eval` rejects (`(1,2)(3,4)`, `01`)
//! is a 500 as in thumbor. Differences, where thumbor's C code reads out of bounds: an empty
//! list (`[]`, which corrupts thumbor's heap) leaves its channel unchanged here, and curves of
//! more than 255 points use all of them (thumbor's count wraps at 256).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// One curve's control points as thumbor's C code sees them, or `None` when thumbor fails to
/// read the text (it answers 500).
pub type Points = Option<Vec<(u8, u8)>>;

/// The arguments of one `curve()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The curve applied to red, green and blue after their own (thumbor calls it `alpha`).
    pub all: Points,
    pub red: Points,
    pub green: Points,
    pub blue: Points,
}

pub const SPEC: Spec = Spec {
    name: "curve",
    params: &[Param::Custom(CURVE), Param::Custom(CURVE), Param::Custom(CURVE), Param::Custom(CURVE)],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

/// thumbor's curve argument pattern.
pub const CURVE: &str = r"\[(?:\(\d+,\d+\),?)*\]";

/// `[(0,0),(255,255)]` -> points, as `ast.literal_eval` then `(unsigned char)PyLong_AS_LONG`
/// read it: `None` for tuples not separated by a comma (a call), decimal literals with a leading
/// zero, non-ASCII digits, and values beyond a C long.
fn points(text: &str) -> Points {
    let mut rest = text.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (pair, after) = rest.strip_prefix('(')?.split_once(')')?;
        let (x, y) = pair.split_once(',')?;
        out.push((coordinate(x)?, coordinate(y)?));
        rest = match after.strip_prefix(',') {
            Some(next) => next,
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(out)
}

fn coordinate(digits: &str) -> Option<u8> {
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|b| b != b'0');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || leading_zero {
        return None;
    }
    // Low byte, as the C cast keeps it.
    Some(digits.parse::<i64>().ok()? as u8)
}

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Curve {
        all: points(args.raw(0)?),
        red: points(args.raw(1)?),
        green: points(args.raw(2)?),
        blue: points(args.raw(3)?),
    })))
}

/// thumbor's `calculate_second_derivative`: a tridiagonal solve, step for step (a repeated x
/// divides by zero and spreads NaN, as in thumbor).
fn second_derivative(points: &[(u8, u8)]) -> Vec<f64> {
    let n = points.len();
    let x = |i: usize| i32::from(points[i].0);
    let y = |i: usize| i32::from(points[i].1);
    let mut matrix = vec![[0.0f64; 3]; n];
    let mut result = vec![0.0f64; n];
    matrix[0][1] = 1.0;
    for i in 1..n.saturating_sub(1) {
        matrix[i][0] = f64::from(x(i) - x(i - 1)) / 6.0;
        matrix[i][1] = f64::from(x(i + 1) - x(i - 1)) / 3.0;
        matrix[i][2] = f64::from(x(i + 1) - x(i)) / 6.0;
        result[i] = f64::from(y(i + 1) - y(i)) / f64::from(x(i + 1) - x(i))
            - f64::from(y(i) - y(i - 1)) / f64::from(x(i) - x(i - 1));
    }
    matrix[n - 1][1] = 1.0;
    for i in 1..n {
        let k = matrix[i][0] / matrix[i - 1][1];
        matrix[i][1] -= k * matrix[i - 1][2];
        matrix[i][0] = 0.0;
        result[i] -= k * result[i - 1];
    }
    for i in (0..n - 1).rev() {
        let k = matrix[i][2] / matrix[i + 1][1];
        matrix[i][1] -= k * matrix[i + 1][0];
        matrix[i][2] = 0.0;
        result[i] -= k * result[i + 1];
    }
    result.iter().zip(&matrix).map(|(r, m)| r / m[1]).collect()
}

/// thumbor's `cubic_spline_interpolation` into a 256-entry table: the first point's y before
/// the curve, the last point's y from its x on, segments with increasing x interpolated.
fn table(points: &[(u8, u8)]) -> [u8; 256] {
    let (Some(&(_, first_y)), Some(&(last_x, last_y))) = (points.first(), points.last()) else {
        return std::array::from_fn(|v| v as u8);
    };
    let sd = second_derivative(points);
    let mut items = [first_y; 256];
    for (i, pair) in points.windows(2).enumerate() {
        let ((cx, cy), (nx, ny)) = (pair[0], pair[1]);
        let h = f64::from(i32::from(nx) - i32::from(cx));
        for x in cx..nx {
            let t = f64::from(x - cx) / h;
            let (a, b) = (1.0 - t, t);
            let y = a * f64::from(cy)
                + b * f64::from(ny)
                + (h * h / 6.0) * ((a * a * a - a) * sd[i] + (b * b * b - b) * sd[i + 1]);
            // `(unsigned char)MINMAX(round(y), 0, 255)`; NaN converts to 0 on x86-64.
            let v = y.round().clamp(0.0, 255.0);
            items[usize::from(x)] = if v.is_nan() { 0 } else { v as u8 };
        }
    }
    items[usize::from(last_x)..].fill(last_y);
    items
}

impl PixelFilter for Curve {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let unreadable = || Error::new(ErrorKind::ThumborFails, "curve(): points thumbor cannot read");
        let all = table(self.all.as_deref().ok_or_else(unreadable)?);
        let own = [&self.red, &self.green, &self.blue];
        let mut tables = [[0u8; 256]; 3];
        for (table_out, points) in tables.iter_mut().zip(own) {
            let channel = table(points.as_deref().ok_or_else(unreadable)?);
            *table_out = std::array::from_fn(|v| all[usize::from(channel[v])]);
        }
        bitmap.apply_luts(&tables);
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::with_context;
    use crate::filters::testing::{fnv, row};

    const IDENTITY: &str = "[(0,0),(255,255)]";

    fn curve(all: &str, red: &str, green: &str, blue: &str) -> Curve {
        Curve { all: points(all), red: points(red), green: points(green), blue: points(blue) }
    }

    fn run(filter: &Curve, channels: Channels, pixels: &[u8]) -> Result<Vec<u8>> {
        let bitmap = row(channels, pixels);
        with_context(|ctx| Ok(filter.apply(bitmap, ctx)?.pixels))
    }

    /// Every level once per channel: red i, green 7i mod 256, blue 255 - i.
    fn levels() -> Vec<u8> {
        (0..=255u8).flat_map(|i| [i, i.wrapping_mul(7), 255 - i]).collect()
    }

    #[test]
    fn parses_like_literal_eval() {
        assert_eq!(points("[(0,0),(255,255)]"), Some(vec![(0, 0), (255, 255)]));
        assert_eq!(points("[(0,2),]"), Some(vec![(0, 2)]));
        assert_eq!(points("[(00,2)]"), Some(vec![(0, 2)]));
        assert_eq!(points("[(300,2)]"), Some(vec![(44, 2)]));
        assert_eq!(points("[]"), Some(vec![]));
        assert_eq!(points("[(1,2)(3,4)]"), None, "a call, not a tuple list");
        assert_eq!(points("[(01,2)]"), None, "leading zero");
        assert_eq!(points("[(99999999999999999999,1)]"), None, "beyond a C long");
        assert_eq!(points("[(\u{663},1)]"), None, "non-ASCII digit");
    }

    /// FNV-1a of thumbor 7.8's `_curve.apply` output on every level, for the two curves of
    /// thumbor's docstring and edge cases: a repeated x (NaN: 0), a decreasing x, coordinates
    /// that wrap, a curve starting late, a single point.
    #[test]
    fn matches_thumbor() {
        let cases: &[([&str; 4], u64)] = &[
            (
                [
                    IDENTITY,
                    "[(0,50),(16,51),(32,69),(58,85),(92,120),(128,170),(140,186),(167,225),(192,245),(225,255),(244,255),(255,254)]",
                    "[(0,0),(16,2),(32,18),(64,59),(92,116),(128,182),(167,211),(192,227),(224,240),(244,247),(255,252)]",
                    "[(0,48),(16,50),(62,77),(92,110),(128,144),(140,153),(167,180),(192,192),(224,217),(244,225),(255,225)]",
                ],
                0x04ba0afb7e5199eb,
            ),
            (
                [
                    "[(0,0),(40,59),(255,255)]",
                    "[(32,59),(64,80),(92,111),(128,153),(140,169),(164,201),(192,214),(224,215),(240,214),(255,212)]",
                    "[(34,41),(64,51),(92,76),(128,112),(140,124),(164,147),(192,180),(224,216),(240,236),(255,255)]",
                    "[(40,46),(64,55),(92,83),(128,127),(140,144),(164,174),(192,197),(224,199),(240,197),(255,198)]",
                ],
                0x953de2ad46e209f9,
            ),
            ([IDENTITY, "[(0,0),(100,50),(100,200),(255,255)]", IDENTITY, IDENTITY], 0x73c5f29252b46590),
            ([IDENTITY, "[(0,0),(200,50),(100,200),(255,255)]", IDENTITY, IDENTITY], 0x70ec5fda3c1015d8),
            ([IDENTITY, "[(0,300),(256,10),(511,100)]", IDENTITY, IDENTITY], 0xc10d358fa9d81469),
            (["[(50,10),(200,250)]", IDENTITY, IDENTITY, IDENTITY], 0x7d1ec698ff21bd51),
            (
                ["[(0,255),(255,0)]", "[(0,0),(64,200),(128,20),(255,255)]", "[(10,20),(30,40),(50,60)]", "[(128,128)]"],
                0x3d2571ee4b7d78bf,
            ),
        ];
        for ([all, red, green, blue], expected) in cases {
            let got = run(&curve(all, red, green, blue), Channels::Rgb, &levels()).unwrap();
            assert_eq!(fnv(&got), *expected, "curve({all},{red},{green},{blue})");
        }
    }

    #[test]
    fn small_images_and_alpha() {
        let filter = curve(
            "[(0,255),(255,0)]",
            "[(0,0),(64,200),(128,20),(255,255)]",
            "[(10,20),(30,40),(50,60)]",
            "[(128,128)]",
        );
        let rgb = [0, 1, 2, 127, 128, 129, 250, 254, 255, 10, 100, 200];
        assert_eq!(
            run(&filter, Channels::Rgb, &rgb).unwrap(),
            [255, 235, 127, 233, 195, 127, 20, 195, 127, 207, 195, 127]
        );
        let rgba = [0, 1, 2, 0, 127, 128, 129, 77, 250, 254, 255, 255, 10, 100, 200, 128];
        assert_eq!(
            run(&filter, Channels::Rgba, &rgba).unwrap(),
            [255, 235, 127, 0, 233, 195, 127, 77, 20, 195, 127, 255, 207, 195, 127, 128]
        );
        // thumbor: `[(0,0)]` maps everything to 0.
        let black = curve("[(0,0)]", IDENTITY, IDENTITY, IDENTITY);
        assert_eq!(run(&black, Channels::Rgb, &rgb).unwrap(), [0; 12]);
    }

    #[test]
    fn unreadable_points_are_internal_errors() {
        let filter = curve(IDENTITY, "[(1,2)(3,4)]", IDENTITY, IDENTITY);
        assert_eq!(run(&filter, Channels::Rgb, &[1, 2, 3]).unwrap_err().kind(), ErrorKind::ThumborFails);
    }

    /// thumbor corrupts its heap on `[]`; here an empty curve changes nothing.
    #[test]
    fn empty_curves_are_identity() {
        let filter = curve("[]", "[]", "[]", "[]");
        assert_eq!(run(&filter, Channels::Rgb, &levels()).unwrap(), levels());
    }
}
