//! `saturation(x)`: multiplies the saturation by x.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `saturation()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    pub change: f64,
}

pub const SPEC: Spec =
    Spec { name: "saturation", params: &[Param::DecimalNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Saturation(Saturation { change: args.float(0)? }))
}

impl Saturation {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
