//! `smart/`: where the interesting part of an image is, without a model download. In the spirit
//! of libvips' attention crop: a saliency map from edges, saturated colours and skin tones, and
//! the window of the crop's size with the most saliency. Its centre becomes a focal point, which
//! thumbor's auto-crop then keeps in view.

use crate::codec::{Bitmap, Channels};
use crate::geometry::{FocalOrigin, FocalPoint, Rect, Size};
use crate::imaging::resize::{self, RectF};

/// Longest side of the analysed copy: saliency is coarse, so a small copy is enough and cheap.
const ANALYSIS_SIDE: u32 = 192;

/// The focal point for a crop of `window` pixels inside `within` (both in `bitmap` pixels), or
/// `None` when there is nothing to choose (the window covers the region, or the image is flat).
pub fn detect(bitmap: &Bitmap, within: Rect, window: Size) -> Option<FocalPoint> {
    if window.width >= within.width() && window.height >= within.height() {
        return None;
    }
    let region = RectF {
        left: f64::from(within.left),
        top: f64::from(within.top),
        width: f64::from(within.width()),
        height: f64::from(within.height()),
    };
    let scale = (f64::from(ANALYSIS_SIDE) / f64::from(within.width().max(within.height()))).min(1.0);
    let small_size =
        Size::new(((region.width * scale).round() as u32).max(1), ((region.height * scale).round() as u32).max(1));
    let small = resize::resize(bitmap, region, small_size).ok()?;
    let map = saliency(&small);
    let win_w = ((f64::from(window.width) * scale).round() as usize).clamp(1, small.width as usize);
    let win_h = ((f64::from(window.height) * scale).round() as usize).clamp(1, small.height as usize);
    let (x, y) = best_window(&map, small.width as usize, small.height as usize, win_w, win_h)?;
    // Back to `bitmap` pixels: the window's box, centred where the analysis found it.
    let left = f64::from(within.left) + x as f64 / scale;
    let top = f64::from(within.top) + y as f64 / scale;
    Some(FocalPoint::from_square(
        left.round() as i64,
        top.round() as i64,
        i64::from(window.width),
        i64::from(window.height),
        FocalOrigin::Detection("detection".into()),
    ))
}

/// Per-pixel interest: luminance edges, plus saturated colours and skin tones, zero where
/// transparent.
fn saliency(b: &Bitmap) -> Vec<f32> {
    let (w, h) = (b.width as usize, b.height as usize);
    let c = b.channels.count();
    let px = |x: usize, y: usize| &b.pixels[(y * w + x) * c..(y * w + x) * c + c];
    let luma: Vec<f32> = (0..w * h)
        .map(|i| {
            let p = px(i % w, i / w);
            0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
        })
        .collect();
    let mut map = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let l = |dx: isize, dy: isize| {
                let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                luma[yy * w + xx]
            };
            // Sobel gradient magnitude.
            let gx = l(1, -1) + 2.0 * l(1, 0) + l(1, 1) - l(-1, -1) - 2.0 * l(-1, 0) - l(-1, 1);
            let gy = l(-1, 1) + 2.0 * l(0, 1) + l(1, 1) - l(-1, -1) - 2.0 * l(0, -1) - l(1, -1);
            let edge = (gx * gx + gy * gy).sqrt() / 4.0;
            let p = px(x, y);
            let (r, g, bl) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            let max = r.max(g).max(bl);
            let min = r.min(g).min(bl);
            let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
            let saturated = if saturation > 0.4 && max > 60.0 { 60.0 * saturation } else { 0.0 };
            let skin = skin_score(r, g, bl) * 80.0;
            let alpha = if b.channels == Channels::Rgba { f32::from(p[3]) / 255.0 } else { 1.0 };
            map[y * w + x] = (edge + saturated + skin) * alpha;
        }
    }
    map
}

