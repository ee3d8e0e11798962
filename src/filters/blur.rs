//! `blur(radius[,sigma])`: thumbor's gaussian blur (`blur.py`): a 1-D kernel of `2 * radius + 1`
//! taps, radius capped at 150 but sigma defaulting to the uncapped radius, applied by the
//! convolution filter's loop horizontally then vertically (each pass truncating to 8 bits, alpha
//! blurred too). O(pixels x radius) time, two frames of memory.

use std::f64::consts::{E, PI};

use super::convolution::{convolve, normalized};
use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Result};

/// thumbor's `MAX_RADIUS`.
pub const MAX_RADIUS: u32 = 150;

/// The arguments of one `blur()` item, resolved as thumbor's `apply_blur` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Blur {
    /// Kernel half-width, at most [`MAX_RADIUS`].
    pub radius: u32,
    /// The sigma given, or the radius as written (before the cap) when it is absent or 0.
    pub sigma: f64,
}

pub const SPEC: Spec = Spec {
    name: "blur",
    params: &[Param::PositiveNonZeroNumber, Param::DecimalNumber],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    let radius = args.int(0)?;
    let sigma = args.float(1).unwrap_or(0.0);
    Some(Filter::Pixels(Pixels::new(Blur {
        radius: radius.clamp(1, i64::from(MAX_RADIUS)) as u32,
        sigma: if sigma == 0.0 { radius as f64 } else { sigma },
    })))
}

/// thumbor's `generate_1d_matrix`, normalised as `_convolution.c` does: `e ** -(x² / 2σ²) /
/// sqrt(2σ² π)` for x in -radius..=radius. A 2σ² that underflows to 0 is thumbor's
/// `ZeroDivisionError`, a 500.
fn kernel(sigma: f64, radius: u32) -> Result<Vec<f64>> {
    let two_sigma_squared = 2.0 * sigma * sigma;
    if two_sigma_squared == 0.0 {
        return Err(Error::new(ErrorKind::ThumborFails, "blur(): sigma too small (thumbor: ZeroDivisionError)"));
    }
    let scale = (two_sigma_squared * PI).sqrt();
    let radius = i64::from(radius);
    let taps = (-radius..=radius).map(|x| E.powf(-((x * x) as f64 / two_sigma_squared)) / scale).collect();
    Ok(normalized(taps, true))
}

