//! `proportion(p)`: scales the result by p (0 < p <= 1; other values are ignored).

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;
use crate::geometry::Size;
use crate::imaging::resize::{self, RectF};

/// The arguments of one `proportion()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Proportion {
    pub value: f64,
}

pub const SPEC: Spec =
    Spec { name: "proportion", params: &[Param::DecimalNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Proportion { value: args.float(0)? })))
}

impl Proportion {
    /// The size thumbor resizes to: `size * p` as floats, truncated by PIL (`int()`); `None`
    /// when p is outside (0, 1] or a side would fall under one pixel.
    pub fn target(&self, size: Size) -> Option<Size> {
        let p = self.value;
        if p <= 0.0 || p > 1.0 || p.is_nan() {
            return None;
        }
        let (w, h) = (f64::from(size.width) * p, f64::from(size.height) * p);
        if w < 1.0 || h < 1.0 {
            return None;
        }
        Some(Size::new(w as u32, h as u32))
    }
}

impl PixelFilter for Proportion {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Resample the frame to [`Proportion::target`] (Lanczos3, as thumbor's PIL engine).
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        match self.target(bitmap.size()) {
            Some(target) if target != bitmap.size() => resize::resize(&bitmap, RectF::full(bitmap.size()), target),
            _ => Ok(bitmap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::config::ImageConfig;
    use crate::filters::Assets;

    fn target(p: f64, w: u32, h: u32) -> Option<(u32, u32)> {
        Proportion { value: p }.target(Size::new(w, h)).map(|s| (s.width, s.height))
    }

    #[test]
    fn sizes_truncate_like_thumbor() {
        // thumbor 7.8: 300x200 with 0.5 -> 150x100, 0.01 -> 3x2; 225x300 with 0.5 -> 112x150.
        assert_eq!(target(0.5, 300, 200), Some((150, 100)));
        assert_eq!(target(0.01, 300, 200), Some((3, 2)));
        assert_eq!(target(0.5, 225, 300), Some((112, 150)));
        // 100 * 0.29 == 28.999999999999996 in floating point: PIL's int() gives 28.
        assert_eq!(target(0.29, 100, 100), Some((28, 28)));
        assert_eq!(target(1.0, 300, 200), Some((300, 200)));
    }

    #[test]
    fn out_of_range_is_ignored() {
        for p in [0.0, -0.5, 1.5, 1.0000001] {
            assert_eq!(target(p, 300, 200), None, "{p}");
        }
        // A side under one pixel: thumbor returns without resizing.
        assert_eq!(target(0.004, 300, 200), None);
        assert_eq!(target(0.004, 300, 250), Some((1, 1)));
        assert_eq!(target(0.5, 1, 200), None);
    }

    #[test]
    fn resizes_the_frame() {
        let assets = Assets::default();
        let image = ImageConfig::default();
        let ctx = PostContext { box_width: None, box_height: None, assets: &assets, image: &image };
        let img = Bitmap::filled(30, 20, Channels::Rgba, &[9, 8, 7, 255]);
        let out = Proportion { value: 0.5 }.apply(img.clone(), &ctx).unwrap();
        assert_eq!(out.size(), Size::new(15, 10));
        assert!(out.pixels.chunks(4).all(|p| p == [9, 8, 7, 255]));
        assert_eq!(Proportion { value: 2.0 }.apply(img.clone(), &ctx).unwrap(), img);
    }
}
