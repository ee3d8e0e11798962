//! `fill(color[,fill_transparent])`: pads the image to the requested box with a colour, `auto` (the median colour), `blur` (a blurred copy) or `transparent`.

use super::background_color::{canvas_color, composite, paste};
use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Result};
use crate::geometry::Size;
use crate::imaging::resize::{self, RectF};

/// The arguments of one `fill()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub color: String,
    pub fill_transparent: bool,
}

pub const SPEC: Spec = Spec {
    name: "fill",
    params: &[Param::Custom(r"[\w]+"), Param::Boolean],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Fill {
        color: args.raw(0)?.to_string(),
        fill_transparent: args.boolean(1).unwrap_or(false),
    })))
}

/// thumbor's `fill(blur)` blurs with `apply_blur(..., 50)`: radius 50, sigma = radius.
const BLUR_RADIUS: u32 = 50;

impl Fill {
    /// `fill(blur)`: the backdrop is a blurred copy of the image.
    pub fn blurs(&self) -> bool {
        self.color == "blur"
    }
}

impl PixelFilter for Fill {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor: a canvas of the box's size (the colour, or the blurred image stretched to it),
    /// the image centred on it (`(box - size) // 2`), pasted as is or, with `fill_transparent`,
    /// merged over it. The result is RGBA, like thumbor's.
    fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap> {
        let target = target_size(bitmap.size(), ctx)?;
        // Named colours are checked before the box, like PIL's `Image.new`; the box is checked
        // before anything of its size is allocated.
        let color = match self.color.as_str() {
            "blur" => None,
            other => Some(canvas_color(other, &bitmap)?),
        };
        crate::limits::check_output(target, ctx.image)?;
        let mut canvas = match color {
            Some(rgba) => Bitmap::filled(target.width, target.height, Channels::Rgba, &rgba),
            None => blurred_backdrop(&bitmap, target, ctx)?,
        };
        let x = (i64::from(target.width) - i64::from(bitmap.width)).div_euclid(2);
        let y = (i64::from(target.height) - i64::from(bitmap.height)).div_euclid(2);
        if self.fill_transparent {
            composite(&mut canvas, &bitmap, x, y);
        } else {
            paste(&mut canvas, &bitmap, x, y);
        }
        Ok(canvas)
    }

    /// `fill(blur)`: blur(50) of the image.
    fn taps_per_pixel(&self) -> u64 {
        if self.blurs() {
            2 * (2 * u64::from(BLUR_RADIUS) + 1)
        } else {
            1
        }
    }

    /// A canvas of the box, and (blur) the backdrop and its blurred copies.
    fn scratch_bytes_per_pixel(&self) -> u64 {
        if self.blurs() {
            16
        } else {
            4
        }
    }

    fn grows_output(&self) -> bool {
        true
    }
}

/// The box to pad to: thumbor's `request.width`/`height` after fit-in, 0 meaning the image's
/// own size. A side left at `orig` (no fit-in resize happened) reaches PIL as the string
/// "orig" and thumbor fails with 500; so does Thumbora.
fn target_size(image: Size, ctx: &PostContext) -> Result<Size> {
    let side = |requested: Option<u32>, own: u32| match requested {
        Some(0) => Ok(own),
        Some(n) => Ok(n),
        None => Err(Error::new(ErrorKind::ThumborFails, "fill() with an `orig` side: thumbor fails on it")),
    };
    Ok(Size::new(side(ctx.box_width, image.width)?, side(ctx.box_height, image.height)?))
}

