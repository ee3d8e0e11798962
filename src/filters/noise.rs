//! `noise(amount[,seed])`: adds the same random offset in `[-amount/2, amount/2)` to the red, green
//! and blue channels of each pixel, with glibc's `random()` seeded by `srandom(seed)` exactly as
//! thumbor's `_noise.c` (alpha untouched). Without a seed (or 0) thumbor keeps its process-wide
//! generator running, so its noise differs on every request; here it is glibc's unseeded
//! sequence (`srandom(1)`, what a fresh thumbor worker produces first), so a URL always gives the
//! same image.

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `noise()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    pub amount: i64,
    pub seed: i64,
}

pub const SPEC: Spec = Spec {
    name: "noise",
    params: &[Param::PositiveNumber, Param::PositiveNumber],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Noise { amount: args.int(0)?, seed: args.int(1).unwrap_or(0) })))
}

/// glibc's `random()` (the default TYPE_3 additive feedback generator, 31 words of state) after
/// `srandom(seed)`.
struct GlibcRandom {
    state: [u32; 31],
    front: usize,
    rear: usize,
}

impl GlibcRandom {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 31];
        state[0] = seed.max(1);
        let mut word = i64::from(state[0]);
        for slot in &mut state[1..] {
            // 16807 * word % 2147483647 without overflowing 31 bits (Schrage's method).
            let (hi, lo) = (word / 127_773, word % 127_773);
            word = 16_807 * lo - 2_836 * hi;
            if word < 0 {
                word += 2_147_483_647;
            }
            *slot = word as u32;
        }
        let mut rng = GlibcRandom { state, front: 3, rear: 0 };
        for _ in 0..310 {
            rng.next();
        }
        rng
    }

    /// The next value in `0..2^31`.
    fn next(&mut self) -> u32 {
        self.state[self.front] = self.state[self.front].wrapping_add(self.state[self.rear]);
        let value = self.state[self.front] >> 1;
        self.front = (self.front + 1) % 31;
        self.rear = (self.rear + 1) % 31;
        value
    }
}

impl PixelFilter for Noise {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame. Each frame of an animation restarts the sequence (thumbor reseeds per
    /// frame too when a seed is given). Arguments beyond C `int` are a 500, like thumbor's
    /// `OverflowError`.
    fn apply(&self, mut bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let overflow = |_| Error::new(ErrorKind::Internal, "noise(): argument does not fit a C int");
        let amount = i32::try_from(self.amount).map_err(overflow)?;
        let seed = i32::try_from(self.seed).map_err(overflow)?;
        if amount <= 0 {
            return Ok(bitmap);
        }
        let mut rng = GlibcRandom::new(seed.max(1) as u32);
        let half = amount >> 1;
        let channels = bitmap.channels.count();
        for pixel in bitmap.pixels.chunks_exact_mut(channels) {
            let offset = (rng.next() % amount as u32) as i32 - half;
            for c in &mut pixel[..3] {
                *c = (i32::from(*c) + offset).clamp(0, 255) as u8;
            }
        }
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg_bitmap, with_context, RGB, RGBA};

    fn run(amount: i64, seed: i64, bitmap: Bitmap) -> Result<Vec<u8>> {
        with_context(|ctx| Ok(Noise { amount, seed }.apply(bitmap, ctx)?.pixels))
    }

    fn row(channels: Channels, pixels: &[u8]) -> Bitmap {
        Bitmap { width: (pixels.len() / channels.count()) as u32, height: 1, channels, pixels: pixels.to_vec() }
    }

    /// The first values of glibc's `random()` after `srandom(1)` and `srandom(42)`.
    #[test]
    fn glibc_sequence() {
        let mut one = GlibcRandom::new(1);
        assert_eq!([one.next(), one.next(), one.next()], [1804289383, 846930886, 1681692777]);
        let mut forty_two = GlibcRandom::new(42);
        assert_eq!([forty_two.next(), forty_two.next(), forty_two.next()], [71876166, 708592740, 1483128881]);
        let mut max = GlibcRandom::new(i32::MAX as u32);
        assert_eq!(max.next(), 1065668062);
    }

    /// Expected bytes from thumbor 7.8's `_noise.apply`.
    #[test]
    fn matches_thumbor() {
        let max = i64::from(i32::MAX);
        let cases: &[(i64, i64, [u8; 12])] = &[
            (30, 42, [0, 0, 0, 112, 113, 114, 246, 250, 251, 16, 106, 206]),
            (1, 5, RGB),
            (2, 5, [0, 1, 2, 127, 128, 129, 249, 253, 254, 9, 99, 199]),
            (100, 7, [27, 28, 29, 176, 177, 178, 255, 255, 255, 31, 121, 221]),
            (255, 1, [36, 37, 38, 151, 152, 153, 255, 255, 255, 0, 58, 158]),
            (1000, 3, [246, 247, 248, 255, 255, 255, 0, 0, 0, 0, 40, 140]),
            (max, max, [0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0]),
            (0, 9, RGB),
            // A fresh thumbor worker, no seed: glibc's initial state, the same as seed 1.
            (30, 0, [0, 0, 0, 128, 129, 130, 255, 255, 255, 20, 110, 210]),
            (30, 1, [0, 0, 0, 128, 129, 130, 255, 255, 255, 20, 110, 210]),
        ];
        for (amount, seed, expected) in cases {
            assert_eq!(run(*amount, *seed, row(Channels::Rgb, &RGB)).unwrap(), expected, "noise({amount},{seed})");
        }
    }

    #[test]
    fn alpha_untouched() {
        assert_eq!(
            run(30, 42, row(Channels::Rgba, &RGBA)).unwrap(),
            [0, 0, 0, 0, 112, 113, 114, 77, 246, 250, 251, 255, 16, 106, 206, 128]
        );
    }

    /// FNV-1a of thumbor's output on 64x64 LCG noise.
    #[test]
    fn matches_thumbor_on_noise() {
        let cases: &[(i64, i64, u64, u64)] = &[
            (30, 42, 0xe06545dd107f61d8, 0xbe20512bcd2e1cea),
            (100, 7, 0xafca273812f955cc, 0xf58f8abc61e823a8),
            (i64::from(i32::MAX), 123, 0xcd0ade6a66c9b775, 0x0b33b6be4549d6d8),
        ];
        for (amount, seed, rgb, rgba) in cases {
            assert_eq!(
                fnv(&run(*amount, *seed, lcg_bitmap(Channels::Rgb, 7)).unwrap()),
                *rgb,
                "noise({amount},{seed})"
            );
            assert_eq!(
                fnv(&run(*amount, *seed, lcg_bitmap(Channels::Rgba, 9)).unwrap()),
                *rgba,
                "noise({amount},{seed})"
            );
        }
    }

    #[test]
    fn beyond_c_int_is_internal_error() {
        let err = run(1 << 31, 0, row(Channels::Rgb, &RGB)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(run(10, 1 << 31, row(Channels::Rgb, &RGB)).is_err());
    }
}
