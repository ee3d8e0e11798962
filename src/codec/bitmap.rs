//! Decoded pixels: 8-bit RGB or RGBA rows, and animation frames.

use crate::error::Result;
use crate::geometry::Size;

/// Channel layout of a [`Bitmap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    Rgb,
    Rgba,
}

impl Channels {
    pub fn count(self) -> usize {
        match self {
            Channels::Rgb => 3,
            Channels::Rgba => 4,
        }
    }
}

/// An 8-bit image, rows packed without padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    pub channels: Channels,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitmap({}x{} {:?})", self.width, self.height, self.channels)
    }
}

impl Bitmap {
    /// A bitmap filled with one colour (`color` has `channels.count()` bytes).
    pub fn filled(width: u32, height: u32, channels: Channels, color: &[u8]) -> Self {
        debug_assert_eq!(color.len(), channels.count());
        let n = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(n * channels.count());
        for _ in 0..n {
            pixels.extend_from_slice(color);
        }
        Bitmap { width, height, channels, pixels }
    }

    pub fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }

    pub fn stride(&self) -> usize {
        self.width as usize * self.channels.count()
    }

    pub fn has_alpha(&self) -> bool {
        self.channels == Channels::Rgba
    }

    /// True when an alpha channel exists and some pixel is not fully opaque (PIL's
    /// `has_transparency`).
    pub fn has_transparency(&self) -> bool {
        self.channels == Channels::Rgba && self.pixels.chunks_exact(4).any(|p| p[3] < 255)
    }

    /// The same pixels with an opaque alpha channel added.
    pub fn to_rgba(&self) -> Bitmap {
        match self.channels {
            Channels::Rgba => self.clone(),
            Channels::Rgb => {
                let mut pixels = Vec::with_capacity(self.width as usize * self.height as usize * 4);
                for p in self.pixels.chunks_exact(3) {
                    pixels.extend_from_slice(&[p[0], p[1], p[2], 255]);
                }
                Bitmap { width: self.width, height: self.height, channels: Channels::Rgba, pixels }
            }
        }
    }

    /// The colour channels only (PIL's `convert("RGB")`: alpha is dropped, not composited).
    pub fn to_rgb(&self) -> Bitmap {
        match self.channels {
            Channels::Rgb => self.clone(),
            Channels::Rgba => {
                let mut pixels = Vec::with_capacity(self.width as usize * self.height as usize * 3);
                for p in self.pixels.chunks_exact(4) {
                    pixels.extend_from_slice(&p[..3]);
                }
                Bitmap { width: self.width, height: self.height, channels: Channels::Rgb, pixels }
            }
        }
    }

    /// Map each colour channel through its lookup table (red, green, blue); alpha is untouched.
    pub fn apply_luts(&mut self, tables: &[[u8; 256]; 3]) {
        let c = self.channels.count();
        for pixel in self.pixels.chunks_exact_mut(c) {
            for (value, table) in pixel[..3].iter_mut().zip(tables) {
                *value = table[usize::from(*value)];
            }
        }
    }

    /// Drop the alpha channel when every pixel is opaque (saves work and bytes downstream).
    /// Done in place: no second image is allocated beside the first.
    pub fn without_opaque_alpha(mut self) -> Bitmap {
        if self.channels != Channels::Rgba || self.has_transparency() {
            return self;
        }
        let pixels = self.pixels.len() / 4;
        for i in 0..pixels {
            // Pixel i moves from 4i to 3i: never over a pixel not yet moved.
            self.pixels.copy_within(4 * i..4 * i + 3, 3 * i);
        }
        self.pixels.truncate(pixels * 3);
        self.pixels.shrink_to_fit();
        self.channels = Channels::Rgb;
        self
    }

    /// A copy of `[left, left+width) x [top, top+height)`; the rectangle must lie inside.
    pub fn crop(&self, left: u32, top: u32, width: u32, height: u32) -> Bitmap {
        debug_assert!(left + width <= self.width && top + height <= self.height);
        let c = self.channels.count();
        let stride = self.stride();
        let row_len = width as usize * c;
        let mut pixels = Vec::with_capacity(row_len * height as usize);
        for y in top..top + height {
            let start = y as usize * stride + left as usize * c;
            pixels.extend_from_slice(&self.pixels[start..start + row_len]);
        }
        Bitmap { width, height, channels: self.channels, pixels }
    }

    /// Mirror left to right.
    pub fn flip_horizontal(&mut self) {
        let c = self.channels.count();
        let stride = self.stride();
        for row in self.pixels.chunks_exact_mut(stride) {
            let w = self.width as usize;
            for x in 0..w / 2 {
                for k in 0..c {
                    row.swap(x * c + k, (w - 1 - x) * c + k);
                }
            }
        }
    }

    /// Mirror top to bottom.
    pub fn flip_vertical(&mut self) {
        let stride = self.stride();
        let h = self.height as usize;
        for y in 0..h / 2 {
            let (top, bottom) = self.pixels.split_at_mut((h - 1 - y) * stride);
            top[y * stride..(y + 1) * stride].swap_with_slice(&mut bottom[..stride]);
        }
    }

    /// Rotate clockwise by 90 degrees.
    pub fn rotate90(&self) -> Bitmap {
        self.transposed_with(|x, y, w, h| (h - 1 - y, x, w, h))
    }

    /// Rotate by 180 degrees.
    pub fn rotate180(&self) -> Bitmap {
        let mut out = self.clone();
        out.flip_horizontal();
        out.flip_vertical();
        out
    }

    /// Rotate clockwise by 270 degrees (90 counter-clockwise).
    pub fn rotate270(&self) -> Bitmap {
        self.transposed_with(|x, y, w, _h| (y, w - 1 - x, w, _h))
    }

    /// Mirror across the main diagonal.
    pub fn transpose(&self) -> Bitmap {
        self.transposed_with(|x, y, w, h| (y, x, w, h))
    }

    /// Build a `height x width` bitmap where source pixel (x, y) lands at `map(x, y, w, h).0..1`.
    fn transposed_with(&self, map: impl Fn(usize, usize, usize, usize) -> (usize, usize, usize, usize)) -> Bitmap {
        let (w, h) = (self.width as usize, self.height as usize);
        let c = self.channels.count();
        let mut pixels = vec![0u8; self.pixels.len()];
        let out_stride = h * c;
        for y in 0..h {
            let row = &self.pixels[y * w * c..(y + 1) * w * c];
            for x in 0..w {
                let (ox, oy, _, _) = map(x, y, w, h);
                let dst = oy * out_stride + ox * c;
                pixels[dst..dst + c].copy_from_slice(&row[x * c..x * c + c]);
            }
        }
        Bitmap { width: self.height, height: self.width, channels: self.channels, pixels }
    }
}

