//! `debug/`: thumbor draws the focal points as 1-pixel white rectangles instead of transforming.

use crate::codec::Bitmap;
use crate::geometry::FocalPoint;

/// Draw each focal point (points of size 1 become 10x10 boxes), clipped to the image.
pub fn draw_focal_points(bitmap: &mut Bitmap, points: &[FocalPoint]) {
    for p in points {
        let w = if p.width <= 1 { 10 } else { p.width };
        let h = if p.height <= 1 { 10 } else { p.height };
        let (x0, y0) = (p.x - w.div_euclid(2), p.y - h.div_euclid(2));
        outline(bitmap, x0, y0, x0 + w, y0 + h);
    }
}

/// PIL's `ImageDraw.rectangle([x0, y0, x1, y1])` outline, both corners inclusive.
fn outline(bitmap: &mut Bitmap, x0: i64, y0: i64, x1: i64, y1: i64) {
    let c = bitmap.channels.count();
    let (w, h) = (i64::from(bitmap.width), i64::from(bitmap.height));
    let mut set = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            let i = ((y * w + x) as usize) * c;
            bitmap.pixels[i..i + c].fill(255);
        }
    };
    for x in x0..=x1 {
        set(x, y0);
        set(x, y1);
    }
    for y in y0..=y1 {
        set(x0, y);
        set(x1, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::geometry::{FocalOrigin, FocalPoint};

    #[test]
    fn draws_a_box_around_each_point() {
        let mut b = Bitmap::filled(40, 40, Channels::Rgb, &[0, 0, 0]);
        let p = FocalPoint::from_square(10, 10, 10, 10, FocalOrigin::Explicit);
        draw_focal_points(&mut b, &[p]);
        let white = |x: u32, y: u32| b.pixels[((y * 40 + x) * 3) as usize] == 255;
        assert!(white(10, 10) && white(20, 20) && white(15, 10));
        assert!(!white(15, 15));
    }
}