impl PixelFilter for Blur {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Apply to one frame.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        let kernel = kernel(self.sigma, self.radius)?;
        if bitmap.pixels.is_empty() {
            return Ok(bitmap);
        }
        let horizontal = convolve(&bitmap, &kernel, kernel.len())?;
        drop(bitmap);
        convolve(&horizontal, &kernel, 1)
    }

    /// Two passes of a 2r+1 kernel.
    fn taps_per_pixel(&self) -> u64 {
        2 * (2 * u64::from(self.radius) + 1)
    }

    /// The pass in between, and the result.
    fn scratch_bytes_per_pixel(&self) -> u64 {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::filters::testing::{fnv, lcg, with_context};

    fn blur(radius: &str, sigma: Option<&str>) -> Filter {
        let values = std::iter::once(radius).chain(sigma).map(String::from).collect();
        build(&Args { values }).expect("blur's arguments")
    }

    fn pixels(blur: Blur) -> Filter {
        Filter::Pixels(Pixels::new(blur))
    }

    fn run(filter: &Filter, bitmap: Bitmap) -> Result<Vec<u8>> {
        with_context(|ctx| Ok(filter.apply(bitmap, ctx)?.pixels))
    }

    fn noise(width: u32, height: u32, channels: Channels, seed: u32) -> Bitmap {
        Bitmap { width, height, channels, pixels: lcg((width * height) as usize * channels.count(), seed) }
    }

    #[test]
    fn arguments_like_apply_blur() {
        assert_eq!(blur("5", None), pixels(Blur { radius: 5, sigma: 5.0 }));
        assert_eq!(blur("4", Some("2")), pixels(Blur { radius: 4, sigma: 2.0 }));
        assert_eq!(blur("4", Some("0.0")), pixels(Blur { radius: 4, sigma: 4.0 }));
        // The cap applies to the radius only: sigma stays 200.
        assert_eq!(blur("200", None), pixels(Blur { radius: 150, sigma: 200.0 }));
    }

    /// thumbor's `generate_1d_matrix(1, 1)`, before normalisation.
    #[test]
    fn kernel_taps() {
        let two_sigma_squared = 2.0f64;
        let centre = 1.0 / (two_sigma_squared * PI).sqrt();
        let side = E.powf(-0.5) / (two_sigma_squared * PI).sqrt();
        assert_eq!((centre, side), (0.3989422804014327, 0.24197072451914337));
        let k = kernel(1.0, 1).unwrap();
        assert_eq!(k.len(), 3);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// Expected bytes from thumbor 7.8's `apply_blur` on 5x4 images.
    #[test]
    fn matches_thumbor() {
        assert_eq!(
            run(&blur("1", None), noise(5, 4, Channels::Rgb, 21)).unwrap(),
            [
                125, 98, 82, 131, 127, 111, 101, 124, 162, 69, 143, 162, 69, 207, 106, 152, 129, 116, 140, 128, 132,
                117, 111, 146, 102, 124, 157, 101, 170, 165, 173, 184, 157, 143, 138, 155, 122, 107, 132, 115, 113,
                141, 104, 124, 194, 178, 217, 177, 137, 140, 163, 126, 102, 121, 133, 106, 123, 117, 92, 184
            ]
        );
        // Alpha is blurred too.
        assert_eq!(
            run(&blur("2", None), noise(5, 4, Channels::Rgba, 22)).unwrap(),
            [
                74, 152, 153, 161, 104, 138, 139, 118, 137, 122, 130, 84, 163, 113, 126, 62, 171, 119, 135, 69, 97,
                157, 131, 148, 113, 143, 127, 121, 131, 127, 127, 99, 142, 116, 130, 86, 140, 118, 141, 93, 128, 163,
                102, 130, 126, 149, 111, 121, 124, 137, 119, 116, 117, 128, 128, 115, 107, 129, 138, 123, 163, 169, 70,
                110, 141, 156, 91, 120, 117, 149, 107, 132, 93, 145, 120, 144, 74, 149, 127, 156
            ]
        );
    }

    /// FNV-1a of thumbor's output on 64x64 noise: default and explicit sigmas, a negative sigma,
    /// the cap (150), a radius beyond the cap (sigma 200), and a huge radius (a flat kernel).
    #[test]
    fn matches_thumbor_on_noise() {
        let cases: &[(&str, Option<&str>, u64, u64)] = &[
            ("1", None, 0x5e05ed6d749f8eaf, 0x180bf34788cd327c),
            ("3", None, 0xc58105e260e100b3, 0xccee5d84f50c54bd),
            ("4", Some("2"), 0xa93aa05a6303ef92, 0xcedf8ca252e339f7),
            ("5", None, 0x476bc7cff8519322, 0xb664ce57759f9d1e),
            ("4", Some("0.5"), 0x627a47097c94c031, 0x0c656b9ae808c035),
            ("10", Some("-3"), 0xa0cef5f60083ef43, 0x4c6244ca38b3fb62),
            ("150", None, 0xdd3ff90aedfdc23c, 0x33dc9d7f72200b71),
            ("200", None, 0x8251ac5eeeaaa91d, 0x154ad3d049a5981c),
            ("99999999999", None, 0xa8295deb9ed22d2c, 0xa4ee6c53ed65ccc7),
        ];
        for (radius, sigma, rgb, rgba) in cases {
            let filter = blur(radius, *sigma);
            assert_eq!(fnv(&run(&filter, noise(64, 64, Channels::Rgb, 7)).unwrap()), *rgb, "blur({radius},{sigma:?})");
            assert_eq!(
                fnv(&run(&filter, noise(64, 64, Channels::Rgba, 9)).unwrap()),
                *rgba,
                "blur({radius},{sigma:?})"
            );
        }
    }

    #[test]
    fn flat_colour_stays() {
        let flat = Bitmap::filled(4, 4, Channels::Rgba, &[200, 100, 50, 255]);
        assert_eq!(run(&blur("3", None), flat.clone()).unwrap(), flat.pixels);
    }

    /// thumbor divides by 2σ² in Python: ZeroDivisionError, 500.
    #[test]
    fn vanishing_sigma_is_internal_error() {
        let sigma = format!("0.{}1", "0".repeat(170));
        let err = run(&blur("2", Some(&sigma)), noise(4, 4, Channels::Rgb, 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ThumborFails);
    }

    /// The largest radius on a 1000x1000 frame stays well within a second or two (a naive 2-D
    /// kernel would take minutes).
    #[test]
    fn max_radius_is_linear() {
        let start = std::time::Instant::now();
        let pixels = run(&blur("150", None), noise(1000, 1000, Channels::Rgb, 3)).unwrap();
        assert_eq!(pixels.len(), 3_000_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    }
}
