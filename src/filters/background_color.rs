//! `background_color(color)`: flattens transparency onto a colour (a name or hex). Also home of
//! thumbor's `engine.paste` (the `_composite.c` merge and PIL's plain paste), which `fill()` and
//! `watermark()` share.

use super::{color, Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `background_color()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundColor {
    pub color: String,
}

pub const SPEC: Spec = Spec {
    name: "background_color",
    params: &[Param::Custom(r"[\w]+")],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(BackgroundColor { color: args.raw(0)?.to_string() })))
}

impl PixelFilter for BackgroundColor {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor: a canvas of the colour, the image merged over it at (0, 0). The result is RGBA
    /// (thumbor's `paste` turns both images RGBA); an unknown colour is thumbor's 500.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let rgba = canvas_color(&self.color, &bitmap)?;
        let mut canvas = Bitmap::filled(bitmap.width, bitmap.height, Channels::Rgba, &rgba);
        composite(&mut canvas, &bitmap, 0, 0);
        Ok(canvas)
    }
}

/// The colour of thumbor's `engine.gen_image(size, color)` canvas, as `fill()` and
/// `background_color()` call it: `transparent` is (0, 0, 0, 0), `auto` the image's mean colour,
/// anything else a PIL colour (retried with `#`); an unknown one is thumbor's 500 (PIL's
/// ValueError escapes the filter).
pub(crate) fn canvas_color(text: &str, image: &Bitmap) -> Result<color::Rgba> {
    match text {
        "transparent" => Ok([0, 0, 0, 0]),
        "auto" => Ok(median_color(image)),
        other => {
            color::parse(other).ok_or_else(|| Error::new(ErrorKind::ThumborFails, format!("unknown colour `{other}`")))
        }
    }
}

/// `_fill.c` (thumbor's `get_median_color`): the mean of each colour channel over every pixel,
/// integer division, alpha ignored; opaque.
fn median_color(bitmap: &Bitmap) -> color::Rgba {
    let c = bitmap.channels.count();
    let mut sums = [0u64; 3];
    for p in bitmap.pixels.chunks_exact(c) {
        for (sum, &v) in sums.iter_mut().zip(p) {
            *sum += u64::from(v);
        }
    }
    let area = (bitmap.pixels.len() / c).max(1) as u64;
    let [r, g, b] = sums.map(|s| (s / area) as u8);
    [r, g, b, 255]
}

/// `ADJUST_COLOR_DOUBLE`: clamp to 0..=255, then C's truncation toward zero.
fn adjust(v: f64) -> u8 {
    if v > 255.0 {
        255
    } else if v < 0.0 {
        0
    } else {
        v as u8
    }
}

/// The overlapping rows of `base` and `overlay` placed at (`x`, `y`): for each row, the base
/// row's byte range, the overlay row's byte range, in RGBA pixels.
fn overlap(base: &Bitmap, overlay: &Bitmap, x: i64, y: i64) -> impl Iterator<Item = (usize, usize, usize)> {
    let (bw, bh) = (i64::from(base.width), i64::from(base.height));
    let (ow, oh) = (i64::from(overlay.width), i64::from(overlay.height));
    let (x0, x1) = (x.max(0), (x + ow).min(bw));
    let (y0, y1) = (y.max(0), (y + oh).min(bh));
    let width = if x1 > x0 { (x1 - x0) as usize } else { 0 };
    let rows = if y1 > y0 && width > 0 { y0..y1 } else { 0..0 };
    rows.map(move |by| {
        let base_start = (by * bw + x0) as usize * 4;
        let overlay_start = ((by - y) * ow + (x0 - x)) as usize * 4;
        (base_start, overlay_start, width * 4)
    })
}

/// Both images as RGBA, as thumbor's `paste` makes them: `base` converted in place, the overlay
/// borrowed when it already is.
fn rgba_pair<'a>(base: &mut Bitmap, overlay: &'a Bitmap) -> std::borrow::Cow<'a, Bitmap> {
    if base.channels != Channels::Rgba {
        *base = base.to_rgba();
    }
    if overlay.channels == Channels::Rgba {
        std::borrow::Cow::Borrowed(overlay)
    } else {
        std::borrow::Cow::Owned(overlay.to_rgba())
    }
}

/// thumbor's `engine.paste(other, (x, y), merge=True)`: both images made RGBA, then
/// `_composite.c`'s "over" with its exact double arithmetic (`base` becomes RGBA).
pub(crate) fn composite(base: &mut Bitmap, overlay: &Bitmap, x: i64, y: i64) {
    let overlay = rgba_pair(base, overlay);
    let rows: Vec<_> = overlap(base, &overlay, x, y).collect();
    for (b, o, len) in rows {
        let dst = &mut base.pixels[b..b + len];
        let src = &overlay.pixels[o..o + len];
        for (p1, p2) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            // Transparencies, as the C code names them: 255 - alpha.
            let a1 = f64::from(255 - p1[3]);
            let a2 = f64::from(255 - p2[3]);
            let both = (a2 / 255.0) * (a1 / 255.0);
            let alpha = 255.0 * both;
            let delta = 1.0 - both;
            let delta = if delta <= 1.0e-12 { 1.0 } else { 1.0 / delta };
            for c in 0..3 {
                let (c1, c2) = (f64::from(p1[c]), f64::from(p2[c]));
                let v = ((1.0 - (a2 / 255.0)) * c2) + ((1.0 - (a1 / 255.0)) * c1 * (a2 / 255.0));
                p1[c] = adjust(delta * v);
            }
            p1[3] = adjust(255.0 - alpha);
        }
    }
}

