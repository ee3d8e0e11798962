//! Lanczos3 resampling with fast_image_resize (SIMD), from a fractional source rectangle.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{PixelType, ResizeOptions, Resizer};

use crate::codec::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Result};
use crate::geometry::Size;

/// A rectangle in pixels of a bitmap, with fractional edges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RectF {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl RectF {
    pub fn full(size: Size) -> Self {
        RectF { left: 0.0, top: 0.0, width: f64::from(size.width), height: f64::from(size.height) }
    }

    /// The same rectangle in a bitmap `sx`/`sy` times as large, kept inside `bounds`.
    pub fn scaled(self, sx: f64, sy: f64, bounds: Size) -> Self {
        let left = (self.left * sx).clamp(0.0, f64::from(bounds.width));
        let top = (self.top * sy).clamp(0.0, f64::from(bounds.height));
        RectF {
            left,
            top,
            width: (self.width * sx).min(f64::from(bounds.width) - left).max(1e-3),
            height: (self.height * sy).min(f64::from(bounds.height) - top).max(1e-3),
        }
    }

    /// Integer edges when the rectangle sits exactly on pixel boundaries.
    pub fn as_integer(&self) -> Option<(u32, u32, u32, u32)> {
        let whole = |v: f64| (v.fract() == 0.0 && v >= 0.0).then_some(v as u32);
        Some((whole(self.left)?, whole(self.top)?, whole(self.width)?, whole(self.height)?))
    }
}

thread_local! {
    /// One resizer per render thread: its scratch buffers are reused across images.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Scratch a render thread's resizer keeps between images. Its alpha buffer has the source's
/// size: kept after a 64 MP image, it held 244 MiB per render thread for the life of the process.
const RESIZER_KEEP_BYTES: usize = 16 * 1024 * 1024;

/// fast_image_resize refusing a buffer or a rectangle is a bug of ours: the sizes were planned.
impl From<fast_image_resize::ImageBufferError> for Error {
    fn from(e: fast_image_resize::ImageBufferError) -> Self {
        Error::new(ErrorKind::Internal, "resize buffer").with_source(e)
    }
}

impl From<fast_image_resize::ResizeError> for Error {
    fn from(e: fast_image_resize::ResizeError) -> Self {
        Error::new(ErrorKind::Internal, "resize").with_source(e)
    }
}

/// Resample `rect` of `src` to `out` pixels. An exact, same-size rectangle is a plain copy.
pub fn resize(src: &Bitmap, rect: RectF, out: Size) -> Result<Bitmap> {
    if out.width == 0 || out.height == 0 {
        return Err(Error::new(ErrorKind::Internal, "resize to an empty size"));
    }
    if let Some((l, t, w, h)) = rect.as_integer() {
        if w == out.width && h == out.height && l + w <= src.width && t + h <= src.height {
            return Ok(src.crop(l, t, w, h));
        }
    }
    let pixel_type = match src.channels {
        Channels::Rgb => PixelType::U8x3,
        Channels::Rgba => PixelType::U8x4,
    };
    let src_image = ImageRef::new(src.width, src.height, &src.pixels, pixel_type)?;
    let mut dst = Image::new(out.width, out.height, pixel_type);
    let options = ResizeOptions::new().crop(rect.left, rect.top, rect.width, rect.height);
    RESIZER.with(|r| {
        let mut resizer = r.borrow_mut();
        let resized = resizer.resize(&src_image, &mut dst, &options);
        if resizer.size_of_internal_buffers() > RESIZER_KEEP_BYTES {
            resizer.reset_internal_buffers();
        }
        resized
    })?;
    Ok(Bitmap { width: out.width, height: out.height, channels: src.channels, pixels: dst.into_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_and_copies() {
        let src = Bitmap::filled(100, 50, Channels::Rgb, &[10, 20, 30]);
        let out = resize(&src, RectF::full(src.size()), Size::new(10, 5)).unwrap();
        assert_eq!((out.width, out.height), (10, 5));
        assert!(out.pixels.chunks(3).all(|p| p == [10, 20, 30]));
        let copy = resize(&src, RectF { left: 5.0, top: 5.0, width: 20.0, height: 10.0 }, Size::new(20, 10)).unwrap();
        assert_eq!(copy.size(), Size::new(20, 10));
        let rgba = Bitmap::filled(8, 8, Channels::Rgba, &[255, 0, 0, 0]);
        let up = resize(&rgba, RectF::full(rgba.size()), Size::new(16, 3)).unwrap();
        assert_eq!(up.size(), Size::new(16, 3));
    }
}
