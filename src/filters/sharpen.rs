//! `sharpen(amount,radius,luminance_only)`: thumbor's wavelet sharpen (`wavelet_sharpen.c`,
//! after Marco Rossini's GIMP plug-in): five à trous levels of a hat filter, each detail layer
//! scaled by `amount * exp(-(level - radius)² / 1.5) + 1`, in single precision; on the luma of
//! YCbCr only, or on each of red, green and blue. Alpha is untouched. Byte-exact for frames of
//! at least 32x32; on smaller ones thumbor reads outside its buffers, and here the mirror
//! reflection simply repeats. One channel at a time: three float planes of memory.

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `sharpen()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharpen {
    pub amount: f64,
    pub radius: f64,
    pub luminance_only: bool,
}

pub const SPEC: Spec = Spec {
    name: "sharpen",
    params: &[Param::DecimalNumber, Param::DecimalNumber, Param::Boolean],
    required: 3,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Sharpen {
        amount: args.float(0)?,
        radius: args.float(1)?,
        luminance_only: args.boolean(2)?,
    })))
}

/// Mirror an index into `0..size` without repeating the edge (thumbor's `sc - i` and
/// `2 * size - 2 - (i + sc)`), as often as needed.
fn reflect(mut j: isize, size: isize) -> usize {
    if size == 1 {
        return 0;
    }
    loop {
        if j < 0 {
            j = -j;
        } else if j >= size {
            j = 2 * size - 2 - j;
        } else {
            return j as usize;
        }
    }
}

/// thumbor's `hat_transform`: `temp[i] = 2 b[i] + b[i - sc] + b[i + sc]` along a line of
/// `size` values `step` apart, mirrored at both ends.
fn hat_transform(temp: &mut [f32], base: &[f32], step: usize, size: usize, sc: usize) {
    let (size_i, sc_i) = (size as isize, sc as isize);
    for (i, t) in temp[..size].iter_mut().enumerate() {
        let left = reflect(i as isize - sc_i, size_i);
        let right = reflect(i as isize + sc_i, size_i);
        *t = 2.0 * base[step * i] + base[step * left] + base[step * right];
    }
}

/// Two distinct planes: `a` to write, `b` to read.
fn two(planes: &mut [Vec<f32>; 3], a: usize, b: usize) -> (&mut [f32], &[f32]) {
    let [p0, p1, p2] = planes;
    match (a, b) {
        (0, 1) => (p0, p1),
        (0, 2) => (p0, p2),
        (1, 0) => (p1, p0),
        (1, 2) => (p1, p2),
        (2, 0) => (p2, p0),
        (2, 1) => (p2, p1),
        _ => unreachable!("planes {a} and {b} are not distinct"),
    }
}

/// thumbor's `wavelet_sharpen` on one plane (`planes[0]`), using `planes[1..]` as scratch.
fn wavelet_sharpen(planes: &mut [Vec<f32>; 3], width: usize, height: usize, amount: f64, radius: f64) {
    let mut temp = vec![0f32; width.max(height)];
    let (mut hpass, mut lpass) = (0, 0);
    for level in 0..5 {
        lpass = (level & 1) + 1;
        let sc = 1 << level;
        // Low pass of the previous level into `lpass`: rows, then columns in place.
        let (low, high) = two(planes, lpass, hpass);
        for (low_row, high_row) in low.chunks_exact_mut(width).zip(high.chunks_exact(width)) {
            hat_transform(&mut temp, high_row, 1, width, sc);
            for (l, t) in low_row.iter_mut().zip(&temp) {
                *l = t * 0.25;
            }
        }
        for col in 0..width {
            hat_transform(&mut temp, &low[col..], width, height, sc);
            for (row, t) in temp[..height].iter().enumerate() {
                low[row * width + col] = t * 0.25;
            }
        }
        // The detail layer, scaled, added to the result (level 0's becomes the result).
        let distance = level as f64 - radius;
        let amt = (amount * (-distance * distance / 1.5).exp() + 1.0) as f32;
        let [result, first, second] = planes;
        match hpass {
            0 => result.iter_mut().zip(first.iter()).for_each(|(h, l)| *h = (*h - l) * amt),
            _ => {
                let (high, low) = if hpass == 1 { (first, &*second) } else { (second, &*first) };
                for ((r, h), l) in result.iter_mut().zip(high.iter_mut()).zip(low) {
                    *h = (*h - l) * amt;
                    *r += *h;
                }
            }
        }
        hpass = lpass;
    }
    let (result, low) = two(planes, 0, lpass);
    for (r, l) in result.iter_mut().zip(low) {
        *r += l;
    }
}

/// thumbor's `rgb2ycbcr`, single precision.
fn rgb_to_ycbcr(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let y = 0.2990 * r + 0.5870 * g + 0.1140 * b;
    let cb = -0.1687 * r - 0.3313 * g + 0.5000 * b + 128.0;
    let cr = 0.5000 * r - 0.4187 * g - 0.0813 * b + 128.0;
    (y, cb, cr)
}

/// thumbor's `ycbcr2rgb`, single precision.
fn ycbcr_to_rgb(y: f32, cb: f32, cr: f32) -> [f32; 3] {
    [y + 1.40200 * (cr - 128.0), y - 0.34414 * (cb - 128.0) - 0.71414 * (cr - 128.0), y + 1.77200 * (cb - 128.0)]
}

/// thumbor's `ADJUST_COLOR` on a float then the store into an `unsigned char` (`cvttss2si`,
/// low byte): clamped, truncated, NaN becomes 0.
fn to_byte(v: f32) -> u8 {
    let v = v.clamp(0.0, 255.0);
    if v.is_nan() {
        0
    } else {
        v as u8
    }
}

impl PixelFilter for Sharpen {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let (width, height) = (bitmap.width as usize, bitmap.height as usize);
        let channels = bitmap.channels.count();
        if width == 0 || height == 0 {
            return Ok(bitmap);
        }
        let area = width * height;
        let mut planes = [vec![0f32; area], vec![0f32; area], vec![0f32; area]];
        let rgb = |pixel: &[u8]| (f32::from(pixel[0]), f32::from(pixel[1]), f32::from(pixel[2]));
        if self.luminance_only {
            for (p, pixel) in planes[0].iter_mut().zip(bitmap.pixels.chunks_exact(channels)) {
                let (r, g, b) = rgb(pixel);
                *p = rgb_to_ycbcr(r, g, b).0 / 255.0;
            }
            wavelet_sharpen(&mut planes, width, height, self.amount, self.radius);
            for (p, pixel) in planes[0].iter().zip(bitmap.pixels.chunks_exact_mut(channels)) {
                let (r, g, b) = rgb(pixel);
                let (_, cb, cr) = rgb_to_ycbcr(r, g, b);
                // thumbor stores Cb and Cr divided by 255 and multiplies them back.
                let out = ycbcr_to_rgb(p * 255.0, cb / 255.0 * 255.0, cr / 255.0 * 255.0);
                for (c, v) in pixel.iter_mut().zip(out) {
                    *c = to_byte(v);
                }
            }
        } else {
            for c in 0..3 {
                for (p, pixel) in planes[0].iter_mut().zip(bitmap.pixels.chunks_exact(channels)) {
                    *p = f32::from(pixel[c]) / 255.0;
                }
                wavelet_sharpen(&mut planes, width, height, self.amount, self.radius);
                for (p, pixel) in planes[0].iter().zip(bitmap.pixels.chunks_exact_mut(channels)) {
                    pixel[c] = to_byte(p * 255.0);
                }
            }
        }
        Ok(bitmap)
    }

    /// Five à trous levels of a 3x3 hat filter on up to three channels.
    fn taps_per_pixel(&self) -> u64 {
        5 * 9 * 3
    }

    /// Three float planes.
    fn scratch_bytes_per_pixel(&self) -> u64 {
        12
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg, with_context};

    fn run(filter: &Sharpen, bitmap: Bitmap) -> Vec<u8> {
        with_context(|ctx| filter.apply(bitmap, ctx).unwrap().pixels)
    }

    /// 33x48: a gradient with a disc, smooth enough to show the sharpening.
    fn disc() -> Bitmap {
        let pixels = (0..48i32)
            .flat_map(|y| {
                (0..33i32).flat_map(move |x| {
                    let inside = (x - 16).pow(2) + (y - 20).pow(2) < 100;
                    [(x * 7 % 256) as u8, (y * 5 % 256) as u8, if inside { 220 } else { 20 }]
                })
            })
            .collect();
        Bitmap { width: 33, height: 48, channels: Channels::Rgb, pixels }
    }

    /// FNV-1a of thumbor 7.8's `_sharpen.apply` output on 40x36 RGB and RGBA noise and on the
    /// 33x48 disc, for both modes, small, zero, negative and huge amounts, several radii.
    #[test]
    fn matches_thumbor() {
        let cases: &[(f64, f64, bool, [u64; 3])] = &[
            (2.0, 1.0, true, [0x49c4abc4b08276ca, 0xb9ec05836a174954, 0x63965bfbb1f19c71]),
            (2.0, 1.0, false, [0xeb84399dfb52d90b, 0xd485b4f4954bf553, 0xe490e6f7e0b06921]),
            (0.5, 0.5, true, [0x15ac7d1b1c6da890, 0x1a3aa5c09a63feb2, 0x5b85a5addcf75576]),
            (0.0, 0.0, false, [0x553c616e80475972, 0x2166638ddc636607, 0x9f473db2078fd832]),
            (10.0, 3.0, false, [0xfaf8f525f75a7702, 0x2c29b57729a9b44a, 0xc5b72b9e819b9201]),
            (-1.0, 2.0, true, [0x33905aca7594997d, 0x8fd436cf7e335b7f, 0x7c6483d01f680d79]),
            (1.0, 4.0, false, [0x60af716f6821c163, 0x342e81a78e9693c8, 0xee2a54493929676e]),
            (3.5, 0.0, true, [0x7afc7ba83ddf5624, 0x9dd744faf876db70, 0xff594a4f1b125e92]),
            (1e30, 1.0, false, [0x4a96700d31454c66, 0x14e1bdf76645627d, 0xce960b35a7888fba]),
            (f64::INFINITY, 1.0, true, [0x805526a3dbed90e4, 0x6eff17c9d4a0f333, 0xa5aa1fd0ad142705]),
        ];
        for &(amount, radius, luminance_only, [rgb, rgba, disc_hash]) in cases {
            let filter = Sharpen { amount, radius, luminance_only };
            let noise = |channels: Channels, seed| Bitmap {
                width: 40,
                height: 36,
                channels,
                pixels: lcg(40 * 36 * channels.count(), seed),
            };
            assert_eq!(fnv(&run(&filter, noise(Channels::Rgb, 31))), rgb, "{filter:?} RGB");
            assert_eq!(fnv(&run(&filter, noise(Channels::Rgba, 32))), rgba, "{filter:?} RGBA");
            assert_eq!(fnv(&run(&filter, disc())), disc_hash, "{filter:?} disc");
        }
        let first = run(&Sharpen { amount: 2.0, radius: 1.0, luminance_only: true }, disc());
        assert_eq!(first[..24], [0, 0, 0, 0, 0, 3, 0, 0, 5, 7, 0, 6, 15, 0, 7, 22, 0, 7, 30, 0, 8, 37, 0, 8]);
    }

    #[test]
    fn alpha_untouched() {
        let bitmap = Bitmap { width: 40, height: 36, channels: Channels::Rgba, pixels: lcg(40 * 36 * 4, 32) };
        let alpha: Vec<u8> = bitmap.pixels.iter().skip(3).step_by(4).copied().collect();
        let out = run(&Sharpen { amount: 5.0, radius: 1.0, luminance_only: false }, bitmap);
        assert_eq!(out.iter().skip(3).step_by(4).copied().collect::<Vec<_>>(), alpha);
    }

    /// Frames smaller than thumbor's 32-pixel reach (where it reads out of bounds) are mirrored
    /// repeatedly; a flat colour stays flat.
    #[test]
    fn tiny_frames() {
        for (w, h) in [(1, 1), (2, 3), (5, 1), (17, 9)] {
            let flat = Bitmap::filled(w, h, Channels::Rgb, &[90, 140, 200]);
            let out = run(&Sharpen { amount: 3.0, radius: 1.0, luminance_only: false }, flat.clone());
            assert_eq!(out, flat.pixels, "{w}x{h}");
        }
    }

    #[test]
    fn reflection() {
        assert_eq!([reflect(-3, 10), reflect(12, 10), reflect(5, 10)], [3, 6, 5]);
        assert_eq!([reflect(5, 2), reflect(-16, 3), reflect(7, 1)], [1, 0, 0]);
    }
}
