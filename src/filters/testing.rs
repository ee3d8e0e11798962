//! Test support shared by the filter modules: deterministic pixels (the LCG the oracle scripts
//! used to get thumbor's expected bytes), a hash for long expected outputs, and an empty context.

use super::{Assets, PostContext};
use crate::codec::{Bitmap, Channels};
use crate::config::ImageConfig;

/// Four RGB pixels covering the ends and the middle of the range.
pub const RGB: [u8; 12] = [0, 1, 2, 127, 128, 129, 250, 254, 255, 10, 100, 200];
/// The same colours with varied alpha.
pub const RGBA: [u8; 16] = [0, 1, 2, 0, 127, 128, 129, 77, 250, 254, 255, 255, 10, 100, 200, 128];

/// A one-row bitmap of `pixels`.
pub fn row(channels: Channels, pixels: &[u8]) -> Bitmap {
    Bitmap { width: (pixels.len() / channels.count()) as u32, height: 1, channels, pixels: pixels.to_vec() }
}

/// `n` bytes of a 32-bit LCG (the oracle scripts generate the same).
pub fn lcg(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (s >> 16) as u8
        })
        .collect()
}

/// A 64x64 bitmap of [`lcg`] bytes.
pub fn lcg_bitmap(channels: Channels, seed: u32) -> Bitmap {
    Bitmap { width: 64, height: 64, channels, pixels: lcg(64 * 64 * channels.count(), seed) }
}

/// FNV-1a 64 of `bytes`: expected outputs too long to paste are pasted as this hash.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Run `f` with a context holding no assets, the default configuration and no box.
pub fn with_context<T>(f: impl FnOnce(&PostContext) -> T) -> T {
    let (assets, image) = (Assets::default(), ImageConfig::default());
    f(&PostContext { box_width: None, box_height: None, assets: &assets, image: &image })
}
