//! `round_corner(a[|b],r,g,b[,transparent])`: rounds the corners with an elliptical radius, painting them a colour or making them transparent.

use super::{Args, Filter, Param, Phase, PixelFilter, PostContext, Spec};
use crate::codec::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `round_corner()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundCorner {
    pub radius: String,
    pub red: i64,
    pub green: i64,
    pub blue: i64,
    pub transparent: bool,
}

pub const SPEC: Spec = Spec {
    name: "round_corner",
    params: &[
        Param::Custom(r"[\d]+(?:\|[\d]+)?"),
        Param::PositiveNumber,
        Param::PositiveNumber,
        Param::PositiveNumber,
        Param::Boolean,
    ],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(super::Pixels::new(RoundCorner {
        radius: args.raw(0)?.to_string(),
        red: args.int(1)?,
        green: args.int(2)?,
        blue: args.int(3)?,
        transparent: args.boolean(4).unwrap_or(false),
    })))
}

impl PixelFilter for RoundCorner {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor: `_round_corner.apply` (anti-aliased) on the frame, made RGBA first when
    /// `transparent`. Values `_round_corner.c` cannot take (a radius above `INT_MAX`, a colour
    /// above 255) raise OverflowError in thumbor: 500.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let overflow = |what: &str| Error::new(ErrorKind::ThumborFails, format!("round_corner(): {what} out of range"));
        let (a, b) = match self.radius.split_once('|') {
            Some((a, b)) => (a, b),
            None => (self.radius.as_str(), self.radius.as_str()),
        };
        let radius = |text: &str| text.parse::<i32>().map_err(|_| overflow("radius"));
        let (a_radius, b_radius) = (radius(a)?, radius(b)?);
        let channel = |v: i64| u8::try_from(v).map_err(|_| overflow("colour"));
        let color = [channel(self.red)?, channel(self.green)?, channel(self.blue)?];
        let mut bitmap = if self.transparent { bitmap.to_rgba() } else { bitmap };
        round_corners(&mut bitmap, a_radius, b_radius, color, self.transparent);
        Ok(bitmap)
    }
}

/// C's `(int)` of a float on x86-64: truncation, and `INT_MIN` for NaN and out-of-range values
/// (what `cvttss2si` returns), so that degenerate radii behave as in thumbor.
fn c_int(v: f32) -> i32 {
    // NaN is outside every range too.
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// C's conversion of a float to `unsigned char` as compiled for x86-64 (through a 32-bit int).
fn c_byte(v: f32) -> u8 {
    c_int(v) as u8
}

/// `sqrt` of a float argument, in double precision as C promotes it.
fn sqrt_f(v: f32) -> f64 {
    f64::from(v).sqrt()
}

/// The image buffer with `_round_corner.c`'s addressing: byte offsets, and writes or reads
/// outside the buffer (undefined behaviour in C, reachable only with degenerate sizes) skipped
/// or read as 0.
struct Pixels<'a> {
    bytes: &'a mut [u8],
}

impl Pixels<'_> {
    fn get(&self, offset: i64) -> u8 {
        usize::try_from(offset).ok().and_then(|i| self.bytes.get(i)).copied().unwrap_or(0)
    }

    fn set(&mut self, offset: i64, v: u8) {
        if let Some(slot) = usize::try_from(offset).ok().and_then(|i| self.bytes.get_mut(i)) {
            *slot = v;
        }
    }
}

/// One anti-aliasing step: the pixels at `targets` (byte offsets of top-left, bottom-left,
/// top-right, bottom-right) blended from the pixels at `colors` towards the fill colour (or
/// towards black when transparent), in the C code's order of reads and writes.
fn blend(px: &mut Pixels, targets: [i64; 4], colors: [i64; 4], aa: f32, color: [u8; 3], transparent: bool) {
    for (target, from) in targets.into_iter().zip(colors) {
        for (c, &fill) in color.iter().enumerate() {
            let c = c as i64;
            let kept = f32::from(px.get(from + c)) * (1.0 - aa);
            let v = if transparent { kept } else { kept + f32::from(fill) * aa };
            px.set(target + c, c_byte(v));
        }
    }
}

/// A line-for-line port of thumbor's `_round_corner.c` with anti-aliasing on (as thumbor calls
/// it), keeping its float/double arithmetic and its asymmetries (the right-hand corners are one
/// column narrower), so the pixels match thumbor's.
fn round_corners(bitmap: &mut Bitmap, a_radius: i32, b_radius: i32, color: [u8; 3], transparent: bool) {
    let width = bitmap.width as i32;
    let height = bitmap.height as i32;
    let nb = bitmap.channels.count() as i64;
    // `rgb_order(mode, 'A')`: 3 for RGBA; only written when transparent (RGBA then).
    let a_idx: i64 = if bitmap.channels == Channels::Rgba { 3 } else { 2 };
    let [r, g, b] = color;
    let aa_amount: f32 = 0.75;
    let a_radius = a_radius.min(width / 2);
    let b_radius = b_radius.min(height / 2);
    let a_rad = a_radius as f32;
    let b_rad = b_radius as f32;
    let (w, h) = (width as f32, height as f32);
    let row = |y: i32| i64::from(y.wrapping_mul(width));
    let mut px = Pixels { bytes: &mut bitmap.pixels };

    let mut y: i32 = 0;
    while y as f32 <= b_rad {
        let x = (-(f64::from(a_rad) * sqrt_f(b_rad * b_rad - y.wrapping_mul(y) as f32)) / f64::from(b_rad)) as f32;
        let y_top = c_int(b_rad - y as f32);
        let y_bottom = c_int((h - b_rad) + y as f32 - 1.0);
        let end_x = c_int(x + a_rad);
        let mut curr_x = 0;
        while curr_x < end_x {
            let top_left = nb * (row(y_top) + i64::from(curr_x));
            let bottom_left = nb * (row(y_bottom) + i64::from(curr_x));
            let top_right = nb * (row(y_top) + i64::from(width - curr_x));
            let bottom_right = nb * (row(y_bottom) + i64::from(width - curr_x));
            let mut paint = |at: i64| {
                px.set(at, r);
                px.set(at + 1, g);
                px.set(at + 2, b);
                if transparent {
                    px.set(at + a_idx, 0);
                }
            };
            // C writes each channel to the top and bottom pixels in turn; they never overlap
            // in a way that changes the result, since both get the same values.
            paint(top_left);
            paint(bottom_left);
            if curr_x > 0 {
                paint(top_right);
                paint(bottom_right);
            }
            curr_x += 1;
        }

        // Anti-aliasing along x for this row.
        let colors = [
            nb * (row(y_top) + i64::from(end_x)),
            nb * (row(y_bottom) + i64::from(end_x)),
            nb * (row(y_top) + i64::from(width.wrapping_sub(end_x))),
            nb * (row(y_bottom) + i64::from(width.wrapping_sub(end_x))),
        ];
        let mut aa_x = c_int(x - 1.0);
        let mut pixel_count_x: i32 = 0;
        while aa_x as f32 >= -a_rad {
            let inner = a_rad * a_rad - aa_x.wrapping_mul(aa_x) as f32;
            let aa_y = c_int(((f64::from(b_rad) * sqrt_f(inner)) / f64::from(a_rad) + 1.0) as f32);
            if aa_y != y {
                break;
            }
            pixel_count_x += 1;
            aa_x = aa_x.wrapping_sub(1);
        }
        let mut aa_x = c_int(x - pixel_count_x as f32);
        if (aa_x as f32) < -a_rad {
            aa_x = aa_x.wrapping_add(1);
        }
        let mut idx: i32 = 1;
        while (aa_x as f32) < x {
            let aa_x_adj = c_int(aa_x as f32 + a_rad);
            let targets = [
                nb * (row(y_top) + i64::from(aa_x_adj)),
                nb * (row(y_bottom) + i64::from(aa_x_adj)),
                nb * (row(y_top) + i64::from(width.wrapping_sub(aa_x_adj))),
                nb * (row(y_bottom) + i64::from(width.wrapping_sub(aa_x_adj))),
            ];
            let aa = 1.0 - ((idx as f32 / pixel_count_x as f32) * aa_amount);
            blend(&mut px, targets, colors, aa, color, transparent);
            aa_x = aa_x.wrapping_add(1);
            idx += 1;
        }
        y += 1;
    }

    // Anti-aliasing along y, column by column.
    let mut x: f32 = 0.0;
    while x >= -a_rad {
        let y = ((f64::from(b_rad) * sqrt_f(a_rad * a_rad - x * x)) / f64::from(a_rad)) as f32;
        let mut pixel_count_y: i32 = 0;
        let mut aa_y = c_int(y + 1.0);
        while (aa_y as f32) < b_rad {
            let inner = b_rad * b_rad - aa_y.wrapping_mul(aa_y) as f32;
            let aa_x = c_int((-((f64::from(a_rad) * sqrt_f(inner)) / f64::from(b_rad)) - 1.0) as f32);
            if aa_x != c_int(x) {
                break;
            }
            pixel_count_y += 1;
            aa_y = aa_y.wrapping_add(1);
        }
        let end_x = c_int(x + a_rad);
        let y_top = c_int(b_rad - y);
        let y_bottom = c_int((h - b_rad) + y - 1.0);
        let colors = [
            nb * (row(y_top) + i64::from(end_x)),
            nb * (row(y_bottom) + i64::from(end_x)),
            nb * (row(y_top) + i64::from(width.wrapping_sub(end_x))),
            nb * (row(y_bottom) + i64::from(width.wrapping_sub(end_x))),
        ];
        let left_x = c_int(x + a_rad) as f32;
        let right_x = c_int(w - a_rad - x) as f32;
        let mut idx: i32 = 1;
        let mut aa_y = c_int(y + pixel_count_y as f32);
        if aa_y as f32 > b_rad {
            aa_y = aa_y.wrapping_sub(1);
        }
        let nbf = nb as f32;
        while aa_y as f32 > y {
            // The C code computes these offsets in float: `num_bytes * ((rows * width) + x)`.
            let top = (b_rad - aa_y as f32) * w;
            let bottom = ((h - b_rad) + aa_y as f32 - 1.0) * w;
            let targets = [
                i64::from(c_int(nbf * (top + left_x))),
                i64::from(c_int(nbf * (bottom + left_x))),
                i64::from(c_int(nbf * (top + right_x))),
                i64::from(c_int(nbf * (bottom + right_x))),
            ];
            let aa = 1.0 - ((idx as f32 / pixel_count_y as f32) * aa_amount);
            blend(&mut px, targets, colors, aa, color, transparent);
            aa_y = aa_y.wrapping_sub(1);
            idx += 1;
        }
        x -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;
    use crate::filters::Assets;

    fn apply(filter: &RoundCorner, img: Bitmap) -> Result<Bitmap> {
        let assets = Assets::default();
        let image = ImageConfig::default();
        let ctx = PostContext { box_width: None, box_height: None, assets: &assets, image: &image };
        filter.apply(img, &ctx)
    }

    fn corner(radius: &str, rgb: [i64; 3], transparent: bool) -> RoundCorner {
        RoundCorner { radius: radius.into(), red: rgb[0], green: rgb[1], blue: rgb[2], transparent }
    }

    /// The deterministic test image the expectations were computed on (thumbor 7.8's
    /// `_round_corner.apply(1, mode, a, b, r, g, b, w, h, pattern, transparent)`).
    fn pattern(width: u32, height: u32, channels: Channels) -> Bitmap {
        let block: Vec<u8> = (0..13 * 256usize).map(|i| ((i * 7) + (i / 13)) as u8).collect();
        let n = width as usize * height as usize * channels.count();
        Bitmap { width, height, channels, pixels: block.iter().copied().cycle().take(n).collect() }
    }

    /// The (pixel, channel, value) triples where `out` differs from `before`.
    fn changes(before: &Bitmap, out: &Bitmap) -> Vec<(usize, usize, u8)> {
        let c = out.channels.count();
        let before = if before.channels == out.channels { before.clone() } else { before.to_rgba() };
        before
            .pixels
            .iter()
            .zip(&out.pixels)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (_, &v))| (i / c, i % c, v))
            .collect()
    }

    #[test]
    fn small_corners_match_the_c_extension() {
        let img = pattern(6, 5, Channels::Rgb);
        let out = apply(&corner("2", [255, 255, 255], false), img.clone()).unwrap();
        #[rustfmt::skip]
        let expected = [
            (0, 0, 255), (0, 1, 255), (0, 2, 255), (1, 0, 95), (1, 1, 100), (1, 2, 105), (5, 0, 126), (5, 1, 132),
            (5, 2, 138), (6, 0, 254), (6, 1, 114), (6, 2, 117), (12, 1, 149), (12, 2, 151), (18, 0, 254),
            (18, 1, 114), (18, 2, 117), (24, 0, 254), (24, 1, 149), (24, 2, 151), (25, 0, 93), (25, 1, 99),
            (25, 2, 104), (29, 0, 125), (29, 1, 130), (29, 2, 135),
        ];
        assert_eq!(changes(&img, &out), expected);
    }

    #[test]
    fn transparent_corners_clear_alpha() {
        let img = pattern(6, 5, Channels::Rgba);
        let out = apply(&corner("2|3", [10, 20, 30], true), img.clone()).unwrap();
        #[rustfmt::skip]
        let expected = [
            (0, 0, 10), (0, 1, 20), (0, 2, 30), (0, 3, 0), (1, 0, 42), (1, 1, 47), (1, 2, 52), (1, 3, 0),
            (5, 0, 84), (5, 1, 90), (5, 2, 95), (5, 3, 0), (6, 0, 46), (6, 1, 50), (6, 2, 54), (12, 0, 34),
            (12, 1, 37), (12, 2, 40), (18, 0, 46), (18, 1, 50), (18, 2, 54), (24, 0, 34), (24, 1, 37),
            (24, 2, 40), (24, 3, 0), (25, 0, 168), (25, 1, 173), (25, 2, 178), (25, 3, 0), (29, 0, 18),
            (29, 1, 23), (29, 2, 28), (29, 3, 0),
        ];
        assert_eq!(changes(&img, &out), expected);
        // An RGB image becomes RGBA first, as thumbor's enable_alpha().
        let out = apply(&corner("2", [0, 0, 0], true), pattern(6, 5, Channels::Rgb)).unwrap();
        assert_eq!((out.channels, out.pixels[3]), (Channels::Rgba, 0));
    }

    #[test]
    fn corpus_sized_images_match_byte_for_byte() {
        use sha1::Digest;
        // SHA-1 of thumbor's output on the same pattern: round_corner(20,255,255,255) on a
        // 300x200 RGB image, round_corner(20|40,0,0,0,true) on a 300x200 RGBA one.
        let digest = |b: &Bitmap| sha1::Sha1::digest(&b.pixels).iter().map(|x| format!("{x:02x}")).collect::<String>();
        let out = apply(&corner("20", [255, 255, 255], false), pattern(300, 200, Channels::Rgb)).unwrap();
        assert_eq!(digest(&out), "078c2f5364b8e10494b7d67c72ebcf93563aa9c3");
        let out = apply(&corner("20|40", [0, 0, 0], true), pattern(300, 200, Channels::Rgba)).unwrap();
        assert_eq!(digest(&out), "118bbaf0ec4d1174c83604844637278b4dbeea0b");
    }

    #[test]
    fn degenerate_sizes_stay_in_bounds() {
        // Radii are clamped to half the image; zero radii and one-pixel images change nothing.
        // (Some radii make thumbor's C code write a pixel past the end of its buffer; the port
        // skips such writes, every in-bounds pixel matching thumbor's.)
        for (w, h, radius) in [(1, 1, "5"), (2, 1, "1"), (1, 2, "1|1"), (6, 5, "0"), (6, 5, "0|3"), (6, 5, "3|0")] {
            let img = pattern(w, h, Channels::Rgb);
            assert_eq!(apply(&corner(radius, [1, 2, 3], false), img.clone()).unwrap(), img, "{w}x{h} {radius}");
        }
        let img = pattern(17, 13, Channels::Rgb);
        let out = apply(&corner("1", [1, 2, 3], false), img).unwrap();
        assert_eq!(out.size(), crate::geometry::Size::new(17, 13));
    }

    #[test]
    fn values_the_c_code_refuses_are_thumbors_500() {
        let img = || pattern(4, 4, Channels::Rgb);
        assert_eq!(apply(&corner("2", [256, 0, 0], false), img()).unwrap_err().status(), 500);
        assert_eq!(apply(&corner("2147483648", [0, 0, 0], false), img()).unwrap_err().status(), 500);
        assert_eq!(apply(&corner("2|99999999999", [0, 0, 0], false), img()).unwrap_err().status(), 500);
        assert!(apply(&corner("2147483647", [255, 255, 255], false), img()).is_ok());
    }
}