/// `fill(blur)`'s canvas: the image merged onto a transparent canvas of its size, blurred
/// (the `blur()` filter's pixels, radius 50), then stretched to the box.
fn blurred_backdrop(bitmap: &Bitmap, target: Size, ctx: &PostContext) -> Result<Bitmap> {
    let mut backdrop = Bitmap::filled(bitmap.width, bitmap.height, Channels::Rgba, &[0, 0, 0, 0]);
    composite(&mut backdrop, bitmap, 0, 0);
    let blur = super::blur::Blur { radius: BLUR_RADIUS, sigma: f64::from(BLUR_RADIUS) };
    let blurred = blur.apply(backdrop, ctx)?;
    resize::resize(&blurred, RectF::full(blurred.size()), target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;
    use crate::filters::Assets;

    fn fill(color: &str, fill_transparent: bool, img: Bitmap, boxed: (Option<u32>, Option<u32>)) -> Result<Bitmap> {
        let assets = Assets::default();
        let image = ImageConfig::default();
        let ctx = PostContext { box_width: boxed.0, box_height: boxed.1, assets: &assets, image: &image };
        Fill { color: color.into(), fill_transparent }.apply(img, &ctx)
    }

    fn px(b: &Bitmap, x: u32, y: u32) -> [u8; 4] {
        let i = (y * b.width + x) as usize * 4;
        b.pixels[i..i + 4].try_into().unwrap()
    }

    /// A 3x2 RGBA image: opaque, half-transparent and transparent pixels.
    fn sample() -> Bitmap {
        #[rustfmt::skip]
        let pixels = vec![
            10, 20, 30, 255,   200, 100, 50, 128,   0, 0, 0, 0,
            255, 255, 255, 255,   1, 2, 3, 255,   90, 80, 70, 10,
        ];
        Bitmap { width: 3, height: 2, channels: Channels::Rgba, pixels }
    }

    #[test]
    fn pads_centred_with_floor_division() {
        // thumbor 7.8's fill filter run on sample() with a 6x5 box: the image at ((6-3)//2, (5-2)//2).
        let out = fill("red", false, sample(), (Some(6), Some(5))).unwrap();
        assert_eq!(out.size(), Size::new(6, 5));
        assert_eq!(out.channels, Channels::Rgba);
        assert_eq!(px(&out, 0, 0), [255, 0, 0, 255]);
        assert_eq!(px(&out, 5, 4), [255, 0, 0, 255]);
        assert_eq!(px(&out, 0, 1), [255, 0, 0, 255]);
        assert_eq!(px(&out, 1, 3), [255, 0, 0, 255]);
        assert_eq!(px(&out, 1, 1), [10, 20, 30, 255]);
        // merge=False: PIL's paste keeps the image's own alpha, transparency included.
        assert_eq!(px(&out, 2, 1), [200, 100, 50, 128]);
        assert_eq!(px(&out, 3, 1), [0, 0, 0, 0]);
        assert_eq!(px(&out, 3, 2), [90, 80, 70, 10]);
    }

    #[test]
    fn fill_transparent_merges_over_the_colour() {
        // thumbor 7.8's fill filter run on sample() with a 5x2 box: merged with `_composite.apply`.
        let out = fill("00ff00", true, sample(), (Some(5), Some(2))).unwrap();
        assert_eq!(px(&out, 0, 0), [0, 255, 0, 255]);
        assert_eq!(px(&out, 1, 0), [10, 20, 30, 255]);
        assert_eq!(px(&out, 2, 0), [100, 177, 25, 255]);
        assert_eq!(px(&out, 3, 0), [0, 255, 0, 255]);
        assert_eq!(px(&out, 3, 1), [3, 248, 2, 255]);
    }

    #[test]
    fn zero_box_side_is_the_image_side_and_a_smaller_box_crops() {
        let out = fill("blue", false, sample(), (Some(0), Some(4))).unwrap();
        assert_eq!(out.size(), Size::new(3, 4));
        assert_eq!(px(&out, 0, 1), [10, 20, 30, 255]);
        // Box smaller than the image: (1 - 3) // 2 = -1, the image overhangs on the left.
        let out = fill("blue", false, sample(), (Some(1), Some(2))).unwrap();
        assert_eq!(out.size(), Size::new(1, 2));
        assert_eq!(px(&out, 0, 0), [200, 100, 50, 128]);
    }

    #[test]
    fn auto_is_the_mean_colour_and_transparent_is_zero() {
        // `_fill.apply('RGBA', sample)` = (92, 76, 68): sums / 6, alpha ignored.
        let out = fill("auto", false, sample(), (Some(3), Some(4))).unwrap();
        assert_eq!(px(&out, 0, 0), [92, 76, 68, 255]);
        let out =
            fill("transparent", false, Bitmap::filled(1, 1, Channels::Rgb, &[5, 6, 7]), (Some(3), Some(1))).unwrap();
        assert_eq!(out.pixels, vec![0, 0, 0, 0, 5, 6, 7, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn blur_stretches_a_copy_to_the_box() {
        // The blurred backdrop of a uniform image keeps its colour; thumbor's blur truncates the
        // opaque alpha to 254 (`apply_blur('RGBA', ...)`), so only the colour is exact here. The
        // blur's own pixels are the blur() filter's to match.
        let img = Bitmap::filled(4, 2, Channels::Rgb, &[40, 80, 120]);
        let out = fill("blur", false, img, (Some(8), Some(8))).unwrap();
        assert_eq!(out.size(), Size::new(8, 8));
        assert!(out.pixels.chunks(4).all(|p| p[..3] == [40, 80, 120] && p[3] >= 254));
        assert_eq!(px(&out, 2, 3), [40, 80, 120, 255], "the image itself, pasted in the middle");
    }

    #[test]
    fn failures_like_thumbor() {
        let img = || Bitmap::filled(2, 2, Channels::Rgb, &[0; 3]);
        for color in ["notacolor", "Transparent", "Blur"] {
            assert_eq!(fill(color, false, img(), (Some(4), Some(4))).unwrap_err().status(), 500, "{color}");
        }
        assert_eq!(fill("red", false, img(), (None, Some(4))).unwrap_err().status(), 500);
        // A huge box is refused (400) before anything of its size is allocated.
        let err = fill("red", false, img(), (Some(4_000_000_000), Some(4_000_000_000))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert_eq!(fill("blur", false, img(), (Some(100_000), Some(2))).unwrap_err().kind(), ErrorKind::TooLarge);
    }
}
