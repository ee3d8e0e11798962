//! `convolution(m;...,cols[,normalize])`: a custom kernel, as thumbor's `_convolution.c` applies
//! it: edge pixels repeated, the kernel divided by its sum when asked (and the sum is not 0),
//! double-precision sums truncated toward zero, every channel convolved (alpha too). A kernel
//! whose length is even or not a multiple of `cols` is a 500, as in thumbor. The convolution
//! itself is shared with `blur()`.

use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// The arguments of one `convolution()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Convolution {
    /// The kernel, row by row, each item read as C's `atof` reads it.
    pub matrix: Vec<f64>,
    /// Items per kernel row, as written (thumbor passes it as a C int).
    pub columns: i64,
    pub normalize: bool,
}

pub const SPEC: Spec = Spec {
    name: "convolution",
    params: &[Param::Custom(r"-?\d+(?:\.\d*)?(?:;-?\d+(?:\.\d*)?)*"), Param::PositiveNonZeroNumber, Param::Boolean],
    required: 2,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(Convolution {
        matrix: args.raw(0)?.split(';').map(atof).collect(),
        columns: args.int(1)?,
        normalize: args.boolean(2).unwrap_or(true),
    })))
}

/// C's `atof` on one matrix item: the longest ASCII `-?digits[.digits]` prefix, 0 without one
/// (the pattern's `\d` also admits non-ASCII digits, which `atof` stops at).
fn atof(text: &str) -> f64 {
    let bytes = text.as_bytes();
    let digits = |from: usize| from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let start = usize::from(bytes.first() == Some(&b'-'));
    let mut end = digits(start);
    if end == start {
        return 0.0;
    }
    if bytes.get(end) == Some(&b'.') {
        end = digits(end + 1);
    }
    text[..end].parse().unwrap_or(0.0)
}

/// thumbor's `normalize_kernel`: each item divided by the sum (summed in order) unless it is 0.
pub(crate) fn normalized(mut kernel: Vec<f64>, normalize: bool) -> Vec<f64> {
    let sum: f64 = kernel.iter().fold(0.0, |sum, k| sum + k);
    if normalize && sum != 0.0 {
        kernel.iter_mut().for_each(|k| *k /= sum);
    }
    kernel
}

/// C's `(int)` of a double on x86-64 (`cvttsd2si`): truncation, `INT_MIN` when out of range.
fn c_int(x: f64) -> i32 {
    if x.is_nan() || x >= 2_147_483_648.0 || x <= -2_147_483_649.0 {
        i32::MIN
    } else {
        x as i32
    }
}

/// Add `weight` times the row shifted by `offset` pixels (edge pixels repeated) to `acc`.
fn accumulate(acc: &mut [f64], row: &[u8], channels: usize, offset: isize, weight: f64) {
    let width = row.len() / channels;
    // Output pixels [lo, hi) read inside the row; those before read pixel 0, those after the last.
    let lo = (-offset).clamp(0, width as isize) as usize;
    let hi = (width as isize - offset).clamp(lo as isize, width as isize) as usize;
    let edge = |acc: &mut [f64], pixel: &[u8]| {
        for (a, &p) in acc.chunks_exact_mut(channels).flat_map(|px| px.iter_mut().zip(pixel)) {
            *a += f64::from(p) * weight;
        }
    };
    edge(&mut acc[..lo * channels], &row[..channels]);
    if hi > lo {
        let src = (lo as isize + offset) as usize * channels;
        for (a, &p) in acc[lo * channels..hi * channels].iter_mut().zip(&row[src..]) {
            *a += f64::from(p) * weight;
        }
    }
    edge(&mut acc[hi * channels..], &row[row.len() - channels..]);
}

