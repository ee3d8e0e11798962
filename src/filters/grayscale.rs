//! `grayscale()`: luminance only (alpha kept).

use super::{Args, Filter, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `grayscale()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Grayscale {}

pub const SPEC: Spec = Spec { name: "grayscale", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Grayscale(Grayscale {}))
}

impl Grayscale {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
