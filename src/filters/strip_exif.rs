//! `strip_exif()`: drops EXIF metadata (Thumbora never copies EXIF into results: a no-op).

use super::{Args, Filter, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `strip_exif()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct StripExif {}

pub const SPEC: Spec = Spec { name: "strip_exif", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(StripExif {})))
}

impl PixelFilter for StripExif {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Results carry no EXIF already: the frame is returned as is.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
