//! `contrast(n)`: contrast change in percent.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `contrast()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    pub value: i64,
}

pub const SPEC: Spec =
    Spec { name: "contrast", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Contrast(Contrast { value: args.int(0)? }))
}

impl Contrast {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