/// One frame of an animation: its pixels (the full canvas) and how long it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bitmap: Bitmap,
    pub delay_ms: u32,
}

/// The working image: its frames (at least one, all the same size) and what travels with them.
/// What the decoders produce and what every step and filter works on.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub frames: Vec<Frame>,
    /// Loop count of an animation (0 = forever).
    pub loop_count: u16,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

impl Canvas {
    /// A still image.
    pub fn still(bitmap: Bitmap, icc: Option<Vec<u8>>) -> Canvas {
        Canvas { frames: vec![Frame { bitmap, delay_ms: 0 }], loop_count: 0, icc }
    }

    pub fn first(&self) -> &Bitmap {
        &self.frames[0].bitmap
    }

    pub fn size(&self) -> Size {
        self.first().size()
    }

    /// Apply `f` to every frame, stopping at the render's checkpoint before each.
    pub fn map_frames(&mut self, mut f: impl FnMut(Bitmap) -> Result<Bitmap>) -> Result<()> {
        for frame in &mut self.frames {
            crate::budget::checkpoint()?;
            let placeholder = Bitmap { width: 0, height: 0, channels: frame.bitmap.channels, pixels: Vec::new() };
            let bitmap = std::mem::replace(&mut frame.bitmap, placeholder);
            frame.bitmap = f(bitmap)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(w: u32, h: u32) -> Bitmap {
        let pixels = (0..w * h).flat_map(|i| [i as u8, 0, 0]).collect();
        Bitmap { width: w, height: h, channels: Channels::Rgb, pixels }
    }

    fn at(b: &Bitmap, x: u32, y: u32) -> u8 {
        b.pixels[(y * b.width + x) as usize * 3]
    }

    #[test]
    fn rotations_move_corners() {
        // 3x2: 0 1 2 / 3 4 5
        let b = numbered(3, 2);
        let r = b.rotate90();
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(at(&r, 0, 0), 3);
        assert_eq!(at(&r, 1, 0), 0);
        let r = b.rotate270();
        assert_eq!(at(&r, 0, 0), 2);
        assert_eq!(at(&r, 0, 2), 0);
        let r = b.rotate180();
        assert_eq!(at(&r, 0, 0), 5);
        let t = b.transpose();
        assert_eq!((at(&t, 0, 0), at(&t, 1, 0), at(&t, 0, 2)), (0, 3, 2));
    }

    #[test]
    fn flips_and_crop() {
        let mut b = numbered(3, 2);
        b.flip_horizontal();
        assert_eq!(at(&b, 0, 0), 2);
        b.flip_vertical();
        assert_eq!(at(&b, 0, 0), 5);
        let c = numbered(3, 2).crop(1, 1, 2, 1);
        assert_eq!((c.width, c.height, at(&c, 0, 0)), (2, 1, 4));
    }

    #[test]
    fn opaque_alpha_is_dropped_in_place() {
        let rgba: Vec<u8> = (0..12u8).flat_map(|i| [i, i + 1, i + 2, 255]).collect();
        let b = Bitmap { width: 4, height: 3, channels: Channels::Rgba, pixels: rgba.clone() };
        let rgb = b.clone().without_opaque_alpha();
        assert_eq!(rgb.channels, Channels::Rgb);
        assert_eq!(rgb.pixels, b.to_rgb().pixels);
        let mut translucent = rgba;
        translucent[7] = 10;
        let kept = Bitmap { width: 4, height: 3, channels: Channels::Rgba, pixels: translucent }.without_opaque_alpha();
        assert_eq!(kept.channels, Channels::Rgba);
    }
}