/// How close a colour is to a skin tone (0..1), by the direction of its RGB vector.
fn skin_score(r: f32, g: f32, b: f32) -> f32 {
    const SKIN: [f32; 3] = [0.78, 0.57, 0.44];
    const SKIN_NORM: f32 = 1.061_555; // |SKIN|
    let norm = (r * r + g * g + b * b).sqrt();
    if norm < 60.0 {
        return 0.0;
    }
    let cos = (r * SKIN[0] + g * SKIN[1] + b * SKIN[2]) / (norm * SKIN_NORM);
    ((cos - 0.985) / 0.015).clamp(0.0, 1.0)
}

/// Top-left corner of the `win_w x win_h` window with the largest sum (summed-area table);
/// `None` when the map is flat (every window alike).
fn best_window(map: &[f32], w: usize, h: usize, win_w: usize, win_h: usize) -> Option<(usize, usize)> {
    let mut sat = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += f64::from(map[y * w + x]);
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let sum = |x: usize, y: usize| {
        sat[(y + win_h) * (w + 1) + x + win_w] - sat[y * (w + 1) + x + win_w] - sat[(y + win_h) * (w + 1) + x]
            + sat[y * (w + 1) + x]
    };
    let (mut best, mut worst, mut at) = (f64::MIN, f64::MAX, (0, 0));
    for y in 0..=h - win_h {
        for x in 0..=w - win_w {
            let s = sum(x, y);
            if s > best {
                best = s;
                at = (x, y);
            }
            worst = worst.min(s);
        }
    }
    (best - worst > 1e-6 * best.abs().max(1.0)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grey image with a busy, colourful patch whose top-left corner is `(px, py)`.
    fn with_subject(w: u32, h: u32, px: u32, py: u32, size: u32) -> Bitmap {
        let mut b = Bitmap::filled(w, h, Channels::Rgb, &[120, 120, 120]);
        for y in py..(py + size).min(h) {
            for x in px..(px + size).min(w) {
                let i = ((y * w + x) * 3) as usize;
                let on = (x / 4 + y / 4) % 2 == 0;
                b.pixels[i..i + 3].copy_from_slice(if on { &[230, 30, 40] } else { &[20, 40, 200] });
            }
        }
        b
    }

    fn contains(p: &FocalPoint, window: Size, subject: Rect) -> bool {
        // The crop thumbor would take around this point (before clamping) covers the subject.
        let left = p.x - i64::from(window.width) / 2;
        let top = p.y - i64::from(window.height) / 2;
        left <= i64::from(subject.left)
            && top <= i64::from(subject.top)
            && left + i64::from(window.width) >= i64::from(subject.right)
            && top + i64::from(window.height) >= i64::from(subject.bottom)
    }

    #[test]
    fn finds_an_off_centre_subject() {
        for (px, py) in [(20, 20), (700, 40), (650, 380), (30, 400)] {
            let b = with_subject(800, 500, px, py, 80);
            let window = Size::new(250, 250);
            let p = detect(&b, Rect { left: 0, top: 0, right: 800, bottom: 500 }, window).expect("a subject");
            let subject = Rect { left: px, top: py, right: px + 80, bottom: py + 80 };
            let clamped = FocalPoint { x: p.x.clamp(125, 800 - 125), y: p.y.clamp(125, 500 - 125), ..p.clone() };
            assert!(contains(&clamped, window, subject), "subject at ({px},{py}), point {p:?}");
        }
    }

    #[test]
    fn flat_images_and_full_windows_have_no_point() {
        let flat = Bitmap::filled(300, 200, Channels::Rgb, &[90, 90, 90]);
        assert_eq!(detect(&flat, Rect { left: 0, top: 0, right: 300, bottom: 200 }, Size::new(100, 100)), None);
        let b = with_subject(300, 200, 10, 10, 40);
        assert_eq!(detect(&b, Rect { left: 0, top: 0, right: 300, bottom: 200 }, Size::new(300, 200)), None);
    }

    #[test]
    fn skin_tones_score() {
        assert!(skin_score(224.0, 172.0, 140.0) > 0.5);
        assert_eq!(skin_score(40.0, 90.0, 220.0), 0.0);
    }
}
