//! `trim/`: the bounding box of what differs from a corner pixel, ported line by line from
//! thumbor's `_bounding_box.c` (quirks included: rows are scanned from the left for the first
//! differing pixel and from the right only past it).

use crate::codec::Bitmap;
use crate::geometry::Rect;
use crate::url::{Trim, TrimPos};

/// The rectangle to keep, or `None` when trimming would leave nothing (thumbor then ignores it).
pub fn bounding_box(bitmap: &Bitmap, trim: &Trim) -> Option<Rect> {
    let (w, h) = (bitmap.width as i64, bitmap.height as i64);
    if w == 0 || h == 0 {
        return None;
    }
    let stride = bitmap.channels.count();
    let px = |x: i64, y: i64| {
        let i = ((y * w + x) as usize) * stride;
        &bitmap.pixels[i..i + stride]
    };
    let reference: Vec<u8> = match trim.pos {
        TrimPos::TopLeft => px(0, 0).to_vec(),
        _ => px(w - 1, h - 1).to_vec(),
    };
    let tolerance = f64::from(trim.tolerance);
    let differs = |x: i64, y: i64| {
        let sum: i64 = px(x, y).iter().zip(&reference).map(|(a, b)| (i64::from(*a) - i64::from(*b)).pow(2)).sum();
        (sum as f64).sqrt() > tolerance
    };
    let (mut left, mut top, mut right, mut bottom) = (w, h, 0i64, 0i64);
    for y in 0..h {
        let mut x = 0;
        while x < w {
            if differs(x, y) {
                left = left.min(x);
                top = top.min(y);
                bottom = y;
                break;
            }
            x += 1;
        }
        let min_right = x.max(right);
        let mut xi = w - 1;
        while xi > min_right {
            if differs(xi, y) {
                right = right.max(xi);
                break;
            }
            xi -= 1;
        }
    }
    if right < left || bottom < top {
        return None;
    }
    Some(Rect { left: left as u32, top: top as u32, right: (right + 1) as u32, bottom: (bottom + 1) as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;

    fn bordered() -> Bitmap {
        // 10x8 white with a red 4x3 block at (3, 2).
        let mut b = Bitmap::filled(10, 8, Channels::Rgb, &[255, 255, 255]);
        for y in 2..5 {
            for x in 3..7 {
                let i = (y * 10 + x) * 3;
                b.pixels[i..i + 3].copy_from_slice(&[255, 0, 0]);
            }
        }
        b
    }

    #[test]
    fn finds_the_content() {
        let r = bounding_box(&bordered(), &Trim::default()).unwrap();
        assert_eq!(r, Rect { left: 3, top: 2, right: 7, bottom: 5 });
    }

    #[test]
    fn tolerance_and_uniform_images() {
        let t = Trim { pos: TrimPos::TopLeft, tolerance: 442 };
        assert_eq!(bounding_box(&bordered(), &t), None);
        let flat = Bitmap::filled(5, 5, Channels::Rgb, &[1, 2, 3]);
        assert_eq!(bounding_box(&flat, &Trim::default()), None);
    }

    #[test]
    fn single_pixel_column_quirk_is_kept() {
        // thumbor never extends `right` to a pixel found by the left scan: a 1-pixel-wide
        // subject gives an empty box and the trim is ignored.
        let mut b = Bitmap::filled(10, 4, Channels::Rgb, &[255, 255, 255]);
        b.pixels[(10 + 5) * 3] = 0;
        assert_eq!(bounding_box(&b, &Trim::default()), None);
    }

    #[test]
    fn other_positions_use_bottom_right() {
        let mut b = Bitmap::filled(6, 6, Channels::Rgb, &[0, 0, 0]);
        let last = b.pixels.len() - 3;
        b.pixels[last..].copy_from_slice(&[9, 9, 9]);
        let t = Trim { pos: TrimPos::Other("50".into()), tolerance: 0 };
        // Reference is the odd bottom-right pixel: everything else differs.
        assert_eq!(bounding_box(&b, &t), Some(Rect { left: 0, top: 0, right: 6, bottom: 6 }));
    }
}
