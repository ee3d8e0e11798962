//! The configured caps on sources, outputs and requested sizes (`image.max_*`), checked from the
//! header or the URL before anything is decoded or fetched. Shared by the pipeline and the
//! filters that make images of their own (`fill`, `frame`, `watermark`); over a cap: 400.

use crate::codec::probe::Probe;
use crate::config::ImageConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::geometry::Size;
use crate::url::{Dim, ImageRequest};

fn too_large(context: String) -> Error {
    Error::new(ErrorKind::TooLarge, context)
}

/// Refuse sources over the configured pixel and frame limits, from the header alone.
pub fn check_source(probe: &Probe, cfg: &ImageConfig) -> Result<()> {
    if probe.size.pixels() > cfg.max_source_pixels {
        return Err(too_large(format!(
            "source is {}x{}, above max_source_pixels {}",
            probe.size.width, probe.size.height, cfg.max_source_pixels
        )));
    }
    if probe.frames > cfg.max_frames {
        return Err(too_large(format!("source has more than {} frames", cfg.max_frames)));
    }
    if probe.scans > cfg.max_jpeg_scans {
        return Err(too_large(format!("JPEG has more than {} scans", cfg.max_jpeg_scans)));
    }
    Ok(())
}

/// Refuse outputs over the configured caps (thumbor has none: `99999x0` exhausts memory).
pub fn check_output(size: Size, cfg: &ImageConfig) -> Result<()> {
    let side = cfg.max_output_side;
    if side > 0 && (size.width > side || size.height > side) {
        return Err(too_large(format!("output {}x{} above max_output_side {side}", size.width, size.height)));
    }
    if cfg.max_output_pixels > 0 && size.pixels() > cfg.max_output_pixels {
        return Err(too_large(format!(
            "output {}x{} above max_output_pixels {}",
            size.width, size.height, cfg.max_output_pixels
        )));
    }
    Ok(())
}

/// Refuse, from the URL alone, requests whose output must exceed the caps: a plain `WxH`
/// produces exactly W or H pixels on that side, and a filter that `grows` the image (`upscale()`,
/// `fill()`) grows into the fit-in box. Checked before the source is fetched.
pub fn check_requested_sides(req: &ImageRequest, grows: bool, cfg: &ImageConfig) -> Result<()> {
    let side = cfg.max_output_side;
    if side == 0 {
        return Ok(());
    }
    let exact = !req.fit_in.enabled || req.fit_in.full || grows;
    let over = |d: Dim, max: u32| matches!(d, Dim::Px(n) if n > side && (max == 0 || n <= max));
    if exact && !req.debug && (over(req.width, cfg.max_width) || over(req.height, cfg.max_height)) {
        return Err(too_large(format!("requested side above max_output_side {side}")));
    }
    Ok(())
}