/// Convolve every channel with `kernel` (`columns` items per row, odd rows and columns), as
/// thumbor's C loop: per output value, a double sum over kernel rows then columns from 0, then
/// `(int)` and clamped. Row at a time: one accumulator row, O(pixels x kernel) time.
pub(crate) fn convolve(source: &Bitmap, kernel: &[f64], columns: usize) -> Result<Bitmap> {
    let rows = kernel.len() / columns;
    let (mid_x, mid_y) = ((columns / 2) as isize, (rows / 2) as isize);
    let (channels, stride, height) = (source.channels.count(), source.stride(), source.height as isize);
    let mut pixels = vec![0u8; source.pixels.len()];
    let mut acc = vec![0f64; stride];
    for (y, out) in pixels.chunks_exact_mut(stride.max(1)).enumerate() {
        crate::budget::checkpoint()?;
        acc.fill(0.0);
        for (ky, weights) in kernel.chunks_exact(columns).enumerate() {
            let sy = (y as isize + ky as isize - mid_y).clamp(0, height - 1) as usize;
            let row = &source.pixels[sy * stride..(sy + 1) * stride];
            for (kx, &weight) in weights.iter().enumerate() {
                accumulate(&mut acc, row, channels, kx as isize - mid_x, weight);
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = c_int(a).clamp(0, 255) as u8;
        }
    }
    Ok(Bitmap { width: source.width, height: source.height, channels: source.channels, pixels })
}

impl PixelFilter for Convolution {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let columns = i32::try_from(self.columns)
            .map_err(|_| Error::new(ErrorKind::ThumborFails, "convolution(): columns do not fit a C int"))?;
        let size = self.matrix.len();
        let columns = columns.max(1) as usize;
        // thumbor's C code returns NULL without an exception: a SystemError, 500.
        if !size.is_multiple_of(columns) || size.is_multiple_of(2) || (size / columns).is_multiple_of(2) {
            return Err(Error::new(
                ErrorKind::ThumborFails,
                format!("convolution(): {size} items do not make a kernel of {columns} odd columns"),
            ));
        }
        if bitmap.pixels.is_empty() {
            return Ok(bitmap);
        }
        let kernel = normalized(self.matrix.clone(), self.normalize);
        convolve(&bitmap, &kernel, columns)
    }

    /// One tap per cell of the kernel.
    fn taps_per_pixel(&self) -> u64 {
        self.matrix.len() as u64
    }

    /// Counted as blur's: the result, and a second frame's worth.
    fn scratch_bytes_per_pixel(&self) -> u64 {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg, with_context};

    fn convolution(matrix: &str, columns: i64, normalize: bool) -> Convolution {
        Convolution { matrix: matrix.split(';').map(atof).collect(), columns, normalize }
    }

    fn run(filter: &Convolution, bitmap: Bitmap) -> Result<Vec<u8>> {
        with_context(|ctx| Ok(filter.apply(bitmap, ctx)?.pixels))
    }

    /// 5x4 RGB and RGBA noise (seeds 21 and 22).
    fn small(channels: Channels) -> Bitmap {
        let seed = if channels == Channels::Rgb { 21 } else { 22 };
        Bitmap { width: 5, height: 4, channels, pixels: lcg(5 * 4 * channels.count(), seed) }
    }

    fn big(channels: Channels) -> Bitmap {
        let seed = if channels == Channels::Rgb { 7 } else { 9 };
        Bitmap { width: 64, height: 64, channels, pixels: lcg(64 * 64 * channels.count(), seed) }
    }

    #[test]
    fn atof_like_c() {
        assert_eq!(atof("1"), 1.0);
        assert_eq!(atof("-2.5"), -2.5);
        assert_eq!(atof("1."), 1.0);
        assert_eq!(atof("\u{663}"), 0.0);
        assert_eq!(atof("1.\u{663}"), 1.0);
        assert_eq!(atof("-"), 0.0);
    }

    /// Expected bytes from thumbor 7.8's `_convolution.apply` on 5x4 images.
    #[test]
    fn matches_thumbor() {
        let blur = convolution("1;2;1;2;4;2;1;2;1", 3, true);
        assert_eq!(
            run(&blur, small(Channels::Rgb)).unwrap(),
            [
                122, 95, 82, 139, 135, 109, 94, 122, 165, 68, 144, 167, 63, 212, 100, 152, 126, 114, 143, 128, 134,
                116, 107, 143, 112, 120, 158, 111, 172, 170, 176, 189, 158, 144, 141, 158, 118, 108, 133, 110, 117,
                139, 96, 124, 197, 181, 221, 177, 133, 140, 166, 127, 96, 120, 139, 112, 117, 120, 89, 188
            ]
        );
        let edges = convolution("-1;-1;-1;-1;8;-1;-1;-1;-1", 3, false);
        assert_eq!(
            run(&edges, small(Channels::Rgb)).unwrap(),
            [
                0, 0, 0, 255, 255, 0, 0, 0, 255, 0, 104, 255, 0, 255, 0, 69, 0, 0, 136, 0, 255, 0, 0, 0, 255, 0, 255,
                255, 255, 255, 149, 255, 255, 255, 168, 40, 0, 105, 255, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0, 255,
                69, 0, 0, 255, 255, 0, 247, 0, 255
            ]
        );
        // One column: a vertical kernel.
        let vertical = convolution("1;2;1", 1, true);
        assert_eq!(
            run(&vertical, small(Channels::Rgb)).unwrap(),
            [
                91, 60, 79, 214, 199, 90, 36, 81, 177, 92, 127, 214, 54, 240, 61, 144, 118, 100, 175, 151, 156, 77, 92,
                125, 135, 96, 169, 103, 198, 170, 187, 206, 152, 143, 137, 178, 103, 82, 127, 126, 132, 99, 86, 122,
                230, 207, 248, 174, 102, 139, 187, 122, 33, 116, 165, 178, 62, 105, 59, 230
            ]
        );
    }

    /// thumbor convolves the alpha channel too.
    #[test]
    fn alpha_convolved() {
        let blur = convolution("1;2;1;2;4;2;1;2;1", 3, true);
        assert_eq!(
            run(&blur, small(Channels::Rgba)).unwrap(),
            [
                50, 170, 148, 190, 136, 90, 114, 95, 170, 100, 120, 44, 150, 155, 128, 60, 167, 137, 125, 77, 58, 170,
                131, 181, 141, 117, 118, 106, 169, 110, 139, 73, 131, 112, 151, 92, 123, 81, 169, 89, 95, 157, 126,
                147, 135, 142, 105, 105, 145, 139, 132, 100, 107, 108, 164, 117, 103, 86, 162, 113, 182, 162, 62, 91,
                159, 161, 60, 99, 116, 162, 104, 140, 64, 147, 150, 168, 58, 160, 119, 170
            ]
        );
    }

    /// FNV-1a of thumbor's output for kernels of every shape: fractions, a zero sum (not
    /// normalised), a scale without normalisation, a 5x1 row, an off-centre 5x3, a 3x5.
    #[test]
    fn matches_thumbor_on_noise() {
        let cases: &[(&str, i64, bool, [u64; 2])] = &[
            ("1;2;1;2;4;2;1;2;1", 3, true, [0xc75a06be37f95f99, 0x5c743305d4952ee0]),
            ("-1;-1;-1;-1;8;-1;-1;-1;-1", 3, false, [0xe5b4bb030a1c9f09, 0xf67f454926121bd1]),
            ("1;2;1", 3, true, [0xeaeb86e009c02a53, 0x3236a6691b5e2d85]),
            ("1;2;1", 1, true, [0x46967279b52b34ed, 0x15263a457de379c3]),
            ("0.5;1.;-0.25", 3, true, [0xe9beec60aa6e6a4f, 0x8d07cea33fc3171f]),
            ("1;-1;0", 3, true, [0x8222b15ce766fffb, 0xa91aae0b9417e5e1]),
            ("5", 1, false, [0xe63aa94ffb03bc10, 0x3c5e01e6e797c303]),
            ("1;1;1;1;1", 5, true, [0x555f129e99e4c03f, 0xd7ca03e0d8eec8ae]),
            ("0;0;0;0;1;0;0;0;0;0;0;0;0;0;0", 5, false, [0x6da0db258635048d, 0x81917c2a8579130e]),
            ("1;2;3;4;5;6;7;8;9;10;11;12;13;14;15", 3, true, [0x360c7981b125af4d, 0xe8d0beaf6a6c45ca]),
        ];
        for (matrix, columns, normalize, [rgb, rgba]) in cases {
            let filter = convolution(matrix, *columns, *normalize);
            assert_eq!(fnv(&run(&filter, big(Channels::Rgb)).unwrap()), *rgb, "{matrix},{columns},{normalize} RGB");
            assert_eq!(fnv(&run(&filter, big(Channels::Rgba)).unwrap()), *rgba, "{matrix},{columns},{normalize} RGBA");
        }
    }

    /// Kernels larger than the 5x4 image (15x1, 1x15, 3x5, 5x3) only read repeated edge pixels.
    #[test]
    fn kernels_larger_than_the_image() {
        let matrix = "1;2;3;4;5;6;7;8;9;10;11;12;13;14;15";
        let cases: &[(i64, u64, u64)] = &[
            (15, 0x6e4163d18226505f, 0x0a261f8fbb39bdc2),
            (1, 0x39baa466b513baa4, 0xcd6256ba91e7588f),
            (3, 0xf11e3942a911ac41, 0x173bae97ce018398),
            (5, 0xf6e9b4f2f588e197, 0x4eb7db0de054f56e),
        ];
        for (columns, rgb, rgba) in cases {
            let filter = convolution(matrix, *columns, true);
            assert_eq!(fnv(&run(&filter, small(Channels::Rgb)).unwrap()), *rgb, "{columns} columns RGB");
            assert_eq!(fnv(&run(&filter, small(Channels::Rgba)).unwrap()), *rgba, "{columns} columns RGBA");
        }
    }

    /// Kernels thumbor's C code refuses (SystemError, 500), and columns beyond a C int.
    #[test]
    fn bad_kernels_are_internal_errors() {
        for (matrix, columns) in [("1;2;1;2", 3), ("1;2", 1), ("1;2;3", 2), ("1;2;3;4;5;6", 3)] {
            let err = run(&convolution(matrix, columns, true), small(Channels::Rgb)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ThumborFails, "{matrix},{columns}");
        }
        assert!(run(&convolution("1", 1 << 31, true), small(Channels::Rgb)).is_err());
        // 15 items in 15 columns: one odd row, accepted.
        assert!(run(&convolution("1;2;3;4;5;6;7;8;9;10;11;12;13;14;15", 15, true), small(Channels::Rgb)).is_ok());
    }

    /// A kernel wider than the image reads the repeated edge pixels. Sums of ninths fall short
    /// of the flat colour and truncate: thumbor turns 10 into 9 too.
    #[test]
    fn one_pixel_and_wide_kernels() {
        let one = Bitmap { width: 1, height: 1, channels: Channels::Rgb, pixels: vec![10, 20, 30] };
        assert_eq!(run(&convolution("1;1;1;1;1;1;1;1;1", 3, true), one.clone()).unwrap(), [9, 19, 29]);
        assert_eq!(run(&convolution("1;1;1;1;1;1;1", 7, true), one.clone()).unwrap(), [10, 20, 29]);
        assert_eq!(run(&convolution("1;2;1", 3, true), one).unwrap(), [10, 20, 30]);
    }
}
