//! ICC colour management with moxcms: RGB(A) pixels converted to sRGB through their embedded
//! profile (`image.icc: srgb`, outputs that cannot carry a profile, profiles that do not describe
//! RGB pixels), and CMYK JPEG pixels converted through their CMYK profile.

use std::sync::Arc;

use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};

use super::bitmap::{Bitmap, Channels};

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
#[error("ICC profile unusable: {0}")]
pub struct IccError(String);

fn unusable(e: impl std::fmt::Display) -> IccError {
    IccError(e.to_string())
}

/// The colour space of the pixels a profile describes, when the profile parses.
pub fn color_space(icc: &[u8]) -> Option<DataColorSpace> {
    ColorProfile::new_from_slice(icc).ok().map(|p| p.color_space)
}

/// Whether `icc` describes RGB pixels (the only kind Thumbora's RGB(A) bitmaps can carry).
pub fn describes_rgb(icc: &[u8]) -> bool {
    color_space(icc) == Some(DataColorSpace::Rgb)
}

/// A conversion from one embedded profile to sRGB, for RGB or RGBA bitmaps (alpha is kept).
pub struct ToSrgb {
    profile: ColorProfile,
    rgb: Option<Arc<Transform8BitExecutor>>,
    rgba: Option<Arc<Transform8BitExecutor>>,
}

impl ToSrgb {
    /// Parse `icc`; RGB and gray profiles are accepted (a gray profile describes the gray levels of
    /// pixels that were decoded to RGB with equal channels).
    pub fn new(icc: &[u8]) -> Result<Self, IccError> {
        let profile = ColorProfile::new_from_slice(icc).map_err(unusable)?;
        if !matches!(profile.color_space, DataColorSpace::Rgb | DataColorSpace::Gray) {
            return Err(IccError(format!("a {:?} profile cannot describe RGB pixels", profile.color_space)));
        }
        Ok(ToSrgb { profile, rgb: None, rgba: None })
    }

    fn transform(&mut self, channels: Channels) -> Result<Arc<Transform8BitExecutor>, IccError> {
        let gray = self.profile.color_space == DataColorSpace::Gray;
        let (src, dst) = match (channels, gray) {
            (Channels::Rgb, false) => (Layout::Rgb, Layout::Rgb),
            (Channels::Rgba, false) => (Layout::Rgba, Layout::Rgba),
            (Channels::Rgb, true) => (Layout::Gray, Layout::Rgb),
            (Channels::Rgba, true) => (Layout::GrayAlpha, Layout::Rgba),
        };
        let slot = match channels {
            Channels::Rgb => &mut self.rgb,
            Channels::Rgba => &mut self.rgba,
        };
        if let Some(t) = slot {
            return Ok(t.clone());
        }
        let srgb = ColorProfile::new_srgb();
        let t = self.profile.create_transform_8bit(src, &srgb, dst, TransformOptions::default()).map_err(unusable)?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// Convert `bitmap`'s pixels to sRGB.
    pub fn apply(&mut self, bitmap: &mut Bitmap) -> Result<(), IccError> {
        let transform = self.transform(bitmap.channels)?;
        let c = bitmap.channels.count();
        let src: Vec<u8> = if self.profile.color_space == DataColorSpace::Gray {
            // Gray levels (and alpha) from the R channel of each pixel.
            bitmap.pixels.chunks_exact(c).flat_map(|p| if c == 4 { vec![p[0], p[3]] } else { vec![p[0]] }).collect()
        } else {
            bitmap.pixels.clone()
        };
        transform.transform(&src, &mut bitmap.pixels).map_err(unusable)
    }
}

/// CMYK pixels (4 bytes each; `inverted` as Adobe writes them, 255 = no ink) to sRGB through a
/// CMYK profile. `None` when the profile is not a usable CMYK profile.
pub fn cmyk_to_srgb(cmyk: &[u8], inverted: bool, icc: &[u8]) -> Option<Vec<u8>> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    if profile.color_space != DataColorSpace::Cmyk {
        return None;
    }
    // moxcms reads CMYK with the RGBA layout; ICC CMYK is 0 = no ink.
    let transform = profile
        .create_transform_8bit(Layout::Rgba, &ColorProfile::new_srgb(), Layout::Rgb, TransformOptions::default())
        .map_err(|e| log::debug!("CMYK profile unusable: {e}"))
        .ok()?;
    let owned;
    let src = if inverted {
        owned = cmyk.iter().map(|v| 255 - v).collect::<Vec<u8>>();
        &owned
    } else {
        cmyk
    };
    let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
    transform.transform(src, &mut rgb).map_err(|e| log::debug!("CMYK transform failed: {e}")).ok()?;
    Some(rgb)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Display P3 profile (wider gamut than sRGB).
    pub(crate) fn display_p3() -> Vec<u8> {
        ColorProfile::new_display_p3().encode().unwrap()
    }

    #[test]
    fn display_p3_green_becomes_a_different_srgb_green() {
        let mut bitmap = Bitmap::filled(4, 2, Channels::Rgba, &[40, 200, 60, 128]);
        let mut to_srgb = ToSrgb::new(&display_p3()).unwrap();
        to_srgb.apply(&mut bitmap).unwrap();
        let p = &bitmap.pixels[..4];
        assert_ne!(&p[..3], &[40, 200, 60], "P3 colours move when expressed in sRGB");
        assert!(p[1] > 190 && p[0] < 40, "still green: {p:?}");
        assert_eq!(p[3], 128, "alpha kept");
    }

    #[test]
    fn srgb_to_srgb_is_close_to_identity() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        let mut bitmap = Bitmap::filled(3, 3, Channels::Rgb, &[12, 130, 250]);
        ToSrgb::new(&srgb).unwrap().apply(&mut bitmap).unwrap();
        for (a, b) in bitmap.pixels[..3].iter().zip([12u8, 130, 250]) {
            assert!(a.abs_diff(b) <= 1, "{:?}", &bitmap.pixels[..3]);
        }
    }

    #[test]
    fn profiles_that_do_not_describe_rgb_are_refused() {
        assert!(ToSrgb::new(b"not a profile").is_err());
        assert!(describes_rgb(&display_p3()));
        assert!(!describes_rgb(b"junk"));
    }
}
