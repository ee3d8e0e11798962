//! `proportion(p)`: scales the result by p (0 < p <= 1; other values are ignored).

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `proportion()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Proportion {
    pub value: f64,
}

pub const SPEC: Spec =
    Spec { name: "proportion", params: &[Param::DecimalNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Proportion(Proportion { value: args.float(0)? }))
}

impl Proportion {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