/// thumbor's `engine.paste(other, (x, y), merge=False)`: PIL's `paste` without a mask, which
/// replaces the pixels, alpha included (`base` becomes RGBA).
pub(crate) fn paste(base: &mut Bitmap, overlay: &Bitmap, x: i64, y: i64) {
    let overlay = rgba_pair(base, overlay);
    let rows: Vec<_> = overlap(base, &overlay, x, y).collect();
    for (b, o, len) in rows {
        base.pixels[b..b + len].copy_from_slice(&overlay.pixels[o..o + len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;
    use crate::filters::Assets;
    use std::sync::LazyLock;

    fn ctx() -> PostContext<'static> {
        static ASSETS: LazyLock<Assets> = LazyLock::new(Assets::default);
        static IMAGE: LazyLock<ImageConfig> = LazyLock::new(ImageConfig::default);
        PostContext { box_width: None, box_height: None, assets: &ASSETS, image: &IMAGE }
    }

    fn px(b: &Bitmap, x: u32, y: u32) -> Vec<u8> {
        let c = b.channels.count();
        let i = (y * b.width + x) as usize * c;
        b.pixels[i..i + c].to_vec()
    }

    /// Expected values: `_composite.apply('RGBA', base, 1, 1, over, 1, 1, 0, 0)` from thumbor 7.8.
    #[test]
    fn composite_matches_the_c_extension() {
        let cases: &[([u8; 4], [u8; 4], [u8; 4])] = &[
            ([10, 20, 30, 255], [200, 100, 50, 255], [200, 100, 50, 255]),
            ([10, 20, 30, 255], [200, 100, 50, 128], [105, 60, 40, 255]),
            ([10, 20, 30, 0], [200, 100, 50, 128], [200, 100, 50, 128]),
            ([10, 20, 30, 100], [200, 100, 50, 100], [128, 69, 42, 160]),
            ([10, 20, 30, 0], [200, 100, 50, 0], [0, 0, 0, 0]),
            ([255, 255, 255, 77], [0, 0, 255, 201], [19, 19, 255, 217]),
        ];
        for (base, over, expected) in cases {
            let mut b = Bitmap::filled(1, 1, Channels::Rgba, base);
            composite(&mut b, &Bitmap::filled(1, 1, Channels::Rgba, over), 0, 0);
            assert_eq!(&b.pixels[..], expected, "{base:?} under {over:?}");
        }
    }

    #[test]
    fn paste_positions_clip_like_pil() {
        let mut base = Bitmap::filled(4, 3, Channels::Rgb, &[0, 0, 0]);
        let over = Bitmap::filled(2, 2, Channels::Rgba, &[9, 9, 9, 7]);
        paste(&mut base, &over, 3, -1);
        assert_eq!(base.channels, Channels::Rgba);
        assert_eq!(px(&base, 3, 0), [9, 9, 9, 7]);
        assert_eq!(px(&base, 3, 1), [0, 0, 0, 255]);
        assert_eq!(px(&base, 2, 0), [0, 0, 0, 255]);
        let before = base.clone();
        paste(&mut base, &over, 4, 0);
        paste(&mut base, &over, -2, 0);
        paste(&mut base, &over, 0, 3);
        composite(&mut base, &over, -5, -5);
        assert_eq!(base, before, "outside the image: nothing changes");
    }

    #[test]
    fn flattens_onto_the_colour() {
        // thumbor 7.8 (PIL canvas + `_composite.apply`): blue under (255,0,0,128) and under a
        // transparent pixel; an 8-digit hex keeps its alpha.
        let img = Bitmap { width: 2, height: 1, channels: Channels::Rgba, pixels: vec![255, 0, 0, 128, 0, 0, 0, 0] };
        let out = BackgroundColor { color: "blue".into() }.apply(img.clone(), &ctx()).unwrap();
        assert_eq!(out.pixels, vec![128, 0, 127, 255, 0, 0, 255, 255]);
        let out = BackgroundColor { color: "00ff0080".into() }.apply(img, &ctx()).unwrap();
        assert_eq!(out.pixels, vec![170, 84, 0, 191, 0, 255, 0, 128]);
        let rgb = Bitmap::filled(2, 2, Channels::Rgb, &[1, 2, 3]);
        let out = BackgroundColor { color: "fff".into() }.apply(rgb, &ctx()).unwrap();
        assert!(out.pixels.chunks(4).all(|p| p == [1, 2, 3, 255]));
    }

    #[test]
    fn auto_and_transparent_as_thumbors_gen_image() {
        // thumbor 7.8 on a 2x1 image, opaque blue and transparent yellow: `auto` is the mean
        // (127, 127, 127), `transparent` leaves the transparent pixel at (0, 0, 0, 0).
        let img =
            Bitmap { width: 2, height: 1, channels: Channels::Rgba, pixels: vec![0, 0, 255, 255, 255, 255, 0, 0] };
        let out = BackgroundColor { color: "auto".into() }.apply(img.clone(), &ctx()).unwrap();
        assert_eq!(out.pixels, vec![0, 0, 255, 255, 127, 127, 127, 255]);
        let out = BackgroundColor { color: "transparent".into() }.apply(img, &ctx()).unwrap();
        assert_eq!(out.pixels, vec![0, 0, 255, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn unknown_colour_is_thumbors_500() {
        // `blur` is fill()'s only; the keywords are case-sensitive (thumbor 7.8: 500 for all).
        for color in ["notacolor", "blur", "Transparent", "AUTO"] {
            let img = Bitmap::filled(1, 1, Channels::Rgb, &[0; 3]);
            let err = BackgroundColor { color: color.into() }.apply(img, &ctx()).unwrap_err();
            assert_eq!(err.status(), 500, "{color}");
        }
    }
}
