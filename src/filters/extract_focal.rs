//! `extract_focal()`: a nested thumbor crop URL becomes a focal point. In thumbor 7.8 the image URL has `:` quoted before the filter reads it, so it never finds the crop; Thumbora does the same (no effect).

use super::{Args, Filter, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `extract_focal()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractFocal {}

pub const SPEC: Spec = Spec { name: "extract_focal", params: &[], required: 0, phase: Phase::PreLoad, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Pixels(Pixels::new(ExtractFocal {})))
}

impl PixelFilter for ExtractFocal {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// No effect (see above); a pre-load filter, so the pipeline never runs it on frames.
    fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
