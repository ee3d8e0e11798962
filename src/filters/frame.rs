//! `frame(url)`: meant to draw a nine-patch frame around the result; thumbor 7.8 only adds the
//! patch's padding as a white border, and so does Thumbora (why, below).
//!
//! What thumbor 7.8 actually does, and so what Thumbora does: it grows the image by the
//! padding the nine-patch declares, on an opaque white canvas, and draws nothing else. Its C
//! extension (`_nine_patch.c`, `unpack_bitmap`) takes the image mode from
//! `PyUnicode_AsUTF8String`, which returns a Python object rather than a `char *`; the
//! `strlen` of that object's header (a fresh reference count of 1) makes every bitmap one byte
//! per pixel whose only channel is alpha. So:
//! - the padding is read from the patch's RGBA bytes as if each byte were a pixel of a
//!   `width x height` image (only the first quarter of the buffer is looked at), a "black"
//!   marker being any byte equal to 255;
//! - the drawing step skips every channel (the only one is "alpha"): the patch never appears.
//!
//! thumbor 7.8 answers `frame(ninepatch.png)` on a 300x200 result with a 309x204 image, white
//! on the left, right and bottom, the picture untouched; this module reproduces that exactly.

use super::background_color::composite;
use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::{Bitmap, Channels};
use crate::error::{Error, ErrorKind, Fetched, Result};
use crate::geometry::Size;

/// The arguments of one `frame()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub url: String,
}

pub const SPEC: Spec =
    Spec { name: "frame", params: &[Param::String], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Frame { url: args.string(0)? })))
}

impl PixelFilter for Frame {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor's `on_image_ready`: the image merged onto a white canvas grown by the patch's
    /// padding (`handle_padding`); RGBA and opaque, like thumbor's.
    fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap> {
        let patch = load_patch(&self.url, ctx)?.to_rgba();
        let padding = padding(&patch);
        let size = Size::new(
            bitmap.width.saturating_add(padding.left).saturating_add(padding.right),
            bitmap.height.saturating_add(padding.top).saturating_add(padding.bottom),
        );
        crate::limits::check_output(size, ctx.image)?;
        let mut canvas = Bitmap::filled(size.width, size.height, Channels::Rgba, &[255, 255, 255, 255]);
        composite(&mut canvas, &bitmap, i64::from(padding.left), i64::from(padding.top));
        Ok(canvas)
    }

    fn asset_url(&self) -> Option<&str> {
        Some(&self.url)
    }
}

/// The patch's pixels, with thumbor's statuses: a missing frame image is 500 in thumbor (it
/// loads `None` and fails), so are bytes that are not an image. Refused sources (400), timeouts
/// (504) and other origin failures keep the loader's status, as for the main image.
fn load_patch(url: &str, ctx: &PostContext) -> Result<std::sync::Arc<Bitmap>> {
    let thumbor_500 = |e: Error| Error::new(ErrorKind::ThumborFails, format!("frame image {url}: {}", e.context()));
    if let Err(e) = ctx.assets.bytes(url) {
        return Err(e.fetch_failure(Fetched::Frame, ctx.assets.thumbor_statuses));
    }
    ctx.asset_bitmap(url).map_err(|e| if e.kind() == ErrorKind::UndecodableImage { thumbor_500(e) } else { e })
}

/// The padding `frame()` adds on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

/// `_nine_patch.get_padding` as it runs in thumbor 7.8: on the patch's RGBA bytes read as a
/// `width x height` image of one byte per pixel, the first and last 255s of the bottom row
/// (left, right) and of the right column (top, bottom), corners excluded; 0 where there are
/// none.
pub fn padding(patch: &Bitmap) -> Padding {
    debug_assert_eq!(patch.channels, Channels::Rgba);
    let (w, h) = (patch.width as usize, patch.height as usize);
    let marked = |x: usize, y: usize| patch.pixels.get(y * w + x) == Some(&255);
    let inner = |n: usize| 1..n.saturating_sub(1);
    let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let bottom_row = h.saturating_sub(1);
    let right_column = w.saturating_sub(1);
    Padding {
        left: inner(w).find(|&x| marked(x, bottom_row)).map_or(0, |x| to_u32(x - 1)),
        right: inner(w).rev().find(|&x| marked(x, bottom_row)).map_or(0, |x| to_u32(w - 2 - x)),
        top: inner(h).find(|&y| marked(right_column, y)).map_or(0, |y| to_u32(y - 1)),
        bottom: inner(h).rev().find(|&y| marked(right_column, y)).map_or(0, |y| to_u32(h - 2 - y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;
    use crate::filters::Assets;

    /// A 7x7 nine-patch drawn the Android way: stretch markers at column 3 and row 3 of the
    /// top/left border, content markers at columns 2..=4 (bottom row) and row 3 (right column),
    /// a red frame around a translucent blue middle.
    fn nine_patch() -> Bitmap {
        let mut b = Bitmap::filled(7, 7, Channels::Rgba, &[0, 0, 0, 0]);
        let mut set = |x: u32, y: u32, c: [u8; 4]| {
            let i = (y * 7 + x) as usize * 4;
            b.pixels[i..i + 4].copy_from_slice(&c);
        };
        for y in 1..6 {
            for x in 1..6 {
                let inner = (2..=4).contains(&x) && (2..=4).contains(&y);
                set(x, y, if inner { [0, 0, 255, 64] } else { [255, 0, 0, 255] });
            }
        }
        let black = [0, 0, 0, 255];
        set(3, 0, black);
        set(0, 3, black);
        for x in 2..=4 {
            set(x, 6, black);
        }
        set(6, 3, black);
        b
    }

    fn png(bitmap: &Bitmap) -> bytes::Bytes {
        let options = crate::codec::encode::EncodeOptions::new(crate::codec::Format::Png, 80);
        let frame = crate::codec::Frame { bitmap: bitmap.clone(), delay_ms: 0 };
        crate::codec::encode::encode(&[frame], &options).unwrap().into()
    }

    fn framed(asset: Result<bytes::Bytes>, img: Bitmap) -> Result<Bitmap> {
        let mut assets = Assets::default();
        assets.insert("h/np.png".into(), asset.map(crate::fetched::Source::unbudgeted));
        let image = ImageConfig::default();
        let ctx = PostContext { box_width: None, box_height: None, assets: &assets, image: &image };
        Frame { url: "h/np.png".into() }.apply(img, &ctx)
    }

    #[test]
    fn padding_is_read_from_bytes_like_thumbor() {
        // `_nine_patch.get_padding('RGBA', patch.tobytes(), 7, 7)` in thumbor 7.8: (0, 0, 0, 0)
        // here, where a correct reading of the markers would give (1, 2, 1, 2).
        assert_eq!(padding(&nine_patch()), Padding { left: 0, top: 0, right: 0, bottom: 0 });
        // Bytes equal to 255 at the flat positions thumbor reads: the bottom "row" is bytes
        // 42..49 of the buffer, the right "column" bytes 6, 13, ..., 41.
        let mut b = Bitmap::filled(7, 7, Channels::Rgba, &[0, 0, 0, 0]);
        for i in [44, 46, 13, 34] {
            b.pixels[i] = 255;
        }
        assert_eq!(padding(&b), Padding { left: 1, top: 0, right: 1, bottom: 1 });
        // An opaque image: every fourth byte is 255 (thumbor: (2, 0, 3, 0)).
        let opaque = Bitmap::filled(8, 8, Channels::Rgba, &[1, 2, 3, 255]);
        assert_eq!(padding(&opaque), Padding { left: 2, top: 0, right: 3, bottom: 0 });
        assert_eq!(
            padding(&Bitmap::filled(1, 1, Channels::Rgba, &[255; 4])),
            Padding { left: 0, top: 0, right: 0, bottom: 0 }
        );
    }

    #[test]
    fn grows_on_white_and_draws_nothing() {
        // thumbor 7.8's frame filter with an opaque 8x8 patch on a 4x3 RGBA image: 9x3, the
        // image at (2, 0) merged onto white (the translucent pixel (0, 0, 255, 100) gives
        // (155, 155, 255, 255)), the patch itself nowhere.
        let patch = Bitmap::filled(8, 8, Channels::Rgba, &[1, 2, 3, 255]);
        let mut img = Bitmap::filled(4, 3, Channels::Rgba, &[10, 20, 30, 255]);
        img.pixels[..4].copy_from_slice(&[0, 0, 255, 100]);
        let out = framed(Ok(png(&patch)), img).unwrap();
        assert_eq!(out.size(), Size::new(9, 3));
        let at = |x: u32, y: u32| out.pixels[(y * 9 + x) as usize * 4..][..4].to_vec();
        let white = [255, 255, 255, 255];
        assert_eq!(at(0, 0), white);
        assert_eq!(at(1, 2), white);
        assert_eq!(at(2, 0), [155, 155, 255, 255]);
        assert_eq!(at(3, 0), [10, 20, 30, 255]);
        assert_eq!(at(5, 2), [10, 20, 30, 255]);
        assert_eq!(at(6, 0), white);
        assert_eq!(at(8, 2), white);
    }

    #[test]
    fn failures_like_thumbor() {
        let img = || Bitmap::filled(4, 3, Channels::Rgb, &[1, 2, 3]);
        let fetch_error = |kind: ErrorKind| Err(Error::new(kind, "h/np.png"));
        assert_eq!(framed(fetch_error(ErrorKind::SourceNotFound), img()).unwrap_err().status(), 500);
        assert_eq!(framed(fetch_error(ErrorKind::SourceNotAllowed), img()).unwrap_err().status(), 400);
        assert_eq!(framed(Ok(bytes::Bytes::from_static(b"<html>")), img()).unwrap_err().status(), 500);
    }
}
